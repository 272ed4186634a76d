package node

import (
	"context"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// replicas pushes the state functions sync to the orchestrator when it is
// kept on this node's disk only (no shared Redis): the node may be lost with
// its disk, and the orchestrator hands the newest state to the instance it
// re-creates elsewhere. Pushes coalesce: only the newest state of each
// function waits, so a function syncing faster than the orchestrator answers
// costs one request per round trip, not per sync.
type replicas struct {
	n       *Node
	kick    chan struct{}
	pending map[core.ID]wire.SyncedState // guarded by n.mu
}

func newReplicas(n *Node) *replicas {
	return &replicas{n: n, kick: make(chan struct{}, 1), pending: map[core.ID]wire.SyncedState{}}
}

// add queues logical's state, copied, as the newest to push. Safe from any
// goroutine.
func (r *replicas) add(logical core.ID, seq uint64, data []byte) {
	r.n.mu.Lock()
	r.pending[logical] = wire.SyncedState{Logical: logical, Seq: seq, Data: append([]byte(nil), data...)}
	r.n.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// loop pushes what is pending until ctx ends.
func (r *replicas) loop(ctx context.Context) {
	interval := r.n.cfg.refreshInterval()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		r.n.mu.Lock()
		batch := r.pending
		r.pending = map[core.ID]wire.SyncedState{}
		r.n.mu.Unlock()
		now := time.Now()
		if r.n.fenced(now) {
			continue // stale once cut off: newer copies run elsewhere
		}
		req := &wire.SyncStates{Node: r.n.id, States: make([]wire.SyncedState, 0, len(batch))}
		for _, s := range batch {
			req.States = append(req.States, s)
		}
		// Never past the lease: a request delivered late would be stale.
		deadline := now.Add(interval)
		if end := r.n.leaseEnd(); end.Before(deadline) {
			deadline = end
		}
		cctx, cancel := context.WithDeadline(ctx, deadline)
		_, err := wire.Call[wire.SyncStates, wire.Empty](cctx, r.n.orc, wire.MethodOrcSyncStates, req)
		cancel()
		if err == nil {
			continue
		}
		// Put back what no newer state has replaced, and try again later.
		r.n.mu.Lock()
		for l, s := range batch {
			if cur, ok := r.pending[l]; !ok || cur.Seq < s.Seq {
				r.pending[l] = s
			}
		}
		r.n.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval / 4):
		}
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}
