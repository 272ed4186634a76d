package orc

import (
	"testing"
	"time"
)

func TestRecreationBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &component{started: now}
	f := func(at time.Duration, want time.Duration) {
		t.Helper()
		if got := c.failed(now.Add(at)); got != want {
			t.Fatalf("failure %d at +%v: delay %v, want %v", c.failures, at, got, want)
		}
		if !c.retryAt.Equal(now.Add(at + want)) {
			t.Fatalf("retryAt = %v, want %v", c.retryAt, now.Add(at+want))
		}
	}
	f(time.Second, 0) // the first failure is re-created at once
	f(2*time.Second, 500*time.Millisecond)
	f(3*time.Second, time.Second)
	f(4*time.Second, 2*time.Second)
	for range 20 {
		c.failed(now.Add(5 * time.Second))
	}
	f(6*time.Second, maxBackoff)
	c.started = now.Add(10 * time.Second) // it then ran for longer than stableAfter
	f(10*time.Second+stableAfter+time.Second, 0)
}
