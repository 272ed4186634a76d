package controller

import (
	"container/list"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// budget bounds the bytes of request bodies that the API holds at once:
// a body becomes several times its size while it is decoded and deployed
// (JSON, the workflow, the messages to the orchestrator), so that six
// 60 MB workflows posted together took the controller to 1.3 GB. Callers
// wait in arrival order, so a large body is not starved by small ones.
// It is safe for concurrent use.
type budget struct {
	size int64

	mu      sync.Mutex
	used    int64
	peak    int64
	waiters list.List // of *budgetWaiter, first come first served
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed once the bytes are granted
}

func newBudget(size int64) *budget { return &budget{size: size} }

// acquire takes n bytes, waiting until they are free or ctx ends. n must not
// exceed the budget's size.
func (b *budget) acquire(ctx context.Context, n int64) error {
	if n > b.size {
		panic(fmt.Sprintf("BUG: %d bytes asked of a budget of %d", n, b.size))
	}
	b.mu.Lock()
	if b.waiters.Len() == 0 && b.used+n <= b.size {
		b.take(n)
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted while giving up: give it back
		b.used -= n
	default:
		b.waiters.Remove(e)
	}
	b.grant() // those behind may fit now
	return ctx.Err()
}

// release gives back n bytes taken with acquire.
func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.used < 0 {
		panic("BUG: more bytes released than acquired")
	}
	b.grant()
}

// grant hands bytes to the waiters in order while the first one fits; b.mu
// is held.
func (b *budget) grant() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*budgetWaiter)
		if b.used+w.n > b.size {
			return
		}
		b.take(w.n)
		b.waiters.Remove(e)
		close(w.ready)
	}
}

// take counts n bytes as used; b.mu is held.
func (b *budget) take(n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
}

// inUse returns the bytes held now and the most ever held at once.
func (b *budget) inUse() (used, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// bodyWait is how long a request waits for room in the body budget before
// it is refused.
const bodyWait = 30 * time.Second

// bounded runs h once the request's body fits in the body budget, and gives
// the bytes back when h returns. A body declared larger than max_workflow_mb
// is refused (413) before it is read; one of unknown length counts as
// max_workflow_mb. A request that finds no room within the wait is refused
// (503) with a reason and Retry-After; refuse writes the answer in the
// style of the API at hand.
func (c *Con) bounded(refuse func(w http.ResponseWriter, status int, msg string), h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := int64(c.cfg.MaxWorkflowMB) << 20
		n := r.ContentLength
		if n > limit {
			refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is larger than max_workflow_mb (%d MB)", n, c.cfg.MaxWorkflowMB))
			return
		}
		if n < 0 {
			n = limit
		}
		ctx, cancel := context.WithTimeout(r.Context(), c.bodyWait)
		err := c.bodies.acquire(ctx, n)
		cancel()
		if err != nil {
			w.Header().Set("Retry-After", strconv.Itoa(int(c.bodyWait.Seconds())+1))
			refuse(w, http.StatusServiceUnavailable, fmt.Sprintf("controller busy: other requests hold the body budget (body_budget_mb, %d MB) that this body of %d bytes needs; retry later",
				c.bodies.size>>20, n))
			return
		}
		defer c.bodies.release(n)
		h(w, r)
	}
}
