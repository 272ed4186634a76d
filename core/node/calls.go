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
// of calls at once, from any goroutine, each with its own channel.
type callTable struct {
	n       *Node
	corr    atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]chan mail
}

func newCallTable(n *Node) *callTable {
	return &callTable{n: n, pending: map[uint64]chan mail{}}
}

func (t *callTable) deliverReply(e core.Event) {
	t.mu.Lock()
	ch := t.pending[e.Corr]
	t.mu.Unlock()
	if ch == nil {
		return // a late result of a call that gave up
	}
	m := t.n.mail(&e)
	select {
	case ch <- m:
	default:
		t.n.bufs.Put(m.buf)
	}
}

// call hands a call from `from` to `to` to send and waits for its result
// until ctx ends, the node's call timeout passes or quit closes. The reply
// is the caller's.
func (t *callTable) call(ctx context.Context, from, to core.InstanceID, payload []byte, send func(*core.Event) error, quit <-chan struct{}) (core.CallRet, []byte, error) {
	corr := t.corr.Add(1)
	ch := make(chan mail, 1)
	t.mu.Lock()
	t.pending[corr] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.pending, corr)
		t.mu.Unlock()
	}()
	e := core.Event{Kind: core.KindCall, Target: to, Source: from, Corr: corr, Created: time.Now().UnixNano(), Payload: payload}
	if err := send(&e); err != nil {
		return core.CallErr, nil, fmt.Errorf("cannot call %s: %w", to, err)
	}
	// The node's call timeout needs a timer of its own only when the
	// caller's deadline is later.
	timeout := t.n.callTimeout()
	var expired <-chan time.Time
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > timeout {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case m := <-ch:
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
