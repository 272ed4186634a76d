package orc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// Timeouts of the calls to nodes. Every call runs outside o.mu, so a node
// that does not answer delays only the operations that need it, and at most
// this long.
const (
	// startTimeout bounds a start: the node answers once the function's
	// handle_init has run, which it allows 10 s; startPerMiB more for each
	// MiB of code, which the node receives, hashes and compiles first.
	startTimeout = 15 * time.Second
	startPerMiB  = time.Second
	// callTimeout bounds every other call, which a live node answers at once.
	callTimeout = 5 * time.Second
	// probeEvery is how often a start still waiting is checked with a ping;
	// a ping unanswered within probeTimeout means the node is stalled
	// (frozen, or its host hung): the start goes to another node.
	probeEvery   = 250 * time.Millisecond
	probeTimeout = time.Second
)

// errStalled is a call abandoned because its node stopped answering.
var errStalled = errors.New("node stopped answering")

// node is a registered node of the domain. Its fields are guarded by o.mu,
// except the liveness atomics, which calls update without it.
type node struct {
	id        core.ID
	addr      string
	nonce     uint64
	refresh   time.Duration // between the node's registrations
	deadline  time.Time     // it is dropped if it has not registered again by then
	caps      wire.Capabilities
	providers []wire.Provider
	client    *wire.Client
	// probe is a connection of its own for pings, so that they do not queue
	// behind a large request (a function's code) on client. It is dialled on
	// the first ping.
	probe    *wire.Client
	meshing  bool // a peer round is resetting it and telling its peers
	meshed   bool // that is done: it may get instances
	cordoned bool // gets no new instances
	planned  int  // MiB of memory the starts under way there need
	// stalePeers marks a node that missed a peer update: the next peer
	// round sends it the whole list.
	stalePeers bool

	heard   atomic.Int64 // Unix ns of its last registration or answer
	stalled atomic.Bool  // a ping went unanswered since
}

// close closes n's connections.
func (n *node) close() error {
	return errors.Join(n.client.Close(), n.probe.Close())
}

// alive records a sign of life from n.
func (n *node) alive(now time.Time) {
	n.heard.Store(now.UnixNano())
	n.stalled.Store(false)
}

// responsive reports whether n looks able to answer now: it was not found
// stalled since it was last heard from and has not missed a registration.
// Placement and invocations prefer such nodes.
func (n *node) responsive(now time.Time) bool {
	late := now.UnixNano()-n.heard.Load() > int64(n.refresh+time.Second)
	return !late && !n.stalled.Load()
}

// nodeCall sends a control request to n and waits at most timeout for its
// answer. An answer, even an error, is a sign of life.
func nodeCall[Req, Resp any](ctx context.Context, n *node, method string, req *Req, timeout time.Duration) (*Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := wire.Call[Req, Resp](ctx, n.client, method, req)
	if err == nil || errors.As(err, new(*wire.RemoteError)) {
		n.alive(time.Now())
	}
	return resp, err
}

// request is nodeCall for the methods answered with wire.Empty.
func request[Req any](ctx context.Context, n *node, method string, req *Req) error {
	_, err := nodeCall[Req, wire.Empty](ctx, n, method, req, callTimeout)
	return err
}

// ping checks that n answers.
func ping(ctx context.Context, n *node) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := wire.Call[wire.Empty, wire.Empty](ctx, n.probe, wire.MethodNodePing, &wire.Empty{})
	if err == nil {
		n.alive(time.Now())
	}
	return err
}

// startOn asks n to start an instance and waits for it. While it waits it
// pings n; once a ping goes unanswered, it marks n stalled and, if another
// node could take the instance (elsewhere), gives up on the start. An
// instance that such a node starts after all is stopped then: nobody knows
// it. Without another node it waits for the answer, up to startTimeout: a
// node that is only slow (loaded, or far) still serves.
func startOn[Req any](o *Orc, ctx context.Context, n *node, method string, req *Req, id core.ID, codeBytes int, elsewhere func() bool) error {
	// Whichever of the call and the waiter claims the outcome first owns it:
	// the waiter returns the call's error, or the call stops what the
	// waiter gave up on.
	var claimed atomic.Bool
	done := make(chan error, 1)
	if !o.spawn(func(context.Context) {
		_, err := nodeCall[Req, wire.Empty](ctx, n, method, req, startTimeout+time.Duration(codeBytes>>20)*startPerMiB)
		if claimed.CompareAndSwap(false, true) {
			done <- err
		} else if err == nil {
			o.log.Info("stopping an instance whose start was given up", "node", n.id, "instance", id)
			callNode(o.ctx, o, n, wire.MethodNodeStop, &wire.StopComponent{ID: id})
		}
	}) {
		return wire.ErrClosed
	}
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
		}
		err := fmt.Errorf("%w (found by another call)", errStalled)
		if !n.stalled.Load() {
			if err = ping(ctx, n); err == nil || errors.As(err, new(*wire.RemoteError)) {
				continue
			}
			if ctx.Err() != nil {
				continue // the call ends with ctx too: its outcome is on done
			}
			if !n.stalled.Swap(true) {
				o.log.Warn("node stopped answering; placing elsewhere until it does", "node", n.id, "err", err)
			}
		}
		if !elsewhere() || !claimed.CompareAndSwap(false, true) {
			continue // no other node, or the call has just ended: its outcome is on done
		}
		return fmt.Errorf("node %s: %w", n.id, errStalled)
	}
}

// callNode sends a control request to a node, logging a failure: the
// reconcile loop retries what matters on its next turn.
func callNode[Req any](ctx context.Context, o *Orc, n *node, method string, req *Req) {
	if err := request(ctx, n, method, req); err != nil && ctx.Err() == nil {
		o.log.Warn("node request failed", "node", n.id, "method", method, "err", err)
	}
}

// maxParallel bounds the calls parallel makes at once: a domain of a
// thousand nodes must not cost a thousand goroutines per operation.
const maxParallel = 64

// parallel runs f for each of items, at most maxParallel at once, and waits
// for all; it returns their errors joined.
func parallel[T any](items []T, f func(T) error) error {
	if len(items) == 1 {
		return f(items[0])
	}
	errs := make([]error, len(items))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for k, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[k] = f(it)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
