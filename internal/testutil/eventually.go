// Package testutil holds what the tests of several packages share: polling
// with a deadline instead of sleeping, and fixtures built once per test
// binary. Only tests import it.
package testutil

import (
	"testing"
	"time"
)

// maxPoll bounds the interval between two checks: short enough that a test
// waits little past the moment cond holds, long enough not to spin.
const maxPoll = 20 * time.Millisecond

// Eventually checks cond until it holds and fails tb, naming what it waited
// for, if it does not hold within the given time. It must be called from the
// test's goroutine.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	EventuallyDetail(tb, within, what, cond, nil)
}

// EventuallyDetail is Eventually that adds detail(), when detail is not nil,
// to the failure: the last state seen, to tell why cond did not hold.
func EventuallyDetail(tb testing.TB, within time.Duration, what string, cond func() bool, detail func() string) {
	tb.Helper()
	deadline := time.Now().Add(within)
	wait := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if detail != nil {
				msg = "\n" + detail()
			}
			tb.Fatalf("timed out after %v waiting for %s%s", within, what, msg)
		}
		time.Sleep(wait)
		wait = min(2*wait, maxPoll)
	}
}
