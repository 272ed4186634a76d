package container

import "sync/atomic"

// Stats are a runtime's counts, for the node's metrics.
type Stats struct {
	Containers  int    // containers alive: instances', pooled, spare
	Spares      int    // started containers waiting for an instance
	Idle        int    // warm pooled containers waiting for an event
	Created     uint64 // containers created (each a Docker create and start)
	FromSpare   uint64 // instances and pooled containers that took a spare instead
	Failed      uint64 // containers that died, hung or ran out of memory in a handler
	Evicted     uint64 // idle pooled or spare containers removed after the idle expiration
	HostCalls   uint64 // host calls served
	HostRefused uint64 // host calls refused (unknown caller, no handler running)
}

// counters are the runtime's running totals.
type counters struct {
	created, fromSpare, failed, evicted, hostCalls, hostRefused atomic.Uint64
}

// Stats returns the runtime's counts now. It is safe from any goroutine.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	s := Stats{Containers: len(r.boxes)}
	for _, l := range r.spares.boxes {
		s.Spares += len(l)
	}
	for _, p := range r.pools {
		s.Idle += len(p.idle)
	}
	r.mu.Unlock()
	s.Created = r.count.created.Load()
	s.FromSpare = r.count.fromSpare.Load()
	s.Failed = r.count.failed.Load()
	s.Evicted = r.count.evicted.Load()
	s.HostCalls = r.count.hostCalls.Load()
	s.HostRefused = r.count.hostRefused.Load()
	return s
}
