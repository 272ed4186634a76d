package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/resources"
	"github.com/edgeless-go/edgeless/wire"
)

// startFunction creates a function instance, hands it its saved state and
// waits for handle_init before answering.
func (n *Node) startFunction(ctx context.Context, req *wire.StartFunction) (*wire.Empty, error) {
	s := &req.Spec
	rt := n.fns[s.FunctionType]
	if rt == nil {
		return nil, fmt.Errorf("function %q: function type %q is not offered by node %s (offered: %s)",
			s.Name, s.FunctionType, n.id, strings.Join(n.runtimes(), ", "))
	}
	state, err := n.state.load(s.Logical)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", s.Name, err)
	}
	limits, _ := spec.ParseRequirements(s.Annotations) // validated by the controller
	// The controller hashed the code once at admission; the control plane
	// is trusted, as it is with the code itself.
	sum := s.CodeHash
	if sum == ([32]byte{}) {
		sum = sha256.Sum256(s.Code)
	}
	ftype, _ := spec.CanonicalFunctionType(s.FunctionType)
	ss := &startSpec{ftype: ftype, code: s.Code, sum: sum, limits: limits, annotations: s.Annotations}
	need := rt.memoryMB(ss)
	if err := n.memory.reserve(s.Name, need); err != nil {
		return nil, err
	}
	inst := newFunctionInstance(n, core.InstanceID{Node: n.id, Component: req.Component}, s)
	// The orchestrator's copy is the newest known: this node's own store
	// may hold an older state, from an instance it ran before.
	if rs := req.State; rs != nil && rs.Logical == s.Logical && n.replicas != nil {
		state, inst.seq = rs.Data, rs.Seq
	}
	t0 := time.Now()
	wi, err := rt.start(ss, functionHost{inst})
	if err != nil {
		n.memory.release(need)
		n.dropInstanceMetrics(inst.metrics)
		return nil, fmt.Errorf("function %q: %w", s.Name, err)
	}
	free := func() {
		wi.Close()
		n.memory.release(need)
	}
	inst.sample("function_instantiate_time", t0)
	inst.h = wi
	inst.runBound, inst.batchOut = rt.bound, rt.ownThread
	inst.release = func(failed bool) {
		inst.cancelDelayed()
		if !failed {
			t := time.Now()
			if err := wi.Stop(); err != nil {
				inst.log.Warn("handle_stop failed", "err", err)
			}
			inst.sample("function_stop_time", t)
		}
		free()
	}
	if err := n.add(inst.instance); err != nil {
		free()
		n.dropInstanceMetrics(inst.metrics)
		return nil, err
	}
	// handle_init runs on the instance goroutine, before any event, since it
	// may already cast or call. The answer waits for it, unless it waits for
	// the workflow's wiring (waitPatch), which follows the answer.
	initErr := make(chan error, 1)
	var answered atomic.Bool
	answer := func(err error) bool {
		if !answered.CompareAndSwap(false, true) {
			return false
		}
		initErr <- err
		return true
	}
	inst.initWaiting = func() { answer(nil) }
	body := func() {
		t := time.Now()
		// Under exec, as every handler: a call that would run on its
		// caller's goroutine (runNow) waits for handle_init in the queue.
		inst.exec.Lock()
		err := wi.Init([]byte(s.Annotations[spec.KeyInitPayload]), state)
		inst.flushOut()
		inst.exec.Unlock()
		inst.initWaiting = nil
		if !answer(err) && err != nil {
			n.instanceExited(inst.id.Component, "handle_init failed: "+err.Error())
		}
		if err != nil {
			n.remove(inst.id.Component)
			free()
			n.dropInstanceMetrics(inst.metrics)
			close(inst.done)
			return
		}
		inst.sample("function_init_time", t)
		if e, ok := wi.(exiter); ok {
			n.group.Go(func() { inst.watchExit(e.Exited()) })
		}
		inst.run()
	}
	n.spawn(body)
	if err := <-initErr; err != nil {
		return nil, fmt.Errorf("function %q: handle_init failed: %w", s.Name, err)
	}
	inst.log.Info("function instance started", "class", s.ClassID, "state_bytes", len(state))
	return &wire.Empty{}, nil
}

// startResource creates a resource instance on one of this node's providers.
func (n *Node) startResource(ctx context.Context, req *wire.StartResource) (*wire.Empty, error) {
	s := &req.Spec
	p := n.provs[req.Provider]
	if p == nil {
		return nil, fmt.Errorf("resource %q: node %s has no provider %q", s.Name, n.id, req.Provider)
	}
	inst := newResourceInstance(n, core.InstanceID{Node: n.id, Component: req.Component}, s)
	ri, err := p.Start(resources.StartConfig{
		Workflow:       s.Workflow,
		Self:           inst.id,
		Configurations: s.Configurations,
		Host:           resourceHost{inst},
	})
	if err != nil {
		n.dropInstanceMetrics(inst.metrics)
		return nil, fmt.Errorf("resource %q of class %s: %w", s.Name, s.ClassType, err)
	}
	inst.h = ri
	inst.release = func(bool) {
		if err := ri.Close(); err != nil {
			inst.log.Warn("cannot close resource", "err", err)
		}
	}
	if err := n.add(inst.instance); err != nil {
		ri.Close()
		n.dropInstanceMetrics(inst.metrics)
		return nil, err
	}
	n.spawn(inst.run)
	inst.log.Info("resource instance started", "class", s.ClassType, "provider", req.Provider)
	return &wire.Empty{}, nil
}

func (n *Node) stopComponent(ctx context.Context, req *wire.StopComponent) (*wire.Empty, error) {
	inst := n.remove(req.ID)
	if inst == nil {
		return nil, fmt.Errorf("node %s has no instance %s", n.id, req.ID)
	}
	inst.stop()
	inst.log.Info("instance stopped")
	return &wire.Empty{}, nil
}

func (n *Node) patch(ctx context.Context, req *wire.PatchNode) (*wire.Empty, error) {
	inst := n.instance(req.Component)
	if inst == nil {
		return nil, fmt.Errorf("node %s has no instance %s", n.id, req.Component)
	}
	inst.setOutputs(req.Outputs, req.Version)
	return &wire.Empty{}, nil
}

func (n *Node) updatePeers(ctx context.Context, req *wire.UpdatePeers) (*wire.Empty, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	peers := maps.Clone(*n.peers.Load())
	var gone []*wire.Client
	drop := func(id core.ID) {
		if c := peers[id]; c != nil {
			gone = append(gone, c)
			delete(peers, id)
			n.dropPeerMetrics(id)
		}
	}
	for _, id := range req.Del {
		drop(id)
	}
	listed := make(map[core.ID]bool, len(req.Add))
	for _, p := range req.Add {
		if p.Node == n.id {
			continue
		}
		listed[p.Node] = true
		addr, err := wire.ParseAddr(p.Addr)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", p.Node, err)
		}
		old := peers[p.Node]
		if req.Replace && old != nil && old.Addr() == addr && !old.Down() {
			// The whole list again, after a missed update: a peer that did
			// not move keeps its connection.
			continue
		}
		if old != nil {
			gone = append(gone, old)
		}
		c := wire.NewClient(addr, n.clientOptions(wire.Identity{Role: wire.RoleNode, ID: p.Node.String()}))
		peers[p.Node] = c
		n.dropPeerMetrics(p.Node)
		n.registerPeerMetrics(p.Node, c)
	}
	if req.Replace {
		for id := range peers {
			if !listed[id] {
				drop(id)
			}
		}
	}
	n.peers.Store(&peers)
	for _, c := range gone {
		c.Close()
	}
	return &wire.Empty{}, nil
}

// reset stops every instance: the orchestrator lost track of this node.
func (n *Node) reset(ctx context.Context, req *wire.Empty) (*wire.Empty, error) {
	n.stopAll()
	return &wire.Empty{}, nil
}

func (n *Node) add(inst *instance) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed.Load() { // Close has stopped, or is stopping, every instance
		return fmt.Errorf("node %s is shutting down", n.id)
	}
	cur := *n.instances.Load()
	if _, ok := cur[inst.id.Component]; ok {
		return fmt.Errorf("node %s already runs instance %s", n.id, inst.id.Component)
	}
	next := maps.Clone(cur)
	next[inst.id.Component] = inst
	n.instances.Store(&next)
	return nil
}

// spawn runs the goroutine of an instance that add accepted in the node's
// group, so that Close waits for it. add refuses once closed is set, and
// Close stops the instances added before that (waiting for these goroutines)
// before it closes the group: the group cannot refuse.
func (n *Node) spawn(body func()) {
	if !n.group.Go(body) {
		panic("BUG: the node's goroutine group closed before an instance it had added was stopped")
	}
}

// remove takes an instance out of the routing table and returns it.
func (n *Node) remove(id core.ID) *instance {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := *n.instances.Load()
	inst, _ := cur[id].(*instance)
	if inst == nil {
		return nil
	}
	next := maps.Clone(cur)
	delete(next, id)
	n.instances.Store(&next)
	return inst
}

func (n *Node) stopAll() {
	n.mu.Lock()
	cur := *n.instances.Load()
	n.instances.Store(&map[core.ID]receiver{n.invoker.id.Component: n.invoker})
	n.mu.Unlock()
	for _, r := range cur {
		if inst, ok := r.(*instance); ok {
			inst.stop()
		}
	}
}

// instance returns the function or resource instance id, or nil.
func (n *Node) instance(id core.ID) *instance {
	inst, _ := (*n.instances.Load())[id].(*instance)
	return inst
}

// running returns the function and resource instances the node runs.
func (n *Node) running() []*instance {
	cur := *n.instances.Load()
	out := make([]*instance, 0, len(cur))
	for _, r := range cur {
		if inst, ok := r.(*instance); ok {
			out = append(out, inst)
		}
	}
	return out
}

// Instances returns the ids of the instances the node runs.
func (n *Node) Instances() []core.ID {
	ids := []core.ID{}
	for _, inst := range n.running() {
		ids = append(ids, inst.id.Component)
	}
	return ids
}
