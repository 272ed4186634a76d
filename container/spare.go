package container

import (
	"context"
	"time"
)

// spareKey identifies interchangeable spare containers.
type spareKey struct {
	image  string
	memory int
	cpus   float64
}

// spares are started containers, not yet booted: an EDGELESS container
// function's instance, or a language runtime's new pooled container, that
// takes one skips Docker's create and start, most of a cold start. They are
// kept per image once the image has been used, up to Config.Spares, and
// evicted like idle pooled containers. Guarded by the runtime's mu.
type spares struct {
	boxes   map[spareKey][]*box
	filling map[spareKey]bool
}

// takeSpare returns a spare container for k, or nil, and has the spares of
// k refilled.
func (r *Runtime) takeSpare(k spareKey) *box {
	if r.cfg.Spares == 0 {
		return nil
	}
	defer r.refill(k)
	var got *box
	var dead []*box
	r.mu.Lock()
	for list := r.spares.boxes[k]; len(list) > 0 && got == nil; list = r.spares.boxes[k] {
		b := list[len(list)-1]
		r.spares.boxes[k] = list[:len(list)-1]
		select {
		case <-b.exited:
			dead = append(dead, b) // died unused
		default:
			got = b
		}
	}
	r.mu.Unlock()
	for _, b := range dead {
		b.remove()
	}
	return got
}

// refill starts spare containers of k up to Config.Spares, in the
// background, unless it is under way already.
func (r *Runtime) refill(k spareKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.spares.filling[k] || len(r.spares.boxes[k]) >= r.cfg.Spares {
		return
	}
	r.spares.filling[k] = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			r.mu.Lock()
			if r.closed || len(r.spares.boxes[k]) >= r.cfg.Spares {
				delete(r.spares.filling, k)
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StartTimeout)
			b, err := r.newBox(ctx, boxSpec{image: k.image, kind: "spare", memoryMB: k.memory, cpus: k.cpus})
			cancel()
			r.mu.Lock()
			if err != nil || r.closed {
				delete(r.spares.filling, k)
				r.mu.Unlock()
				if err != nil {
					r.log.Warn("cannot start a spare container", "image", k.image, "err", err)
				} else {
					b.remove()
				}
				return
			}
			b.idleFrom = time.Now()
			r.spares.boxes[k] = append(r.spares.boxes[k], b)
			r.mu.Unlock()
		}
	}()
}

// expiredSpares takes the spares idle since before cutoff out of the list.
// The caller holds mu.
func (r *Runtime) expiredSpares(cutoff time.Time) []*box {
	var gone []*box
	for k, list := range r.spares.boxes {
		keep := list[:0]
		for _, b := range list {
			if b.idleFrom.Before(cutoff) {
				gone = append(gone, b)
			} else {
				keep = append(keep, b)
			}
		}
		clear(list[len(keep):])
		r.spares.boxes[k] = keep
	}
	return gone
}
