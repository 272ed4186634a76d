package testutil

import (
	"fmt"
	"testing"
	"time"
)

// fakeTB records a failure instead of ending the test, so that the failing
// path of Eventually can be checked.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f) // Fatalf does not return
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, 5*time.Second, "the third check", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond checked %d times, want 3", n)
	}

	f := &fakeTB{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != f {
				t.Fatalf("recovered %v, want the fake's Fatalf", r)
			}
		}()
		EventuallyDetail(f, 30*time.Millisecond, "nothing", func() bool { return false }, func() string { return "last: 7" })
	}()
	if took := time.Since(start); took < 30*time.Millisecond || took > 2*time.Second {
		t.Errorf("gave up after %v, want about 30ms", took)
	}
	if want := "timed out after 30ms waiting for nothing\nlast: 7"; f.msg != want {
		t.Errorf("message %q, want %q", f.msg, want)
	}
}
