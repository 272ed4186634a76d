package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
)

// freeze stops a node process with SIGSTOP, as a hung host does: its
// sockets stay open and nothing answers. It is thawed when the test ends.
func (c *cluster) freeze(name string) {
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT) })
}

// TestLargeFunctionAcrossProcesses deploys a 20 MB function with the CLI
// through the controller, the orchestrator and a node, each its own process.
func TestLargeFunctionAcrossProcesses(t *testing.T) {
	c := newCluster(t, 1, "")
	code, err := os.ReadFile("functions/noop/noop.wasm")
	if err != nil {
		t.Fatal(err)
	}
	// A custom section of padding (id 0; sizes are unsigned LEB128, which
	// binary.AppendUvarint writes) makes it 20 MB.
	name := "padding"
	sec := append(binary.AppendUvarint(nil, uint64(len(name))), name...)
	sec = append(sec, make([]byte, 20<<20)...)
	code = append(binary.AppendUvarint(append(code, 0), uint64(len(sec))), sec...)
	c.write("big.wasm", string(code))
	c.write("big.json", fmt.Sprintf(`{"functions":[{"name":"big","class_specification":{"id":"big","function_type":"RUST_WASM","version":"0.1","code":%q,"outputs":[]},"output_mapping":{},"annotations":{}}],"resources":[],"annotations":{}}`,
		filepath.Join(c.dir, "big.wasm")))
	id, err := c.cli("start", filepath.Join(c.dir, "big.json"))
	if err != nil {
		t.Fatalf("start of a 20 MB function: %v: %s", err, id)
	}
	if got := len(findComponent(c.inspect(id), "big").Instances); got != 1 {
		t.Fatalf("%d instances of the 20 MB function, want 1", got)
	}
}

// chainWorkflow returns a workflow of two noop functions, the first mapped
// to the second, with the code inline as the API takes it.
func chainWorkflow(t testing.TB) []byte {
	code, err := os.ReadFile("functions/noop/noop.wasm")
	if err != nil {
		t.Fatal(err)
	}
	fn := func(name string, out map[string]string) map[string]any {
		return map[string]any{
			"name":                name,
			"class_specification": map[string]any{"id": "noop", "function_type": "RUST_WASM", "version": "0.1", "binary": code, "outputs": []string{"out"}},
			"output_mapping":      out,
			"annotations":         map[string]string{},
		}
	}
	wf, err := json.Marshal(map[string]any{
		"functions":   []any{fn("a", map[string]string{"out": "b"}), fn("b", map[string]string{})},
		"resources":   []any{},
		"annotations": map[string]string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

// startWorkflows starts n copies of wf at once through the API and returns
// their ids and how long each start took; any failure fails the test.
func (c *cluster) startWorkflows(wf []byte, n int) ([]string, []time.Duration) {
	c.t.Helper()
	ids := make([]string, n)
	took := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp, err := c.http.Post(c.api+"/api/v1/workflows", "application/json", bytes.NewReader(wf))
			if err != nil {
				errs[k] = err
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			took[k] = time.Since(start)
			var r struct {
				ID string `json:"workflow_id"`
			}
			if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &r) != nil || r.ID == "" {
				errs[k] = fmt.Errorf("start %d: %s: %s", k, resp.Status, body)
			}
			ids[k] = r.ID
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	return ids, took
}

// stopWorkflows stops the workflows, all at once.
func (c *cluster) stopWorkflows(ids []string) {
	c.t.Helper()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodDelete, c.api+"/api/v1/workflows/"+id, nil)
			if resp, err := c.http.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

func quantile(d []time.Duration, q float64) time.Duration {
	return loadResult{latencies: d}.quantile(q)
}

// TestFrozenNode freezes one of four node processes while it is still
// registered (its refresh deadline is 10 s away) and checks that workflow
// starts, invocations and /metrics that do not need it do not wait for it:
// the orchestrator holds no lock across calls to nodes, and a start that
// went to the frozen node before it was found out is placed elsewhere as
// soon as a ping goes unanswered. The bounds are far below the 15 s a start
// may take, so only a start that waited for the frozen node breaks them.
func TestFrozenNode(t *testing.T) {
	c := newClusterRefresh(t, 4, "", 5)
	src, _ := filepath.Abs("functions/noop/noop.wasm")
	if out, err := exec.Command(bin, "function", "-c", filepath.Join(c.dir, "tls", "cli.toml"), "-controller-url", c.api,
		"create", "-f", "noop", "--src", src).CombinedOutput(); err != nil {
		t.Fatalf("function create: %v: %s", err, out)
	}
	invoke := func() (string, error) {
		resp, err := c.http.Post(c.api+"/api/v1/invoke/noop", "application/json", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("invoke: %s", resp.Status)
		}
		return resp.Header.Get("Edgeless-Node"), nil
	}
	serving, err := invoke()
	if err != nil {
		t.Fatal(err)
	}
	frozen := ""
	for i, id := range c.nodeIDs {
		if id.String() != serving {
			frozen = fmt.Sprintf("node%d", i)
			break
		}
	}
	c.freeze(frozen)
	frozenID := c.nodeIDs[frozen[len("node")]-'0'].String()

	ids, took := c.startWorkflows(chainWorkflow(t), 20)
	for k, d := range took {
		if d > 5*time.Second {
			t.Errorf("start %d took %v with a frozen node", k, d)
		}
	}
	for _, id := range ids {
		for _, ci := range c.inspect(id).Components {
			for _, i := range ci.Instances {
				if i.Node == frozenID {
					t.Errorf("workflow %s: %s runs on the frozen node", id, ci.Name)
				}
			}
		}
	}
	var slowest time.Duration
	for range 50 {
		start := time.Now()
		if _, err := invoke(); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
	}
	if slowest > 2*time.Second {
		t.Errorf("an invocation took %v with a frozen node", slowest)
	}
	quick := &http.Client{Timeout: 2 * time.Second}
	resp, err := quick.Get("http://" + c.orcMetrics + "/metrics")
	if err != nil {
		t.Fatalf("orchestrator /metrics with a frozen node: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`edgeless_orc_components{kind="function"} 41`)) {
		t.Errorf("orchestrator /metrics: want 41 functions (1 + 20 × 2):\n%s", body)
	}
	var domains spec.DomainList
	if err := c.get("/api/v1/domains", &domains); err != nil || len(domains.Domains) != 1 || domains.Domains[0].Nodes != 4 {
		t.Errorf("domains with a frozen node still registered: %+v, %v", domains, err)
	}
	t.Logf("20 concurrent starts with a frozen node: p50 %v, max %v; slowest of 50 invocations %v",
		quantile(took, 0.5), slices.Max(took), slowest)
}

// BenchmarkStartsWithFrozenNode starts 100 two-function workflows at once on
// four node processes, then again with one of them frozen (SIGSTOP) just
// before, and reports the start latency quantiles of both runs. The frozen
// node is found out by the pings of the starts that went to it.
func BenchmarkStartsWithFrozenNode(b *testing.B) {
	for range b.N {
		c := newClusterRefresh(b, 4, "", 2)
		wf := chainWorkflow(b)
		ids, _ := c.startWorkflows(wf, 4) // warm the compilation cache
		c.stopWorkflows(ids)
		ids, healthy := c.startWorkflows(wf, 100)
		c.stopWorkflows(ids)
		c.freeze("node3")
		ids, frozen := c.startWorkflows(wf, 100)
		c.stopWorkflows(ids)
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		b.ReportMetric(ms(quantile(healthy, 0.5)), "p50-ms")
		b.ReportMetric(ms(quantile(healthy, 0.99)), "p99-ms")
		b.ReportMetric(ms(quantile(frozen, 0.5)), "frozen-p50-ms")
		b.ReportMetric(ms(quantile(frozen, 0.99)), "frozen-p99-ms")
		b.ReportMetric(0, "ns/op")
	}
}
