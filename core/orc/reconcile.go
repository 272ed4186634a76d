package orc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// plan is what one reconcile does, decided by planReconcile from the state
// alone; apply carries it out.
type plan struct {
	expired []*node // to drop: the refresh deadline passed, or the connection broke for good
	fresh   []*node // to reset and mesh in before they get instances
	repeer  []*node // missed a peer update: to send the whole list again
	// lost lists, per component, the instances that are gone: their node is
	// gone or new, or they exited (then exited names the component).
	lost   map[core.ID][]core.InstanceID
	exited map[core.ID]string // component → why its instance ended
	shrink map[core.ID]core.InstanceID
	fill   []core.ID // components short of instances once the lost are dropped
}

// planReconcile decides a reconcile at now from the domain's nodes and
// components and the instance exits reported since the last one. idle is
// how long a function must go without overload or prewarm for an extra
// instance to be stopped.
func planReconcile(nodes map[core.ID]*node, comps map[core.ID]*component, exits []wire.InstanceExit, now time.Time, idle time.Duration) plan {
	p := plan{lost: map[core.ID][]core.InstanceID{}, exited: map[core.ID]string{}, shrink: map[core.ID]core.InstanceID{}}
	// An instance survives only on a node that stays and was meshed:
	// whatever a node runs before its mesh is nobody's (it restarted).
	keeps := map[core.ID]bool{}
	for _, id := range slices.SortedFunc(maps.Keys(nodes), core.ID.Compare) {
		n := nodes[id]
		switch {
		// A node whose connection broke and cannot be redialled is gone: a
		// node that is alive answers, and one that comes back registers anew.
		case now.After(n.deadline) || n.client != nil && n.client.Down():
			p.expired = append(p.expired, n)
		case !n.meshed:
			if !n.meshing {
				p.fresh = append(p.fresh, n)
			}
		default:
			keeps[id] = true
			if n.stalePeers {
				p.repeer = append(p.repeer, n)
			}
		}
	}
	ended := map[core.ID]string{}
	for _, e := range exits {
		ended[e.Component] = e.Reason
	}
	for _, id := range slices.SortedFunc(maps.Keys(comps), core.ID.Compare) {
		c := comps[id]
		left := 0
		for _, i := range c.instances {
			reason, exited := ended[i.Component]
			switch {
			case exited:
				p.exited[id] = reason
				p.lost[id] = append(p.lost[id], i)
			case !keeps[i.Node]:
				p.lost[id] = append(p.lost[id], i)
			default:
				left++
			}
		}
		switch {
		case left < c.want():
			retryAt := c.retryAt
			if _, failed := p.exited[id]; failed {
				_, retryAt = c.nextFailure(now)
			}
			if !now.Before(retryAt) {
				p.fill = append(p.fill, id)
			}
		case left > c.want() && c.fn != nil && len(p.lost[id]) == 0:
			// Stop one instance beyond min_instances once, for idle, no
			// invocation found the function overloaded and no prewarm
			// asked for instances; the newest first. The last instance of
			// a function that scales to zero goes once it has also served
			// no invocation for that long.
			quiet := later(c.busyAt, c.warmAt)
			if left == 1 {
				quiet = later(quiet, c.usedAt)
			}
			if now.Sub(quiet) >= idle {
				p.shrink[id] = c.instances[len(c.instances)-1]
			}
		}
	}
	return p
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (o *Orc) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(o.cfg.General.ReconcileIntervalMS) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.kick:
		}
		o.reconcile(ctx)
	}
}

// reconcile drops expired nodes, meshes new ones, re-creates instances that
// were lost, stops idle extra ones and repatches whatever pointed at what
// changed. It takes o.mu only to decide and to record the decision; the calls
// to nodes run on their own goroutines, so one that hangs delays only its own
// work, and a component busy with another operation is left to the next turn.
func (o *Orc) reconcile(ctx context.Context) {
	now := time.Now()
	o.mu.Lock()
	p := planReconcile(o.nodes, o.comps, o.exits, now, time.Duration(o.cfg.General.ScaleInAfterSec)*time.Second)
	o.exits = nil
	for _, n := range p.expired {
		delete(o.nodes, n.id)
		o.peerDel = append(o.peerDel, n.id)
	}
	// One peer round at a time: what changes while one runs waits for the
	// next, so that a storm of joins or departures costs each node one
	// update per round, not one per change.
	var round *peerRound
	if !o.peering && len(p.fresh)+len(p.repeer)+len(o.peerDel) > 0 {
		o.peering = true
		for _, n := range p.fresh {
			n.meshing = true
		}
		round = &peerRound{fresh: p.fresh, stale: p.repeer, del: o.peerDel, live: slices.Collect(maps.Values(o.nodes))}
		o.peerDel = nil
	}
	changed := map[core.ID]bool{}
	var ended []any // name, reason and backoff of each instance that ended, logged once o.mu is released
	for id, gone := range p.lost {
		c := o.comps[id]
		c.instances = slices.DeleteFunc(c.instances, func(i core.InstanceID) bool { return slices.Contains(gone, i) })
		changed[id] = true
		if reason, ok := p.exited[id]; ok {
			ended = append(ended, c.name(), reason, c.failed(now))
		}
		o.failures.Add(len(gone))
	}
	for id, last := range p.shrink {
		c := o.comps[id]
		c.instances = slices.DeleteFunc(c.instances, func(i core.InstanceID) bool { return i == last })
	}
	o.mu.Unlock()

	for k := 0; k < len(ended); k += 3 {
		o.log.Warn("instance ended; re-creating it", "component", ended[k], "reason", ended[k+1], "after", ended[k+2])
	}
	if len(p.expired)+len(p.fresh) > 0 {
		select { // the controller should see the new capacity now
		case o.regKick <- struct{}{}:
		default:
		}
	}
	for _, n := range p.expired {
		o.log.Warn("node lost (refresh deadline missed, or unreachable); re-creating its instances elsewhere", "node", n.id)
	}
	if len(p.expired) > 0 {
		// Its peers forget it in the next peer round.
		if !o.spawn(func(context.Context) { parallel(p.expired, (*node).close) }) {
			parallel(p.expired, (*node).close) // closing: Close no longer sees them among o.nodes
		}
	}
	if round != nil && !o.spawn(func(ctx context.Context) { o.peer(ctx, round) }) {
		o.mu.Lock()
		o.peering = false
		o.mu.Unlock()
	}
	for id, last := range p.shrink {
		o.spawn(func(ctx context.Context) {
			// Others stop sending to it first, then it stops.
			o.repatch(ctx, map[core.ID]bool{id: true})
			if n := o.node(last.Node); n != nil {
				callNode(ctx, o, n, wire.MethodNodeStop, &wire.StopComponent{ID: last.Component})
			}
			o.scaledIn.Inc()
			o.log.Info("instance no longer needed; stopped", "component", id, "instance", last.Component)
		})
	}
	for _, id := range p.fill {
		o.spawn(func(ctx context.Context) { o.refill(ctx, id) })
	}
	// Now, for senders to stop using what is gone; refill patches again once
	// it has started the replacements.
	if len(changed) > 0 {
		o.spawn(func(ctx context.Context) { o.repatch(ctx, changed) })
	}
}

// peerGapPerNode is the least time from the start of one peer round to the
// start of the next, per node of the domain, and peerGap its bound: the
// changes of that time (joins, departures) go out together, one update per
// node, so that the updates come to at most about 10 000 calls a second
// whatever the size of the domain (a round follows the last at once in a
// domain of a few nodes, 100 ms after it in one of 1 000). A round that
// takes longer delays the next as much again, so that peer updates take at
// most half of the orchestrator's time.
const (
	peerGapPerNode = 100 * time.Microsecond
	peerGap        = 100 * time.Millisecond
)

// peerRound is the work of one peer round, decided under o.mu.
type peerRound struct {
	fresh []*node   // joined: to reset, then tell every peer, and announce
	stale []*node   // missed an update: to send the whole list again
	del   []core.ID // left: for the others to forget
	live  []*node   // every node of the domain, fresh ones included
}

// peer carries out a peer round. It resets the nodes that joined (whatever
// they run is nobody's: an orchestrator that restarted has forgotten it),
// sends each of them, and each node that missed an update, the whole list
// of its peers, and every other node one update with the nodes that joined
// and those that left; then the ones that joined may get instances. A node
// that does not take its update (it is stalled, or going) holds nothing up:
// it gets the whole list in a later round. At most maxParallel calls run at
// once; failures are logged once per round, counted.
func (o *Orc) peer(ctx context.Context, r *peerRound) {
	began := time.Now()
	var mu sync.Mutex
	var failed []error // failed calls, the first few kept
	var failures int
	fail := func(err error) {
		if ctx.Err() != nil {
			return
		}
		mu.Lock()
		failures++
		if len(failed) < 3 {
			failed = append(failed, err)
		}
		mu.Unlock()
	}
	done := make(map[*node]bool, len(r.fresh)) // reset, then told its peers
	var joined []wire.Peer
	parallel(r.fresh, func(n *node) error {
		if err := request(ctx, n, wire.MethodNodeReset, &wire.Empty{}); err != nil {
			fail(fmt.Errorf("node %s: %w", n.id, err))
			return nil
		}
		mu.Lock()
		done[n] = true
		joined = append(joined, wire.Peer{Node: n.id, Addr: n.addr})
		mu.Unlock()
		return nil
	})
	reset := maps.Clone(done) // read without mu below, while done shrinks
	isFresh := make(map[*node]bool, len(r.fresh))
	for _, n := range r.fresh {
		isFresh[n] = true
	}
	isStale := make(map[*node]bool, len(r.stale))
	for _, n := range r.stale {
		isStale[n] = true
	}
	all := make([]wire.Peer, 0, len(r.live))
	for _, m := range r.live {
		if !isFresh[m] || reset[m] {
			all = append(all, wire.Peer{Node: m.id, Addr: m.addr})
		}
	}
	whole := &wire.UpdatePeers{Add: all, Replace: true}
	change := &wire.UpdatePeers{Add: joined, Del: r.del}
	var told []*node // stale nodes brought up to date
	parallel(r.live, func(m *node) error {
		switch {
		case isFresh[m] && !reset[m]:
			return nil // not reset: a later round tries again
		case isFresh[m]:
			if err := request(ctx, m, wire.MethodNodePeers, whole); err != nil {
				mu.Lock()
				delete(done, m)
				mu.Unlock()
				fail(fmt.Errorf("node %s (joined): %w", m.id, err))
			}
		case isStale[m]:
			if err := request(ctx, m, wire.MethodNodePeers, whole); err != nil {
				fail(fmt.Errorf("node %s: %w", m.id, err))
				return nil
			}
			mu.Lock()
			told = append(told, m)
			mu.Unlock()
		case len(change.Add)+len(change.Del) > 0:
			if err := request(ctx, m, wire.MethodNodePeers, change); err != nil {
				fail(fmt.Errorf("node %s: %w", m.id, err))
				o.mu.Lock()
				m.stalePeers = true
				o.mu.Unlock()
			}
		}
		return nil
	})
	o.mu.Lock()
	meshed := false
	for _, n := range r.fresh {
		n.meshing = false
		n.meshed = done[n] && o.nodes[n.id] == n
		meshed = meshed || n.meshed
	}
	for _, n := range told {
		n.stalePeers = false
	}
	if meshed {
		close(o.meshed)
		o.meshed = make(chan struct{})
	}
	o.mu.Unlock()
	if meshed {
		o.wake() // they can take instances now
		select { // and the controller should count them
		case o.regKick <- struct{}{}:
		default:
		}
	}
	if failures > 0 {
		o.log.Warn("peer updates failed; a later round retries them", "failed", failures, "nodes", len(r.live),
			"joined", len(r.fresh), "left", len(r.del), "errors", errors.Join(failed...))
	}
	// Pace the rounds; what arrives meanwhile goes in the next one.
	took := time.Since(began)
	gap := min(peerGap, time.Duration(len(r.live))*peerGapPerNode)
	if core.Sleep(ctx, max(gap, 2*took)-took) != nil {
		return
	}
	o.mu.Lock()
	o.peering = false
	o.mu.Unlock()
	o.wake()
}

// refill starts the instances component id is short of, unless another
// operation on it is under way (the next reconcile sees to it then).
func (o *Orc) refill(ctx context.Context, id core.ID) {
	o.mu.Lock()
	c := o.comps[id]
	o.mu.Unlock()
	if c == nil || !c.tryLock() {
		return
	}
	defer c.unlock()
	o.mu.Lock()
	short := c.want() - len(c.instances)
	o.mu.Unlock()
	if short <= 0 {
		return
	}
	started, err := o.grow(ctx, c, short, nil)
	now := time.Now()
	o.mu.Lock()
	if len(started) > 0 {
		c.started = now
	}
	var after time.Duration
	failed := err != nil && ctx.Err() == nil
	if failed {
		after = c.failed(now)
	}
	o.mu.Unlock()
	if failed {
		o.log.Warn("cannot re-create component; will retry", "component", c.name(), "err", err, "after", after)
	}
	o.repatch(ctx, map[core.ID]bool{id: true})
}
