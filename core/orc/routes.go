package orc

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/edgeless-go/edgeless/wire"
)

// routes tells the controller where functions' instances run, so that it
// invokes warm instances on their nodes without a round trip through here.
// Everything that decides where work goes stays here: invocations the
// controller cannot place (an overloaded instance, one gone, none at all)
// still come through invoke, which offloads, scales out and cold-starts.
//
// A route's version is a hash of what it holds rather than a counter bumped
// wherever instances change: it cannot miss a change, and it needs no hook in
// the code that changes them. A query marked Used counts as an invocation for
// scale-to-zero, since direct invocations do not pass through invoke.
func (o *Orc) routes(ctx context.Context, req *wire.Routes) (*wire.RoutesResponse, error) {
	now := time.Now()
	via := o.cfg.Scheduling.Policy == PolicyEdgeCloud
	resp := &wire.RoutesResponse{Routes: make([]wire.Route, len(req.Functions))}
	o.mu.Lock()
	for k, q := range req.Functions {
		c := o.comps[q.Logical]
		if c == nil || c.fn == nil {
			resp.Routes[k].Gone = true
			continue
		}
		if q.Used {
			c.usedAt = later(c.usedAt, now)
		}
		r := wire.Route{ViaOrchestrator: via, Instances: make([]wire.RouteInstance, 0, len(c.instances))}
		for _, i := range c.instances {
			if n := o.nodes[i.Node]; n != nil {
				r.Instances = append(r.Instances, wire.RouteInstance{Instance: i, Addr: n.addr})
			}
		}
		resp.Routes[k] = r
	}
	o.mu.Unlock()
	for k, q := range req.Functions {
		r := &resp.Routes[k]
		if r.Gone {
			continue
		}
		if r.Version = routeVersion(r); r.Version == q.Version {
			*r = wire.Route{Version: r.Version}
		}
	}
	return resp, nil
}

// routeVersion hashes a route's content; never 0, which stands for none.
func routeVersion(r *wire.Route) uint64 {
	h := fnv.New64a()
	b := []byte{0}
	if r.ViaOrchestrator {
		b[0] = 1
	}
	h.Write(b)
	b[0] = 0 // ends each address
	for _, i := range r.Instances {
		h.Write(i.Instance.Node[:])
		h.Write(i.Instance.Component[:])
		h.Write([]byte(i.Addr))
		h.Write(b)
	}
	return max(h.Sum64(), 1)
}
