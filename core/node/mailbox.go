package node

import (
	"math/bits"
	"sync/atomic"
)

// mailbox is an instance's queue of events: bounded, many senders, one
// receiver (the instance goroutine), without locks. A channel took a lock on
// each side of every event, and the two sides, on two CPUs, fought over it.
//
// It is Vyukov's bounded queue: a ring of slots, each with a sequence number
// that says whether it is free for the sender at a position or filled for
// the receiver. A receiver that finds it empty parks on wake after saying so
// in parked; a sender that fills a slot and sees parked wakes it. Go's
// atomics are sequentially consistent, so one of the two always sees the
// other's write and no wake-up is lost.
type mailbox struct {
	slots []slot // a power of two of them
	mask  uint64
	bound uint64 // at most this many queued (mailbox_size)

	// Each on a cache line of its own, so that one side's writes do not
	// take from the other side's cache what it only reads.
	_    [64]byte
	tail atomic.Uint64 // written by senders
	// headSeen is a reading of head by a sender: head only grows, so it
	// is a bound below head, and senders read head itself, which the
	// receiver writes after every event, only when it says full.
	headSeen atomic.Uint64
	_        [48]byte
	head     atomic.Uint64 // written by the receiver only
	_        [56]byte
	parked   atomic.Bool   // read by every sender; written when the receiver parks
	wake     chan struct{} // one token
}

type slot struct {
	seq atomic.Uint64
	m   mail
}

func newMailbox(bound int) *mailbox {
	n := uint64(1) << bits.Len64(uint64(bound-1))
	b := &mailbox{slots: make([]slot, n), mask: n - 1, bound: uint64(bound), wake: make(chan struct{}, 1)}
	for i := range b.slots {
		b.slots[i].seq.Store(uint64(i))
	}
	return b
}

// put queues m and reports whether there was room. Safe from any goroutine;
// it never blocks.
func (b *mailbox) put(m *mail) bool {
	pos := b.tail.Load()
	var s *slot
	for {
		head := b.headSeen.Load()
		if pos < head {
			// pos was read before the receiver took the events up to head:
			// stale (and pos-head would wrap round to "full").
			pos = b.tail.Load()
			continue
		}
		if pos-head >= b.bound {
			if head = b.head.Load(); pos < head {
				pos = b.tail.Load()
				continue
			}
			if pos-head >= b.bound {
				return false
			}
			b.headSeen.Store(head) // racy, but any reading of head is below it
		}
		s = &b.slots[pos&b.mask]
		switch seq := s.seq.Load(); {
		case seq == pos:
			if b.tail.CompareAndSwap(pos, pos+1) {
				s.m = *m
				s.seq.Store(pos + 1)
				if b.parked.Load() && b.parked.CompareAndSwap(true, false) {
					b.wake <- struct{}{} // the token was taken when it parked
				}
				return true
			}
			pos = b.tail.Load()
		case seq < pos:
			return false // the receiver has not freed it yet: full
		default:
			pos = b.tail.Load() // another sender took pos
		}
	}
}

// take returns the next event, if one is queued. Receiver only.
func (b *mailbox) take(m *mail) bool {
	pos := b.head.Load()
	s := &b.slots[pos&b.mask]
	if s.seq.Load() != pos+1 {
		return false
	}
	*m = s.m
	s.m = mail{} // keep no payload alive
	s.seq.Store(pos + b.mask + 1)
	b.head.Store(pos + 1)
	return true
}

// empty reports whether no event is ready to take. Receiver only: unlike
// len, it reads no line the senders write but the slot take reads next.
func (b *mailbox) empty() bool {
	pos := b.head.Load()
	return b.slots[pos&b.mask].seq.Load() != pos+1
}

// park prepares the receiver to wait on wake and reports whether it may:
// false if an event came in meanwhile. Receiver only; after a true result
// it must wait for wake (or another reason to wake up) and then call
// unpark.
func (b *mailbox) park() bool {
	b.parked.Store(true)
	if !b.empty() {
		b.unpark()
		return false
	}
	return true
}

// unpark withdraws park's announcement, whether or not a sender took it.
func (b *mailbox) unpark() {
	if !b.parked.CompareAndSwap(true, false) {
		<-b.wake // a sender took it and sends (or sent) the token
	}
}

// len returns how many events are queued or being queued. Safe from any
// goroutine.
func (b *mailbox) len() int {
	h := b.head.Load() // first: tail only grows, so never below it
	return int(b.tail.Load() - h)
}
