package orc

import (
	"context"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// TestRoutes: a route lists the function's instances with their nodes'
// addresses; a query holding the current version gets the version alone;
// a change of instances or of a node's address changes the version; a
// query marked Used counts as a use; an unknown function is gone.
func TestRoutes(t *testing.T) {
	cfg := Default()
	cfg.TLS.Enabled = false
	o, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := core.NewID(), core.NewID()
	o.nodes[n1] = &node{id: n1, addr: "127.0.0.1:1"}
	o.nodes[n2] = &node{id: n2, addr: "127.0.0.1:2"}
	logical := core.NewID()
	i1 := core.InstanceID{Node: n1, Component: core.NewID()}
	c := &component{logical: logical, fn: &wire.FunctionSpec{Name: "f"}, instances: []core.InstanceID{i1}}
	o.comps[logical] = c
	ask := func(version uint64, used bool) wire.Route {
		t.Helper()
		resp, err := o.routes(context.Background(), &wire.Routes{Functions: []wire.RouteQuery{{Logical: logical, Version: version, Used: used}}})
		if err != nil || len(resp.Routes) != 1 {
			t.Fatalf("routes = %+v, %v", resp, err)
		}
		return resp.Routes[0]
	}
	r := ask(0, false)
	if r.Gone || r.Version == 0 || len(r.Instances) != 1 || r.Instances[0] != (wire.RouteInstance{Instance: i1, Addr: "127.0.0.1:1"}) {
		t.Fatalf("route %+v", r)
	}
	if !c.usedAt.IsZero() {
		t.Fatal("a query not marked used counted as a use")
	}
	v := r.Version
	if r := ask(v, true); r.Version != v || r.Instances != nil {
		t.Fatalf("current version: route %+v, want version %d alone", r, v)
	}
	if time.Since(c.usedAt) > time.Minute {
		t.Fatalf("usedAt = %v after a query marked used", c.usedAt)
	}
	i2 := core.InstanceID{Node: n2, Component: core.NewID()}
	c.instances = append(c.instances, i2)
	r = ask(v, false)
	if r.Version == v || len(r.Instances) != 2 || r.Instances[1].Addr != "127.0.0.1:2" {
		t.Fatalf("after a scale-out: route %+v (old version %d)", r, v)
	}
	v = r.Version
	o.nodes[n2].addr = "127.0.0.1:3"
	if r := ask(v, false); r.Version == v || r.Instances[1].Addr != "127.0.0.1:3" {
		t.Fatalf("after a node's new address: route %+v (old version %d)", r, v)
	}
	delete(o.comps, logical)
	if r := ask(v, false); !r.Gone {
		t.Fatalf("deleted function: route %+v, want gone", r)
	}
}
