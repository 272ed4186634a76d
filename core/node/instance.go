package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// handler is what runs an instance's events: a WASM instance or a resource.
// It is used by the instance's goroutine only.
type handler interface {
	Cast(src core.InstanceID, payload []byte) error
	Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error)
}

// mail is one queued event; buf is the pooled buffer holding its payload.
type mail struct {
	ev  core.Event
	buf *[]byte
}

// target is one output channel: the physical instances it maps to, balanced
// round robin.
type target struct {
	ids  []core.InstanceID
	next atomic.Uint32
}

func (t *target) pick() core.InstanceID {
	if len(t.ids) == 1 {
		return t.ids[0]
	}
	return t.ids[int(t.next.Add(1)-1)%len(t.ids)]
}

// instance is the core every function and resource instance shares: a
// mailbox drained by its own goroutine, one event at a time, and its output
// mapping. How the calls it makes wait for their results is its role's
// (replies): a function makes one at a time, a resource any number.
type instance struct {
	n        *Node
	id       core.InstanceID
	logical  core.ID
	workflow core.ID
	name     string
	log      *slog.Logger

	h       handler
	release func(failed bool) // handle_stop unless failed, then free; run once on the instance goroutine
	replies replySink         // the role's: where results of the calls it makes go

	mailbox *mailbox
	// urgent holds invocations that jump the mailbox's queue (Serverledge's
	// high-performance class); the instance takes them first.
	urgent       chan mail
	outputs      atomic.Pointer[map[string]*target]
	patchMu      sync.Mutex // serialises setOutputs
	patchVersion uint64     // of the mapping in outputs; under patchMu
	// patched is closed by the first patch of the outputs. EDGELESS's
	// functions call resources from handle_init, which runs before the
	// workflow is wired, so such a call waits for it (waitPatch).
	patched     chan struct{}
	patchedOnce sync.Once
	held        heldCasts
	handled     atomic.Uint64 // events handled, casts and calls; written under exec only
	// exec is held by whoever runs the instance's handlers: its goroutine
	// from taking events to parking, or a caller running a call on its own
	// goroutine while the instance is idle (runNow).
	exec sync.Mutex
	// runBound is the longest a handler runs, which its runtime enforces
	// (0: no bound, never run on a caller's goroutine). Set before start.
	runBound time.Duration
	// handlerStart is when the running handler began (Unix ns), 0 outside
	// one; events the handler sends carry it as their creation time, which
	// spares a clock read per event. Under exec only.
	handlerStart int64
	// batchOut: what the handlers send to other nodes is queued and sent in
	// batches (send, flushOut), for runtimes that make an instance's host
	// calls only on the goroutine running its handler (WASM). Set before
	// start. A handler's events then leave when it returns (at most
	// batchEvents or batchDelay later, while events keep coming), or when
	// it blocks: in a call, a state sync, a wait for the wiring.
	batchOut bool
	out      outBatch // under exec only
	metrics  *instanceMetrics

	quit chan struct{}
	// quitting is set as quit closes: the run loop reads it between events,
	// cheaper than a select on quit next to the mailbox.
	quitting atomic.Bool
	done     chan struct{}
	quitOnce sync.Once
	failure  atomic.Pointer[string] // why the handler failed; set before the failed call is answered
	aborted  atomic.Pointer[string] // why the instance ended outside a handler (its container died)
}

// functionInstance is a function instance: the core, the one call it may be
// blocked in, and its delayed casts.
type functionInstance struct {
	*instance
	calls *oneCall
	seq   uint64 // of the state last synced or started with; instance goroutine only
	// initWaiting, set while handle_init runs, lets startFunction answer
	// when handle_init starts waiting for the patch, which comes only after
	// the answer. Instance goroutine only.
	initWaiting func()

	delayedMu sync.Mutex
	delayed   map[*time.Timer]struct{} // nil once stopping
}

func newFunctionInstance(n *Node, id core.InstanceID, s *wire.FunctionSpec) *functionInstance {
	f := &functionInstance{calls: newOneCall(n), delayed: map[*time.Timer]struct{}{}}
	f.instance = newInstance(n, id, s.Logical, s.Workflow, s.Name, "function", s.FunctionType, f.calls)
	return f
}

// resourceInstance is a resource instance: the core and a table of the calls it
// makes from any goroutine.
type resourceInstance struct {
	*instance
	calls *callTable
}

func newResourceInstance(n *Node, id core.InstanceID, s *wire.ResourceSpec) *resourceInstance {
	r := &resourceInstance{calls: newCallTable(n)}
	r.instance = newInstance(n, id, s.Logical, s.Workflow, s.Name, "resource", s.ClassType, r.calls)
	return r
}

// exiter is a function instance that can end by itself, between events: a
// container that dies.
type exiter interface {
	Exited() <-chan struct{}
}

// watchExit fails the instance when exited closes before the instance
// stops, as a trap in a handler would: the orchestrator re-creates it.
func (inst *instance) watchExit(exited <-chan struct{}) {
	select {
	case <-exited:
	case <-inst.done:
		return
	}
	reason := "its container exited"
	inst.aborted.Store(&reason)
	if inst.n.remove(inst.id.Component) == inst {
		inst.log.Error("instance failed; removing it", "err", reason)
	}
	inst.signalQuit()
}

// signalQuit asks the instance to stop. Safe from any goroutine, idempotent.
func (inst *instance) signalQuit() {
	inst.quitOnce.Do(func() {
		inst.quitting.Store(true)
		close(inst.quit)
	})
}

// abortReason is why the instance is quitting on its own, or "".
func (inst *instance) abortReason() string {
	if r := inst.aborted.Load(); r != nil {
		return *r
	}
	return ""
}

func newInstance(n *Node, id core.InstanceID, logical, workflow core.ID, name, kind, class string, replies replySink) *instance {
	inst := &instance{
		n:        n,
		id:       id,
		logical:  logical,
		workflow: workflow,
		name:     name,
		log:      n.log.With(kind, name, "instance", id.Component.String(), "workflow", workflow.String()),
		replies:  replies,
		mailbox:  newMailbox(n.cfg.General.MailboxSize),
		urgent:   make(chan mail, urgentSize),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		patched:  make(chan struct{}),
	}
	empty := map[string]*target{}
	inst.outputs.Store(&empty)
	inst.metrics = n.newInstanceMetrics(inst, kind, class)
	return inst
}

// urgentSize bounds the invocations queued ahead of the mailbox: they are
// few by intent, and past it they are refused like any on a full mailbox.
const urgentSize = 64

var errMailboxFull = errors.New("mailbox full")

func isMailboxFull(err error) bool { return errors.Is(err, errMailboxFull) }

// sample records how long a lifecycle step that began at start took, when
// performance samples are on.
func (inst *instance) sample(metric string, start time.Time) {
	if s := inst.metrics.samples; s != nil {
		now := time.Now()
		s.add(inst.id.Component, metric, now, now.Sub(start))
	}
}

// deliver queues an event for the instance, copying its payload. It never
// blocks; it is safe from any goroutine.
func (inst *instance) deliver(e core.Event) error {
	if isReply(e.Kind) {
		inst.replies.deliverReply(e)
		return nil
	}
	m := inst.n.mail(&e)
	if inst.mailbox.put(&m) {
		return nil
	}
	inst.n.bufs.Put(m.buf)
	return errMailboxFull
}

// deliverUrgent queues a call ahead of the mailbox. It never blocks; it is
// safe from any goroutine.
func (inst *instance) deliverUrgent(e *core.Event) error {
	m := inst.n.mail(e)
	select {
	case inst.urgent <- m:
		return nil
	default:
		inst.n.bufs.Put(m.buf)
		return errMailboxFull
	}
}

// run drains the mailbox until the instance is stopped or its handler fails.
// While events queue back to back, a handler's start is the previous one's
// end: one clock read per event instead of two (a clock read costs ~50 ns on
// some VMs, about as much as a native handler call).
//
// It holds exec from taking an event until it parks, so that a call run on
// its caller's goroutine (runNow) never overtakes an event queued before it.
func (inst *instance) run() {
	defer close(inst.done)
	inst.exec.Lock()
	defer inst.exec.Unlock()
	var last time.Time // when the previous handler ended; zero after idling
	for {
		var m mail
		var start time.Time
		// len is a plain read: the urgent lane costs the usual path no
		// channel operation. This goroutine alone receives, so a non-zero
		// len guarantees the receive.
		if len(inst.urgent) > 0 {
			m, start = <-inst.urgent, last
		} else if inst.quitting.Load() {
			inst.finish(inst.abortReason())
			return
		} else if inst.mailbox.take(&m) {
			start = last
		} else {
			inst.flushOut()
			inst.exec.Unlock()
			urgent, ok := inst.wait(&m)
			inst.exec.Lock()
			switch {
			case !ok:
				inst.finish(inst.abortReason())
				return
			case !urgent: // the mailbox's, taken at the top under exec
				continue
			}
		}
		if start.IsZero() {
			start = time.Now()
		}
		if inst.n.fenced(start) {
			// Cut off from the orchestrator past the lease (a host that was
			// paused wakes up here): another copy may run by now.
			inst.n.dropped.Inc()
			if m.ev.Kind == core.KindCall {
				inst.n.reply(&m.ev, core.KindCallErr)
			}
			inst.n.bufs.Put(m.buf)
			last = time.Time{}
			continue
		}
		var err error
		last, err = inst.runOne(&m, start)
		inst.n.bufs.Put(m.buf)
		if err != nil {
			inst.log.Error("instance failed; removing it", "err", err)
			reason := err.Error()
			inst.failure.Store(&reason)
			inst.n.remove(inst.id.Component)
			inst.finish(reason)
			return
		}
		if inst.mailbox.empty() && len(inst.urgent) == 0 {
			last = time.Time{} // the next event may come after a pause
		} else if inst.out.flushDue(last) {
			inst.flushOut()
		}
	}
}

// runOne runs the handler on m, which began at start, and counts it; it
// returns when it ended. Under exec only.
func (inst *instance) runOne(m *mail, start time.Time) (time.Time, error) {
	inst.handlerStart = start.UnixNano()
	err := inst.handle(m)
	// A monotonic reading alone is cheaper than time.Now's two.
	end := start.Add(time.Since(start))
	inst.metrics.observe(inst, &m.ev, start, end, err != nil)
	inst.handlerStart = 0
	inst.handled.Store(inst.handled.Load() + 1) // serialised by exec: no locked add needed
	return end, err
}

// wait parks until an event may have come to the mailbox, or takes an
// urgent one (urgent true); ok is false when the instance is to stop
// instead. Instance goroutine only, without exec.
func (inst *instance) wait(m *mail) (urgent, ok bool) {
	if !inst.mailbox.park() {
		return false, true
	}
	select {
	case <-inst.mailbox.wake:
		return false, true
	case <-inst.quit:
		inst.mailbox.unpark()
		return false, false
	case *m = <-inst.urgent:
		inst.mailbox.unpark()
		return true, true
	}
}

// runNow runs the call e on the caller's goroutine, when the instance is
// idle (nothing queued, no handler running, not stopping, within the
// lease) and its handler's bound ends before the caller, who waits at most
// wait, would give up: busy running it, the caller could not give up
// earlier. It spares the call the hand-off to the instance's goroutine and
// the one of its result back, which cost more than a small handler. False:
// the call must be queued as usual. The caller must not be a handler of
// this node's functions (a WASM handler would nest in another's host
// call): only resources and the invoker use it.
func (inst *instance) runNow(e *core.Event, wait time.Duration) bool {
	if inst.runBound == 0 || inst.runBound > wait || !inst.exec.TryLock() {
		return false
	}
	defer inst.exec.Unlock()
	if inst.quitting.Load() || inst.mailbox.len() != 0 || len(inst.urgent) != 0 {
		return false
	}
	start := time.Now()
	if inst.n.fenced(start) {
		return false // the run loop drops it and answers
	}
	m := mail{ev: *e}
	_, err := inst.runOne(&m, start)
	inst.flushOut()
	if err != nil {
		// As the run loop does, except that finish runs there.
		reason := err.Error()
		inst.failure.Store(&reason)
		inst.aborted.Store(&reason)
		if inst.n.remove(inst.id.Component) == inst {
			inst.log.Error("instance failed; removing it", "err", err)
		}
		inst.signalQuit()
	}
	return true
}

func (inst *instance) handle(m *mail) error {
	e := &m.ev
	if e.Kind == core.KindCast {
		return inst.h.Cast(e.Source, e.Payload)
	}
	ret, reply, err := inst.h.Call(e.Source, e.Payload)
	if err != nil {
		// The caller may want to know why (the invocation API tells users).
		reason := err.Error()
		inst.failure.Store(&reason)
		ret, reply = core.CallErr, nil
	}
	out := core.Event{Kind: ret.ReplyKind(), Target: e.Source, Source: inst.id, Corr: e.Corr, Created: inst.created(), Payload: reply}
	if rerr := inst.send(&out); rerr != nil && inst.log.Enabled(context.Background(), slog.LevelDebug) {
		inst.log.Debug("cannot return call result", "to", e.Source.String(), "err", rerr)
	}
	return err
}

// finish runs release (handle_stop), answers calls still queued with an
// error and, if the instance failed, tells the orchestrator.
func (inst *instance) finish(failure string) {
	inst.release(failure != "")
	inst.flushOut() // what handle_stop sent
	inst.dropHeld()
	inst.n.dropInstanceMetrics(inst.metrics)
	var m mail
	for {
		if inst.mailbox.take(&m) {
			if m.ev.Kind == core.KindCall {
				inst.n.reply(&m.ev, core.KindCallErr)
			}
			inst.n.bufs.Put(m.buf)
			continue
		}
		select {
		case m = <-inst.urgent:
			inst.n.reply(&m.ev, core.KindCallErr)
			inst.n.bufs.Put(m.buf)
		default:
			if failure != "" {
				inst.n.instanceExited(inst.id.Component, failure)
			}
			return
		}
	}
}

// stop asks the instance to stop and waits until handle_stop has run.
func (inst *instance) stop() {
	inst.signalQuit()
	<-inst.done
}

// known reports whether output was mapped by some patch: a cast to it that
// does not resolve now waits for its target to come back.
func (inst *instance) known(output []byte) bool {
	return (*inst.outputs.Load())[string(output)] != nil
}

func (inst *instance) resolve(output []byte) (core.InstanceID, bool) {
	if string(output) == "self" {
		return inst.id, true
	}
	t := (*inst.outputs.Load())[string(output)]
	if t == nil || len(t.ids) == 0 {
		return core.InstanceID{}, false
	}
	return t.pick(), true
}

// setOutputs replaces the output mapping with that of a patch of the given
// version, unless a newer one is in place: the orchestrator sends patches of
// one component concurrently, and they may arrive out of order. Version 0
// (an orchestrator that does not number them) always applies.
func (inst *instance) setOutputs(outs map[string][]core.InstanceID, version uint64) {
	inst.patchMu.Lock()
	defer inst.patchMu.Unlock()
	if version != 0 && version <= inst.patchVersion {
		return
	}
	inst.patchVersion = version
	m := make(map[string]*target, len(outs))
	// A channel mapped before and missing now has lost its target, which
	// the orchestrator is re-creating: it stays, empty, so that casts to it
	// are held (castOutput) rather than dropped as unmapped.
	for ch := range *inst.outputs.Load() {
		m[ch] = &target{}
	}
	for ch, ids := range outs {
		m[ch] = &target{ids: ids}
	}
	inst.outputs.Store(&m)
	inst.patchedOnce.Do(func() { close(inst.patched) })
	inst.resendHeld()
}

// waitPatch waits, during handle_init, for the first patch of the outputs,
// at most the node's call timeout, and reports whether it came. Outside
// handle_init, or once patched, it returns false at once. Instance goroutine
// only.
func (f *functionInstance) waitPatch() bool {
	if f.initWaiting == nil {
		return false
	}
	select {
	case <-f.patched:
		return false
	default:
	}
	f.flushOut()
	f.initWaiting()
	t := time.NewTimer(f.n.callTimeout())
	defer t.Stop()
	select {
	case <-f.patched:
		return true
	case <-f.quit:
	case <-t.C:
	}
	return false
}

// created is the creation time of an event the instance sends from its
// handler. Instance goroutine only.
func (inst *instance) created() int64 {
	if inst.handlerStart != 0 {
		return inst.handlerStart
	}
	return time.Now().UnixNano()
}

// castTo sends a cast from this instance to an instance named by its id,
// made at created; payload is copied. fromHandler: the instance's running
// handler sends it (see send). Without an output to re-resolve, a cast that
// fails is dropped.
func (inst *instance) castTo(to core.InstanceID, payload []byte, created int64, fromHandler bool) error {
	e := core.Event{Kind: core.KindCast, Target: to, Source: inst.id, Created: created, Payload: payload}
	err := inst.sendOutput(&e, fromHandler)
	if err != nil {
		inst.dropCast(to, err)
	}
	return err
}

// sendOutput routes e, sent by the instance (by its running handler:
// fromHandler), unless the node's lease has ended: a host paused in the
// middle of a handler wakes up here, and what the handler sends now would
// repeat what its replacement, started from the last synced state, sends
// again.
func (inst *instance) sendOutput(e *core.Event, fromHandler bool) error {
	if inst.n.fencedNow() {
		return errFenced
	}
	if fromHandler {
		return inst.send(e)
	}
	return inst.n.route(e)
}

// callTo makes a call from this function and waits for its result. The
// reply is valid until the next call. Instance goroutine only.
func (f *functionInstance) callTo(to core.InstanceID, payload []byte) (core.CallRet, []byte) {
	if to == f.id || f.n.fencedNow() {
		return core.CallErr, nil // busy in this very call, or past the lease (sendOutput)
	}
	f.flushOut() // not to hold them up while waiting
	ret, reply, err := f.calls.call(f.id, to, payload, f.created(), f.quit)
	if errors.Is(err, errTimedOut) {
		f.log.Warn("call timed out", "to", to.String(), "err", err)
	}
	return ret, reply
}

// delayedCast casts payload to output after ms milliseconds, unless the
// instance stops first.
func (f *functionInstance) delayedCast(ms int64, output, payload []byte) {
	to, ok := f.resolve(output)
	if !ok {
		f.log.Debug("delayed cast to an unmapped output dropped", "output", string(output))
		return
	}
	p := append([]byte(nil), payload...)
	f.delayedMu.Lock()
	defer f.delayedMu.Unlock()
	if f.delayed == nil {
		return // stopping
	}
	var t *time.Timer
	t = time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
		f.delayedMu.Lock()
		_, live := f.delayed[t]
		delete(f.delayed, t)
		f.delayedMu.Unlock()
		if live {
			f.castTo(to, p, time.Now().UnixNano(), false)
		}
	})
	f.delayed[t] = struct{}{}
}

// cancelDelayed stops the delayed casts not yet sent and refuses new ones.
func (f *functionInstance) cancelDelayed() {
	f.delayedMu.Lock()
	defer f.delayedMu.Unlock()
	for t := range f.delayed {
		t.Stop()
	}
	f.delayed = nil
}
