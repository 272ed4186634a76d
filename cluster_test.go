package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// The multi-process tests run a controller, an orchestrator and nodes as
// separate edgeless processes on loopback, as an operator would.

const refresh = 0.5 // seconds between registrations in these tests

// proc is one edgeless process whose output the test keeps.
type proc struct {
	name string
	cmd  *exec.Cmd
	testutil.Buffer
}

// cluster is a controller, an orchestrator and nodes in their own processes.
type cluster struct {
	t          testing.TB
	dir        string
	api        string       // controller API URL
	orcMetrics string       // the orchestrator's /metrics address
	http       *http.Client // trusts the cluster's CA and sends the admin token
	procs      map[string]*proc
	nodeIDs    []core.ID
	ingress    []string // each node's http-ingress address
	mu         sync.Mutex
}

// freePort returns a loopback port that no earlier call in this process
// returned.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// A port handed out before may be free again until its process
		// binds it: the kernel would give it twice.
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// newCluster starts a controller, an orchestrator and nodes; extra is added
// to every node's configuration.
func newCluster(t testing.TB, nodes int, extra string) *cluster {
	return newClusterRefresh(t, nodes, extra, refresh)
}

// newClusterRefresh is newCluster with the nodes registering every refresh
// seconds (they are dropped after twice that without one).
func newClusterRefresh(t testing.TB, nodes int, extra string, refresh float64) *cluster {
	c := emptyCluster(t)
	api, dom, orcPort := freePort(t), freePort(t), freePort(t)
	c.api = fmt.Sprintf("https://127.0.0.1:%d", api)
	c.orcMetrics = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// Certificates and the admin token as an operator makes them: the
	// defaults of every mode read tls/.
	c.run("cert", "init", "-domain", "domain-test")
	c.write("controller.toml", fmt.Sprintf(`controller_url = %q
domain_register_url = "127.0.0.1:%d"
persistence_filename = %q
metrics_url = "127.0.0.1:0"
`, c.api, dom, filepath.Join(c.dir, "controller.save")))
	c.write("orchestrator.toml", fmt.Sprintf(`[general]
domain_id = "domain-test"
orchestrator_url = "127.0.0.1:%d"
node_register_url = ""
domain_register_url = "127.0.0.1:%d"
subscription_refresh_interval_sec = %v
reconcile_interval_ms = 100
metrics_url = %q
`, orcPort, dom, refresh, c.orcMetrics))
	for i := range nodes {
		id := core.NewID()
		c.nodeIDs = append(c.nodeIDs, id)
		c.run("cert", "issue", "-role", "node", "-id", id.String(), "-out", fmt.Sprintf("node%d", i))
		c.ingress = append(c.ingress, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		c.write(fmt.Sprintf("node%d.toml", i), fmt.Sprintf(`[general]
node_id = %q
invocation_url = "127.0.0.1:%d"
node_register_url = "127.0.0.1:%d"
subscription_refresh_interval_sec = %v
[wasm_runtime]
cache_dir = %q
[state]
dir = %q
[telemetry]
metrics_url = "127.0.0.1:0"
[tls]
cert_path = "tls/node%d.pem"
key_path = "tls/node%d.key"
[resources]
allowed_dirs = [%q]
http_ingress_provider = "http-ingress-%d"
http_ingress_url = %q
http_egress_provider = ""
http_poster_provider = ""
redis_provider = ""
sqlx_provider = ""
file_log_provider = "file-log-%d"
[container_runtime]
enabled = false
%s`, id, freePort(t), orcPort, refresh, filepath.Join(c.dir, fmt.Sprintf("cache%d", i)), filepath.Join(c.dir, fmt.Sprintf("state%d", i)), i, i, c.dir, i, c.ingress[i], i, extra))
	}
	c.http = c.client()
	c.start("con", "con", "-c", "controller.toml")
	c.start("orc", "orc", "-c", "orchestrator.toml")
	for i := range nodes {
		c.start(fmt.Sprintf("node%d", i), "node", "-c", fmt.Sprintf("node%d.toml", i))
	}
	c.waitNodes(nodes)
	return c
}

// run runs an edgeless verb in the cluster's directory and fails the test if
// it fails.
func (c *cluster) run(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("edgeless %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// client returns an HTTP client of the API with the CA and token that
// `edgeless cert init` wrote.
func (c *cluster) client() *http.Client {
	c.t.Helper()
	return c.clientWith(c.token())
}

// clientWith returns an HTTP client of the API that trusts the CA `edgeless
// cert init` wrote and sends token, if any.
func (c *cluster) clientWith(token string) *http.Client {
	c.t.Helper()
	pem, err := os.ReadFile(filepath.Join(c.dir, "tls", "ca.pem"))
	if err != nil {
		c.t.Fatal(err)
	}
	return testutil.APIClient(pem, token, time.Minute)
}

// token returns the admin token `edgeless cert init` wrote.
func (c *cluster) token() string {
	c.t.Helper()
	tok, err := os.ReadFile(filepath.Join(c.dir, "tls", "admin.token"))
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(string(tok))
}

// emptyCluster returns a cluster with no process yet, in a fresh directory;
// every process it starts is stopped when the test ends.
func emptyCluster(t testing.TB) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), procs: map[string]*proc{}}
	// Registered before any process starts, so that none outlives a failure.
	t.Cleanup(c.stopAll)
	return c
}

// stopAll sends SIGTERM to every process and waits for each; one that does
// not stop within 10 s fails the test.
func (c *cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		c.stop(p)
	}
}

// stop sends SIGTERM to p and waits for it to exit, at most 10 s, after which
// it kills p and fails the test. It returns how long p took.
func (c *cluster) stop(p *proc) time.Duration {
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		c.t.Errorf("%s did not stop within 10s of SIGTERM", p.name)
		p.cmd.Process.Kill()
		<-exited
	}
	if c.t.Failed() {
		c.t.Logf("output of %s:\n%s", p.name, p)
	}
	return time.Since(start)
}

func (c *cluster) write(name, content string) {
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) start(name string, args ...string) *proc {
	c.t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...)}
	p.cmd.Dir = c.dir
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	return p
}

// kill ends a process with SIGKILL: no handle_stop, no goodbye.
func (c *cluster) kill(name string) {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

func (c *cluster) get(path string, v any) error {
	resp, err := c.http.Get(c.api + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (c *cluster) waitNodes(n int) {
	c.t.Helper()
	testutil.Eventually(c.t, 20*time.Second, fmt.Sprintf("the controller to see %d nodes", n), func() bool {
		var l spec.DomainList
		return c.get("/api/v1/domains", &l) == nil && len(l.Domains) == 1 && l.Domains[0].Ready && l.Domains[0].Nodes == n
	})
}

// cli runs an edgeless CLI verb against the cluster.
func (c *cluster) cli(args ...string) (string, error) {
	out, err := exec.Command(bin, append([]string{"workflow", "-c", filepath.Join(c.dir, "tls", "cli.toml"), "-controller-url", c.api}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (c *cluster) inspect(id string) spec.WorkflowInfo {
	c.t.Helper()
	var wi spec.WorkflowInfo
	if err := c.get("/api/v1/workflows/"+id, &wi); err != nil {
		c.t.Fatal(err)
	}
	return wi
}

func (c *cluster) nodeProc(node string) string {
	for i, id := range c.nodeIDs {
		if id.String() == node {
			return fmt.Sprintf("node%d", i)
		}
	}
	c.t.Fatalf("unknown node %s", node)
	return ""
}

// counter reads a function's synced counter: the highest in the nodes' own
// state directories (each node keeps its state on its own disk, as by
// default), or -1.
func (c *cluster) counter(logical string) int {
	files, _ := filepath.Glob(filepath.Join(c.dir, "state*", logical))
	best := -1
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(string(data)); err == nil && n > best {
			best = n
		}
	}
	return best
}

func findComponent(wi spec.WorkflowInfo, name string) spec.ComponentInfo {
	for _, ci := range wi.Components {
		if ci.Name == name {
			return ci
		}
	}
	return spec.ComponentInfo{}
}

// counterWorkflow writes a workflow: a stateful counter → incr → file-log.
func (c *cluster) counterWorkflow(logFile string) string {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	fnJSON := func(name, class, mapping, init string) string {
		return fmt.Sprintf(`{"name":%q,"class_specification":{"id":%q,"function_type":"RUST_WASM","version":"0.1","code":%q,"outputs":[]},"output_mapping":{%s},"annotations":{"init-payload":%q}}`,
			name, class, abs("functions/"+class+"/"+class+".wasm"), mapping, init)
	}
	wf := fmt.Sprintf(`{"functions":[%s,%s],"resources":[{"name":"log","class_type":"file-log","output_mapping":{},"configurations":{"filename":%q}}],"annotations":{}}`,
		fnJSON("counter", "counter", `"output":"incr"`, "period=20"), fnJSON("incr", "incr", `"output":"log"`, ""), logFile)
	path := filepath.Join(c.dir, "counter.json")
	c.write("counter.json", wf)
	return path
}

// lastLogged returns the last number in the file-log, or -1.
func lastLogged(file string) int {
	data, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	n, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		return -1
	}
	return n
}

// TestNodeFailureAcrossProcesses kills -9 the node process running a stateful
// counter: the orchestrator re-creates it on another node within 2×refresh+1s,
// it continues from its last synced value, and downstream events resume.
func TestNodeFailureAcrossProcesses(t *testing.T) {
	c := newCluster(t, 3, "")
	logFile := filepath.Join(c.dir, "out.log")
	id, err := c.cli("start", c.counterWorkflow(logFile))
	if err != nil {
		t.Fatalf("workflow start: %v: %s", err, id)
	}
	counter := findComponent(c.inspect(id), "counter")
	testutil.Eventually(t, 10*time.Second, "the counter to reach 10", func() bool { return c.counter(counter.LogicalID) >= 10 })

	victim := c.nodeProc(counter.Instances[0].Node)
	killed := time.Now()
	c.kill(victim)
	last := c.counter(counter.LogicalID)
	budget := time.Duration(2*refresh*float64(time.Second)) + time.Second
	testutil.Eventually(t, budget+time.Second, "the re-created counter to handle an event", func() bool { return c.counter(counter.LogicalID) > last })
	recovered := time.Since(killed)
	if recovered > budget {
		t.Fatalf("the counter resumed %v after kill -9, want within 2×refresh+1s = %v", recovered, budget)
	}
	t.Logf("kill -9 to first event handled by the re-created counter: %v (budget %v)", recovered, budget)
	if n := c.counter(counter.LogicalID); n < last {
		t.Fatalf("counter went from %d to %d: state was not handed back", last, n)
	}
	moved := findComponent(c.inspect(id), "counter").Instances
	if len(moved) != 1 || moved[0].Node == counter.Instances[0].Node {
		t.Fatalf("counter instances after the failure: %+v", moved)
	}
	testutil.Eventually(t, 10*time.Second, "downstream events to resume", func() bool { return lastLogged(logFile) >= last+5 })
	// Each node keeps state on its own disk: the re-created counter went on
	// from the state the orchestrator held, not from zero. A number logged
	// twice is one the dead counter synced but the replica had not yet.
	seen, dup := map[string]bool{}, 0
	data, _ := os.ReadFile(logFile)
	for _, l := range strings.Fields(string(data)) {
		if seen[l] {
			dup++
		}
		seen[l] = true
	}
	if dup > 1 {
		t.Fatalf("%d numbers logged twice: the re-created counter did not go on from the last synced state", dup)
	}
}

// TestControllerRestartKeepsWorkflows restarts the controller process: the
// workflow is listed again and never stopped running.
func TestControllerRestartKeepsWorkflows(t *testing.T) {
	c := newCluster(t, 2, "")
	logFile := filepath.Join(c.dir, "out.log")
	id, err := c.cli("start", c.counterWorkflow(logFile))
	if err != nil {
		t.Fatalf("workflow start: %v: %s", err, id)
	}
	before := findComponent(c.inspect(id), "counter")
	testutil.Eventually(t, 10*time.Second, "the counter to reach 5", func() bool { return c.counter(before.LogicalID) >= 5 })

	c.kill("con")
	n := c.counter(before.LogicalID)
	testutil.Eventually(t, 10*time.Second, "the counter to run on without a controller", func() bool { return c.counter(before.LogicalID) >= n+5 })
	c.start("con", "con", "-c", "controller.toml")
	c.waitNodes(2)
	if list, err := c.cli("list"); err != nil || list != id {
		t.Fatalf("workflow list after restart = %q, %v; want %s", list, err, id)
	}
	after := findComponent(c.inspect(id), "counter")
	if len(after.Instances) != 1 || after.Instances[0] != before.Instances[0] {
		t.Fatalf("counter instances changed across the controller restart: %+v → %+v", before.Instances, after.Instances)
	}
	m := c.counter(before.LogicalID)
	testutil.Eventually(t, 10*time.Second, "the counter to keep running", func() bool { return c.counter(before.LogicalID) >= m+5 })
	if out, err := c.cli("stop", id); err != nil {
		t.Fatalf("stop after restart: %v: %s", err, out)
	}
}

// TestWorkflowStartLatency starts a five-function workflow across three node
// processes and reports how long the start took.
func TestWorkflowStartLatency(t *testing.T) {
	c := newCluster(t, 3, "")
	abs, _ := filepath.Abs("functions/noop/noop.wasm")
	var fns []string
	for i := range 5 {
		fns = append(fns, fmt.Sprintf(`{"name":"f%d","class_specification":{"id":"noop","function_type":"RUST_WASM","version":"0.1","code":%q,"outputs":[]},"output_mapping":{},"annotations":{}}`, i, abs))
	}
	c.write("five.json", `{"functions":[`+strings.Join(fns, ",")+`],"resources":[],"annotations":{}}`)
	var times []time.Duration
	for range 5 {
		start := time.Now()
		id, err := c.cli("start", filepath.Join(c.dir, "five.json"))
		if err != nil {
			t.Fatalf("start: %v: %s", err, id)
		}
		times = append(times, time.Since(start))
		nodes := map[string]bool{}
		for _, ci := range c.inspect(id).Components {
			for _, i := range ci.Instances {
				nodes[i.Node] = true
			}
		}
		if len(nodes) < 2 {
			t.Logf("all five functions landed on %d node(s)", len(nodes))
		}
	}
	t.Logf("5-function workflow start across 3 nodes, CLI process included: %v", times)
}

// loadResult summarises one run of invocations.
type loadResult struct {
	latencies []time.Duration
	perNode   map[string]int
	statuses  map[int]int
}

func (r loadResult) quantile(q float64) time.Duration {
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

// invokeLoad sends count invocations of fn from workers concurrent clients
// and records each answer; it is bounded by count and by a deadline.
func (c *cluster) invokeLoad(fn, body string, workers, count int) loadResult {
	c.t.Helper()
	res := loadResult{perNode: map[string]int{}, statuses: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan struct{}, count)
	for range count {
		next <- struct{}{}
	}
	close(next)
	deadline := time.Now().Add(60 * time.Second)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if time.Now().After(deadline) {
					return
				}
				start := time.Now()
				resp, err := c.http.Post(c.api+"/api/v1/invoke/"+fn, "application/json", strings.NewReader(body))
				if err != nil {
					mu.Lock()
					res.statuses[-1]++
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				mu.Lock()
				res.statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusOK {
					res.latencies = append(res.latencies, took)
					res.perNode[resp.Header.Get("Edgeless-Node")]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// TestOffloadingUnderLoad overloads a function created on one of two node
// processes, once with offloading off and once with it on: with it on, the
// overloaded node refuses, the orchestrator starts an instance on the other
// node and both serve. Each invocation waits 4 ms, as a function waiting on
// I/O does: one instance serves one invocation at a time, so a second
// instance halves the queue even on this 2-vCPU machine, which CPU-bound work
// would not show. The latency quantiles of both runs are reported.
func TestOffloadingUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	run := func(offload bool) loadResult {
		extra := "[offload]\nenabled = false\n"
		if offload {
			extra = "[offload]\nenabled = true\nqueue_threshold = 2\ncpu_threshold = 0\n"
		}
		c := newCluster(t, 2, extra)
		src, _ := filepath.Abs("functions/busy/busy.wasm")
		out, err := exec.Command(bin, "function", "-c", filepath.Join(c.dir, "tls", "cli.toml"), "-controller-url", c.api, "create", "-f", "busy", "--src", src,
			"--annotation", "max_instances=2").CombinedOutput()
		if err != nil {
			t.Fatalf("function create: %v: %s", err, out)
		}
		c.invokeLoad("busy", `{"params":{"work":"1"}}`, 2, 20) // warm up
		res := c.invokeLoad("busy", `{"params":{"work":"0","sleep_ms":"4"}}`, 8, 800)
		if res.statuses[http.StatusOK] != 800 {
			t.Fatalf("offload=%v: answers %v, want 800 served", offload, res.statuses)
		}
		return res
	}
	off := run(false)
	on := run(true)
	if len(off.perNode) != 1 {
		t.Fatalf("offloading off: served by %d nodes, want 1: %v", len(off.perNode), off.perNode)
	}
	if len(on.perNode) != 2 {
		t.Fatalf("offloading on: served by %d nodes, want 2: %v", len(on.perNode), on.perNode)
	}
	for _, r := range []struct {
		name string
		res  loadResult
	}{{"off", off}, {"on", on}} {
		t.Logf("offloading %-3s: p50 %v p90 %v p99 %v max %v, per node %v", r.name,
			r.res.quantile(0.5), r.res.quantile(0.9), r.res.quantile(0.99), r.res.quantile(1), r.res.perNode)
	}
}
