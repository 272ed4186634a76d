package bench

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/inabox"
)

// BenchmarkRing measures end-to-end transactions around a ring of two
// vector_mul functions with 1-element vectors (so the dataplane dominates),
// in a cluster in this process: local (one node) or remote (two nodes, each
// hop over loopback TCP), WASM or native, with one transaction in flight
// (idle: latency) or 64 (loaded: throughput). A transaction is two hops;
// ns/op is per transaction, p50-hop-µs half the transaction's median, and
// events/s counts hops. Latency includes the two marks (BenchmarkMark).
//
// remote runs the dataplane with mutual TLS, as by default; remote-plain
// without it, for the cost of TLS in the same run.
func BenchmarkRing(b *testing.B) {
	for _, place := range []struct {
		name  string
		nodes int
		plain bool
	}{{"local", 1, false}, {"remote", 2, false}, {"remote-plain", 2, true}} {
		for _, rt := range []string{"wasm", "so"} {
			for _, window := range []int{1, 64} {
				name := place.name + "/" + map[string]string{"wasm": "wasm", "so": "native"}[rt] +
					map[int]string{1: "/idle", 64: "/loaded"}[window]
				b.Run(name, func(b *testing.B) { benchRing(b, place.nodes, place.plain, rt, window) })
			}
		}
	}
}

func benchRing(b *testing.B, nodes int, plain bool, ext string, window int) {
	sink := newMarkSink(math.MaxInt)
	log := slog.New(&markHandler{next: slog.DiscardHandler, level: slog.LevelError, sink: sink})
	box, err := startBox(context.Background(), nodes, b.TempDir(), log, func(c *inabox.Config) {
		if plain {
			c.Controller.TLS.Enabled, c.Orchestrator.TLS.Enabled, c.Node.TLS.Enabled = false, false, false
			c.Ephemeral(false)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { box.Close() })
	var ids []string
	for _, n := range box.Nodes {
		ids = append(ids, n.ID().String())
	}
	p := vectorMul{MinChainLength: 2, MaxChainLength: 2, MinInputSize: 1, MaxInputSize: 1,
		FunctionPath: "functions/vector_mul/vector_mul." + ext, Window: window, Spread: nodes > 1, nodes: ids}
	if err := p.validate(); err != nil {
		b.Fatal(err)
	}
	w, _ := p.next(rand.New(rand.NewPCG(1, 1)), 0)
	if _, err := newController(boxAPI(box)).start(context.Background(), w); err != nil {
		b.Fatal(err)
	}
	// Warm up: 2000 transactions (4000 marks) before measuring.
	waitMarks(b, sink, 4000)
	base := sink.count()
	from := time.Now().UnixNano()
	b.ResetTimer()
	waitMarks(b, sink, base+2*b.N)
	b.StopTimer()
	marks, wfs, _ := sink.take()
	pr := pairMarks(marks, wfs, from, time.Now().UnixNano(), nil, time.Hour)
	lat := make([]time.Duration, len(pr.done))
	for i, t := range pr.done {
		lat[i] = t.latency()
	}
	d := newDistribution(lat)
	b.ReportMetric(float64(d.p50)/2e3, "p50-hop-µs")
	b.ReportMetric(float64(d.p99)/1e3, "p99-txn-µs")
	b.ReportMetric(2*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// waitMarks polls until the sink holds n marks, for at most a minute.
func waitMarks(b *testing.B, sink *markSink, n int) {
	deadline := time.Now().Add(time.Minute)
	for sink.count() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d marks after a minute", sink.count(), n)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// BenchmarkWorkflowStart measures starting a workflow of five WASM functions
// (a vector-mul ring) in a cluster in this process: the controller's API
// call until every instance runs and is wired. Stopping is not timed.
func BenchmarkWorkflowStart(b *testing.B) {
	box, err := startBox(context.Background(), 1, b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { box.Close() })
	p := vectorMul{MinChainLength: 5, MaxChainLength: 5, MinInputSize: 1, MaxInputSize: 1,
		FunctionPath: "functions/vector_mul/vector_mul.wasm", Window: 1}
	if err := p.validate(); err != nil {
		b.Fatal(err)
	}
	con := newController(boxAPI(box))
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		w, _ := p.next(rng, 0)
		id, err := con.start(ctx, w)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := con.stop(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
