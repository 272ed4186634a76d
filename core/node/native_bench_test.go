package node

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// runtimeNode starts a node offering both runtimes, with no orchestrator
// (its registration just fails), after mutate changes its configuration.
func runtimeNode(b *testing.B, mutate ...func(*Config)) *Node {
	b.Helper()
	cfg := Default()
	cfg.General.InvocationURL = wire.MustAddr("127.0.0.1:0")
	cfg.General.NodeRegisterURL = wire.MustAddr("127.0.0.1:1")
	cfg.WASM.CacheDir = ""
	cfg.WASM.MaxInstances = 8
	files, _ := filepath.Glob(filepath.Join("..", "..", "functions", "*", "*.so"))
	for _, f := range files {
		if err := cfg.Native.AllowFile(f); err != nil {
			b.Fatal(err)
		}
	}
	cfg.State.Dir = b.TempDir()
	cfg.Resources = Resources{DataDir: b.TempDir()}
	cfg.TLS.Enabled = false // events stay in the node
	cfg.Telemetry.MetricsURL = wire.Addr{}
	cfg.Container.Enabled = false // Docker's work would disturb the others
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

// startClass starts functions/<class>/<class>.<ext> as a function of type
// ftype on n, casting its output "output" to next unless next is nil.
func startClass(b *testing.B, n *Node, ftype, class, ext string, next *instance) *instance {
	b.Helper()
	code := testutil.Function(b, class, ext)
	id := core.NewID()
	req := &wire.StartFunction{Component: id, Spec: wire.FunctionSpec{
		Logical: core.NewID(), Name: class, FunctionType: ftype, Code: code,
	}}
	if _, err := n.startFunction(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	inst := n.instance(id)
	if next != nil {
		inst.setOutputs(map[string][]core.InstanceID{"output": {next.id}}, 0)
	}
	return inst
}

// pump routes b.N casts of payload to first and waits until last has
// handled as many. At most window events are in flight, fewer than a
// mailbox holds, so no hop of a chain drops one. It reports events/s.
func pump(b *testing.B, n *Node, first, last *instance, payload []byte) {
	window := uint64(n.cfg.General.MailboxSize / 2)
	e := core.Event{Kind: core.KindCast, Target: first.id, Source: first.id, Payload: payload}
	start := last.handled.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for k := range uint64(b.N) {
		for k-(last.handled.Load()-start) >= window {
			// Sleep rather than spin: a spinning injector would take a
			// core from the instances it measures.
			time.Sleep(20 * time.Microsecond)
		}
		if err := n.route(&e); err != nil {
			b.Fatal(err)
		}
	}
	for last.handled.Load()-start < uint64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if d := n.dropped.Get(); d != 0 {
		b.Fatalf("%d events dropped", d)
	}
}

// BenchmarkLocalCastNative measures one local hop into a native no-op
// instance: routed into its mailbox, taken by its goroutine, handed to
// handle_cast. Events are pipelined, so ns/op is the cost per event under
// load.
func BenchmarkLocalCastNative(b *testing.B) {
	n := runtimeNode(b)
	inst := startClass(b, n, "RUST_NATIVE", "noop", "so", nil)
	pump(b, n, inst, inst, make([]byte, 64))
}

// BenchmarkChain sends events through three functions on one node,
// incr → double → noop, built from the same C sources for both runtimes:
// each event is three handler calls and two host casts.
func BenchmarkChain(b *testing.B) {
	for _, rt := range []struct{ name, ftype, ext string }{
		{"native", "RUST_NATIVE", "so"},
		{"wasm", "RUST_WASM", "wasm"},
	} {
		b.Run(rt.name, func(b *testing.B) {
			n := runtimeNode(b)
			last := startClass(b, n, rt.ftype, "noop", rt.ext, nil)
			mid := startClass(b, n, rt.ftype, "double", rt.ext, last)
			first := startClass(b, n, rt.ftype, "incr", rt.ext, mid)
			pump(b, n, first, last, []byte("1"))
		})
	}
}

// BenchmarkInvokeNative measures calls from many goroutines at once through
// the node's invoker (the path of a direct invocation, and of
// http-ingress's calls) into one native no-op instance: call table, mailbox
// and the way back.
func BenchmarkInvokeNative(b *testing.B) {
	n := runtimeNode(b)
	inst := startClass(b, n, "RUST_NATIVE", "noop", "so", nil)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ret, _, err := n.invoker.call(context.Background(), inst.id, nil, n.route); err != nil || ret == core.CallErr {
				b.Error(ret, err)
				return
			}
		}
	})
}
