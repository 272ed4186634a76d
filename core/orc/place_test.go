package orc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// testNode is a meshed node that was heard from at now and offers WASM.
func testNode(name byte, now time.Time, edit func(*node)) *node {
	n := &node{id: core.ID{name}, meshed: true, refresh: 2 * time.Second,
		caps: wire.Capabilities{Runtimes: []string{"RUST_WASM"}, NumCPUs: 1}}
	n.alive(now)
	if edit != nil {
		edit(n)
	}
	return n
}

func TestPlaceFunction(t *testing.T) {
	now := time.Unix(1000, 0)
	fn := &component{fn: &wire.FunctionSpec{Name: "f", FunctionType: "RUST_WASM"}}
	a, b, c := core.ID{'a'}, core.ID{'b'}, core.ID{'c'}
	for _, tc := range []struct {
		name    string
		nodes   []*node
		c       *component
		hosting map[core.ID]int
		only    []core.ID
		rr      int
		want    []core.ID // the acceptable choices; nil: an error
	}{
		{name: "no nodes", c: fn},
		{name: "one node", nodes: []*node{testNode('a', now, nil)}, c: fn, want: []core.ID{a}},
		{name: "a joining node is not used",
			nodes: []*node{testNode('a', now, func(n *node) { n.meshed = false })}, c: fn},
		{name: "cordoned nodes are not used",
			nodes: []*node{testNode('a', now, func(n *node) { n.cordoned = true }), testNode('b', now, nil)}, c: fn, want: []core.ID{b}},
		{name: "the runtime is required",
			nodes: []*node{testNode('a', now, func(n *node) { n.caps.Runtimes = []string{"NATIVE"} }), testNode('b', now, nil)}, c: fn, want: []core.ID{b}},
		{name: "annotations are required",
			nodes: []*node{testNode('a', now, nil), testNode('b', now, func(n *node) { n.caps.Labels = []string{"gpu"} })},
			c:     &component{fn: fn.fn, req: spec.Requirements{LabelMatchAll: []string{"gpu"}}}, want: []core.ID{b}},
		{name: "distinct nodes first",
			nodes: []*node{testNode('a', now, nil), testNode('b', now, nil), testNode('c', now, nil)},
			c:     fn, hosting: map[core.ID]int{a: 1, b: 1}, want: []core.ID{c}},
		{name: "then evenly",
			nodes: []*node{testNode('a', now, nil), testNode('b', now, nil)},
			c:     fn, hosting: map[core.ID]int{a: 2, b: 1}, want: []core.ID{b}},
		{name: "a stalled node is avoided",
			nodes: []*node{testNode('a', now, func(n *node) { n.stalled.Store(true) }), testNode('b', now, nil)}, c: fn, want: []core.ID{b}},
		{name: "a late node is avoided",
			nodes: []*node{testNode('a', now.Add(-4*time.Second), nil), testNode('b', now, nil)}, c: fn, want: []core.ID{b}},
		{name: "even over spreading",
			nodes: []*node{testNode('a', now, nil), testNode('b', now, func(n *node) { n.stalled.Store(true) })},
			c:     fn, hosting: map[core.ID]int{a: 1}, want: []core.ID{a}},
		{name: "but a stalled node is better than none",
			nodes: []*node{testNode('a', now, func(n *node) { n.stalled.Store(true) })}, c: fn, want: []core.ID{a}},
		{name: "only narrows",
			nodes: []*node{testNode('a', now, nil), testNode('b', now, nil)}, c: fn, only: []core.ID{b}, want: []core.ID{b}},
		{name: "only is strict",
			nodes: []*node{testNode('a', now, nil), testNode('b', now, func(n *node) { n.cordoned = true })}, c: fn, only: []core.ID{b}},
		{name: "a node without room in its memory budget is skipped",
			nodes: []*node{testNode('a', now, func(n *node) { n.caps.MemBudgetMiB, n.caps.MemFreeMiB = 1024, 100 }), testNode('b', now, nil)},
			c:     &component{fn: fn.fn, req: spec.Requirements{MemoryMB: 128}}, want: []core.ID{b}},
		{name: "starts under way count against it",
			nodes: []*node{testNode('a', now, func(n *node) { n.caps.MemBudgetMiB, n.caps.MemFreeMiB, n.planned = 1024, 200, 100 })},
			c:     &component{fn: fn.fn, req: spec.Requirements{MemoryMB: 128}}},
		{name: "what fits is placed",
			nodes: []*node{testNode('a', now, func(n *node) { n.caps.MemBudgetMiB, n.caps.MemFreeMiB, n.planned = 1024, 200, 72 })},
			c:     &component{fn: fn.fn, req: spec.Requirements{MemoryMB: 128}}, want: []core.ID{a}},
		{name: "a node reporting no budget is left to its own admission",
			nodes: []*node{testNode('a', now, nil)}, c: &component{fn: fn.fn, req: spec.Requirements{MemoryMB: 1 << 20}}, want: []core.ID{a}},
		{name: "round robin turns in id order",
			nodes: []*node{testNode('b', now, nil), testNode('a', now, nil)}, c: fn, rr: 3, want: []core.ID{b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := placeFunction(tc.nodes, tc.c, tc.hosting, tc.only, nil, strategy{roundRobin: tc.rr > 0, rr: tc.rr}, now)
			if tc.want == nil {
				if !errors.Is(err, ErrNoFeasibleNode) {
					t.Fatalf("placed on %v (err %v), want ErrNoFeasibleNode", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if got.id == w {
					return
				}
			}
			t.Fatalf("placed on %x, want one of %x", got.id[0], tc.want)
		})
	}
}

func TestPlaceResource(t *testing.T) {
	now := time.Unix(1000, 0)
	withLog := func(n *node) { n.providers = []wire.Provider{{ID: "log-1", ClassType: "file-log"}} }
	res := &component{res: &wire.ResourceSpec{Name: "r", ClassType: "file-log"}}
	nodes := []*node{testNode('a', now, nil), testNode('b', now, withLog)}
	for range 20 {
		n, provider, err := placeResource(nodes, res, nil, now)
		if err != nil || n.id != (core.ID{'b'}) || provider != "log-1" {
			t.Fatalf("placed on %v with %q (%v), want node b with log-1", n, provider, err)
		}
	}
	if _, _, err := placeResource(nodes[:1], res, nil, now); !errors.Is(err, ErrNoFeasibleNode) {
		t.Fatalf("no provider: %v, want ErrNoFeasibleNode", err)
	}
}

func TestPlanReconcile(t *testing.T) {
	now := time.Unix(1000, 0)
	idle := 30 * time.Second
	live := func(name byte) *node {
		return testNode(name, now, func(n *node) { n.deadline = now.Add(time.Second) })
	}
	inst := func(node, comp byte) core.InstanceID {
		return core.InstanceID{Node: core.ID{node}, Component: core.ID{comp}}
	}
	fn := func(logical byte, edit func(*component), insts ...core.InstanceID) *component {
		c := &component{logical: core.ID{logical}, fn: &wire.FunctionSpec{Name: string(logical)}, instances: insts}
		if edit != nil {
			edit(c)
		}
		return c
	}
	type want struct {
		expired, fresh, repeer []byte
		lost                   map[byte][]core.InstanceID
		fill                   []byte
		shrink                 map[byte]core.InstanceID
	}
	for _, tc := range []struct {
		name  string
		nodes []*node
		comps []*component
		exits []wire.InstanceExit
		want  want
	}{
		{name: "steady", nodes: []*node{live('a')}, comps: []*component{fn('f', nil, inst('a', 1))}},
		{name: "an expired node's instances are lost and re-created",
			nodes: []*node{live('a'), testNode('b', now, func(n *node) { n.deadline = now.Add(-time.Millisecond) })},
			comps: []*component{fn('f', nil, inst('b', 1)), fn('g', nil, inst('a', 2))},
			want:  want{expired: []byte{'b'}, lost: map[byte][]core.InstanceID{'f': {inst('b', 1)}}, fill: []byte{'f'}}},
		{name: "a new node is meshed; what it ran before is lost",
			nodes: []*node{live('a'), testNode('b', now, func(n *node) { n.meshed, n.deadline = false, now.Add(time.Second) })},
			comps: []*component{fn('f', nil, inst('b', 1))},
			want:  want{fresh: []byte{'b'}, lost: map[byte][]core.InstanceID{'f': {inst('b', 1)}}, fill: []byte{'f'}}},
		{name: "a node that missed a peer update gets the list again",
			nodes: []*node{live('a'), testNode('b', now, func(n *node) { n.stalePeers, n.deadline = true, now.Add(time.Second) })},
			comps: []*component{fn('f', nil, inst('b', 1))},
			want:  want{repeer: []byte{'b'}}},
		{name: "a node being meshed is left alone",
			nodes: []*node{live('a'), testNode('b', now, func(n *node) { n.meshed, n.meshing, n.deadline = false, true, now.Add(time.Second) })},
			comps: []*component{fn('f', nil, inst('a', 1))}},
		{name: "an exited instance is re-created at once the first time",
			nodes: []*node{live('a')}, comps: []*component{fn('f', func(c *component) { c.started = now.Add(-time.Hour) }, inst('a', 1))},
			exits: []wire.InstanceExit{{Component: core.ID{1}, Reason: "trap"}},
			want:  want{lost: map[byte][]core.InstanceID{'f': {inst('a', 1)}}, fill: []byte{'f'}}},
		{name: "and after a backoff when it keeps failing",
			nodes: []*node{live('a')}, comps: []*component{fn('f', func(c *component) { c.started, c.failures = now, 3 }, inst('a', 1))},
			exits: []wire.InstanceExit{{Component: core.ID{1}, Reason: "trap"}},
			want:  want{lost: map[byte][]core.InstanceID{'f': {inst('a', 1)}}}},
		{name: "a component waits out its backoff",
			nodes: []*node{live('a')}, comps: []*component{fn('f', func(c *component) { c.retryAt = now.Add(time.Second) })}},
		{name: "and is filled after it",
			nodes: []*node{live('a')}, comps: []*component{fn('f', func(c *component) { c.retryAt = now })},
			want: want{fill: []byte{'f'}}},
		{name: "min_instances counts",
			nodes: []*node{live('a'), live('b')},
			comps: []*component{fn('f', func(c *component) { c.req.MinInstances = 2 }, inst('a', 1))},
			want:  want{fill: []byte{'f'}}},
		{name: "a function scaled to zero is not filled",
			nodes: []*node{live('a')}, comps: []*component{fn('f', func(c *component) { c.req.ScaleToZero = true })}},
		{name: "an extra instance goes once idle, the newest first",
			nodes: []*node{live('a'), live('b')},
			comps: []*component{fn('f', func(c *component) { c.busyAt = now.Add(-idle) }, inst('a', 1), inst('b', 2))},
			want:  want{shrink: map[byte]core.InstanceID{'f': inst('b', 2)}}},
		{name: "not while overloaded lately",
			nodes: []*node{live('a'), live('b')},
			comps: []*component{fn('f', func(c *component) { c.busyAt = now.Add(-idle + time.Second) }, inst('a', 1), inst('b', 2))}},
		{name: "nor while prewarmed lately",
			nodes: []*node{live('a'), live('b')},
			comps: []*component{fn('f', func(c *component) { c.warmAt = now }, inst('a', 1), inst('b', 2))}},
		{name: "the last instance of a scale-to-zero function goes once unused",
			nodes: []*node{live('a')},
			comps: []*component{fn('f', func(c *component) { c.req.ScaleToZero, c.usedAt = true, now.Add(-idle) }, inst('a', 1))},
			want:  want{shrink: map[byte]core.InstanceID{'f': inst('a', 1)}}},
		{name: "but not while used",
			nodes: []*node{live('a')},
			comps: []*component{fn('f', func(c *component) { c.req.ScaleToZero, c.usedAt = true, now.Add(-time.Second) }, inst('a', 1))}},
		{name: "a resource keeps one instance",
			nodes: []*node{live('a')},
			comps: []*component{{logical: core.ID{'r'}, res: &wire.ResourceSpec{Name: "r"}}},
			want:  want{fill: []byte{'r'}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := map[core.ID]*node{}
			for _, n := range tc.nodes {
				nodes[n.id] = n
			}
			comps := map[core.ID]*component{}
			for _, c := range tc.comps {
				comps[c.logical] = c
			}
			p := planReconcile(nodes, comps, tc.exits, now, idle)
			ids := func(ns []*node) []byte {
				var out []byte
				for _, n := range ns {
					out = append(out, n.id[0])
				}
				return out
			}
			if got := ids(p.expired); string(got) != string(tc.want.expired) {
				t.Errorf("expired %q, want %q", got, tc.want.expired)
			}
			if got := ids(p.fresh); string(got) != string(tc.want.fresh) {
				t.Errorf("fresh %q, want %q", got, tc.want.fresh)
			}
			if got := ids(p.repeer); string(got) != string(tc.want.repeer) {
				t.Errorf("repeer %q, want %q", got, tc.want.repeer)
			}
			var fill []byte
			for _, id := range p.fill {
				fill = append(fill, id[0])
			}
			if string(fill) != string(tc.want.fill) {
				t.Errorf("fill %q, want %q", fill, tc.want.fill)
			}
			if len(p.lost) != len(tc.want.lost) {
				t.Errorf("lost %v, want %v", p.lost, tc.want.lost)
			}
			for k, w := range tc.want.lost {
				if got := p.lost[core.ID{k}]; len(got) != len(w) || got[0] != w[0] {
					t.Errorf("lost of %c: %v, want %v", k, got, w)
				}
			}
			if len(p.shrink) != len(tc.want.shrink) {
				t.Errorf("shrink %v, want %v", p.shrink, tc.want.shrink)
			}
			for k, w := range tc.want.shrink {
				if got := p.shrink[core.ID{k}]; got != w {
					t.Errorf("shrink of %c: %v, want %v", k, got, w)
				}
			}
		})
	}
}

// TestCouldPlaceWaitsForJoiningNode: a function with no instance to start
// is checked against the nodes, and one that has joined but is not meshed
// yet counts once it is, rather than the check failing at once; with no
// node joining, the check fails at once.
func TestCouldPlaceWaitsForJoiningNode(t *testing.T) {
	now := time.Now()
	fn := &component{fn: &wire.FunctionSpec{Name: "f", FunctionType: "RUST_WASM"}}
	n := testNode('a', now, func(n *node) { n.meshed = false })
	o := &Orc{nodes: map[core.ID]*node{n.id: n}, meshed: make(chan struct{}), kick: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- o.couldPlace(context.Background(), fn) }()
	<-o.kick // it asked for a turn of the loop that meshes
	o.mu.Lock()
	n.meshed = true
	close(o.meshed)
	o.meshed = make(chan struct{})
	o.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("couldPlace = %v once the node was meshed, want nil", err)
	}
	gpu := &component{fn: fn.fn, req: spec.Requirements{LabelMatchAll: []string{"gpu"}}}
	if err := o.couldPlace(context.Background(), gpu); !errors.Is(err, ErrNoFeasibleNode) {
		t.Fatalf("couldPlace = %v with no node able and none joining, want ErrNoFeasibleNode", err)
	}
}
