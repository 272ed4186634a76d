package core

import (
	"sync/atomic"
	"time"
)

// Throttle lets a line that can repeat (an error per event, a malformed frame
// per connection) be logged at most once per Every, and counts the
// occurrences in between. The zero Throttle lets every line through. It is
// safe for concurrent use.
type Throttle struct {
	Every time.Duration
	last  atomic.Int64 // Unix nanoseconds of the last line let through
	count atomic.Uint64
}

// Allow counts one occurrence and reports whether to log it, with the number
// of occurrences since the last line logged, this one included.
func (t *Throttle) Allow() (bool, uint64) {
	t.count.Add(1)
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(t.Every) || !t.last.CompareAndSwap(last, now) {
		return false, 0
	}
	return true, t.count.Swap(0)
}
