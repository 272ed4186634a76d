package orc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// Placement decides from the nodes it is given and nothing else: the callers
// pass a snapshot taken under o.mu, and the functions here are pure but for
// the weighted random choice.

// strategy is how placement chooses among equally good nodes.
type strategy struct {
	roundRobin bool
	rr         int // with roundRobin: the turn
}

func nodeInfo(n *node) spec.NodeInfo {
	info := spec.NodeInfo{ID: n.id, Labels: n.caps.Labels, Runtimes: n.caps.Runtimes, TEE: n.caps.TEE, TPM: n.caps.TPM}
	for _, p := range n.providers {
		info.Providers = append(info.Providers, p.ID)
	}
	return info
}

// usable reports whether a node may get new instances: it is meshed (reset,
// and known to its peers), not cordoned and, when only is set, one of those.
func usable(n *node, only []core.ID) bool {
	return n.meshed && !n.cordoned && (only == nil || slices.Contains(only, n.id))
}

// idSet is a set of node ids; nil stands for every node.
type idSet map[core.ID]struct{}

func setOf(ids []core.ID) idSet {
	if ids == nil {
		return nil
	}
	s := make(idSet, len(ids))
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

func (s idSet) has(id core.ID) bool {
	if s == nil {
		return true
	}
	_, ok := s[id]
	return ok
}

// canHost reports whether n offers what component c needs: its runtime and
// room in its memory budget for a function, a provider of its class for a
// resource, and its requirements.
func canHost(n *node, c *component) bool {
	if c.fn != nil {
		return slices.Contains(n.caps.Runtimes, c.fn.FunctionType) && fits(n, c.req.MemoryMB) && c.req.Matches(nodeInfo(n))
	}
	return c.req.Matches(nodeInfo(n)) && slices.ContainsFunc(n.providers, func(p wire.Provider) bool { return p.ClassType == c.res.ClassType })
}

// placeFunction picks a node for one more instance of function c. It takes
// the usable nodes that offer its runtime and meet its requirements, among
// only or else the policy's tier (nil: every node; a function the tier cannot
// host goes wherever it can); of those the responsive ones (answering, not
// late) if any; of those the ones hosting the fewest of its instances
// (hosting counts them), so that instances go to distinct nodes first; and
// chooses among them by the strategy.
func placeFunction(nodes []*node, c *component, hosting map[core.ID]int, only, tier []core.ID, s strategy, now time.Time) (*node, error) {
	scope := only
	if scope == nil {
		scope = tier
	}
	cands := feasible(nodes, scope, c)
	if len(cands) == 0 && only == nil && tier != nil {
		cands = feasible(nodes, nil, c)
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w among %d node(s) (cordoned ones excluded) for function type %s and annotations %s",
			ErrNoFeasibleNode, len(nodes), c.fn.FunctionType, formatMap(c.fn.Annotations))
	}
	cands = fewest(responsive(cands, now), hosting)
	if s.roundRobin {
		// In the order of the ids, whatever the order of nodes.
		slices.SortFunc(cands, func(a, b *node) int { return a.id.Compare(b.id) })
		return cands[s.rr%len(cands)], nil
	}
	return weightedRandom(cands), nil
}

// placeResource picks a node and one of its providers of resource c's
// class, at random among the responsive nodes if any.
func placeResource(nodes []*node, c *component, only []core.ID, now time.Time) (*node, string, error) {
	cands := feasible(nodes, only, c)
	if len(cands) == 0 {
		return nil, "", fmt.Errorf("%w: no node of %d offers a provider of class %q", ErrNoFeasibleNode, len(nodes), c.res.ClassType)
	}
	cands = responsive(cands, now)
	n := cands[rand.IntN(len(cands))]
	var ids []string
	for _, p := range n.providers {
		if p.ClassType == c.res.ClassType {
			ids = append(ids, p.ID)
		}
	}
	return n, ids[rand.IntN(len(ids))], nil
}

// fits reports whether an instance needing need MiB fits in n's memory
// budget, counting the starts under way there. The node reports what was
// free at its last registration; one that reports no budget, or a function
// that declares no need (the node then reserves its runtime's limit, which
// only it knows), is left to the node's own admission.
func fits(n *node, need int) bool {
	return n.caps.MemBudgetMiB == 0 || need == 0 || n.caps.MemFreeMiB-n.planned >= need
}

// feasible returns the usable nodes among only (nil: all) that can host c.
// only may be a tier, i.e. most of the domain: it is looked up in a set.
func feasible(nodes []*node, only []core.ID, c *component) []*node {
	var out []*node
	in := setOf(only)
	for _, n := range nodes {
		if usable(n, nil) && in.has(n.id) && canHost(n, c) {
			out = append(out, n)
		}
	}
	return out
}

// responsive narrows nodes to those that look able to answer, unless none does.
func responsive(nodes []*node, now time.Time) []*node {
	out := make([]*node, 0, len(nodes))
	for _, n := range nodes {
		if n.responsive(now) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nodes
	}
	return out
}

// fewest narrows nodes to those hosting the fewest instances (per hosting).
func fewest(nodes []*node, hosting map[core.ID]int) []*node {
	least := -1
	var out []*node
	for _, n := range nodes {
		switch h := hosting[n.id]; {
		case least < 0 || h < least:
			least, out = h, []*node{n}
		case h == least:
			out = append(out, n)
		}
	}
	return out
}

// weightedRandom picks a node at random, weighted by its processing capacity
// as EDGELESS's Random strategy does: max(cores, cpus) × clock frequency.
func weightedRandom(nodes []*node) *node {
	weights := make([]float64, len(nodes))
	total := 0.0
	for i, n := range nodes {
		w := float64(max(n.caps.NumCores, n.caps.NumCPUs))
		if n.caps.ClockFreqMHz > 0 {
			w *= n.caps.ClockFreqMHz
		}
		if w <= 0 {
			w = 1
		}
		weights[i] = w
		total += w
	}
	x := rand.Float64() * total
	for i, w := range weights {
		if x < w {
			return nodes[i]
		}
		x -= w
	}
	return nodes[len(nodes)-1]
}

// whyNot tells why node n cannot host c, or nil.
func whyNot(n *node, id core.ID, c *component) error {
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

// tier returns the nodes that get new instances unless a caller names them:
// the edge nodes, or the cloud nodes under cloud-only; nil (every node) when
// that tier has none.
func tier(nodes []*node, policy, cloudLabel string) []core.ID {
	wantCloud := policy == PolicyCloudOnly
	var ids []core.ID
	for _, n := range nodes {
		if slices.Contains(n.caps.Labels, cloudLabel) == wantCloud {
			ids = append(ids, n.id)
		}
	}
	return ids
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
