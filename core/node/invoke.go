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

// invoker is the source of invocations that come from outside the
// dataplane (the orchestrator's invoke): an address in the node's routing
// table that only call results are delivered to.
type invoker struct {
	id    core.InstanceID
	calls *callTable
	quit  chan struct{} // closed by Close: invocations still waiting fail
}

func newInvoker(n *Node) *invoker {
	return &invoker{id: core.InstanceID{Node: n.id, Component: core.NewID()}, calls: newCallTable(n), quit: make(chan struct{})}
}

// deliver takes call results; nothing else is ever addressed to the invoker.
func (v *invoker) deliver(e core.Event) error {
	if !isReply(e.Kind) {
		return errNoInstance
	}
	v.calls.deliverReply(e)
	return nil
}

// call calls to with payload, handing the call's event to send.
func (v *invoker) call(ctx context.Context, to core.InstanceID, payload []byte, send func(*core.Event) error) (core.CallRet, []byte, error) {
	return v.calls.call(ctx, v.id, to, payload, send, v.quit)
}

// invoke calls a function instance on behalf of the orchestrator. When
// offloading is on and the instance is overloaded — its queue at the
// threshold, or the node's CPU past its threshold — it refuses, so that the
// orchestrator sends the invocation elsewhere. A full mailbox is refused
// either way.
func (n *Node) invoke(ctx context.Context, req *wire.Invoke) (*wire.InvokeResponse, error) {
	inst := n.instance(req.Component)
	if inst == nil {
		return nil, fmt.Errorf("node %s has no instance %s", n.id, req.Component)
	}
	start := time.Now()
	resp := &wire.InvokeResponse{Node: n.id}
	if !req.Queue && !req.Urgent && n.overloaded(inst) { // an urgent call waits for no queue
		n.offloaded.Inc()
		resp.Overloaded, resp.Queued = true, inst.mailbox.len()
		return resp, nil
	}
	send := n.route
	if req.Urgent {
		send = inst.deliverUrgent
	}
	ret, reply, err := n.invoker.call(ctx, inst.id, req.Payload, send)
	switch {
	case err == nil:
	case isMailboxFull(err):
		n.offloaded.Inc()
		resp.Overloaded, resp.Queued = true, inst.mailbox.len()
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
	if inst.mailbox.len() >= o.QueueThreshold {
		return true
	}
	cpu := math.Float64frombits(n.cpu.Load())
	return o.CPUThreshold > 0 && cpu > o.CPUThreshold*float64(runtime.NumCPU())
}
