package orc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// cordon marks a node so that it gets no new instances; what runs there stays.
func (o *Orc) cordon(ctx context.Context, req *wire.Cordon) (*wire.Empty, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.nodes[req.Node]
	if n == nil {
		return nil, fmt.Errorf("no node %s in domain %s", req.Node, o.cfg.General.DomainID)
	}
	n.cordoned = req.Cordoned
	o.log.Info("node cordon changed", "node", req.Node, "cordoned", req.Cordoned)
	return &wire.Empty{}, nil
}

// migrate moves a component's instances to the first of the given nodes that
// can host it. The old instances stop first, so their last sync() is what the
// new ones get in handle_init.
func (o *Orc) migrate(ctx context.Context, req *wire.Migrate) (*wire.Empty, error) {
	o.mu.Lock()
	c := o.comps[req.Logical]
	o.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("no component %s", req.Logical)
	}
	if len(req.Nodes) == 0 {
		return nil, fmt.Errorf("migrate %q: no target node", c.name())
	}
	if err := c.lock(ctx); err != nil {
		return nil, fmt.Errorf("migrate %q: %w", c.name(), err)
	}
	defer c.unlock()
	o.mu.Lock()
	var target []core.ID
	var reasons []string
	for _, id := range req.Nodes {
		if err := whyNot(o.nodes[id], id, c); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		target = []core.ID{id}
		break
	}
	if target == nil || c.gone {
		o.mu.Unlock()
		if c.gone {
			return nil, fmt.Errorf("no component %s", req.Logical)
		}
		return nil, fmt.Errorf("migrate %q: %w: %s", c.name(), ErrNoFeasibleNode, strings.Join(reasons, "; "))
	}
	old := c.instances
	c.instances = nil
	o.mu.Unlock()
	o.stopInstances(ctx, old)
	started, err := o.grow(ctx, c, c.want(), target)
	o.mu.Lock()
	if len(started) > 0 {
		c.started = time.Now()
	}
	o.mu.Unlock()
	o.repatch(ctx, map[core.ID]bool{c.logical: true})
	if err != nil {
		return nil, fmt.Errorf("migrate %q: %w (the reconcile loop will place it elsewhere)", c.name(), err)
	}
	o.log.Info("component migrated", "component", c.name(), "node", target[0])
	return &wire.Empty{}, nil
}

// nodeList reports the domain's nodes and how many instances each runs.
func (o *Orc) nodeList(ctx context.Context, req *wire.Empty) (*wire.NodeList, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	count := map[core.ID]int{}
	for _, c := range o.comps {
		for _, i := range c.instances {
			count[i.Node]++
		}
	}
	out := &wire.NodeList{}
	for _, n := range o.nodes {
		out.Nodes = append(out.Nodes, wire.NodeStatus{
			Node: n.id, Addr: n.addr, Cordoned: n.cordoned, Capabilities: n.caps,
			Providers: n.providers, Instances: count[n.id],
		})
	}
	slices.SortFunc(out.Nodes, func(a, b wire.NodeStatus) int { return strings.Compare(a.Node.String(), b.Node.String()) })
	return out, nil
}
