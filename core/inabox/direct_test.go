package inabox

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// TestDirectInvoke: once the controller knows where a function runs, its
// invocations, sync, async and Serverledge's, go straight to the instance's
// node, with the same answers, headers and reports, and the orchestrator
// sees none of them. When that node goes away, invocations fail over
// through the orchestrator to the re-created instance, each answered in
// bounded time, and then go direct again. The nodes here run in the
// controller's process: both the in-process call and TLS over loopback are
// tested.
func TestDirectInvoke(t *testing.T) {
	t.Run("in-process", func(t *testing.T) { testDirectInvoke(t, false) })
	t.Run("network", func(t *testing.T) { testDirectInvoke(t, true) })
}

func testDirectInvoke(t *testing.T, overNetwork bool) {
	b := startBox(t, 2, func(c *Config) {
		c.Controller.MetricsURL = wire.MustAddr("127.0.0.1:0")
		c.Controller.InvokeOverNetwork = overNetwork
	})
	if _, err := b.fcli("create", "-f", "sum", "--src", filepath.Join(root, "functions/sum/sum.wasm")); err != nil {
		t.Fatal(err)
	}
	invocations := func(path string) float64 {
		return metricValue(t, scrape(t, b.Con.MetricsAddr()), `edgeless_con_invocations_total\{path="`+path+`"\}`)
	}
	type answer struct {
		status          int
		body            string
		node, offloaded string
		contentType     string
		took            time.Duration
	}
	call := func(body string) answer {
		t.Helper()
		t0 := time.Now()
		resp, err := b.api(http.MethodPost, "/api/v1/invoke/sum", body)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return answer{resp.StatusCode, strings.TrimSpace(string(data)), resp.Header.Get("Edgeless-Node"),
			resp.Header.Get("Edgeless-Offloaded"), resp.Header.Get("Content-Type"), time.Since(t0)}
	}
	sum := func() answer { return call(`{"params":{"a":2,"b":3}}`) }
	testutil.Eventually(t, 10*time.Second, "a direct invocation", func() bool {
		if a := sum(); a.status != http.StatusOK || a.body != "5" {
			t.Fatalf("invoke = %d %q", a.status, a.body)
		}
		return invocations("direct") > 0
	})
	viaOrc, direct := invocations("orchestrator"), invocations("direct")
	var served string
	for range 20 {
		a := sum()
		if a.status != http.StatusOK || a.body != "5" || a.offloaded != "false" || a.node == "" || served != "" && a.node != served ||
			a.contentType != "application/octet-stream" {
			t.Fatalf("invoke = %+v, want 5 (application/octet-stream) from the one instance's node, not offloaded", a)
		}
		served = a.node
	}
	sl := newSLClient(t, b, "")
	sl.invoke("sum", map[string]any{"a": "1", "b": "1"}, "2", true)

	a := call(`{"params":{"a":20,"b":22},"async":true}`)
	var acc spec.InvokeAccepted
	if a.status != http.StatusAccepted || json.Unmarshal([]byte(a.body), &acc) != nil || acc.RequestID == "" {
		t.Fatalf("async invoke = %d %q", a.status, a.body)
	}
	testutil.Eventually(t, 10*time.Second, "the async result", func() bool {
		resp, err := b.api(http.MethodGet, "/api/v1/poll/"+acc.RequestID, "")
		if err != nil {
			t.Fatal(err)
		}
		var p spec.PollReply
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if p.Status == "error" {
			t.Fatalf("poll: %+v", p)
		}
		return p.Status == "done" && p.Result == "42"
	})
	if got, want := invocations("direct"), direct+22; got != want || invocations("orchestrator") != viaOrc {
		t.Fatalf("direct invocations %v (want %v), through the orchestrator %v (want %v)", got, want, invocations("orchestrator"), viaOrc)
	}

	victim := 0
	if b.Nodes[1].ID().String() == served {
		victim = 1
	}
	survivor := b.Nodes[1-victim].ID().String()
	if err := b.Nodes[victim].Close(); err != nil {
		t.Fatal(err)
	}
	// The node waited for its connections to close, the controller's too.
	if n := b.logs.count("hand-over incomplete"); n != 0 {
		t.Fatalf("the node's hand-over did not complete: the controller kept its connection")
	}
	testutil.Eventually(t, 15*time.Second, "an invocation served by the re-created instance", func() bool {
		a := sum()
		if a.took > 6*time.Second {
			t.Fatalf("an invocation took %v", a.took)
		}
		if a.status != http.StatusOK {
			var e spec.ErrorReply
			if a.status < 500 || json.Unmarshal([]byte(a.body), &e) != nil || !strings.Contains(e.Error, `"sum"`) {
				t.Fatalf("invoke while the instance moves = %d %q: want a 5xx naming the function", a.status, a.body)
			}
			return false
		}
		if a.body != "5" {
			t.Fatalf("invoke = %+v", a)
		}
		return a.node == survivor
	})
	direct = invocations("direct")
	testutil.Eventually(t, 10*time.Second, "direct invocations of the new instance", func() bool {
		if a := sum(); a.status != http.StatusOK || a.node != survivor {
			t.Fatalf("invoke = %+v, want 5 from %s", a, survivor)
		}
		return invocations("direct") > direct
	})
}

// BenchmarkDirectInvoke is a warm synchronous invocation through the API to
// a WASM instance, one caller: its allocations are the whole process's
// (the caller's HTTP client included), each of which the garbage collector
// pays for in the invocation's tail.
func BenchmarkDirectInvoke(b *testing.B) {
	bx := startBox(b, 1, nil)
	if _, err := bx.fcli("create", "-f", "noop", "--src", filepath.Join(root, "functions/noop/noop.wasm")); err != nil {
		b.Fatal(err)
	}
	invoke := func() {
		resp, err := bx.api(http.MethodPost, "/api/v1/invoke/noop", `{"params":{}}`)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("invoke answered %d", resp.StatusCode)
		}
	}
	// Warm: the route is cached after the first answers.
	for range 200 {
		invoke()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		invoke()
	}
}
