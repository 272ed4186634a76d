package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// newTestCon returns a controller that is not started: no TLS, no tokens,
// nothing persisted, no domain.
func newTestCon(t testing.TB, mutate func(*Config)) *Con {
	t.Helper()
	cfg := Default()
	cfg.ControllerURL = MustAPIURL("http://127.0.0.1:0")
	cfg.TLS.Enabled = false
	cfg.TokensPath = ""
	cfg.PersistenceFilename = ""
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBudget(t *testing.T) {
	b := newBudget(10)
	ctx := context.Background()
	if err := b.acquire(ctx, 8); err != nil {
		t.Fatal(err)
	}
	// a waits for 5; b's 1 would fit but queues behind a.
	granted := make(chan string, 2)
	for i, w := range []struct {
		name string
		n    int64
	}{{"a", 5}, {"b", 1}} {
		go func() {
			if err := b.acquire(ctx, w.n); err == nil {
				granted <- w.name
			}
		}()
		testutil.Eventually(t, 5*time.Second, w.name+" queued", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.waiters.Len() == i+1 })
	}
	select {
	case g := <-granted:
		t.Fatalf("%s was granted while 8 of 10 bytes are held and a waits first", g)
	default:
	}
	b.release(8)
	if got := []string{<-granted, <-granted}; !(got[0] == "a" && got[1] == "b" || got[0] == "b" && got[1] == "a") {
		t.Fatalf("granted %v", got)
	}
	if used, peak := b.inUse(); used != 6 || peak != 8 {
		t.Fatalf("used %d, peak %d; want 6 and 8", used, peak)
	}

	// A waiter that gives up leaves the queue, and those behind it go on.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.acquire(ctx, 2) }()
	if err := b.acquire(short, 10); err == nil {
		t.Fatal("10 bytes granted while 6 of 10 are held")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if used, _ := b.inUse(); used != 8 {
		t.Fatalf("used %d after the give-up, want 8", used)
	}
}

// TestBodyBudget: bodies posted together are decoded only as far as the
// budget allows; the others wait their turn, or are refused with a reason
// when no room comes in time.
func TestBodyBudget(t *testing.T) {
	c := newTestCon(t, func(cfg *Config) { cfg.MaxWorkflowMB, cfg.BodyBudgetMB = 1, 2 })
	const body = 700 << 10 // two fit in the 2 MB budget, three do not
	var running, most atomic.Int64
	gate := make(chan struct{})
	h := c.bounded(writeError, func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		data, _ := io.ReadAll(r.Body)
		<-gate
		if len(data) == body {
			w.Write([]byte("read"))
		}
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(n int) (int, string, http.Header) {
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(make([]byte, n)))
		if err != nil {
			t.Error(err)
			return 0, "", nil
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data), resp.Header
	}

	var wg sync.WaitGroup
	statuses := make(chan string, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, text, _ := post(body)
			statuses <- http.StatusText(status) + " " + text
		}()
	}
	testutil.Eventually(t, 10*time.Second, "two bodies decoding and four waiting", func() bool {
		c.bodies.mu.Lock()
		defer c.bodies.mu.Unlock()
		return running.Load() == 2 && c.bodies.waiters.Len() == 4
	})
	close(gate)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != "OK read" {
			t.Errorf("a body within the budget got %q, want OK after its turn", s)
		}
	}
	used, peak := c.bodies.inUse()
	if most.Load() != 2 || used != 0 || peak != 2*body {
		t.Fatalf("%d decoded at once, %d bytes held after, peak %d; want 2, 0, %d", most.Load(), used, peak, 2*body)
	}

	// With the budget held elsewhere past the wait, the API refuses.
	c.bodyWait = 50 * time.Millisecond
	api := httptest.NewServer(c.routes())
	defer api.Close()
	if err := c.bodies.acquire(context.Background(), 2<<20); err != nil {
		t.Fatal(err)
	}
	f := func(path string, n, want int, reason string) {
		t.Helper()
		resp, err := http.Post(api.URL+path, "application/json", bytes.NewReader(make([]byte, n)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e spec.ErrorReply
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode != want || !strings.Contains(e.Error, reason) {
			t.Fatalf("POST %s of %d bytes: %d %q, want %d and %q", path, n, resp.StatusCode, e.Error, want, reason)
		}
		if want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Fatalf("POST %s: 503 without Retry-After", path)
		}
	}
	f("/api/v1/workflows", body, http.StatusServiceUnavailable, "controller busy: other requests hold the body budget (body_budget_mb, 2 MB)")
	f("/api/v1/functions", body, http.StatusServiceUnavailable, "controller busy")
	f("/api/v1/workflows", 1<<20+1, http.StatusRequestEntityTooLarge, "request body of 1048577 bytes is larger than max_workflow_mb (1 MB)")
	c.bodies.release(2 << 20)
	f("/api/v1/workflows", 10, http.StatusBadRequest, "") // decoded: not JSON
}

// TestBodyBudgetFitsLargestWorkflow: the default budget, twice
// max_workflow_mb, takes a body of max_workflow_mb, so code up to the limit
// stays deployable; a budget below it is a configuration error.
func TestBodyBudgetFitsLargestWorkflow(t *testing.T) {
	c := newTestCon(t, nil)
	ran := false
	r := httptest.NewRequest(http.MethodPost, "/api/v1/workflows", http.NoBody)
	r.ContentLength = int64(c.cfg.MaxWorkflowMB) << 20
	w := httptest.NewRecorder()
	c.bounded(writeError, func(http.ResponseWriter, *http.Request) { ran = true })(w, r)
	if !ran || c.cfg.MaxWorkflowMB != 64 || c.bodies.size != 128<<20 {
		t.Fatalf("a body of max_workflow_mb (%d MB) was not let through: %d %s", c.cfg.MaxWorkflowMB, w.Code, w.Body)
	}
	cfg := Default()
	cfg.BodyBudgetMB = 32
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "body_budget_mb: must be 0 or at least max_workflow_mb (64), got 32") {
		t.Fatalf("Validate: %v", err)
	}
}
