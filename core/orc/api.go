package orc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// ErrNoFeasibleNode reports a component that no node of the domain can host.
var ErrNoFeasibleNode = errors.New("no feasible node")

func (o *Orc) startFunction(ctx context.Context, req *wire.FunctionSpec) (*wire.StartResponse, error) {
	r, err := spec.ParseRequirements(req.Annotations)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", req.Name, err)
	}
	return o.startLogical(ctx, newComponent(req.Logical, req, nil, r))
}

func (o *Orc) startResource(ctx context.Context, req *wire.ResourceSpec) (*wire.StartResponse, error) {
	r, err := spec.ParseRequirements(req.Configurations)
	if err != nil {
		return nil, fmt.Errorf("resource %q: %w", req.Name, err)
	}
	return o.startLogical(ctx, newComponent(req.Logical, nil, req, r))
}

// startLogical adds component c and starts its instances. It is in the
// domain from the start, under its operation lock, so that every other
// operation on it waits for the outcome.
func (o *Orc) startLogical(ctx context.Context, c *component) (*wire.StartResponse, error) {
	c.tryLock() // it is new: nobody else holds it
	defer c.unlock()
	if c.want() == 0 {
		// Nothing starts now: check that something could, so that a function
		// no node can run is refused here rather than at its first call.
		if err := o.couldPlace(ctx, c); err != nil {
			return nil, fmt.Errorf("function %q: %w", c.fn.Name, err)
		}
	}
	o.mu.Lock()
	if o.comps[c.logical] != nil {
		o.mu.Unlock()
		return nil, fmt.Errorf("component %s already exists", c.logical)
	}
	c.started, c.usedAt = time.Now(), time.Now()
	o.comps[c.logical] = c
	o.mu.Unlock()
	if _, err := o.grow(ctx, c, c.want(), nil); err != nil {
		o.mu.Lock()
		delete(o.comps, c.logical)
		insts := c.instances
		c.instances, c.gone = nil, true
		o.mu.Unlock()
		o.stopInstances(ctx, insts)
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return &wire.StartResponse{Instances: slices.Clone(c.instances)}, nil
}

// want returns how many instances c should keep: min_instances of a
// function (0 lets it scale to zero), else its max_instances (0, EDGELESS's "no limit", counts as 1);
// 1 for a resource. Overloaded invocations may add more, up to max_instances.
func (c *component) want() int {
	switch {
	case c.fn == nil:
		return 1
	case c.req.ScaleToZero:
		return 0
	case c.req.MinInstances > 0:
		return c.req.MinInstances
	case c.req.MaxInstances > 0:
		return c.req.MaxInstances
	}
	return 1
}

// nodeSlice returns the domain's nodes. o.mu must be held.
func (o *Orc) nodeSlice() []*node {
	out := make([]*node, 0, len(o.nodes))
	for _, n := range o.nodes {
		out = append(out, n)
	}
	return out
}

// start is one instance to start: where, with which provider for a
// resource, and how it went.
type start struct {
	n        *node
	provider string
	id       core.ID
	err      error
}

// startRounds bounds how often grow places a failed start again.
const startRounds = 3

// grow starts k more instances of c, spread over distinct nodes while it
// can, on the nodes only (nil: wherever placement puts them), and returns
// those it started. The starts run in parallel; one that fails is placed
// again on another node while there is one. The caller holds c's op.
func (o *Orc) grow(ctx context.Context, c *component, k int, only []core.ID) ([]core.InstanceID, error) {
	var started []core.InstanceID
	var failed []*node // a node that left and joined again is a new one, and may be tried
	var lastErr error
	for round := 0; k > 0; round++ {
		if round == startRounds {
			return started, lastErr
		}
		starts, err := o.plan(c, k, only, failed)
		if errors.Is(err, ErrNoFeasibleNode) && o.awaitMesh(ctx) {
			round--
			continue
		}
		if err != nil {
			if lastErr != nil { // no other node: the failure says more
				err = lastErr
			}
			return started, err
		}
		parallel(starts, func(s *start) error {
			s.err = o.startInstance(ctx, c, s, only)
			return nil
		})
		o.mu.Lock()
		var orphans []core.InstanceID
		for _, s := range starts {
			c.starting[s.n.id]--
			if c.starting[s.n.id] == 0 {
				delete(c.starting, s.n.id)
			}
			s.n.planned -= c.req.MemoryMB
			id := core.InstanceID{Node: s.n.id, Component: s.id}
			switch {
			case s.err != nil:
				failed, lastErr = append(failed, s.n), s.err
			case c.gone:
				orphans = append(orphans, id)
			default:
				c.instances = append(c.instances, id)
				started = append(started, id)
				k--
				o.placements.Inc()
			}
		}
		gone := c.gone
		o.mu.Unlock()
		if gone {
			o.stopInstances(ctx, orphans)
			return started, fmt.Errorf("component %q was stopped meanwhile", c.name())
		}
		if ctx.Err() != nil {
			return started, lastErr
		}
	}
	return started, nil
}

// couldPlace reports whether a node could take an instance of c, waiting,
// as a start would, for nodes that are joining.
func (o *Orc) couldPlace(ctx context.Context, c *component) error {
	for {
		o.mu.Lock()
		_, err := placeFunction(o.nodeSlice(), c, nil, nil, nil, strategy{}, time.Now())
		o.mu.Unlock()
		if err == nil || !errors.Is(err, ErrNoFeasibleNode) || !o.awaitMesh(ctx) {
			return err
		}
	}
}

// awaitMesh waits, while ctx lasts, for a node that is joining to be meshed
// in, and reports whether one was: a node that has just joined may be the
// one a component needs.
func (o *Orc) awaitMesh(ctx context.Context) bool {
	o.mu.Lock()
	joining := slices.ContainsFunc(o.nodeSlice(), func(n *node) bool { return !n.meshed })
	meshed := o.meshed
	o.mu.Unlock()
	if !joining {
		return false
	}
	o.wake()
	select {
	case <-meshed:
		return true
	case <-ctx.Done():
		return false
	}
}

// plan places k instances of c on the nodes only (nil: any) but those in
// avoid, and counts them as starting.
func (o *Orc) plan(c *component, k int, only []core.ID, avoid []*node) ([]*start, error) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	nodes := slices.DeleteFunc(o.nodeSlice(), func(n *node) bool { return slices.Contains(avoid, n) })
	hosting := map[core.ID]int{}
	for _, i := range c.instances {
		hosting[i.Node]++
	}
	for id, k := range c.starting {
		hosting[id] += k
	}
	var t []core.ID
	if only == nil {
		t = tier(nodes, o.cfg.Scheduling.Policy, o.cfg.Scheduling.CloudLabel)
	}
	starts := make([]*start, 0, k)
	for range k {
		s := &start{id: core.NewID()}
		var err error
		if c.fn != nil {
			o.rr++
			s.n, err = placeFunction(nodes, c, hosting, only, t, strategy{roundRobin: o.cfg.Baseline.OrchestrationStrategy == "RoundRobin", rr: o.rr}, now)
			if err != nil {
				err = fmt.Errorf("function %q: %w", c.fn.Name, err)
			}
		} else {
			s.n, s.provider, err = placeResource(nodes, c, only, now)
			if err != nil {
				err = fmt.Errorf("resource %q: %w", c.res.Name, err)
			}
		}
		if err != nil {
			return nil, err
		}
		hosting[s.n.id]++
		starts = append(starts, s)
	}
	for _, s := range starts {
		c.starting[s.n.id]++
		s.n.planned += c.req.MemoryMB
	}
	return starts, nil
}

// startInstance starts instance s of c on its node, one of only (nil: any).
func (o *Orc) startInstance(ctx context.Context, c *component, s *start, only []core.ID) error {
	elsewhere := func() bool { return o.elsewhere(c, only, s.n.id) }
	if c.fn != nil {
		err := startOn(o, ctx, s.n, wire.MethodNodeStartFunction, &wire.StartFunction{Component: s.id, Spec: *c.fn, State: o.state(c.logical)}, s.id, len(c.fn.Code), elsewhere)
		if err != nil {
			return fmt.Errorf("function %q on node %s: %w", c.fn.Name, s.n.id, err)
		}
		o.log.Info("function placed", "function", c.fn.Name, "node", s.n.id, "instance", s.id)
		return nil
	}
	err := startOn(o, ctx, s.n, wire.MethodNodeStartResource, &wire.StartResource{Component: s.id, Provider: s.provider, Spec: *c.res}, s.id, 0, elsewhere)
	if err != nil {
		return fmt.Errorf("resource %q on node %s: %w", c.res.Name, s.n.id, err)
	}
	o.log.Info("resource placed", "resource", c.res.Name, "node", s.n.id, "provider", s.provider, "instance", s.id)
	return nil
}

// elsewhere reports whether a responsive node other than not, among only
// (nil: any), could host c.
func (o *Orc) elsewhere(c *component, only []core.ID, not core.ID) bool {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.nodes {
		if n.id != not && usable(n, only) && n.responsive(now) && canHost(n, c) {
			return true
		}
	}
	return false
}

func (o *Orc) stop(ctx context.Context, req *wire.StopComponent) (*wire.Empty, error) {
	o.mu.Lock()
	c := o.comps[req.ID]
	o.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("no component %s", req.ID)
	}
	if err := c.lock(ctx); err != nil {
		return nil, fmt.Errorf("cannot stop %q: %w", c.name(), err)
	}
	defer c.unlock()
	o.mu.Lock()
	if o.comps[req.ID] != c {
		o.mu.Unlock()
		return nil, fmt.Errorf("no component %s", req.ID)
	}
	delete(o.comps, req.ID)
	delete(o.states, req.ID)
	insts := c.instances
	c.instances, c.gone = nil, true
	o.mu.Unlock()
	o.stopInstances(ctx, insts)
	return &wire.Empty{}, nil
}

// stopInstances stops the instances, in parallel.
func (o *Orc) stopInstances(ctx context.Context, insts []core.InstanceID) {
	parallel(insts, func(i core.InstanceID) error {
		if n := o.node(i.Node); n != nil {
			callNode(ctx, o, n, wire.MethodNodeStop, &wire.StopComponent{ID: i.Component})
		}
		return nil
	})
}

func (o *Orc) patch(ctx context.Context, req *wire.PatchLogical) (*wire.Empty, error) {
	o.mu.Lock()
	c := o.comps[req.Logical]
	if c == nil {
		o.mu.Unlock()
		return nil, fmt.Errorf("no component %s", req.Logical)
	}
	for ch, t := range req.Outputs {
		if o.comps[t] == nil {
			o.mu.Unlock()
			return nil, fmt.Errorf("component %q: output %q maps to unknown component %s", c.name(), ch, t)
		}
	}
	c.outputs = req.Outputs
	o.mu.Unlock()
	return &wire.Empty{}, o.patchComponent(ctx, c)
}

// patchComponent sends every instance of c its physical output mapping, in
// parallel. Each mapping carries a version taken with it, so that a node
// keeps the newest when patches of one component cross.
func (o *Orc) patchComponent(ctx context.Context, c *component) error {
	type patch struct {
		n   *node
		req *wire.PatchNode
	}
	o.mu.Lock()
	o.patchSeq++
	version := o.patchSeq
	outs := make(map[string][]core.InstanceID, len(c.outputs))
	for ch, t := range c.outputs {
		if tc := o.comps[t]; tc != nil && len(tc.instances) > 0 {
			outs[ch] = slices.Clone(tc.instances)
		}
	}
	patches := make([]patch, 0, len(c.instances))
	for _, i := range c.instances {
		if n := o.nodes[i.Node]; n != nil {
			patches = append(patches, patch{n, &wire.PatchNode{Component: i.Component, Outputs: outs, Version: version}})
		}
	}
	o.mu.Unlock()
	return parallel(patches, func(p patch) error {
		if err := request(ctx, p.n, wire.MethodNodePatch, p.req); err != nil {
			return fmt.Errorf("cannot patch %q on node %s: %w", c.name(), p.n.id, err)
		}
		return nil
	})
}

// repatch patches every instance of a changed component and of every
// component that maps a channel to a changed one, in parallel; failures are
// logged, and the next change patches again.
func (o *Orc) repatch(ctx context.Context, changed map[core.ID]bool) {
	if len(changed) == 0 {
		return
	}
	o.mu.Lock()
	var affected []*component
	for _, c := range o.comps {
		hit := changed[c.logical]
		for _, t := range c.outputs {
			hit = hit || changed[t]
		}
		if hit {
			affected = append(affected, c)
		}
	}
	o.mu.Unlock()
	parallel(affected, func(c *component) error {
		if err := o.patchComponent(ctx, c); err != nil && ctx.Err() == nil {
			o.log.Warn("repatch failed", "err", err)
		}
		return nil
	})
}

func (o *Orc) placement(ctx context.Context, req *wire.Placement) (*wire.PlacementResponse, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	resp := &wire.PlacementResponse{Instances: map[core.ID][]core.InstanceID{}}
	for _, id := range req.Logical {
		if c := o.comps[id]; c != nil {
			resp.Instances[id] = slices.Clone(c.instances)
		}
	}
	return resp, nil
}
