package resources

import (
	"sync/atomic"
	"time"
)

// throttle lets an error that can repeat be logged at most once per
// interval; it counts the occurrences in between. Safe for concurrent use.
type throttle struct {
	interval time.Duration
	last     atomic.Int64 // unix ns of the last allowed log
	count    atomic.Uint64
}

// allow counts one occurrence and reports whether to log it, with the number
// of occurrences since the last logged one (itself included).
func (t *throttle) allow() (bool, uint64) {
	t.count.Add(1)
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(t.interval) || !t.last.CompareAndSwap(last, now) {
		return false, 0
	}
	return true, t.count.Swap(0)
}
