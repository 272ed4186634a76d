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
	o.regMu.Lock()
	defer o.regMu.Unlock()
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
	o.opMu.Lock()
	defer o.opMu.Unlock()
	c := o.comps[req.Logical]
	if c == nil {
		return nil, fmt.Errorf("no component %s", req.Logical)
	}
	if len(req.Nodes) == 0 {
		return nil, fmt.Errorf("migrate %q: no target node", c.name())
	}
	var target []core.ID
	var reasons []string
	for _, id := range req.Nodes {
		if err := o.canHost(c, id); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		target = []core.ID{id}
		break
	}
	if target == nil {
		return nil, fmt.Errorf("migrate %q: %w: %s", c.name(), ErrNoFeasibleNode, strings.Join(reasons, "; "))
	}
	o.stopInstances(ctx, c)
	err := o.fill(ctx, c, target)
	c.started = time.Now()
	o.repatch(ctx, map[core.ID]bool{c.logical: true})
	if err != nil {
		return nil, fmt.Errorf("migrate %q: %w (the reconcile loop will place it elsewhere)", c.name(), err)
	}
	o.log.Info("component migrated", "component", c.name(), "node", target[0])
	return &wire.Empty{}, nil
}

// canHost tells why a node cannot host c, or nil.
func (o *Orc) canHost(c *component, id core.ID) error {
	o.regMu.Lock()
	defer o.regMu.Unlock()
	n := o.nodes[id]
	switch {
	case n == nil:
		return fmt.Errorf("node %s is not in the domain", id)
	case n.cordoned:
		return fmt.Errorf("node %s is cordoned", id)
	case !c.req.Matches(nodeInfo(n)):
		return fmt.Errorf("node %s does not meet the requirements", id)
	case c.fn != nil && !slices.Contains(n.caps.Runtimes, c.fn.FunctionType):
		return fmt.Errorf("node %s does not offer %s", id, c.fn.FunctionType)
	case c.res != nil && !slices.ContainsFunc(n.providers, func(p wire.Provider) bool { return p.ClassType == c.res.ClassType }):
		return fmt.Errorf("node %s has no %s provider", id, c.res.ClassType)
	}
	return nil
}

// nodeList reports the domain's nodes and how many instances each runs.
func (o *Orc) nodeList(ctx context.Context, req *wire.Empty) (*wire.NodeList, error) {
	o.opMu.Lock()
	count := map[core.ID]int{}
	for _, c := range o.comps {
		for _, i := range c.instances {
			count[i.Node]++
		}
	}
	o.opMu.Unlock()
	o.regMu.Lock()
	defer o.regMu.Unlock()
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
