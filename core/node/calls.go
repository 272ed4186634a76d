package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// replySink takes the results of the calls a receiver made. deliverReply
// copies what it keeps and never blocks; it is safe from any goroutine. The
// event is passed by value: through an interface, a pointer would make every
// routed event escape to the heap.
type replySink interface {
	deliverReply(e core.Event)
}

func isReply(k core.EventKind) bool {
	return k == core.KindCallReply || k == core.KindCallNoReply || k == core.KindCallErr
}

// oneCall is how a function waits for a result: it is blocked in its one
// outstanding call, so one slot, one timer and one reply buffer, all reused,
// serve every call it makes.
type oneCall struct {
	n        *Node
	corr     atomic.Uint64 // last correlation id used
	awaiting atomic.Uint64 // correlation id waited for, 0 when none
	replies  chan mail
	timer    *time.Timer // call goroutine only
	buf      []byte      // holds the last reply; call goroutine only
}

func newOneCall(n *Node) *oneCall { return &oneCall{n: n, replies: make(chan mail, 1)} }

func (c *oneCall) deliverReply(e core.Event) {
	if e.Corr == 0 || c.awaiting.Load() != e.Corr {
		return // a late result of a call that gave up
	}
	m := c.n.mail(&e)
	select {
	case c.replies <- m:
	default:
		c.n.bufs.Put(m.buf)
	}
}

// call sends a call from `from` to `to` and waits for its result, the
// node's call timeout, or quit. The reply is valid until the next call. It
// must not be used by two goroutines at once.
func (c *oneCall) call(from, to core.InstanceID, payload []byte, created int64, quit <-chan struct{}) (core.CallRet, []byte, error) {
	corr := c.corr.Add(1)
	c.awaiting.Store(corr)
	defer c.awaiting.Store(0)
	e := core.Event{Kind: core.KindCall, Target: to, Source: from, Corr: corr, Created: created, Payload: payload}
	if err := c.n.route(&e); err != nil {
		return core.CallErr, nil, err
	}
	timeout := c.n.callTimeout()
	if c.timer == nil {
		c.timer = time.NewTimer(timeout)
	} else {
		c.timer.Reset(timeout)
	}
	defer c.timer.Stop()
	for {
		select {
		case m := <-c.replies:
			if m.ev.Corr != corr {
				c.n.bufs.Put(m.buf)
				continue
			}
			c.buf = append(c.buf[:0], m.ev.Payload...)
			kind := m.ev.Kind
			c.n.bufs.Put(m.buf)
			ret, reply := result(kind, c.buf)
			return ret, reply, nil
		case <-c.timer.C:
			return core.CallErr, nil, fmt.Errorf("call to %s: %w after %v", to, errTimedOut, timeout)
		case <-quit:
			return core.CallErr, nil, errCallerStopped
		}
	}
}

var (
	errTimedOut      = errors.New("timed out")
	errCallerStopped = errors.New("caller stopped")
)

// result maps a result event's kind and payload to what a call returns.
func result(kind core.EventKind, payload []byte) (core.CallRet, []byte) {
	switch kind {
	case core.KindCallReply:
		return core.CallReply, payload
	case core.KindCallNoReply:
		return core.CallNoReply, nil
	}
	return core.CallErr, nil
}

// callTable is how resources and the invoker wait for results: any number
// of calls at once, from any goroutine. Each call waits in a slot, reused
// by the calls after it; its correlation id names the slot (low bits) and
// the call (high bits), so that a result finds its waiter without a lock
// or a map, and a late result of a call that gave up finds another call
// number in the slot and is dropped.
type callTable struct {
	n     *Node
	seq   atomic.Uint64               // numbers the calls
	slots atomic.Pointer[[]*callSlot] // every slot made; replaced whole under mu, never shrunk
	mu    sync.Mutex                  // making a slot, when none is idle
	idle  atomic.Uint64               // stack of idle slots: tag<<32 | index+1 of the top, 0 when empty
}

// callSlot is where one call at a time waits for its result.
type callSlot struct {
	index    uint32
	next     atomic.Uint32 // in the idle stack: index+1 of the slot below, 0 at the bottom
	awaiting atomic.Uint64 // the correlation id of the call waiting, 0 when none
	replies  chan mail     // the result; only the one who clears awaiting sends
	timer    *time.Timer   // the waiting call's
	ev       core.Event    // the waiting call's
}

// slotBits bounds the calls in flight at once per table.
const (
	slotBits = 24
	slotMask = 1<<slotBits - 1
)

var errTooManyCalls = errors.New("too many calls in flight")

func newCallTable(n *Node) *callTable {
	t := &callTable{n: n}
	t.slots.Store(&[]*callSlot{})
	return t
}

// acquire returns an idle slot, or a new one.
func (t *callTable) acquire() (*callSlot, error) {
	for {
		top := t.idle.Load()
		if uint32(top) == 0 {
			break
		}
		s := (*t.slots.Load())[uint32(top)-1]
		// The tag makes the swap fail if s left and came back meanwhile.
		if t.idle.CompareAndSwap(top, (top>>32+1)<<32|uint64(s.next.Load())) {
			return s, nil
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	slots := *t.slots.Load()
	if len(slots) > slotMask {
		return nil, errTooManyCalls
	}
	s := &callSlot{index: uint32(len(slots)), replies: make(chan mail, 1)}
	grown := append(slots[:len(slots):len(slots)], s)
	t.slots.Store(&grown)
	return s, nil
}

// release makes s idle again.
func (t *callTable) release(s *callSlot) {
	for {
		top := t.idle.Load()
		s.next.Store(uint32(top))
		if t.idle.CompareAndSwap(top, (top>>32+1)<<32|uint64(s.index+1)) {
			return
		}
	}
}

func (t *callTable) deliverReply(e core.Event) {
	slots := *t.slots.Load()
	if e.Corr == 0 || e.Corr&slotMask >= uint64(len(slots)) {
		return
	}
	s := slots[e.Corr&slotMask]
	if !s.awaiting.CompareAndSwap(e.Corr, 0) {
		return // a late result of a call that gave up
	}
	s.replies <- t.n.mail(&e) // empty: the call takes what was sent before it ends
}

// call hands a call from `from` to `to` to send, or runs it at once on this
// goroutine when `to` is an idle instance of this node (runNow), and waits
// for its result until ctx ends, the node's call timeout passes or quit
// closes. The reply is the caller's.
func (t *callTable) call(ctx context.Context, from, to core.InstanceID, payload []byte, send func(*core.Event) error, quit <-chan struct{}) (core.CallRet, []byte, error) {
	s, err := t.acquire()
	if err != nil {
		return core.CallErr, nil, fmt.Errorf("cannot call %s: %w", to, err)
	}
	defer t.release(s)
	corr := t.seq.Add(1)<<slotBits | uint64(s.index)
	s.awaiting.Store(corr)
	got := false
	defer func() {
		if !got && s.awaiting.Swap(0) == 0 {
			// A result came as the call gave up: take it, so that the
			// slot's next call finds the channel empty.
			t.n.bufs.Put((<-s.replies).buf)
		}
	}()
	// The caller waits at most wait, which decides whether the call may
	// run on this goroutine.
	timeout := t.n.callTimeout()
	wait := timeout
	d, bounded := ctx.Deadline()
	if bounded {
		wait = min(wait, time.Until(d))
	}
	// The slot's event: one on the stack would escape through send.
	s.ev = core.Event{Kind: core.KindCall, Target: to, Source: from, Corr: corr, Created: time.Now().UnixNano(), Payload: payload}
	if inst := t.n.local(to); inst == nil || !inst.runNow(&s.ev, wait) {
		err = send(&s.ev)
	}
	s.ev.Payload = nil // keep no payload alive
	if err != nil {
		return core.CallErr, nil, fmt.Errorf("cannot call %s: %w", to, err)
	}
	// The node's call timeout needs the timer only when the caller's
	// deadline is later.
	var expired <-chan time.Time
	if !bounded || time.Until(d) > timeout {
		if s.timer == nil {
			s.timer = time.NewTimer(timeout)
		} else {
			s.timer.Reset(timeout)
		}
		defer s.timer.Stop()
		expired = s.timer.C
	}
	select {
	case m := <-s.replies:
		got = true
		defer t.n.bufs.Put(m.buf)
		ret, reply := result(m.ev.Kind, m.ev.Payload)
		return ret, bytes.Clone(reply), nil
	case <-expired:
		return core.CallErr, nil, fmt.Errorf("call to %s: %w after %v", to, errTimedOut, timeout)
	case <-ctx.Done():
		return core.CallErr, nil, ctx.Err()
	case <-quit:
		return core.CallErr, nil, errCallerStopped
	}
}

func (n *Node) callTimeout() time.Duration {
	return time.Duration(n.cfg.General.CallTimeoutMS) * time.Millisecond
}
