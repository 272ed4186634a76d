package controller

import (
	"context"
	"errors"
	"testing"

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
