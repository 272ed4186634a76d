package orc

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// keepAlive is the update a node sends every refresh interval, as the
// lightweight nodes of `edgeless bench --scenario nodes` send it.
func keepAlive(id core.ID) *wire.UpdateNode {
	return &wire.UpdateNode{Node: id, Addr: "127.0.0.1:1", Nonce: 7, RefreshMS: 2000,
		Capabilities: wire.Capabilities{NumCPUs: 2, NumCores: 2, ClockFreqMHz: 2000, MemSizeMiB: 1024,
			Runtimes: []string{spec.FunctionTypeWASM}},
		Health: wire.NodeHealth{MemFree: 1 << 20, MemAvailable: 1 << 20, ProcCPUUsage: 1, LoadAvg1: 10}}
}

// domainOf returns an orchestrator, not started, with n registered nodes.
func domainOf(tb testing.TB, n int) (*Orc, []*wire.UpdateNode) {
	cfg := Default()
	cfg.TLS.Enabled = false
	o, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { o.Close() })
	reqs := make([]*wire.UpdateNode, n)
	for i := range reqs {
		reqs[i] = keepAlive(core.NewID())
		if _, err := o.updateNode(context.Background(), reqs[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return o, reqs
}

// BenchmarkKeepAlive is the orchestrator's work for one node's periodic
// update in a domain of 1 000 nodes: decoding it, as the wire server does,
// and handling it.
func BenchmarkKeepAlive(b *testing.B) {
	o, reqs := domainOf(b, 1000)
	bodies := make([][]byte, len(reqs))
	for i, r := range reqs {
		bodies[i], _ = msgpack.Marshal(r)
	}
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := o.updateNode(context.Background(), reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			req := new(wire.UpdateNode)
			if err := msgpack.Unmarshal(bodies[i%len(bodies)], req); err != nil {
				b.Fatal(err)
			}
			resp, err := o.updateNode(context.Background(), req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := msgpack.Marshal(resp); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkKeepAliveWire is a keep-alive through the wire, from its
// request frame to its answer: 64 nodes, one update in flight each,
// against a server answering the orchestrator's orc.UpdateNode in a domain
// of 1 000 nodes. cpu-µs/op is the process's CPU time (the nodes' side
// included) per keep-alive.
func BenchmarkKeepAliveWire(b *testing.B) {
	o, reqs := domainOf(b, 1000)
	mux := &wire.Mux{}
	wire.MethodInline(mux, wire.MethodOrcUpdateNode, o.updateNode)
	srv, err := wire.NewServer(wire.ServerConfig{Addr: "127.0.0.1:0", MaxFrame: wire.MaxControlFrame, Mux: mux})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	const clients = 64
	cs := make([]*wire.Client, clients)
	for i := range cs {
		cs[i] = wire.NewClient(srv.Addr(), wire.ControlOptions(nil))
		defer cs[i].Close()
		if _, err := wire.Call[wire.UpdateNode, wire.UpdateNodeResponse](context.Background(), cs[i], wire.MethodOrcUpdateNode, reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range cs {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := wire.Call[wire.UpdateNode, wire.UpdateNodeResponse](context.Background(), cs[i], wire.MethodOrcUpdateNode, reqs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/1e3/float64(b.N), "cpu-µs/op")
}

// processCPU returns the user and system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlace is the placement of one function instance in a domain of
// 100 and of 1 000 meshed nodes: the orchestrator's own work, before its
// call to the chosen node.
func BenchmarkPlace(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			o, _ := domainOf(b, n)
			for _, nd := range o.nodes {
				nd.meshed = true
			}
			c := newComponent(core.NewID(), &wire.FunctionSpec{Name: "f", FunctionType: spec.FunctionTypeWASM}, nil, spec.Requirements{})
			b.ReportAllocs()
			for b.Loop() {
				starts, err := o.plan(c, 1, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				o.mu.Lock()
				c.starting = map[core.ID]int{}
				starts[0].n.planned = 0
				o.mu.Unlock()
			}
		})
	}
}
