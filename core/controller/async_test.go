package controller

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

// TestAsyncExpiry: a result is kept ttl after it is done, then dropped, and
// only then; a running invocation never expires; progress written again
// lives ttl from its last write, not its first.
func TestAsyncExpiry(t *testing.T) {
	const ttl = 300 * time.Millisecond
	a := newAsyncResults(ttl, 10, "", nil, slog.New(slog.DiscardHandler))
	running, _ := a.add()
	done, _ := a.add()
	t0 := time.Now()
	a.done(done, invocation{Status: http.StatusOK})
	a.saveProgress("run", []byte("1"))
	if res, ok := a.get(done); !ok || res == nil || res.Status != http.StatusOK {
		t.Fatalf("get(done) = %v %v, want its result", res, ok)
	}
	var t1 time.Time
	testutil.Eventually(t, 5*time.Second, "the result's expiry", func() bool {
		if t1.IsZero() && time.Since(t0) > ttl/2 {
			t1 = time.Now()
			a.saveProgress("run", []byte("2"))
		}
		_, ok := a.get(done)
		if !ok && time.Since(t0) < ttl {
			t.Fatalf("the result expired after %v, before its ttl %v", time.Since(t0), ttl)
		}
		return !ok
	})
	// The first write's expiry has passed; the second's has not, unless
	// the machine stalled this long.
	if data, ok := a.loadProgress("run"); time.Since(t1) < ttl && (!ok || string(data) != "2") {
		t.Fatalf("progress = %q %v %v after its second write, want it kept", data, ok, time.Since(t1))
	}
	if res, ok := a.get(running); !ok || res != nil {
		t.Fatalf("get(running) = %v %v, want it pending", res, ok)
	}
	testutil.Eventually(t, 5*time.Second, "the progress's expiry", func() bool {
		_, ok := a.loadProgress("run")
		return !ok
	})
}

// TestAsyncFullDropsOldestFinished: at max_async_pending, the oldest
// finished result makes room for a new invocation; only running ones
// refuse it.
func TestAsyncFullDropsOldestFinished(t *testing.T) {
	a := newAsyncResults(time.Hour, 3, "", nil, slog.New(slog.DiscardHandler))
	first, _ := a.add()
	second, _ := a.add()
	running, _ := a.add()
	a.done(first, invocation{Status: http.StatusOK})
	a.done(second, invocation{Status: http.StatusOK})
	third, ok := a.add()
	if !ok {
		t.Fatal("a new invocation was refused while finished results were kept")
	}
	if _, ok := a.get(first); ok {
		t.Fatal("the oldest finished result was kept at max_async_pending")
	}
	if res, ok := a.get(second); !ok || res == nil {
		t.Fatalf("get(second) = %v %v, want its result", res, ok)
	}
	if _, ok := a.add(); !ok {
		t.Fatal("a new invocation was refused while a finished result was kept")
	}
	if _, ok := a.add(); ok {
		t.Fatal("accepted beyond max_async_pending with every invocation running")
	}
	for _, id := range []string{running, third} {
		if res, ok := a.get(id); !ok || res != nil {
			t.Fatalf("get(%s) = %v %v, want it pending", id, res, ok)
		}
	}
}
