package inabox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/orc"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// cloudBox starts a box whose controller follows the scheduling policy, and
// a second domain of one node, "domain-0-cloud", that its orchestrator
// designates cloud; mutate, when set, changes the box's configuration. By
// name the cloud domain comes first: a function placed on the box's own
// domain went there for being edge.
func cloudBox(t *testing.T, policy string, mutate func(*Config)) (*box, *node.Node) {
	t.Helper()
	b := startBox(t, 1, func(c *Config) {
		c.Controller.Scheduling.Policy = policy
		if mutate != nil {
			mutate(c)
		}
	})
	_, n := b.addDomain("domain-0-cloud", func(c *orc.Config) { c.Scheduling.CloudDomain = true })
	var list spec.DomainList
	testutil.Eventually(t, 10*time.Second, "the edge and the cloud domain ready", func() bool {
		resp, err := b.api(http.MethodGet, "/api/v1/domains", "")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		list = spec.DomainList{}
		json.NewDecoder(resp.Body).Decode(&list)
		return len(list.Domains) == 2 && list.Domains[0].Ready && list.Domains[1].Ready
	})
	if d := list.Domains; d[0].ID != "domain-0-cloud" || !d[0].Cloud || d[1].ID != "domain-7000" || d[1].Cloud {
		t.Fatalf("domains %+v, want domain-0-cloud designated cloud and domain-7000 not", d)
	}
	return b, n
}

// createBusy creates functions/busy through Serverledge's /create (so with
// min_instances = 0) and returns the domain its workflow runs in.
func createBusy(t *testing.T, b *box, sl *slClient) string {
	t.Helper()
	sl.want(http.MethodPost, "/create", slFunction{Name: "busy", Runtime: "wasm", MemoryMB: 16,
		TarFunctionCode: tarOf(t, map[string]string{"busy.wasm": filepath.Join(root, "functions/busy/busy.wasm")})}, http.StatusOK, "")
	resp, err := b.api(http.MethodGet, "/api/v1/functions", "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list spec.FunctionList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Functions) != 1 {
		t.Fatalf("functions: %+v, %v", list, err)
	}
	return b.inspect(list.Functions[0].WorkflowID).Domain
}

// TestCloudDomainOffload: a new function goes to the edge domain (to the
// cloud domain first under cloud-only). Once the edge has taken 300 ms for a
// call, a call that may be offloaded and must be answered within 100 ms
// goes, under the controller's edge-cloud policy, to the cloud domain: a
// copy of the function is deployed there (a cold start, reported), the
// next such call finds it warm, and deleting the function stops it. Under
// edge-only the same call stays on the edge.
func TestCloudDomainOffload(t *testing.T) {
	f := func(policy, wantDomain string, wantCloud bool) {
		t.Helper()
		b, cloudNode := cloudBox(t, policy, nil)
		sl := newSLClient(t, b, "")
		if got := createBusy(t, b, sl); got != wantDomain {
			t.Fatalf("%s: function created in %s, want %s", policy, got, wantDomain)
		}
		if policy == spec.PolicyCloudOnly {
			return
		}
		sl.invoke("busy", map[string]any{"work": "0", "sleep_ms": "300"}, "done", false)
		before := len(cloudNode.Instances())
		call := slInvocation{Params: map[string]any{"work": "0"}, QoSMaxRespT: 0.1, CanDoOffloading: true}
		report := func() slReport {
			t.Helper()
			var r slReport
			if err := json.Unmarshal(sl.want(http.MethodPost, "/invoke/busy", call, http.StatusOK, ""), &r); err != nil {
				t.Fatal(err)
			}
			if !r.Success || r.Result != "done" || r.Duration <= 0 || r.ResponseTime < r.Duration {
				t.Fatalf("%s: report %+v", policy, r)
			}
			return r
		}
		cold, warm := report(), report()
		resp, err := b.api(http.MethodPost, "/api/v1/invoke/busy", `{"params":{"work":"0"},"qos_max_resp_t":0.1,"can_do_offloading":true}`)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if !wantCloud {
			if cold.SchedAction != "" || !cold.IsWarmStart || warm.SchedAction != "" || resp.StatusCode != http.StatusOK ||
				h.Get("Edgeless-Domain") != "domain-7000" || h.Get("Edgeless-Offloaded") != "false" || h.Get("Edgeless-Node") != b.Nodes[0].ID().String() {
				t.Fatalf("%s: reports %+v, %+v; /api/v1/invoke %d %v: want every call served warm on the edge", policy, cold, warm, resp.StatusCode, h)
			}
			if n := len(cloudNode.Instances()); n != before {
				t.Fatalf("%s: the cloud node runs %d instances, had %d", policy, n, before)
			}
			return
		}
		if cold.SchedAction != "OC" || cold.IsWarmStart || cold.InitTime <= 0 || cold.OffloadLatency <= 0 ||
			cold.ResponseTime < cold.InitTime+cold.Duration || cold.ResponseTime < cold.OffloadLatency {
			t.Fatalf("first offloaded call: %+v, want OC, a cold start with its InitTime and OffloadLatency within ResponseTime", cold)
		}
		if warm.SchedAction != "OC" || !warm.IsWarmStart || warm.InitTime != 0 || warm.OffloadLatency <= 0 {
			t.Fatalf("second offloaded call: %+v, want OC, a warm start", warm)
		}
		if resp.StatusCode != http.StatusOK || h.Get("Edgeless-Domain") != "domain-0-cloud" || h.Get("Edgeless-Offloaded") != "true" ||
			h.Get("Edgeless-Node") != cloudNode.ID().String() {
			t.Fatalf("/api/v1/invoke with the same QoS: %d %v, want served by %s in domain-0-cloud, offloaded", resp.StatusCode, h, cloudNode.ID())
		}
		if n := len(cloudNode.Instances()); n != before+1 {
			t.Fatalf("the cloud node runs %d instances, want %d: the copy's one", n, before+1)
		}
		sl.want(http.MethodPost, "/delete", map[string]string{"Name": "busy"}, http.StatusOK, "")
		testutil.Eventually(t, 5*time.Second, "the copy in the cloud stopped with the function", func() bool { return len(cloudNode.Instances()) == before })
	}
	f(spec.PolicyEdgeOnly, "domain-7000", false)
	f(spec.PolicyEdgeCloud, "domain-7000", true)
	f(spec.PolicyCloudOnly, "domain-0-cloud", false)
}

// TestCloudDomainOverloaded: under the edge-cloud policy, a call that may
// be offloaded and that the edge domain answers overloaded — its one
// instance (max_instances 1) busy with a call queued behind, and its node
// refusing calls to a queue of one (offload queue_threshold 1) — goes to the
// cloud domain rather than further down the edge's queue.
func TestCloudDomainOverloaded(t *testing.T) {
	b, cloudNode := cloudBox(t, spec.PolicyEdgeCloud, func(c *Config) {
		c.Node.Offload.Enabled, c.Node.Offload.QueueThreshold = true, 1
		c.Node.Telemetry.MetricsURL = wire.MustAddr("127.0.0.1:0")
	})
	if _, err := b.fcli("create", "-f", "busy", "--src", filepath.Join(root, "functions/busy/busy.wasm"), "--annotation", "max_instances=1"); err != nil {
		t.Fatal(err)
	}
	// Two long calls that may not be offloaded: one runs, one waits.
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := b.api(http.MethodPost, "/api/v1/invoke/busy", `{"params":{"work":"0","sleep_ms":"2000"}}`)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("a long call: %s %s", resp.Status, body)
				}
			}
			errs <- err
		}()
	}
	depth := regexp.MustCompile(`(?m)^edgeless_node_mailbox_depth\{[^}]*\} (\S+)$`)
	testutil.Eventually(t, 5*time.Second, "a call queued on the edge node", func() bool {
		queued := 0.0
		for _, m := range depth.FindAllSubmatch(scrape(t, b.Nodes[0].MetricsAddr()), -1) {
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			queued += v
		}
		return queued == 1
	})
	resp, err := b.api(http.MethodPost, "/api/v1/invoke/busy", `{"params":{"work":"0"},"can_do_offloading":true}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header; resp.StatusCode != http.StatusOK || h.Get("Edgeless-Domain") != "domain-0-cloud" ||
		h.Get("Edgeless-Offloaded") != "true" || h.Get("Edgeless-Node") != cloudNode.ID().String() {
		t.Fatalf("call to the overloaded edge: %d %v, want served by %s in domain-0-cloud, offloaded", resp.StatusCode, h, cloudNode.ID())
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestCloudDomainDeadlines loads a function of the edge domain with calls
// whose QoSMaxRespT is below the saturated edge's response time: 8 clients
// at once, 20 ms per call, one edge instance (the nodes do not refuse
// calls, so the edge does not add any). Under the controller's edge-only
// policy every call waits on the edge; under edge-cloud those the edge
// cannot serve in time go to the cloud domain, and the share of missed
// deadlines falls.
func TestCloudDomainDeadlines(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const workers, each, deadline = 8, 25, 0.1
	type result struct {
		missed   float64
		actions  map[string]int
		p50, p90 time.Duration
	}
	run := func(t *testing.T, policy string) result {
		b, _ := cloudBox(t, policy, nil)
		sl := newSLClient(t, b, "")
		createBusy(t, b, sl)
		sl.invoke("busy", map[string]any{"work": "0", "sleep_ms": "20"}, "done", false) // the cold start, outside the measurement
		body, _ := json.Marshal(slInvocation{Params: map[string]any{"work": "0", "sleep_ms": "20"}, QoSMaxRespT: deadline, CanDoOffloading: true})
		// Each worker takes calls off one queue and hands back what each
		// call's report said and how long it took.
		type outcome struct {
			action string
			took   time.Duration
		}
		calls, outcomes := make(chan struct{}, workers*each), make(chan outcome, workers*each)
		for range workers * each {
			calls <- struct{}{}
		}
		close(calls)
		for range workers {
			go func() {
				for range calls {
					start := time.Now()
					resp, err := sl.http.Post(sl.base+"/invoke/busy", "application/json", bytes.NewReader(body))
					o := outcome{}
					if err != nil {
						o.action = "error: " + err.Error()
					} else {
						var r slReport
						if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
							o.action = fmt.Sprintf("status %d", resp.StatusCode)
						} else {
							o.action = r.SchedAction
						}
						resp.Body.Close()
					}
					o.took = time.Since(start)
					outcomes <- o
				}
			}()
		}
		res := result{actions: map[string]int{}}
		took := make([]time.Duration, 0, workers*each)
		for range workers * each {
			o := <-outcomes
			res.actions[o.action]++
			took = append(took, o.took)
		}
		slices.Sort(took)
		inTime, _ := slices.BinarySearch(took, time.Duration(deadline*float64(time.Second)))
		res.missed = float64(len(took)-inTime) / float64(len(took))
		res.p50, res.p90 = took[len(took)/2], took[len(took)*9/10]
		return res
	}
	var off, on result
	t.Run(spec.PolicyEdgeOnly, func(t *testing.T) { off = run(t, spec.PolicyEdgeOnly) })
	t.Run(spec.PolicyEdgeCloud, func(t *testing.T) { on = run(t, spec.PolicyEdgeCloud) })
	if t.Failed() {
		return
	}
	t.Logf("deadline %.0f ms, %d clients × %d calls of 20 ms: edge-only missed %.1f%% %v p50/p90 %v/%v; edge-cloud missed %.1f%% %v p50/p90 %v/%v",
		deadline*1e3, workers, each, off.missed*100, off.actions, off.p50.Round(time.Millisecond), off.p90.Round(time.Millisecond),
		on.missed*100, on.actions, on.p50.Round(time.Millisecond), on.p90.Round(time.Millisecond))
	if off.actions[""] != workers*each {
		t.Fatalf("edge-only: actions %v, want every call served on the edge", off.actions)
	}
	if on.actions["OC"] == 0 || on.actions[""]+on.actions["OC"] != workers*each {
		t.Fatalf("edge-cloud: actions %v, want calls served on the edge and in the cloud domain", on.actions)
	}
	if on.missed >= off.missed/2 {
		t.Fatalf("edge-cloud missed %.1f%% of deadlines, edge-only %.1f%%: want under half", on.missed*100, off.missed*100)
	}
}
