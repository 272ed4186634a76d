package container

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/container"
)

// spares are started containers, not yet booted: an EDGELESS container
// function's instance, or a language runtime's new pooled container, that
// takes one skips Docker's create and start, most of a cold start. They are
// kept per image, up to Config.Spares, once the image has been used or when
// Config.Prestart names it, and evicted like idle pooled containers. They
// start with the runtime's default limits; one taken for a function with
// other limits gets them by Docker's update. Guarded by the runtime's mu.
type spares struct {
	boxes   map[string][]*box // by image
	filling map[string]bool
}

// takeSpare returns a spare container of image limited to memoryMB and
// cpus (0: the runtime's defaults), or nil, and has the spares refilled.
func (r *Runtime) takeSpare(image string, memoryMB int, cpus float64) *box {
	if r.cfg.Spares == 0 {
		return nil
	}
	defer r.refill(image)
	var got *box
	var dead []*box
	r.mu.Lock()
	for list := r.spares.boxes[image]; len(list) > 0 && got == nil; list = r.spares.boxes[image] {
		b := list[len(list)-1]
		r.spares.boxes[image] = list[:len(list)-1]
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
	if got == nil {
		return nil
	}
	if !r.limit(got, memoryMB, cpus) {
		got.remove()
		return nil
	}
	r.count.fromSpare.Add(1)
	return got
}

// limit gives b the limits memoryMB and cpus (0: the defaults) unless it has
// them; false means it could not.
func (r *Runtime) limit(b *box, memoryMB int, cpus float64) bool {
	mem, cpu := r.limits(memoryMB, cpus)
	if mem == b.memoryMB && cpu == b.cpus {
		return true
	}
	var res container.Resources
	res.Memory, res.MemorySwap = int64(mem)<<20, int64(mem)<<20
	res.NanoCPUs = int64(cpu * 1e9)
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.StartTimeout)
	defer cancel()
	if _, err := r.docker.ContainerUpdate(ctx, b.id, container.UpdateConfig{Resources: res}); err != nil {
		r.log.Warn("cannot set the limits of a spare container; creating one", "container", b.short(), "err", err)
		return false
	}
	b.memoryMB, b.cpus = mem, cpu
	return true
}

// refill starts spare containers of image up to Config.Spares, in the
// background, unless it is under way already.
func (r *Runtime) refill(image string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.cfg.Spares == 0 || r.spares.filling[image] || len(r.spares.boxes[image]) >= r.cfg.Spares {
		return
	}
	r.spares.filling[image] = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			r.mu.Lock()
			if r.closed || len(r.spares.boxes[image]) >= r.cfg.Spares {
				delete(r.spares.filling, image)
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			ctx, cancel := context.WithTimeout(r.ctx, r.cfg.StartTimeout)
			b, err := r.newBox(ctx, boxSpec{image: image, kind: "spare"})
			cancel()
			r.mu.Lock()
			if err != nil || r.closed {
				delete(r.spares.filling, image)
				r.mu.Unlock()
				if err != nil {
					r.log.Warn("cannot start a spare container", "image", image, "err", err)
				} else {
					b.remove()
				}
				return
			}
			b.idleFrom = time.Now()
			r.spares.boxes[image] = append(r.spares.boxes[image], b)
			r.mu.Unlock()
		}
	}()
}

// expiredSpares takes the spares idle since before cutoff out of the list,
// but those of prestarted images. The caller holds mu.
func (r *Runtime) expiredSpares(cutoff time.Time) []*box {
	var gone []*box
	for image, list := range r.spares.boxes {
		if r.prestart[image] {
			continue
		}
		keep := list[:0]
		for _, b := range list {
			if b.idleFrom.Before(cutoff) {
				gone = append(gone, b)
			} else {
				keep = append(keep, b)
			}
		}
		clear(list[len(keep):])
		r.spares.boxes[image] = keep
	}
	return gone
}
