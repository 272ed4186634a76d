package node

import (
	"math"
	"time"
)

// handOver moves the node's work elsewhere before it stops, so that no event
// it accepted is lost. It tells the orchestrator that it is leaving; the
// orchestrator drops the node at once, re-creates its instances on other
// nodes and repatches their senders, which hold what they cast in between
// (castOutput). Meanwhile the node serves whatever still arrives, until every
// peer has closed its connection (each does when told the node is gone,
// after flushing what it had queued) and its mailboxes are empty, or until
// the deadline. The registration loop has ended: no registration can follow
// the goodbye.
func (n *Node) handOver() {
	start := time.Now()
	if err := n.leave(); err != nil {
		// In one process (inabox) the orchestrator closes first, on purpose.
		if !n.cfg.SameProcess {
			n.log.Warn("cannot tell the orchestrator the node is leaving; stopping without handing over", "err", err)
		}
		return
	}
	// A node already cut off keeps its instances stopped: copies run
	// elsewhere.
	if len(n.running()) == 0 || n.fenced(start) {
		return
	}
	// The orchestrator knows the node leaves: its instances are not cut off,
	// whatever the lease of the last registration says.
	n.leaseUntil.Store(math.MaxInt64)
	deadline := start.Add(n.handOverTimeout())
	peersGone := waitUntil(deadline, func() bool { return n.server.Stats().Conns == 0 })
	drained := waitUntil(deadline, n.idle)
	if !peersGone || !drained {
		n.log.Warn("hand-over incomplete at its deadline; stopping anyway", "peers_gone", peersGone, "mailboxes_empty", drained,
			"after", time.Since(start))
		return
	}
	n.log.Info("handed over to the orchestrator", "after", time.Since(start))
}

// handOverTimeout bounds handOver: the orchestrator reconciles within a
// refresh interval, and a re-created instance starts within a few more.
func (n *Node) handOverTimeout() time.Duration {
	return max(4*n.cfg.refreshInterval(), time.Second)
}

// idle reports whether every instance's queues are empty.
func (n *Node) idle() bool {
	for _, inst := range n.running() {
		if inst.mailbox.len() > 0 || len(inst.urgent) > 0 {
			return false
		}
	}
	return true
}

// waitUntil polls cond until it holds (true) or deadline passes (false).
func waitUntil(deadline time.Time, cond func() bool) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
	return true
}
