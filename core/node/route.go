package node

import (
	"errors"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// receiver is what a local event is delivered to: a function or resource
// instance, or the node's invoker. deliver copies what it keeps, never
// blocks, and is safe from any goroutine. The event is passed by value (see
// replySink).
type receiver interface {
	deliver(e core.Event) error
}

var (
	errNoInstance = errors.New("no such instance on this node")
	errNoPeer     = errors.New("target node is not a peer")
)

// route sends an event to its target: into the mailbox of a local instance, or
// onto the dataplane connection of the peer that hosts it. The payload is
// copied; e is not retained. Safe from any goroutine.
func (n *Node) route(e *core.Event) error {
	if e.Target.Node == n.id {
		r := (*n.instances.Load())[e.Target.Component]
		if r == nil {
			return errNoInstance
		}
		return r.deliver(*e)
	}
	p := (*n.peers.Load())[e.Target.Node]
	if p == nil {
		return errNoPeer
	}
	return p.SendEvent(e)
}

// local returns the function or resource instance id of this node, or nil.
func (n *Node) local(id core.InstanceID) *instance {
	if id.Node != n.id {
		return nil
	}
	return n.instance(id.Component)
}

// HandleEvent implements wire.Handler: an event from a peer for a local
// instance. A call that cannot be queued is answered with an error at once so
// the caller does not wait for its timeout.
func (n *Node) HandleEvent(e *core.Event) {
	if e.Target.Node != n.id {
		// A node delivers only to its own instances: relaying for others
		// would let any peer reach nodes it has no connection to.
		n.foreign.Inc()
		return
	}
	if err := n.route(e); err != nil {
		n.dropped.Inc()
		if e.Kind == core.KindCall {
			n.reply(e, core.KindCallErr)
		}
	}
}

// reply answers the call e with an empty result of the given kind.
func (n *Node) reply(e *core.Event, kind core.EventKind) {
	out := core.Event{Kind: kind, Target: e.Source, Source: e.Target, Corr: e.Corr, Created: time.Now().UnixNano()}
	if n.route(&out) != nil {
		n.dropped.Inc()
	}
}

// mail copies an event into a pooled buffer for a mailbox.
func (n *Node) mail(e *core.Event) mail {
	buf := n.bufs.Get().(*[]byte)
	*buf = append((*buf)[:0], e.Payload...)
	m := mail{ev: *e, buf: buf}
	m.ev.Payload = *buf
	return m
}
