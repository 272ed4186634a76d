package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// upper is a handler that answers a call with its payload in upper case and
// records casts.
type upper struct {
	mu    sync.Mutex
	casts []string
}

func (u *upper) Cast(_ core.InstanceID, p []byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.casts = append(u.casts, string(p))
	return nil
}

func (u *upper) Call(_ core.InstanceID, p []byte) (core.CallRet, []byte, error) {
	out := make([]byte, len(p))
	for i, c := range p {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return core.CallReply, out, nil
}

// idleNode returns a node that is not started: routing between its own
// instances needs no socket.
func idleNode(t *testing.T) *Node {
	t.Helper()
	cfg := Default()
	cfg.TLS.Enabled = false
	cfg.State.Dir = t.TempDir()
	n, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// runResource starts a resource instance with handler h on n.
func runResource(t *testing.T, n *Node, h handler) *resourceInstance {
	t.Helper()
	r := newResourceInstance(n, core.InstanceID{Node: n.id, Component: core.NewID()}, &wire.ResourceSpec{Logical: core.NewID(), Name: "r", ClassType: "test"})
	r.h = h
	r.release = func(bool) {}
	if err := n.add(r.instance); err != nil {
		t.Fatal(err)
	}
	n.spawn(r.run)
	return r
}

// TestInvokerAndResourceCallsByTable: the invoker and a resource make many
// calls at once, each gets its own result, and route treats the invoker as
// any other receiver.
func TestInvokerAndResourceCallsByTable(t *testing.T) {
	n := idleNode(t)
	target := runResource(t, n, &upper{})
	caller := runResource(t, n, &upper{})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		for _, call := range []func(p []byte) (core.CallRet, []byte, error){
			func(p []byte) (core.CallRet, []byte, error) {
				return n.invoker.call(context.Background(), target.id, p, n.route)
			},
			func(p []byte) (core.CallRet, []byte, error) {
				return caller.calls.call(context.Background(), caller.id, target.id, p, n.route, caller.quit)
			},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := fmt.Sprintf("call %d", i)
				ret, reply, err := call([]byte(p))
				if want := fmt.Sprintf("CALL %d", i); err != nil || ret != core.CallReply || string(reply) != want {
					errs <- fmt.Errorf("call %q = %v %q %v, want %q", p, ret, reply, err, want)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if k := n.invoker.calls.waiting() + caller.calls.waiting(); k != 0 {
		t.Fatalf("%d calls left in the tables", k)
	}
	// The invoker takes results only.
	e := core.Event{Kind: core.KindCast, Target: n.invoker.id, Payload: []byte("x")}
	if err := n.route(&e); err != errNoInstance {
		t.Fatalf("a cast to the invoker: %v, want %v", err, errNoInstance)
	}
	if got := n.Instances(); len(got) != 2 {
		t.Fatalf("Instances() = %v, want the two resources only", got)
	}
}

// TestFunctionTakesOnlyTheResultItWaitsFor: a function's one call slot
// takes the result of the call it is blocked in, and drops others (late
// results of calls that gave up) without filling the slot.
func TestFunctionTakesOnlyTheResultItWaitsFor(t *testing.T) {
	n := idleNode(t)
	target := runResource(t, n, &upper{})
	c := newOneCall(n)
	from := core.InstanceID{Node: n.id, Component: core.NewID()}
	c.deliverReply(core.Event{Kind: core.KindCallReply, Corr: 7, Payload: []byte("late")})
	if len(c.replies) != 0 {
		t.Fatal("a result nobody waits for took the slot")
	}
	for _, p := range []string{"one", "two"} {
		ret, reply, err := callThrough(n, c, from, target.id, p)
		if err != nil || ret != core.CallReply || string(reply) != map[string]string{"one": "ONE", "two": "TWO"}[p] {
			t.Fatalf("call %q = %v %q %v", p, ret, reply, err)
		}
	}
	if got := c.corr.Load(); got != 2 {
		t.Fatalf("correlation ids used: %d, want 2", got)
	}
}

// callThrough makes a call from the one call slot c of an instance that is
// registered in n's routing table for the duration of the call.
func callThrough(n *Node, c *oneCall, from, to core.InstanceID, p string) (core.CallRet, []byte, error) {
	inst := newInstance(n, from, core.NewID(), core.NewID(), "f", "function", "test", c)
	if err := n.add(inst); err != nil {
		return core.CallErr, nil, err
	}
	defer n.remove(from.Component)
	defer n.dropInstanceMetrics(inst.metrics)
	return c.call(from, to, []byte(p), 1, inst.quit)
}

// TestOutputsStopAtTheLease: once the node's lease has ended, what an
// instance sends is dropped, as a host paused in the middle of a handler
// wakes up: its replacement, started from the last synced state, sends it
// again.
func TestOutputsStopAtTheLease(t *testing.T) {
	n := idleNode(t)
	target := runResource(t, n, &upper{})
	sender := runResource(t, n, &upper{})
	n.leaseUntil.Store(int64(time.Since(n.epoch) + time.Hour))
	if err := sender.castTo(target.id, []byte("before"), 0, false); err != nil {
		t.Fatalf("cast within the lease: %v", err)
	}
	n.leaseUntil.Store(int64(time.Since(n.epoch) - time.Millisecond))
	dropped := n.dropped.Get()
	if err := sender.castTo(target.id, []byte("after"), 0, false); !errors.Is(err, errFenced) {
		t.Fatalf("cast past the lease: %v, want %v", err, errFenced)
	}
	if got := n.dropped.Get(); got != dropped+1 {
		t.Fatalf("dropped %d, want %d", got, dropped+1)
	}
}

// waiting counts the calls waiting in t's slots.
func (t *callTable) waiting() int {
	k := 0
	for _, s := range *t.slots.Load() {
		if s.awaiting.Load() != 0 {
			k++
		}
	}
	return k
}

// TestCallTableSlots: a slot serves call after call; a result that comes
// after its call gave up, or as it gives up, never reaches the slot's next
// call; concurrent calls each get their own result and need no more slots
// than calls at once.
func TestCallTableSlots(t *testing.T) {
	n := &Node{}
	n.instances.Store(&map[core.ID]receiver{})
	n.cfg.General.CallTimeoutMS = 10_000
	n.bufs.New = func() any { b := make([]byte, 0, 64); return &b }
	tab := newCallTable(n)
	reply := func(e *core.Event, payload string) {
		tab.deliverReply(core.Event{Kind: core.KindCallReply, Target: e.Source, Source: e.Target, Corr: e.Corr, Payload: []byte(payload)})
	}
	var from, to core.InstanceID

	// Gave up before its result: the late result is dropped.
	var late core.Event
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := tab.call(ctx, from, to, nil, func(e *core.Event) error { late = *e; return nil }, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with its context ended: %v", err)
	}
	reply(&late, "late")
	ret, got, err := tab.call(context.Background(), from, to, nil, func(e *core.Event) error {
		if e.Corr == late.Corr || e.Corr&slotMask != late.Corr&slotMask {
			t.Errorf("correlation ids %x then %x: want the same slot, another call", late.Corr, e.Corr)
		}
		reply(&late, "late again")
		reply(e, "mine")
		return nil
	}, nil)
	if err != nil || ret != core.CallReply || string(got) != "mine" {
		t.Fatalf("next call = %v %q %v, want its own result", ret, got, err)
	}

	// The result arrives as the call gives up (both ready: either wins).
	for i := range 500 {
		want := fmt.Sprint(i)
		tab.call(ctx, from, to, nil, func(e *core.Event) error { reply(e, "raced"); return nil }, nil)
		_, got, err := tab.call(context.Background(), from, to, nil, func(e *core.Event) error { reply(e, want); return nil }, nil)
		if err != nil || string(got) != want {
			t.Fatalf("call %d after a raced one = %q %v, want %q", i, got, err, want)
		}
	}

	// Concurrent calls, answered from other goroutines.
	const callers, each = 32, 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			for k := range each {
				want := fmt.Sprintf("%d/%d", c, k)
				_, got, err := tab.call(context.Background(), from, to, []byte(want), func(e *core.Event) error {
					ev := *e
					ev.Payload = bytes.Clone(e.Payload)
					go reply(&ev, string(ev.Payload))
					return nil
				}, nil)
				if err != nil || string(got) != want {
					errs <- fmt.Errorf("call %s = %q %v", want, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if k := tab.waiting(); k != 0 {
		t.Fatalf("%d calls left waiting", k)
	}
	if k := len(*tab.slots.Load()); k > callers {
		t.Fatalf("%d slots for %d calls at once", k, callers)
	}
}

// ordered records the casts it handles; a call answers with them, and with
// the goroutine it ran on. A cast of "wait" blocks until gate closes.
type ordered struct {
	mu    sync.Mutex
	seen  []string
	gate  chan struct{}
	fail  bool
	calls chan uint64 // the goroutine of each call
}

func (o *ordered) Cast(_ core.InstanceID, p []byte) error {
	if string(p) == "wait" {
		<-o.gate
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, string(p))
	return nil
}

func (o *ordered) Call(_ core.InstanceID, p []byte) (core.CallRet, []byte, error) {
	o.calls <- goroutineID()
	if o.fail {
		return core.CallErr, nil, errors.New("handler failed")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return core.CallReply, []byte(strings.Join(o.seen, ",")), nil
}

// goroutineID is the running goroutine's number, from its stack header.
func goroutineID() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _ := strconv.ParseUint(strings.Fields(string(buf))[1], 10, 64)
	return id
}

// TestCallRunsNowWhenIdle: a call from the invoker or a resource to an idle
// instance whose handlers are bounded runs on the caller's goroutine,
// unless the caller would give up before the bound; one that finds the
// instance busy or events queued waits its turn behind them; a handler that
// fails there removes the instance as in its own loop.
func TestCallRunsNowWhenIdle(t *testing.T) {
	n := idleNode(t)
	o := &ordered{gate: make(chan struct{}), calls: make(chan uint64, 4)}
	target := runResource(t, n, o)
	call := func() (core.CallRet, []byte, error) {
		return n.invoker.call(context.Background(), target.id, nil, n.route)
	}
	idle := func() {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, "the instance idle", func() bool {
			if target.exec.TryLock() {
				target.exec.Unlock()
				return true
			}
			return false
		})
	}

	// Unbounded handlers (a resource's) run on the instance's goroutine.
	if ret, _, err := call(); err != nil || ret != core.CallReply || <-o.calls == goroutineID() {
		t.Fatalf("call to an unbounded handler = %v %v, or ran on the caller's goroutine", ret, err)
	}
	// Bounded (as a WASM runtime's), idle: on this goroutine.
	target.runBound = time.Second
	idle()
	if ret, reply, err := call(); err != nil || ret != core.CallReply || string(reply) != "" {
		t.Fatalf("call to the idle instance = %v %q %v", ret, reply, err)
	}
	if got, want := <-o.calls, goroutineID(); got != want {
		t.Fatalf("idle: the call ran on goroutine %d, the caller is %d", got, want)
	}
	// A caller who gives up before the bound: queued.
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	idle()
	if ret, _, err := n.invoker.call(short, target.id, nil, n.route); err != nil || ret != core.CallReply || <-o.calls == goroutineID() {
		t.Fatalf("call with a deadline before the bound = %v %v, or ran on the caller's goroutine", ret, err)
	}

	// Busy with "wait", "b" queued: the call comes after both, on the
	// instance's goroutine.
	cast := func(p string) {
		e := core.Event{Kind: core.KindCast, Target: target.id, Source: target.id, Payload: []byte(p)}
		if err := n.route(&e); err != nil {
			t.Fatal(err)
		}
	}
	cast("wait")
	testutil.Eventually(t, 10*time.Second, "the instance taking the first cast", func() bool { return target.mailbox.len() == 0 })
	cast("b")
	type result struct {
		reply []byte
		err   error
	}
	done := make(chan result, 1)
	go func() {
		_, reply, err := call()
		done <- result{reply, err}
	}()
	testutil.Eventually(t, 10*time.Second, "the call queued", func() bool { return target.mailbox.len() == 2 })
	close(o.gate)
	if r := <-done; r.err != nil || string(r.reply) != "wait,b" {
		t.Fatalf("call behind queued casts = %q %v, want \"wait,b\"", r.reply, r.err)
	}
	if got := <-o.calls; got == goroutineID() {
		t.Fatal("the queued call ran on the test's goroutine")
	}

	// A failure on the caller's goroutine removes the instance, which stops.
	idle()
	o.fail = true
	if ret, _, err := call(); err != nil || ret != core.CallErr {
		t.Fatalf("failing call = %v %v, want CallErr", ret, err)
	}
	if got := <-o.calls; got != goroutineID() {
		t.Fatal("the failing call did not run on the caller's goroutine")
	}
	select {
	case <-target.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the failed instance did not stop")
	}
	if n.instance(target.id.Component) != nil {
		t.Fatal("the failed instance is still routed to")
	}
	if r := target.failure.Load(); r == nil || *r != "handler failed" {
		t.Fatalf("failure = %v, want the handler's error", r)
	}
}
