package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/wire"
)

// TestDirectNoRoute: what a cached route cannot serve goes to the
// orchestrator without a call to a node; an empty route (fetched while the
// function had scaled to zero) asks for a refresh, so that the instance the
// orchestrator starts is found.
func TestDirectNoRoute(t *testing.T) {
	d := newDirect(nil)
	client := wire.NewClient("127.0.0.1:1", wire.ClientOptions{})
	defer client.Close()
	f := func(name string, table *routeTable, q qosRequest, stale bool) {
		t.Helper()
		fr := &fnRoute{}
		if table != nil {
			fr.table.Store(table)
		}
		if _, err := d.invoke(context.Background(), fr, nil, q); !errors.Is(err, errNoRoute) {
			t.Errorf("%s: err %v, want errNoRoute", name, err)
		}
		if fr.stale.Load() != stale {
			t.Errorf("%s: stale %v, want %v", name, fr.stale.Load(), stale)
		}
		if fr.used.Load() {
			t.Errorf("%s: counted as a direct use", name)
		}
	}
	f("not fetched yet", nil, qosRequest{}, false)
	f("no instance", &routeTable{version: 1}, qosRequest{}, true)
	edgeCloud := &routeTable{version: 1, viaOrc: true, targets: []target{{client: client}}}
	f("edge-cloud, may offload", edgeCloud, qosRequest{CanOffload: true}, false)
}

// TestDirectCallContext: a direct call without a bound of its own gets the
// shared one, the transport's request timeout ahead or up to a
// routeRefresh more; the refresher renews it each routeRefresh and ends the
// old ones once past their deadline; one it was late to renew is not used.
func TestDirectCallContext(t *testing.T) {
	d := newDirect(nil)
	bg := context.Background()
	if got := d.callContext(bg); got != bg {
		t.Fatal("before the refresher's first turn the caller's context must be kept: wire.Call bounds it")
	}
	now := time.Now()
	d.renewBound(now)
	first := d.callContext(bg)
	if dl, ok := first.Deadline(); !ok || !dl.Equal(now.Add(wire.DefaultRequestTimeout+routeRefresh)) {
		t.Fatalf("shared bound's deadline %v %v, want %v", dl, ok, now.Add(wire.DefaultRequestTimeout+routeRefresh))
	}
	own, cancel := context.WithCancel(bg)
	defer cancel()
	if d.callContext(own) != own {
		t.Fatal("a caller's cancellable context must be kept")
	}
	d.renewBound(now.Add(routeRefresh))
	second := d.callContext(bg)
	if second == first || first.Err() != nil {
		t.Fatalf("after a routeRefresh: renewed %v, first ended early (%v)", second != first, first.Err())
	}
	// Renewed late: less than the timeout left, so not used.
	d.renewBound(now.Add(-time.Second))
	if d.callContext(bg) != bg {
		t.Fatal("a stale shared bound was used")
	}
	d.renewBound(now.Add(wire.DefaultRequestTimeout + time.Second))
	if first.Err() == nil || second.Err() == nil || len(d.ending) != 1 {
		t.Fatalf("past their deadlines all must be ended (%v, %v) and only the new one kept (%d)", first.Err(), second.Err(), len(d.ending))
	}
}
