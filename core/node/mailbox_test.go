package node

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/edgeless-go/edgeless/core"
)

func TestMailboxBound(t *testing.T) {
	f := func(bound int) {
		t.Helper()
		b := newMailbox(bound)
		for k := range bound {
			if !b.put(&mail{ev: core.Event{Corr: uint64(k)}}) {
				t.Fatalf("bound %d: put %d refused", bound, k)
			}
		}
		if b.put(&mail{}) || b.len() != bound {
			t.Fatalf("bound %d: a full mailbox took one more, or holds %d", bound, b.len())
		}
		// Round the ring a few times, one out and one in.
		var m mail
		for k := range 3 * bound {
			if !b.take(&m) || m.ev.Corr != uint64(k) {
				t.Fatalf("bound %d: take %d gave %d", bound, k, m.ev.Corr)
			}
			if !b.put(&mail{ev: core.Event{Corr: uint64(k + bound)}}) {
				t.Fatalf("bound %d: put after a take refused", bound)
			}
		}
		if b.len() != bound {
			t.Fatalf("bound %d: holds %d", bound, b.len())
		}
	}
	f(1)
	f(4)
	f(5) // not a power of two: the bound still holds
	f(1024)
}

// TestMailboxSenders has several senders fill a small mailbox that a
// receiver drains, parking whenever it is empty: every event arrives once,
// in its sender's order, and the receiver is always woken.
func TestMailboxSenders(t *testing.T) {
	const senders, each = 4, 20000
	b := newMailbox(8)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; {
				// Corr carries the sender and its sequence number.
				if b.put(&mail{ev: core.Event{Corr: uint64(s)<<32 | uint64(k)}}) {
					k++
				} else {
					runtime.Gosched() // full: let the receiver run
				}
			}
		}()
	}
	next := make([]uint64, senders)
	var m mail
	for got := 0; got < senders*each; got++ {
		for !b.take(&m) {
			if b.park() {
				<-b.wake
			}
		}
		s, k := m.ev.Corr>>32, m.ev.Corr&(1<<32-1)
		if k != next[s] {
			t.Fatalf("sender %d: got event %d, want %d", s, k, next[s])
		}
		next[s]++
	}
	wg.Wait()
	if b.take(&m) || b.len() != 0 {
		t.Fatalf("an event more than sent, or %d left", b.len())
	}
}

// TestMailboxNeverFullBelowBound: senders with one event in flight each
// never find a mailbox whose bound is above their number full, however the
// receiver's progress interleaves with their reads of the ring's ends.
func TestMailboxNeverFullBelowBound(t *testing.T) {
	const senders, each = 8, 20000
	b := newMailbox(64)
	acks := make([]chan struct{}, senders)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for s := range senders {
		acks[s] = make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				for !b.put(&mail{ev: core.Event{Corr: uint64(s)}}) {
					refused.Add(1)
					runtime.Gosched()
				}
				<-acks[s] // one in flight, as a caller waiting for its reply
			}
		}()
	}
	var m mail
	for range senders * each {
		for !b.take(&m) {
			if b.park() {
				<-b.wake
			}
		}
		acks[m.ev.Corr] <- struct{}{}
	}
	wg.Wait()
	if n := refused.Load(); n > 0 {
		t.Fatalf("put refused %d times with at most %d of %d queued", n, senders, 64)
	}
}
