package orc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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
	return o.startLogical(ctx, &component{logical: req.Logical, fn: req, req: r})
}

func (o *Orc) startResource(ctx context.Context, req *wire.ResourceSpec) (*wire.StartResponse, error) {
	r, err := spec.ParseRequirements(req.Configurations)
	if err != nil {
		return nil, fmt.Errorf("resource %q: %w", req.Name, err)
	}
	return o.startLogical(ctx, &component{logical: req.Logical, res: req, req: r})
}

func (o *Orc) startLogical(ctx context.Context, c *component) (*wire.StartResponse, error) {
	o.opMu.Lock()
	defer o.opMu.Unlock()
	if o.comps[c.logical] != nil {
		return nil, fmt.Errorf("component %s already exists", c.logical)
	}
	if c.want() == 0 {
		// Nothing starts now: check that something could, so that a function
		// no node can run is refused here rather than at its first call.
		if _, err := o.place(c, nil, nil); err != nil {
			return nil, fmt.Errorf("function %q: %w", c.fn.Name, err)
		}
	}
	if err := o.fill(ctx, c, nil); err != nil {
		o.stopInstances(ctx, c)
		return nil, err
	}
	c.started, c.usedAt = time.Now(), time.Now()
	o.comps[c.logical] = c
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

// fill starts instances of c until it has want() of them, spreading them over
// distinct nodes while it can. With only set, it places on those nodes only.
func (o *Orc) fill(ctx context.Context, c *component, only []core.ID) error {
	for len(c.instances) < c.want() {
		if err := o.startOne(ctx, c, only); err != nil {
			return err
		}
	}
	return nil
}

// startOne places one instance of c and starts it.
func (o *Orc) startOne(ctx context.Context, c *component, only []core.ID) error {
	hosting := map[core.ID]int{}
	for _, i := range c.instances {
		hosting[i.Node]++
	}
	id := core.NewID()
	if c.fn != nil {
		n, err := o.place(c, hosting, only)
		if err != nil {
			return fmt.Errorf("function %q: %w", c.fn.Name, err)
		}
		start := &wire.StartFunction{Component: id, Spec: *c.fn, State: o.state(c.logical)}
		if err := request(ctx, n, wire.MethodNodeStartFunction, start); err != nil {
			return fmt.Errorf("function %q on node %s: %w", c.fn.Name, n.id, err)
		}
		c.instances = append(c.instances, core.InstanceID{Node: n.id, Component: id})
		o.placements.Inc()
		o.log.Info("function placed", "function", c.fn.Name, "node", n.id, "instance", id)
		return nil
	}
	n, provider, err := o.placeResource(c, only)
	if err != nil {
		return fmt.Errorf("resource %q: %w", c.res.Name, err)
	}
	if err := request(ctx, n, wire.MethodNodeStartResource, &wire.StartResource{Component: id, Provider: provider, Spec: *c.res}); err != nil {
		return fmt.Errorf("resource %q on node %s: %w", c.res.Name, n.id, err)
	}
	c.instances = append(c.instances, core.InstanceID{Node: n.id, Component: id})
	o.placements.Inc()
	o.log.Info("resource placed", "resource", c.res.Name, "node", n.id, "provider", provider, "instance", id)
	return nil
}

func (o *Orc) stop(ctx context.Context, req *wire.StopComponent) (*wire.Empty, error) {
	o.opMu.Lock()
	defer o.opMu.Unlock()
	c := o.comps[req.ID]
	if c == nil {
		return nil, fmt.Errorf("no component %s", req.ID)
	}
	delete(o.comps, req.ID)
	o.stopInstances(ctx, c)
	o.regMu.Lock()
	delete(o.states, req.ID)
	o.regMu.Unlock()
	return &wire.Empty{}, nil
}

func (o *Orc) stopInstances(ctx context.Context, c *component) {
	for _, i := range c.instances {
		if n := o.node(i.Node); n != nil {
			callNode(ctx, o, n, wire.MethodNodeStop, &wire.StopComponent{ID: i.Component})
		}
	}
	c.instances = nil
}

func (o *Orc) patch(ctx context.Context, req *wire.PatchLogical) (*wire.Empty, error) {
	o.opMu.Lock()
	defer o.opMu.Unlock()
	c := o.comps[req.Logical]
	if c == nil {
		return nil, fmt.Errorf("no component %s", req.Logical)
	}
	for ch, t := range req.Outputs {
		if o.comps[t] == nil {
			return nil, fmt.Errorf("component %q: output %q maps to unknown component %s", c.name(), ch, t)
		}
	}
	c.outputs = req.Outputs
	return &wire.Empty{}, o.patchComponent(ctx, c)
}

// patchComponent sends every instance of c its physical output mapping.
func (o *Orc) patchComponent(ctx context.Context, c *component) error {
	outs := make(map[string][]core.InstanceID, len(c.outputs))
	for ch, t := range c.outputs {
		if tc := o.comps[t]; tc != nil && len(tc.instances) > 0 {
			outs[ch] = slices.Clone(tc.instances)
		}
	}
	var errs []error
	for _, i := range c.instances {
		n := o.node(i.Node)
		if n == nil {
			continue
		}
		if err := request(ctx, n, wire.MethodNodePatch, &wire.PatchNode{Component: i.Component, Outputs: outs}); err != nil {
			errs = append(errs, fmt.Errorf("cannot patch %q on node %s: %w", c.name(), n.id, err))
		}
	}
	return errors.Join(errs...)
}

func (o *Orc) placement(ctx context.Context, req *wire.Placement) (*wire.PlacementResponse, error) {
	o.opMu.Lock()
	defer o.opMu.Unlock()
	resp := &wire.PlacementResponse{Instances: map[core.ID][]core.InstanceID{}}
	for _, id := range req.Logical {
		if c := o.comps[id]; c != nil {
			resp.Instances[id] = slices.Clone(c.instances)
		}
	}
	return resp, nil
}

func nodeInfo(n *node) spec.NodeInfo {
	info := spec.NodeInfo{ID: n.id, Labels: n.caps.Labels, Runtimes: n.caps.Runtimes, TEE: n.caps.TEE, TPM: n.caps.TPM}
	for _, p := range n.providers {
		info.Providers = append(info.Providers, p.ID)
	}
	return info
}

// usable reports whether a node may get new instances: it is not cordoned
// and, when only is set, it is one of those.
func usable(n *node, only []core.ID) bool {
	return !n.cordoned && (only == nil || slices.Contains(only, n.id))
}

// place picks a node for a function: among the usable nodes that offer its
// runtime and meet its requirements, those hosting the fewest of its
// instances (hosting counts them per node), by the configured strategy. So
// instances go to distinct nodes first, then evenly.
func (o *Orc) place(c *component, hosting map[core.ID]int, only []core.ID) (*node, error) {
	o.regMu.Lock()
	defer o.regMu.Unlock()
	tier := only
	if tier == nil {
		tier = o.tierLocked()
	}
	feasible, spare := o.feasibleLocked(c, hosting, tier)
	if len(feasible) == 0 && only == nil && tier != nil {
		// The policy's tier cannot host it (a function that asks for the
		// cloud's label, say): any node that can will do.
		feasible, spare = o.feasibleLocked(c, hosting, nil)
	}
	if len(spare) > 0 {
		feasible = spare
	}
	if len(feasible) == 0 {
		return nil, fmt.Errorf("%w among %d node(s) (cordoned ones excluded) for function type %s and annotations %s",
			ErrNoFeasibleNode, len(o.nodes), c.fn.FunctionType, formatMap(c.fn.Annotations))
	}
	slices.SortFunc(feasible, func(a, b *node) int { return strings.Compare(a.id.String(), b.id.String()) })
	if o.cfg.Baseline.OrchestrationStrategy == "RoundRobin" {
		o.rr++
		return feasible[o.rr%len(feasible)], nil
	}
	return weightedRandom(feasible), nil
}

// feasibleLocked returns the nodes that can host c among only (nil: all),
// and those of them hosting the fewest of its instances. regMu must be held.
func (o *Orc) feasibleLocked(c *component, hosting map[core.ID]int, only []core.ID) (feasible, spare []*node) {
	fewest := -1
	for _, n := range o.nodes {
		if usable(n, only) && slices.Contains(n.caps.Runtimes, c.fn.FunctionType) && c.req.Matches(nodeInfo(n)) {
			feasible = append(feasible, n)
			switch h := hosting[n.id]; {
			case fewest < 0 || h < fewest:
				fewest, spare = h, []*node{n}
			case h == fewest:
				spare = append(spare, n)
			}
		}
	}
	return feasible, spare
}

// placeResource picks a node and one of its providers of the resource's class.
func (o *Orc) placeResource(c *component, only []core.ID) (*node, string, error) {
	o.regMu.Lock()
	defer o.regMu.Unlock()
	type choice struct {
		n        *node
		provider string
	}
	var feasible []choice
	for _, n := range o.nodes {
		if !usable(n, only) || !c.req.Matches(nodeInfo(n)) {
			continue
		}
		for _, p := range n.providers {
			if p.ClassType == c.res.ClassType {
				feasible = append(feasible, choice{n, p.ID})
			}
		}
	}
	if len(feasible) == 0 {
		return nil, "", fmt.Errorf("%w: no node of %d offers a provider of class %q", ErrNoFeasibleNode, len(o.nodes), c.res.ClassType)
	}
	ch := feasible[rand.IntN(len(feasible))]
	return ch.n, ch.provider, nil
}

func formatMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}
