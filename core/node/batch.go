package node

import (
	"slices"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// Flush bounds of an instance's batched outputs (instance.batchOut): a busy
// instance flushes after batchEvents queued events or once batchDelay has
// passed since the handler that queued the first began; an idle one as it
// parks. batchDelay is long enough for batchEvents to be the bound that
// holds under load: a write costs as much as several events (on loopback
// the receiving side's network stack runs in it), and with 20 µs a loaded
// ring's instances flushed every 8 events or so, with 100 µs every 16, for
// 17 % more events a second (docs/performance.md). An event waits for its
// batch only while its instance has more queued than it has run.
const (
	batchEvents = 16
	batchDelay  = 100 * time.Microsecond
)

// outBatch is the peer connections an instance's handlers queued events on
// since its last flush. Under exec only.
type outBatch struct {
	peers  []*wire.Client
	events int
	since  int64 // start of the handler that queued the first event (Unix ns)
}

// send routes e, sent by the handler running now. With batchOut, an event
// for another node waits on the peer's connection for flushOut: written in
// one batch on this thread, many events cost one write and no wake-up of the
// connection's writer. Under exec only.
func (inst *instance) send(e *core.Event) error {
	if !inst.batchOut || e.Target.Node == inst.n.id {
		return inst.n.route(e)
	}
	p := (*inst.n.peers.Load())[e.Target.Node]
	if p == nil {
		return errNoPeer
	}
	if err := p.QueueEvent(e); err != nil {
		return err
	}
	b := &inst.out
	if b.events == 0 {
		b.since = inst.handlerStart
	}
	b.events++
	if !slices.Contains(b.peers, p) {
		b.peers = append(b.peers, p)
	}
	return nil
}

// flushOut sends the events the instance's handlers queued. Under exec only.
func (inst *instance) flushOut() {
	b := &inst.out
	for i, p := range b.peers {
		p.Flush()
		b.peers[i] = nil
	}
	b.peers, b.events = b.peers[:0], 0
}

// flushDue reports whether the queued events are to be flushed after a
// handler that ended at end, though more events wait.
func (b *outBatch) flushDue(end time.Time) bool {
	return b.events >= batchEvents || b.events > 0 && end.UnixNano()-b.since >= int64(batchDelay)
}
