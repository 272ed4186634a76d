package orc

import (
	"context"
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
	}
	for _, n := range p.fresh {
		n.meshing = true
	}
	live := slices.Collect(maps.Values(o.nodes))
	changed := map[core.ID]bool{}
	for id, gone := range p.lost {
		c := o.comps[id]
		c.instances = slices.DeleteFunc(c.instances, func(i core.InstanceID) bool { return slices.Contains(gone, i) })
		changed[id] = true
		if reason, ok := p.exited[id]; ok {
			o.log.Warn("instance ended; re-creating it", "component", c.name(), "reason", reason, "after", c.failed(now))
		}
		o.failures.Add(len(gone))
	}
	for id, last := range p.shrink {
		c := o.comps[id]
		c.instances = slices.DeleteFunc(c.instances, func(i core.InstanceID) bool { return i == last })
	}
	o.mu.Unlock()

	if len(p.expired)+len(p.fresh) > 0 {
		select { // the controller should see the new capacity now
		case o.regKick <- struct{}{}:
		default:
		}
	}
	for _, n := range p.expired {
		o.log.Warn("node lost (refresh deadline missed, or unreachable); re-creating its instances elsewhere", "node", n.id)
		if !o.spawn(func(ctx context.Context) {
			n.close()
			parallel(live, func(m *node) error {
				callNode(ctx, o, m, wire.MethodNodePeers, &wire.UpdatePeers{Del: []core.ID{n.id}})
				return nil
			})
		}) {
			n.close() // closing: Close no longer sees it among o.nodes
		}
	}
	if len(p.fresh) > 0 {
		o.spawn(func(ctx context.Context) { o.mesh(ctx, p.fresh, live) })
	}
	for _, n := range p.repeer {
		o.spawn(func(ctx context.Context) { o.repeer(ctx, n, live) })
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

// mesh resets the nodes that joined (whatever they run is nobody's: an
// orchestrator that restarted has forgotten it), tells every live node about
// them, in one update each, and them about every live node; then they may get
// instances. A live node that does not take its update (it is stalled, or
// going) does not hold the new ones up: it gets the whole list again on a
// later turn (repeer).
func (o *Orc) mesh(ctx context.Context, fresh, live []*node) {
	var mu sync.Mutex
	done := map[*node]bool{} // reset, and told its peers
	var reset []wire.Peer
	parallel(fresh, func(n *node) error {
		if err := request(ctx, n, wire.MethodNodeReset, &wire.Empty{}); err != nil {
			if ctx.Err() == nil {
				o.log.Warn("cannot reset a node that joined; retrying", "node", n.id, "err", err)
			}
			return nil
		}
		mu.Lock()
		done[n] = true
		reset = append(reset, wire.Peer{Node: n.id, Addr: n.addr})
		mu.Unlock()
		return nil
	})
	all := make([]wire.Peer, 0, len(live))
	for _, m := range live {
		all = append(all, wire.Peer{Node: m.id, Addr: m.addr})
	}
	parallel(live, func(m *node) error {
		mu.Lock()
		joined, isFresh := done[m], slices.Contains(fresh, m)
		mu.Unlock()
		switch {
		case joined:
			if err := request(ctx, m, wire.MethodNodePeers, &wire.UpdatePeers{Add: all}); err != nil {
				mu.Lock()
				delete(done, m)
				mu.Unlock()
				if ctx.Err() == nil {
					o.log.Warn("cannot tell a node that joined its peers; retrying", "node", m.id, "err", err)
				}
			}
		case !isFresh && len(reset) > 0:
			if err := request(ctx, m, wire.MethodNodePeers, &wire.UpdatePeers{Add: reset}); err != nil {
				o.mu.Lock()
				m.stalePeers = true
				o.mu.Unlock()
			}
		}
		return nil
	})
	o.mu.Lock()
	meshed := false
	for _, n := range fresh {
		n.meshing = false
		n.meshed = done[n] && o.nodes[n.id] == n
		meshed = meshed || n.meshed
	}
	if meshed {
		close(o.meshed)
		o.meshed = make(chan struct{})
	}
	o.mu.Unlock()
	if meshed {
		o.wake() // they can take instances now
	}
}

// repeer sends node n the whole list of its live peers, after it missed an
// update.
func (o *Orc) repeer(ctx context.Context, n *node, live []*node) {
	all := make([]wire.Peer, 0, len(live))
	for _, m := range live {
		all = append(all, wire.Peer{Node: m.id, Addr: m.addr})
	}
	if err := request(ctx, n, wire.MethodNodePeers, &wire.UpdatePeers{Add: all}); err == nil {
		o.mu.Lock()
		n.stalePeers = false
		o.mu.Unlock()
	}
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
	if err != nil && ctx.Err() == nil {
		o.log.Warn("cannot re-create component; will retry", "component", c.name(), "err", err, "after", c.failed(now))
	}
	o.mu.Unlock()
	o.repatch(ctx, map[core.ID]bool{id: true})
}
