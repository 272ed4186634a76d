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
	cfg := Default()
	cfg.General.InvocationURL = wire.MustAddr("127.0.0.1:0")
	cfg.General.NodeRegisterURL = wire.MustAddr("127.0.0.1:1")
	cfg.WASM.CacheDir = ""
	cfg.WASM.MaxInstances = 8
	cfg.State.Dir = b.TempDir()
	cfg.Resources = Resources{DataDir: b.TempDir()}
	cfg.TLS.Enabled = false       // events stay in the node
	cfg.Container.Enabled = false // Docker's work would disturb the measure
	n, err := New(cfg, slog.New(slog.DiscardHandler))
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
