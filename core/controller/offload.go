package controller

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// cloudCopy is a copy of a standalone function in a cloud domain, where the
// edge-cloud policy sends the invocations that the function's edge domain
// cannot serve in time. It has a logical id of its own, so that it never
// clashes with the function itself should that run in the same domain.
type cloudCopy struct {
	Domain  string  `json:"domain"`
	Logical core.ID `json:"logical"`

	live bool // deployed in Domain, which is live; guarded by Con.mu
}

// route returns the domain wf runs in (nil while it is lost) and whether an
// invocation asking q may go on to a cloud domain: under the edge-cloud
// policy, with CanDoOffloading, when wf runs in an edge domain and a ready
// cloud domain can run it.
func (c *Con) route(wf *workflow, q qosRequest) (*domain, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !wf.running {
		return nil, false
	}
	d := c.domains[wf.Domain]
	if d == nil || d.cloud || !q.CanOffload || c.cfg.Scheduling.Policy != spec.PolicyEdgeCloud {
		return d, false
	}
	for _, cd := range c.domains {
		if cd.cloud && cd.ready && len(lacks(cd, wf.Spec)) == 0 {
			return d, true
		}
	}
	return d, false
}

// invokeCloud serves in a cloud domain an invocation that its edge domain
// turned away (edge is what was sent there), on the function's copy there,
// which it deploys first when there is none: a cold start. arrived is when
// the controller received the invocation.
func (c *Con) invokeCloud(ctx context.Context, wf *workflow, name string, edge *wire.Invoke, arrived time.Time) invocation {
	d, logical, took, err := c.cloudCopy(ctx, wf)
	if err != nil {
		return invocation{Status: http.StatusTooManyRequests, Error: fmt.Sprintf("function %q is overloaded on the edge and cannot be offloaded to a cloud domain: %v", name, err)}
	}
	req := *edge
	req.Logical, req.Escalate = logical, false
	sent := time.Now()
	resp, err := wire.Call[wire.Invoke, wire.InvokeResponse](ctx, d.client, wire.MethodOrcInvoke, &req)
	res := outcome(d.id, name, req.Payload, resp, err, arrived)
	if res.Status != http.StatusOK {
		return res
	}
	// The time on the edge counts as offloading; deploying the copy as the
	// start of its instance.
	res.Offloaded, res.Cloud = true, true
	res.OffloadNS += sent.Sub(arrived).Nanoseconds() - took.Nanoseconds()
	res.Cold = res.Cold || took > 0
	res.InitNS += took.Nanoseconds()
	c.cloudOffloads.Inc()
	return res
}

// cloudCopy returns the cloud domain of wf's copy and the copy's logical id.
// When no copy is live it deploys one on the first ready cloud domain that
// can run wf; took is how long that took (0: the copy was there).
func (c *Con) cloudCopy(ctx context.Context, wf *workflow) (d *domain, logical core.ID, took time.Duration, err error) {
	wf.cloudOp.Lock()
	defer wf.cloudOp.Unlock()
	c.mu.Lock()
	old := wf.Cloud
	if old != nil && old.live {
		d = c.domains[old.Domain]
	}
	c.mu.Unlock()
	if d != nil {
		return d, old.Logical, 0, nil
	}
	if d, err = c.pickDomain(wf.Spec, true); err != nil {
		return nil, core.ID{}, 0, err
	}
	start := time.Now()
	name := wf.Spec.Functions[0].Name
	cp := &workflow{ID: wf.ID, Spec: wf.Spec, Logical: map[string]core.ID{name: core.NewID()}}
	if err := c.deploy(ctx, cp, d); err != nil {
		return nil, core.ID{}, 0, err
	}
	took = time.Since(start)
	c.mu.Lock()
	_, live := c.workflows[wf.ID]
	if live {
		if old != nil && old.Domain != d.id && c.domains[old.Domain] == nil {
			// Whatever the lost domain still runs of wf must go when it
			// returns.
			delete(c.known, old.Domain)
		}
		wf.Cloud = &cloudCopy{Domain: d.id, Logical: cp.Logical[name], live: true}
		c.known[d.id] = d.nonce
	}
	var saved <-chan error
	if live {
		saved = c.persistPut(wf)
	}
	c.mu.Unlock()
	if !live { // deleted meanwhile
		c.stopComponents(wf, d, cp.components())
		return nil, core.ID{}, 0, fmt.Errorf("%w: %s", ErrNotFound, wf.ID)
	}
	c.saved(saved)
	c.log.Info("function copied to a cloud domain", "workflow", wf.ID, "domain", d.id, "took", took)
	return d, cp.Logical[name], took, nil
}
