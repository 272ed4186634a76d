package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// aloneConfig is the configuration of a node with no orchestrator (its
// registration just fails), its files in temporary directories.
func aloneConfig(tb testing.TB) Config {
	cfg := Default()
	cfg.General.InvocationURL = wire.MustAddr("127.0.0.1:0")
	cfg.General.NodeRegisterURL = wire.MustAddr("127.0.0.1:1")
	cfg.WASM.CacheDir = ""
	cfg.WASM.MaxInstances = 8
	cfg.State.Dir = tb.TempDir()
	cfg.Resources = Resources{DataDir: tb.TempDir()}
	return cfg
}

// startNode starts a node with no orchestrator (its registration just fails)
// and a certificate from ca; opts change its configuration.
func startNode(t *testing.T, ca *wire.CA, opts ...func(*Config)) *Node {
	t.Helper()
	cfg := aloneConfig(t)
	cfg.Telemetry.MetricsURL = wire.Addr{}
	cfg.Resources.FileLogProvider = "file-log-1"
	cfg.Container.Enabled = false // the container tests start their own
	creds, err := ca.Credentials(wire.Identity{Role: wire.RoleNode, ID: core.NewID().String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credentials = creds
	for _, o := range opts {
		o(&cfg)
	}
	n, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// newCA returns a CA for the nodes of one test.
func newCA(t *testing.T) *wire.CA {
	t.Helper()
	ca, err := wire.NewCA("node tests", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// echoAcross starts two peer nodes, a WASM echo function on the first and a
// file-log resource on the second, its output: it returns the nodes, the
// echo's id and the log's file.
func echoAcross(t *testing.T) (a, b *Node, echo core.InstanceID, file string) {
	t.Helper()
	ca := newCA(t)
	a, b = startNode(t, ca), startNode(t, ca)
	ctx := context.Background()
	for _, pair := range [][2]*Node{{a, b}, {b, a}} {
		if _, err := pair[0].updatePeers(ctx, &wire.UpdatePeers{Add: []wire.Peer{{Node: pair[1].ID(), Addr: pair[1].Addr()}}}); err != nil {
			t.Fatal(err)
		}
	}
	code := testutil.Function(t, "echo", "wasm")
	echo, log := core.InstanceID{Node: a.ID(), Component: core.NewID()}, core.NewID()
	file = filepath.Join(b.cfg.Resources.DataDir, "echo.log")
	if _, err := b.startResource(ctx, &wire.StartResource{Component: log, Provider: "file-log-1",
		Spec: wire.ResourceSpec{Logical: core.NewID(), Name: "log", ClassType: "file-log", Configurations: map[string]string{"filename": "echo.log"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.startFunction(ctx, &wire.StartFunction{Component: echo.Component,
		Spec: wire.FunctionSpec{Logical: core.NewID(), Name: "echo", FunctionType: "RUST_WASM", Code: code}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.patch(ctx, &wire.PatchNode{Component: echo.Component, Outputs: map[string][]core.InstanceID{"output": {{Node: b.ID(), Component: log}}}}); err != nil {
		t.Fatal(err)
	}
	return a, b, echo, file
}

// TestLargeEventAcrossNodes sends an event close to the frame limit from a
// function on one node to a resource on another: it arrives whole.
func TestLargeEventAcrossNodes(t *testing.T) {
	a, _, echo, file := echoAcross(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16) // 10 MiB, over the default queue bound
	e := core.Event{Kind: core.KindCast, Target: echo, Payload: payload}
	if err := a.route(&e); err != nil {
		t.Fatal(err)
	}
	var data []byte
	testutil.EventuallyDetail(t, 20*time.Second, "the event in the log", func() bool {
		data, _ = os.ReadFile(file)
		return len(data) == len(payload)+1
	}, func() string {
		return fmt.Sprintf("the log holds %d bytes, want %d; dropped events: %d", len(data), len(payload)+1, a.dropped.Get())
	})
	if !bytes.Equal(data[:len(payload)], payload) {
		t.Fatal("the event arrived altered")
	}
}

// TestBatchedOutputsAcrossNodes: a WASM function's casts and call results to
// another node wait for its flush (instance.batchOut); none is held back,
// whether the function goes idle after one event or handles a burst, and
// they arrive in order.
func TestBatchedOutputsAcrossNodes(t *testing.T) {
	a, b, echo, file := echoAcross(t)
	if !a.local(echo).batchOut {
		t.Fatal("a WASM instance does not batch its outputs")
	}
	lines := func() []string {
		data, _ := os.ReadFile(file)
		return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	send := func(p string) {
		e := core.Event{Kind: core.KindCast, Target: echo, Payload: []byte(p)}
		for err := a.route(&e); err != nil; err = a.route(&e) {
			if !isMailboxFull(err) {
				t.Fatal(err)
			}
			runtime.Gosched()
		}
	}
	send("lone")
	testutil.Eventually(t, 10*time.Second, "the cast of an instance that went idle", func() bool { return len(lines()) == 1 && lines()[0] == "lone" })

	const burst = 1000
	want := []string{"lone"}
	for i := range burst {
		want = append(want, strconv.Itoa(i))
		send(want[len(want)-1])
	}
	var got []string
	testutil.EventuallyDetail(t, 20*time.Second, "the burst's casts", func() bool {
		got = lines()
		return len(got) == len(want)
	}, func() string { return fmt.Sprintf("%d of %d lines", len(got), len(want)) })
	if !slices.Equal(got, want) {
		t.Fatalf("the casts arrived out of order or altered: %q", got)
	}

	// A call's result goes back the same way.
	c := newOneCall(b)
	from := core.InstanceID{Node: b.ID(), Component: core.NewID()}
	ret, reply, err := callThrough(b, c, from, echo, "back")
	if err != nil || ret != core.CallReply || string(reply) != "back" {
		t.Fatalf("call across nodes = %v %q %v", ret, reply, err)
	}
}

// TestFailedStartReleasesEverything: a node whose dataplane address is taken
// fails to start after its providers opened their listeners; Close, its one
// cleanup path, releases them (the http-ingress port can be bound again) and
// can be called again.
func TestFailedStartReleasesEverything(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := Default()
	cfg.General.InvocationURL = wire.MustAddr(taken.Addr().String())
	cfg.General.NodeRegisterURL = wire.MustAddr("127.0.0.1:1")
	cfg.WASM.CacheDir = ""
	cfg.State.Dir = t.TempDir()
	cfg.Telemetry.MetricsURL = wire.Addr{}
	cfg.TLS.Enabled = false
	cfg.Container.Enabled = false
	cfg.Resources = Resources{DataDir: t.TempDir(), HTTPIngressProvider: "ingress", HTTPIngressURL: wire.MustAddr("127.0.0.1:0")}
	n, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot start node dataplane") {
		t.Fatalf("Start = %v, want the dataplane address refused", err)
	}
	ingress := n.HTTPIngressAddr()
	if strings.HasSuffix(ingress, ":0") || ingress == "" {
		t.Fatalf("http-ingress address %q: the provider did not listen before the failure", ingress)
	}
	l, err := net.Listen("tcp", ingress)
	if err != nil {
		t.Fatalf("the http-ingress listener outlived the failed start: %v", err)
	}
	l.Close()
	if err := n.Close(); err != nil {
		t.Fatalf("Close after a failed start: %v", err)
	}
}

// TestUpdatePeersReplace: a whole list (Replace) drops the peers not on it
// and keeps the connections of those whose address did not change; an
// incremental update always makes a new one (the peer may have restarted).
func TestUpdatePeersReplace(t *testing.T) {
	n := startNode(t, newCA(t))
	ctx := context.Background()
	p1, p2, p3 := core.NewID(), core.NewID(), core.NewID()
	update := func(req *wire.UpdatePeers) map[core.ID]*wire.Client {
		t.Helper()
		if _, err := n.updatePeers(ctx, req); err != nil {
			t.Fatal(err)
		}
		return *n.peers.Load()
	}
	before := update(&wire.UpdatePeers{Add: []wire.Peer{{Node: p1, Addr: "127.0.0.1:1"}, {Node: p2, Addr: "127.0.0.1:2"}}})
	if len(before) != 2 {
		t.Fatalf("%d peers, want 2", len(before))
	}
	after := update(&wire.UpdatePeers{Replace: true, Add: []wire.Peer{{Node: p1, Addr: "127.0.0.1:1"}, {Node: p3, Addr: "127.0.0.1:3"},
		{Node: n.ID(), Addr: n.Addr()}}})
	switch {
	case len(after) != 2 || after[p2] != nil || after[p3] == nil:
		t.Fatalf("after the whole list: %v, want p1 and p3", after)
	case after[p1] != before[p1]:
		t.Fatal("p1's connection was replaced though its address did not change")
	}
	moved := update(&wire.UpdatePeers{Replace: true, Add: []wire.Peer{{Node: p1, Addr: "127.0.0.1:4"}}})
	if len(moved) != 1 || moved[p1] == after[p1] || moved[p1].Addr() != "127.0.0.1:4" {
		t.Fatalf("after p1 moved: %v", moved)
	}
	again := update(&wire.UpdatePeers{Add: []wire.Peer{{Node: p1, Addr: "127.0.0.1:4"}}})
	if again[p1] == moved[p1] {
		t.Fatal("an incremental update kept the old connection")
	}
	if gone := update(&wire.UpdatePeers{Del: []core.ID{p1}}); len(gone) != 0 {
		t.Fatalf("after Del: %v", gone)
	}
}
