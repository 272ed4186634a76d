package node

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// newInvoker makes the node's invoker: the source of invocations that come
// from outside the dataplane. It is an instance without a handler or a
// goroutine; only call results are ever delivered to it.
func newInvoker(n *Node) *instance {
	return &instance{
		n:       n,
		id:      core.InstanceID{Node: n.id, Component: core.NewID()},
		pending: map[uint64]chan mail{},
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// invoke calls a function instance on behalf of the orchestrator. When
// offloading is on and the instance is overloaded — its queue at the
// threshold, or the node's CPU past its threshold — it refuses, so that the
// orchestrator sends the invocation elsewhere. A full mailbox is refused
// either way.
func (n *Node) invoke(ctx context.Context, req *wire.Invoke) (*wire.InvokeResponse, error) {
	inst := (*n.instances.Load())[req.Component]
	if inst == nil {
		return nil, fmt.Errorf("node %s has no instance %s", n.id, req.Component)
	}
	start := time.Now()
	resp := &wire.InvokeResponse{Node: n.id}
	if !req.Queue && !req.Urgent && n.overloaded(inst) { // an urgent call waits for no queue
		n.offloaded.Inc()
		resp.Overloaded, resp.Queued = true, len(inst.mailbox)
		return resp, nil
	}
	send := n.route
	if req.Urgent {
		send = inst.deliverUrgent
	}
	ret, reply, err := n.invoker.callVia(ctx, inst.id, req.Payload, send)
	switch {
	case err == nil:
	case isMailboxFull(err):
		n.offloaded.Inc()
		resp.Overloaded, resp.Queued = true, len(inst.mailbox)
		return resp, nil
	default:
		return nil, err
	}
	resp.Result, resp.Reply, resp.RunNS = ret, reply, time.Since(start).Nanoseconds()
	if f := inst.failure.Load(); ret == core.CallErr && f != nil {
		resp.Failure = *f
	}
	return resp, nil
}

func (n *Node) overloaded(inst *instance) bool {
	o := n.cfg.Offload
	if !o.Enabled {
		return false
	}
	if len(inst.mailbox) >= o.QueueThreshold {
		return true
	}
	cpu := math.Float64frombits(n.cpu.Load())
	return o.CPUThreshold > 0 && cpu > o.CPUThreshold*float64(runtime.NumCPU())
}
