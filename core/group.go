package core

import (
	"context"
	"sync"
	"time"
)

// Group owns the goroutines of one component (a node, a controller) so that
// its Close can wait for every one of them. Go refuses once Close has begun:
// a goroutine started after the wait began would outlive the component, and
// sync.WaitGroup forbids an Add concurrent with its Wait. The zero Group is
// ready; it is safe for concurrent use.
type Group struct {
	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

// Go runs f on a new goroutine of the group and reports true, or reports
// false, without running f, once Close has begun.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Close refuses further goroutines and waits for those running. The caller
// must first have told them to stop. It is idempotent.
func (g *Group) Close() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	g.wg.Wait()
}

// Sleep waits for d or until ctx ends, whichever comes first, and returns
// ctx's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
