package orc

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// qos is what the edge-cloud policy knows of a function's edge instances:
// invocations in flight there and the time one takes when it does not
// queue. Its fields are atomics: invocations update them concurrently.
type qos struct {
	inflight atomic.Int64
	svcNS    atomic.Int64 // moving average of unqueued response times, node round trip included
}

// observe folds the time of an invocation that found a free instance into
// the average (weight 1/4: a few samples follow a change).
func (q *qos) observe(ns int64) {
	for {
		old := q.svcNS.Load()
		next := ns
		if old > 0 {
			next = old + (ns-old)/4
		}
		if q.svcNS.CompareAndSwap(old, next) {
			return
		}
	}
}

// expectedNS estimates the response time of one more invocation on n edge
// instances: the invocations ahead of it share them, each taking the
// average time.
func (q *qos) expectedNS(n int) int64 {
	return q.svcNS.Load() * (q.inflight.Load()/int64(max(n, 1)) + 1)
}

// invocationTargets returns the instances of c an invocation tries: those on
// edge nodes and, with the edge-cloud policy (split), those on cloud nodes
// apart. Instances on nodes that do not look responsive come last: an
// invocation goes there only if the others refuse it. o.mu must be held.
func (o *Orc) invocationTargets(c *component, split bool, now time.Time) (edge, cloud []core.InstanceID) {
	var slow []core.InstanceID
	for _, i := range c.instances {
		n := o.nodes[i.Node]
		switch {
		case n == nil:
		case split && o.isCloud(n):
			cloud = append(cloud, i)
		case !n.responsive(now):
			slow = append(slow, i)
		default:
			edge = append(edge, i)
		}
	}
	return append(edge, slow...), cloud
}

// isCloud says whether n is a cloud node: it carries the cloud label, or
// the whole domain is cloud.
func (o *Orc) isCloud(n *node) bool {
	return o.cfg.Scheduling.CloudDomain || slices.Contains(n.caps.Labels, o.cfg.Scheduling.CloudLabel)
}

// cloudNodes returns the cloud nodes.
func (o *Orc) cloudNodes() []core.ID {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ids []core.ID
	for _, n := range o.nodes {
		if o.isCloud(n) {
			ids = append(ids, n.id)
		}
	}
	return ids
}

// invokeCloud serves an invocation on a cloud instance of c, starting one
// (a cold start) when there is none, or when those there cannot meet its
// deadline either and max_instances allows one more in the cloud: the cloud
// is where capacity grows. start is when the invocation arrived.
func (o *Orc) invokeCloud(ctx context.Context, c *component, cloud []core.InstanceID, req *wire.Invoke, start time.Time) (*wire.InvokeResponse, error) {
	// The edge could not take it: keep the cloud's instances as an
	// overload keeps those added on the edge.
	o.mu.Lock()
	c.busyAt = start
	o.mu.Unlock()
	var target core.InstanceID
	var init time.Duration
	cold := false
	if len(cloud) == 0 || req.MaxRespNS > 0 && c.cloudQ.expectedNS(len(cloud)) > req.MaxRespNS {
		nodes := o.cloudNodes()
		if len(nodes) == 0 {
			return nil, fmt.Errorf("function %q: no cloud node (label %q) to offload to", c.fn.Name, o.cfg.Scheduling.CloudLabel)
		}
		if i, took, ok := o.scaleOut(ctx, c.logical, nodes); ok {
			target, init, cold = i, took, true
		} else if len(cloud) == 0 {
			return nil, fmt.Errorf("function %q: cannot start an instance on a cloud node", c.fn.Name)
		}
	}
	n := len(cloud)
	if !cold {
		target = cloud[int(o.invokeRR.Add(1))%n]
	} else {
		n++
	}
	sent := time.Now()
	resp, err := o.invokeCounted(ctx, &c.cloudQ, target, req, true, n)
	if err != nil {
		return nil, err
	}
	resp.Offloaded, resp.Cloud, resp.OffloadNS = true, true, sent.Sub(start).Nanoseconds()-init.Nanoseconds()
	resp.Cold, resp.InitNS = cold, init.Nanoseconds()
	o.offloaded.Inc()
	return resp, nil
}
