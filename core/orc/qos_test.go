package orc

import (
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// TestPlaceTiers: the scheduling policy picks the tier new instances go
// to; a function only the other tier can host goes there all the same.
func TestPlaceTiers(t *testing.T) {
	edge, cloud := core.NewID(), core.NewID()
	f := func(policy string, req spec.Requirements, want core.ID) {
		t.Helper()
		nodes := []*node{
			{id: edge, meshed: true, caps: wire.Capabilities{Runtimes: []string{"RUST_WASM"}}},
			{id: cloud, meshed: true, caps: wire.Capabilities{Runtimes: []string{"RUST_WASM"}, Labels: []string{"cloud"}}},
		}
		c := &component{fn: &wire.FunctionSpec{Name: "f", FunctionType: "RUST_WASM"}, req: req}
		for range 10 {
			n, err := placeFunction(nodes, c, map[core.ID]int{}, nil, tier(nodes, policy, "cloud"), strategy{}, time.Now())
			if err != nil || n.id != want {
				t.Fatalf("%s %+v: placed on %v (%v), want %v", policy, req, n, err, want)
			}
		}
	}
	f(PolicyEdgeOnly, spec.Requirements{}, edge)
	f(PolicyEdgeCloud, spec.Requirements{}, edge)
	f(PolicyCloudOnly, spec.Requirements{}, cloud)
	f(PolicyEdgeOnly, spec.Requirements{LabelMatchAll: []string{"cloud"}}, cloud)
	f(PolicyCloudOnly, spec.Requirements{NodeIDMatchAny: []core.ID{edge}}, edge)
}

// TestExpectedResponse: the edge's expected response time is the unqueued
// time times the invocations ahead per instance, plus one.
func TestExpectedResponse(t *testing.T) {
	var q qos
	if q.expectedNS(1) != 0 {
		t.Fatal("an estimate without samples")
	}
	q.observe(20e6)
	q.observe(20e6)
	if got := q.expectedNS(1); got != 20e6 {
		t.Fatalf("idle estimate %d, want 20 ms", got)
	}
	q.inflight.Store(4)
	if got := q.expectedNS(1); got != 100e6 {
		t.Fatalf("4 ahead on 1 instance: %d, want 100 ms", got)
	}
	if got := q.expectedNS(2); got != 60e6 {
		t.Fatalf("4 ahead on 2 instances: %d, want 60 ms", got)
	}
	q.observe(40e6)
	if got := q.svcNS.Load(); got != 25e6 {
		t.Fatalf("average after a 40 ms sample: %d, want 25 ms", got)
	}
}
