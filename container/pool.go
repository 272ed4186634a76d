package container

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
)

// poolKey identifies containers that can serve each other's events: same
// image, code, handler and limits.
type poolKey struct {
	image   string
	runtime string
	sum     [32]byte
	handler string
	memory  int
	cpus    float64
}

// pool holds the warm containers of one language-runtime function, shared
// by its instances on this node. Its fields are guarded by the runtime's mu.
type pool struct {
	rt    *Runtime
	key   poolKey
	files []byte // the code, as the tar archive each container gets at Init
	idle  []*box // most recently used last
	users int
}

// poolFor returns the pool of s, creating it, and counts a user.
func (r *Runtime) poolFor(s Spec) (*pool, error) {
	if s.Handler == "" {
		return nil, fmt.Errorf("a %s function needs a handler (module.function)", s.Runtime)
	}
	module, _, ok := strings.Cut(s.Handler, ".")
	if !ok || module == "" || strings.ContainsAny(module, "/\\") {
		return nil, fmt.Errorf("handler %q: want module.function", s.Handler)
	}
	files, err := codeArchive(s.Code, path.Base(module)+".py")
	if err != nil {
		return nil, err
	}
	k := poolKey{image: s.Image, runtime: s.Runtime, sum: s.CodeSum, handler: s.Handler, memory: s.MemoryMB, cpus: s.CPUs}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("container runtime is closed")
	}
	p := r.pools[k]
	if p == nil {
		p = &pool{rt: r, key: k, files: files}
		r.pools[k] = p
	}
	p.users++
	return p, nil
}

// leavePool uncounts a user; the last one removes the warm containers.
func (r *Runtime) leavePool(p *pool) {
	r.mu.Lock()
	p.users--
	var gone []*box
	if p.users == 0 {
		gone = p.idle
		p.idle = nil
		delete(r.pools, p.key)
	}
	r.mu.Unlock()
	for _, b := range gone {
		b.remove()
	}
}

// prewarm starts the pool's containers up to the configured count, at
// least one, which checks that the handler loads.
func (p *pool) prewarm(i *Instance) error {
	p.rt.mu.Lock()
	have := len(p.idle)
	p.rt.mu.Unlock()
	for n := have; n < max(1, p.rt.cfg.Prewarm); n++ {
		b, err := p.create(i)
		if err != nil {
			return err
		}
		p.put(b)
	}
	return nil
}

// get takes a warm container, or starts one (a cold start).
func (p *pool) get(i *Instance) (*box, error) {
	r := p.rt
	for {
		r.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			r.mu.Unlock()
			return p.create(i)
		}
		b := p.idle[n-1]
		p.idle = p.idle[:n-1]
		r.mu.Unlock()
		select {
		case <-b.exited: // died while idle
			b.remove()
			continue
		default:
			return b, nil
		}
	}
}

// put returns a container to the pool, warm.
func (p *pool) put(b *box) {
	b.owner.Store(nil)
	r := p.rt
	r.mu.Lock()
	if r.closed || p.users == 0 {
		r.mu.Unlock()
		b.remove()
		return
	}
	b.idleFrom = time.Now()
	p.idle = append(p.idle, b)
	r.mu.Unlock()
}

// create starts a container of the runtime image (or takes a spare), boots
// it and loads the handler with the code (Init).
func (p *pool) create(i *Instance) (*box, error) {
	r := p.rt
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.StartTimeout)
	defer cancel()
	b := r.takeSpare(p.key.image, p.key.memory, p.key.cpus)
	if b == nil {
		var err error
		if b, err = r.newBox(ctx, boxSpec{image: p.key.image, kind: p.key.runtime, memoryMB: p.key.memory, cpus: p.key.cpus}); err != nil {
			return nil, err
		}
	}
	b.owner.Store(i)
	if err := b.boot(ctx, i.self); err != nil {
		b.remove()
		return nil, err
	}
	// The code travels in Init (as its state), not by Docker's copy into
	// the container (80–100 ms): a spare started before the function was
	// known serves it as well.
	if _, _, err := i.request(opInit, b, i.self, p.files, p.key.handler); err != nil {
		b.remove()
		return nil, fmt.Errorf("cannot load handler %s: %w", p.key.handler, err)
	}
	return b, nil
}

// evictLoop removes containers idle for longer than the idle expiration:
// an unused function scales to zero.
func (r *Runtime) evictLoop() {
	every := max(min(r.cfg.IdleExpiration/4, time.Second), 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			r.mu.Lock()
			gone := r.expiredSpares(now.Add(-r.cfg.IdleExpiration))
			for _, p := range r.pools {
				keep := p.idle[:0]
				for _, b := range p.idle {
					if now.Sub(b.idleFrom) >= r.cfg.IdleExpiration {
						gone = append(gone, b)
					} else {
						keep = append(keep, b)
					}
				}
				clear(p.idle[len(keep):])
				p.idle = keep
			}
			r.mu.Unlock()
			r.count.evicted.Add(uint64(len(gone)))
			for _, b := range gone {
				r.log.Debug("evicting an idle container", "container", b.short(), "image", b.image)
				b.remove()
			}
		}
	}
}
