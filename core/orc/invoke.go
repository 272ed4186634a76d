package orc

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// invoke calls a logical function for the controller's invocation API. It
// tries the function's instances in turn, starting round robin; an instance
// whose node refuses it as overloaded is skipped (the invocation is
// offloaded to the next). When every instance refuses, or the function has
// scaled to zero, it starts one more — on a node not yet hosting one, if
// any — while max_instances allows (a cold start), and otherwise queues it at
// the instance with the shortest queue, up to that instance's mailbox bound;
// past that it answers Overloaded. An invocation the controller may send to
// a cloud domain (Escalate) is answered Overloaded instead of being queued
// there, and at once when the instances' expected response time exceeds its
// MaxRespNS.
func (o *Orc) invoke(ctx context.Context, req *wire.Invoke) (*wire.InvokeResponse, error) {
	start := time.Now()
	// In a cloud domain, every instance is in the cloud, where capacity
	// grows to meet deadlines.
	edgeCloud := (o.cfg.Scheduling.Policy == PolicyEdgeCloud || o.cfg.Scheduling.CloudDomain) && req.CanOffload
	o.mu.Lock()
	c := o.comps[req.Logical]
	if c == nil || c.fn == nil {
		o.mu.Unlock()
		return nil, fmt.Errorf("no function %s in domain %s", req.Logical, o.cfg.General.DomainID)
	}
	c.usedAt = start
	insts, cloud := o.invocationTargets(c, edgeCloud, start)
	o.mu.Unlock()
	if edgeCloud {
		// Serverledge's edge-cloud policy: a deadline the edge cannot meet
		// goes to the cloud at once; so does an invocation that finds no
		// edge instance but a warm one in the cloud.
		if len(insts) == 0 && len(cloud) > 0 || req.MaxRespNS > 0 && len(insts) > 0 && c.q.expectedNS(len(insts)) > req.MaxRespNS {
			if resp, err := o.invokeCloud(ctx, c, cloud, req, start); err == nil {
				return resp, nil
			}
		}
	}
	if req.Escalate && req.MaxRespNS > 0 && len(insts) > 0 && c.q.expectedNS(len(insts)) > req.MaxRespNS {
		// The controller has a cloud domain for what this domain cannot
		// serve in time.
		return &wire.InvokeResponse{Overloaded: true}, nil
	}
	first := int(o.invokeRR.Add(1))
	var lastErr error
	shortest, queued := -1, 0
	for k := range insts {
		i := (first + k) % len(insts)
		tried := time.Now()
		resp, err := o.invokeEdge(ctx, c, insts[i], req, false, len(insts))
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Overloaded {
			if shortest < 0 || resp.Queued < queued {
				shortest, queued = i, resp.Queued
			}
			continue
		}
		if k > 0 {
			resp.Offloaded, resp.OffloadNS = true, tried.Sub(start).Nanoseconds()
			o.offloaded.Inc()
		}
		return resp, nil
	}
	if len(insts) > 0 {
		o.mu.Lock()
		c.busyAt = time.Now()
		o.mu.Unlock()
	}
	if edgeCloud && len(insts) > 0 {
		// The edge is saturated: the cloud rather than a longer queue.
		if resp, err := o.invokeCloud(ctx, c, cloud, req, start); err == nil {
			return resp, nil
		}
	}
	refusedFor := time.Since(start)
	if i, init, ok := o.scaleOut(ctx, req.Logical, nil); ok {
		// The new instance queues it: refusing it there for a full queue or a
		// busy CPU would turn away work that has just been given room.
		resp, err := o.invokeEdge(ctx, c, i, req, true, len(insts)+1)
		if err == nil {
			resp.Cold, resp.InitNS = true, init.Nanoseconds()
			// From zero there was nothing to offload from.
			resp.Offloaded = !resp.Overloaded && len(insts) > 0
			if resp.Offloaded {
				resp.OffloadNS = refusedFor.Nanoseconds()
				o.offloaded.Inc()
			}
			return resp, nil
		}
		lastErr = err
	}
	if shortest >= 0 && req.Escalate {
		// The controller's cloud domain rather than a longer queue here.
		return &wire.InvokeResponse{Overloaded: true, Queued: queued}, nil
	}
	if shortest >= 0 {
		resp, err := o.invokeEdge(ctx, c, insts[shortest], req, true, len(insts))
		if err == nil {
			return resp, nil
		}
		lastErr = err
	}
	if lastErr != nil {
		return nil, fmt.Errorf("function %q: no instance could take the invocation: %w", c.fn.Name, lastErr)
	}
	return &wire.InvokeResponse{Overloaded: true}, nil
}

// invokeEdge calls instance i of c counting the invocation in flight on the
// edge; the time of one that found an instance free (fewer in flight than
// the n instances) feeds the estimate of the edge's response time. That time
// is taken here, not at the node, so that it holds the round trip to the
// node as well as the handler.
func (o *Orc) invokeEdge(ctx context.Context, c *component, i core.InstanceID, req *wire.Invoke, queue bool, n int) (*wire.InvokeResponse, error) {
	return o.invokeCounted(ctx, &c.q, i, req, queue, n)
}

// invokeCounted calls instance i, one of n of a tier whose load q tracks.
func (o *Orc) invokeCounted(ctx context.Context, q *qos, i core.InstanceID, req *wire.Invoke, queue bool, n int) (*wire.InvokeResponse, error) {
	ahead := q.inflight.Add(1) - 1
	sent := time.Now()
	resp, err := o.invokeOn(ctx, i, req, queue)
	q.inflight.Add(-1)
	if err == nil && !resp.Overloaded && ahead < int64(n) {
		q.observe(time.Since(sent).Nanoseconds())
	}
	return resp, err
}

func (o *Orc) invokeOn(ctx context.Context, i core.InstanceID, req *wire.Invoke, queue bool) (*wire.InvokeResponse, error) {
	n := o.node(i.Node)
	if n == nil {
		return nil, fmt.Errorf("node %s is gone", i.Node)
	}
	return wire.Call[wire.Invoke, wire.InvokeResponse](ctx, n.client, wire.MethodNodeInvoke,
		&wire.Invoke{Component: i.Component, Payload: req.Payload, Queue: queue, Urgent: req.Urgent})
}

// scaleOut starts one more instance of a function on the nodes only (nil:
// those placement picks by default) if max_instances allows: it bounds the
// instances on those nodes, so that the cloud gets as many as the edge (0
// allows none beyond min_instances: EDGELESS reads 0 as "no limit", but an
// unbounded scale-out on demand is not what a user of 0 asked for). A
// function without instances there (scaled to zero) always gets one. It
// returns the new instance and how long starting it took.
func (o *Orc) scaleOut(ctx context.Context, logical core.ID, only []core.ID) (core.InstanceID, time.Duration, bool) {
	o.mu.Lock()
	c := o.comps[logical]
	o.mu.Unlock()
	if c == nil || c.lock(ctx) != nil {
		return core.InstanceID{}, 0, false
	}
	defer c.unlock()
	o.mu.Lock()
	if only == nil {
		only = tier(o.nodeSlice(), o.cfg.Scheduling.Policy, o.cfg.Scheduling.CloudLabel)
	}
	there := 0
	for _, i := range c.instances {
		if only == nil || slices.Contains(only, i.Node) {
			there++
		}
	}
	o.mu.Unlock()
	if c.gone || there > 0 && (c.req.MaxInstances == 0 || there >= c.req.MaxInstances) {
		return core.InstanceID{}, 0, false
	}
	start := time.Now()
	started, err := o.grow(ctx, c, 1, only)
	if err != nil {
		o.log.Warn("cannot scale out an overloaded function", "function", c.name(), "err", err)
		return core.InstanceID{}, 0, false
	}
	took := time.Since(start)
	o.scaledOut.Inc()
	o.repatch(ctx, map[core.ID]bool{c.logical: true})
	return started[0], took, true
}

// prewarm starts instances of a function until it has req.Instances of them
// (at most max_instances, when set); they count as used now, so that idle
// eviction spares them for scale_in_after_sec.
func (o *Orc) prewarm(ctx context.Context, req *wire.Prewarm) (*wire.PrewarmResponse, error) {
	o.mu.Lock()
	c := o.comps[req.Logical]
	o.mu.Unlock()
	if c == nil || c.fn == nil {
		return nil, fmt.Errorf("no function %s in domain %s", req.Logical, o.cfg.General.DomainID)
	}
	if err := c.lock(ctx); err != nil {
		return nil, fmt.Errorf("cannot prewarm %q: %w", c.fn.Name, err)
	}
	defer c.unlock()
	target := req.Instances
	if c.req.MaxInstances > 0 {
		target = min(target, max(c.req.MaxInstances, c.want()))
	}
	o.mu.Lock()
	c.warmAt = time.Now()
	short := target - len(c.instances)
	o.mu.Unlock()
	resp := &wire.PrewarmResponse{}
	var err error
	if short > 0 {
		var started []core.InstanceID
		started, err = o.grow(ctx, c, short, nil)
		resp.Started = len(started)
	}
	if resp.Started > 0 {
		o.scaledOut.Add(resp.Started)
		o.repatch(ctx, map[core.ID]bool{c.logical: true})
	}
	o.mu.Lock()
	resp.Instances = len(c.instances)
	o.mu.Unlock()
	if err != nil && resp.Started == 0 {
		return nil, fmt.Errorf("cannot prewarm %q: %w", c.fn.Name, err)
	}
	return resp, nil
}
