package node

import (
	"context"
	"log/slog"
	"runtime"
	"testing"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// benchNode starts a node with no orchestrator (its registration just fails)
// and one instance of the given function.
func benchNode(b *testing.B, function string) (*Node, *instance) {
	b.Helper()
	code := testutil.Function(b, function, "wasm")
	n, err := New(benchConfig(b), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	id := core.NewID()
	req := &wire.StartFunction{Component: id, Spec: wire.FunctionSpec{
		Logical: core.NewID(), Name: function, FunctionType: "RUST_WASM", Code: code,
	}}
	if _, err := n.startFunction(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	return n, n.instance(id)
}

// benchConfig is aloneConfig without TLS or containers.
func benchConfig(b *testing.B) Config {
	cfg := aloneConfig(b)
	cfg.TLS.Enabled = false       // events stay in the node
	cfg.Container.Enabled = false // Docker's work would disturb the measure
	return cfg
}

// BenchmarkLocalCastWASM measures one local hop: a cast routed to a WASM
// no-op instance on the same node, through its mailbox, into handle_cast.
func BenchmarkLocalCastWASM(b *testing.B) {
	n, inst := benchNode(b, "noop")
	e := core.Event{Kind: core.KindCast, Target: inst.id, Source: inst.id, Payload: make([]byte, 64)}
	start := inst.handled.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for n.route(&e) == errMailboxFull {
			runtime.Gosched()
		}
	}
	for inst.handled.Load()-start < uint64(b.N) {
		runtime.Gosched()
	}
}

// BenchmarkTelemetryLog is a function's log line on a node whose logger
// takes debug records, as edgeless bench's does for its transaction marks:
// the node's share of the host call, with a handler that does nothing.
func BenchmarkTelemetryLog(b *testing.B) {
	n, err := New(benchConfig(b), slog.New(takeAll{}))
	if err != nil {
		b.Fatal(err)
	}
	h := functionHost{newFunctionInstance(n, core.InstanceID{Node: n.id, Component: core.NewID()},
		&wire.FunctionSpec{Logical: core.NewID(), Name: "f"})}
	target, msg := []byte("tbegin"), []byte("12345")
	b.ReportAllocs()
	for b.Loop() {
		h.TelemetryLog(5, target, msg)
	}
}

// takeAll is a slog.Handler that takes every record and does nothing.
type takeAll struct{}

func (takeAll) Enabled(context.Context, slog.Level) bool  { return true }
func (takeAll) Handle(context.Context, slog.Record) error { return nil }
func (h takeAll) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h takeAll) WithGroup(string) slog.Handler           { return h }
