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
// offloaded to the next). When every instance refuses, it starts one more —
// on a node not yet hosting one, if any — while max_instances allows, and
// otherwise queues it at the instance with the shortest queue, up to that
// instance's mailbox bound; past that it answers Overloaded.
func (o *Orc) invoke(ctx context.Context, req *wire.Invoke) (*wire.InvokeResponse, error) {
	o.opMu.Lock()
	c := o.comps[req.Logical]
	if c == nil || c.fn == nil {
		o.opMu.Unlock()
		return nil, fmt.Errorf("no function %s in domain %s", req.Logical, o.cfg.General.DomainID)
	}
	insts := slices.Clone(c.instances)
	o.opMu.Unlock()
	first := int(o.invokeRR.Add(1))
	var lastErr error
	shortest, queued := -1, 0
	for k := range insts {
		i := (first + k) % len(insts)
		resp, err := o.invokeOn(ctx, insts[i], req.Payload, false)
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
			resp.Offloaded = true
			o.offloaded.Inc()
		}
		return resp, nil
	}
	o.opMu.Lock()
	c.busyAt = time.Now()
	o.opMu.Unlock()
	if i, ok := o.scaleOut(ctx, req.Logical); ok {
		// The new instance queues it: refusing it there for a full queue or a
		// busy CPU would turn away work that has just been given room.
		resp, err := o.invokeOn(ctx, i, req.Payload, true)
		if err == nil {
			resp.Offloaded = !resp.Overloaded
			if resp.Offloaded {
				o.offloaded.Inc()
			}
			return resp, nil
		}
		lastErr = err
	}
	if shortest >= 0 {
		resp, err := o.invokeOn(ctx, insts[shortest], req.Payload, true)
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

func (o *Orc) invokeOn(ctx context.Context, i core.InstanceID, payload []byte, queue bool) (*wire.InvokeResponse, error) {
	n := o.node(i.Node)
	if n == nil {
		return nil, fmt.Errorf("node %s is gone", i.Node)
	}
	return wire.Call[wire.Invoke, wire.InvokeResponse](ctx, n.client, wire.MethodNodeInvoke, &wire.Invoke{Component: i.Component, Payload: payload, Queue: queue})
}

// scaleOut starts one more instance of a function if max_instances allows
// (0 allows none beyond min_instances: EDGELESS reads 0 as "no limit", but an
// unbounded scale-out on demand is not what a user of 0 asked for).
func (o *Orc) scaleOut(ctx context.Context, logical core.ID) (core.InstanceID, bool) {
	o.opMu.Lock()
	defer o.opMu.Unlock()
	c := o.comps[logical]
	if c == nil || c.req.MaxInstances == 0 || len(c.instances) >= c.req.MaxInstances {
		return core.InstanceID{}, false
	}
	if err := o.startOne(ctx, c, nil); err != nil {
		o.log.Warn("cannot scale out an overloaded function", "function", c.name(), "err", err)
		return core.InstanceID{}, false
	}
	o.scaledOut.Inc()
	o.repatch(ctx, map[core.ID]bool{c.logical: true})
	return c.instances[len(c.instances)-1], true
}

// scaleIn stops, one per reconcile, an instance that invocations added beyond
// a function's min_instances once no invocation has found the function
// overloaded for scale_in_after_sec. The newest goes first.
func (o *Orc) scaleIn(ctx context.Context, now time.Time) {
	idle := time.Duration(o.cfg.General.ScaleInAfterSec) * time.Second
	for _, c := range o.comps {
		if c.fn == nil || len(c.instances) <= c.want() || now.Sub(c.busyAt) < idle {
			continue
		}
		last := c.instances[len(c.instances)-1]
		c.instances = c.instances[:len(c.instances)-1]
		// Others stop sending to it first, then it stops.
		o.repatch(ctx, map[core.ID]bool{c.logical: true})
		if n := o.node(last.Node); n != nil {
			callNode(ctx, o, n, wire.MethodNodeStop, &wire.StopComponent{ID: last.Component})
		}
		o.scaledIn.Inc()
		o.log.Info("instance no longer needed; stopped", "function", c.fn.Name, "instance", last.Component, "instances", len(c.instances))
	}
}
