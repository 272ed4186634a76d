package deploy

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

// code returns the absolute path of a built example function.
func code(t *testing.T, class string) string {
	p, err := filepath.Abs(filepath.Join("..", "functions", class, class+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%v (make functions)", err)
	}
	return p
}

// counterWorkflow: a stateful counter, wherever it is placed, casts 1, 2, 3…
// every 50 ms to a file-log that stays on node3. Its state lives in Redis,
// so a counter re-created elsewhere goes on from its last value.
func counterWorkflow(t *testing.T) string {
	return fmt.Sprintf(`{"functions":[{"name":"counter","class_specification":{"id":"counter","function_type":"RUST_WASM","version":"0.1","code":%q,"outputs":["output"]},
  "output_mapping":{"output":"log"},"annotations":{"init-payload":"period=50"}}],
 "resources":[{"name":"log","class_type":"file-log","output_mapping":{},"configurations":{"filename":"count.log","add-source-id":"true","label_match_all":"hostname=node3"}}],
 "annotations":{}}`, code(t, "counter"))
}

// stall watches a logical function's synced counter and reports the longest
// time it did not advance, from the first look to stop.
type stall struct {
	h       *hosts
	logical string
	stop    chan struct{}
	done    chan struct{}
	longest time.Duration
	back    []string // times the state went backwards: a stale write won
}

func watch(h *hosts, logical string) *stall {
	s := &stall{h: h, logical: logical, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		last, at := h.state(logical), time.Now()
		for {
			select {
			case <-s.stop:
				s.longest = max(s.longest, time.Since(at))
				return
			case <-time.After(10 * time.Millisecond):
			}
			v := h.state(logical)
			if v >= 0 && v < last {
				s.back = append(s.back, fmt.Sprintf("%d after %d at %s", v, last, time.Now().Format("15:04:05.000")))
				last = v
			}
			if v > last {
				s.longest = max(s.longest, time.Since(at))
				last, at = v, time.Now()
			}
		}
	}()
	return s
}

func (s *stall) end() time.Duration {
	close(s.stop)
	<-s.done
	return s.longest
}

// awayFromNode3 moves the counter off node3, where its file-log stays, so
// that cutting off the counter's host leaves the sink reachable.
func (h *hosts) awayFromNode3(id string) string {
	h.t.Helper()
	where := ""
	testutil.Eventually(h.t, 10*time.Second, "the counter placed", func() bool { where = h.where(id, "counter"); return where != "" })
	if where != "node3" {
		return where
	}
	body := fmt.Sprintf(`{"component":"counter","nodes":[%q]}`, h.nodeID["node1"])
	if err := h.api(http.MethodPost, "/api/v1/workflows/"+id+"/migrate", []byte(body), nil); err != nil {
		h.t.Fatal(err)
	}
	testutil.Eventually(h.t, 10*time.Second, "the counter on node1", func() bool { return h.where(id, "counter") == "node1" })
	return "node1"
}

// settle waits until the file-log holds every number up to the counter's
// synced state and returns that state: the numbers sent.
func (h *hosts) settle(logical string) int {
	h.t.Helper()
	sent := h.state(logical)
	testutil.Eventually(h.t, 10*time.Second, "the file-log to catch up", func() bool { return slices.Max(append(h.lines("count.log"), 0)) >= sent })
	return sent
}

// cutOff runs the partition or the hung-host scenario: break and mend
// cut off the node running the counter and bring it back.
func cutOff(t *testing.T, what string, brk, mend func(h *hosts, node string)) {
	h := newHosts(t, nil)
	id := h.start(counterWorkflow(t))
	logical := h.logical(id, "counter")
	testutil.Eventually(t, 10*time.Second, "the counter to count", func() bool { return h.state(logical) > 5 })
	if f := os.Getenv("MULTIHOST_MONITOR"); f != "" { // diagnosis: every command Redis runs
		mon := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strings.Split(h.published("redis", "6379"), ":")[1], "monitor")
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		mon.Stdout = out
		if err := mon.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { mon.Process.Kill(); mon.Wait(); out.Close() }()
	}
	var recoveries []time.Duration
	for run := range runs() {
		victim := h.awayFromNode3(id)
		s := watch(h, logical)
		testutil.Eventually(t, 5*time.Second, "the counter to run", func() bool { return h.state(logical) > 0 })
		brk(h, victim)
		testutil.Eventually(t, 2*refresh+5*time.Second, "the counter to run elsewhere", func() bool {
			w := h.where(id, "counter")
			return w != "" && w != victim
		})
		before := h.state(logical)
		testutil.Eventually(t, 10*time.Second, "the counter to advance elsewhere", func() bool { return h.state(logical) > before+3 })
		mend(h, victim)
		h.waitNodes(3, 20*time.Second)
		rec := s.end()
		if len(s.back) > 0 {
			t.Errorf("run %d: the synced state went backwards: %v", run+1, s.back)
		}
		recoveries = append(recoveries, rec)
		t.Logf("%s, run %d: %s cut off; the counter stalled %v", what, run+1, victim, rec.Round(time.Millisecond))
		if rec > 2*refresh+time.Second {
			t.Errorf("run %d: the counter stalled %v, want at most 2×refresh + 1 s = %v", run+1, rec, 2*refresh+time.Second)
		}
	}
	sent := h.settle(logical)
	c := count(h.lines("count.log"), sent)
	t.Logf("%s: median time to recovery %v over %d runs; %s", what, median(recoveries).Round(time.Millisecond), len(recoveries), c)
	if c.duplicated != 0 {
		for n, src := range h.sources {
			if len(src) > 1 {
				t.Logf("%d sent by %v", n, src)
			}
		}
		t.Fatalf("%d numbers were processed twice: two live copies of the counter", c.duplicated)
	}
}

// TestPartitionHeal disconnects the counter's node from the network: the
// counter comes back elsewhere within 2×refresh + 1 s; reconnected, the node
// rejoins empty, and no number is logged twice.
func TestPartitionHeal(t *testing.T) {
	cutOff(t, "partition",
		func(h *hosts, node string) { h.docker("network", "disconnect", h.prefix, h.prefix+"-"+node) },
		func(h *hosts, node string) {
			h.docker("network", "connect", "--alias", node, h.prefix, h.prefix+"-"+node)
		})
}

// TestHungHost pauses the counter's node (its sockets stay open, nothing
// answers): the same bounds hold, and the node woken up runs nothing twice.
func TestHungHost(t *testing.T) {
	cutOff(t, "hung host",
		func(h *hosts, node string) { h.docker("pause", h.prefix+"-"+node) },
		func(h *hosts, node string) { h.docker("unpause", h.prefix+"-"+node) })
}

// streamWorkflow: http-ingress for host stream.test (raw, synchronous) calls
// a file-log that appends each request's body: a 200 means the line is
// written.
const streamWorkflow = `{"functions":[],"resources":[
 {"name":"in","class_type":"http-ingress","output_mapping":{"new_request":"log"},"configurations":{"host":"stream.test","mode":"raw","method":"POST"%s}},
 {"name":"log","class_type":"file-log","output_mapping":{},"configurations":{"filename":"stream.log"%s}}],"annotations":{}}`

// stream posts 1, 2, 3… to the ingress until stop, retrying each number
// until it is answered 200 (accepted), and returns the accepted numbers and
// the latency of each first attempt that succeeded.
func (h *hosts) stream(id string, stop <-chan struct{}) (accepted []int, lat []time.Duration) {
	client := &http.Client{Timeout: 2 * time.Second}
	addr := ""
	for seq := 1; ; seq++ {
		for first := true; ; first = false {
			select {
			case <-stop:
				return accepted, lat
			default:
			}
			if addr == "" {
				if w := h.where(id, "in"); w != "" {
					addr = h.published(w, "7008")
				} else {
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(strconv.Itoa(seq)))
			req.Host = "stream.test"
			began := time.Now()
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					accepted = append(accepted, seq)
					if first {
						lat = append(lat, time.Since(began))
					}
					break
				}
			}
			addr = "" // moved, or its node is going: ask where it runs now
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestRollingRestart restarts every node in turn (SIGTERM, then start) under a
// steady stream of synchronous requests: every request answered 200 is in a
// log, none is lost.
func TestRollingRestart(t *testing.T) {
	h := newHosts(t, nil)
	id := h.start(fmt.Sprintf(streamWorkflow, "", ""))
	stop := make(chan struct{})
	var accepted []int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); accepted, _ = h.stream(id, stop) }()
	var took []time.Duration
	for _, node := range []string{"node1", "node2", "node3"} {
		began := time.Now()
		h.docker("restart", "-t", "10", h.prefix+"-"+node)
		h.waitNodes(3, 30*time.Second)
		took = append(took, time.Since(began))
	}
	time.Sleep(500 * time.Millisecond) // a last stretch of the stream with every node back
	close(stop)
	wg.Wait()
	got := map[int]int{}
	for _, n := range h.lines("stream.log") {
		got[n]++
	}
	var lost, dup int
	for _, n := range accepted {
		if got[n] == 0 {
			lost++
		}
	}
	for _, k := range got {
		dup += k - 1
	}
	t.Logf("rolling restart: each node back in %v (median); %d requests accepted, %d lines logged, %d logged twice (retried after an answer was lost), %d accepted but lost",
		median(took).Round(time.Millisecond), len(accepted), len(got), dup, lost)
	if len(accepted) < 10 {
		t.Fatalf("only %d requests accepted: the stream did not flow", len(accepted))
	}
	if lost != 0 {
		t.Fatalf("%d accepted requests are in no log", lost)
	}
}

// restart runs the controller- or orchestrator-restart scenario.
func restart(t *testing.T, name string, wantNoStall bool) {
	h := newHosts(t, nil)
	id := h.start(counterWorkflow(t))
	logical := h.logical(id, "counter")
	testutil.Eventually(t, 10*time.Second, "the counter to count", func() bool { return h.state(logical) > 5 })
	var stalls []time.Duration
	for run := range runs() {
		s := watch(h, logical)
		h.docker("restart", "-t", "10", h.prefix+"-"+name)
		h.refresh()
		h.waitNodes(3, 30*time.Second)
		before := h.state(logical)
		testutil.Eventually(t, 10*time.Second, "the counter to advance", func() bool { return h.state(logical) > before+3 })
		stalls = append(stalls, s.end())
		t.Logf("%s restart, run %d: the counter stalled %v", name, run+1, stalls[run].Round(time.Millisecond))
	}
	var wi struct {
		ID string `json:"id"`
	}
	if err := h.api(http.MethodGet, "/api/v1/workflows/"+id, nil, &wi); err != nil || wi.ID != id {
		t.Fatalf("the workflow after the restarts: %+v, %v", wi, err)
	}
	sent := h.settle(logical)
	c := count(h.lines("count.log"), sent)
	t.Logf("%s restart: median stall %v over %d runs; %s", name, median(stalls).Round(time.Millisecond), len(stalls), c)
	if c.duplicated != 0 {
		t.Fatalf("%d numbers were processed twice", c.duplicated)
	}
	if wantNoStall && median(stalls) > 2*refresh {
		t.Fatalf("the counter stalled %v while only the %s restarted", median(stalls), name)
	}
}

// TestOrchestratorRestart: the orchestrator's container restarts; the
// workflow keeps its state and runs again.
func TestOrchestratorRestart(t *testing.T) { restart(t, "orchestrator", false) }

// TestControllerRestart: the controller's container restarts; it finds the
// workflow in its persistence file and adopts the domain that kept running
// it, which never stops.
func TestControllerRestart(t *testing.T) { restart(t, "controller", true) }

// TestSlowLink puts node2 behind a relay that delays every byte by 50 ms in
// each direction (the kernel here has no netem, so a relay container on the
// network stands in for tc): requests from node1's ingress to node2's
// file-log still flow, slower by about the delay.
func TestSlowLink(t *testing.T) {
	const delay = 50 * time.Millisecond
	measure := func(h *hosts, id string) time.Duration {
		stop := make(chan struct{})
		var lat []time.Duration
		done := make(chan struct{})
		go func() { defer close(done); _, lat = h.stream(id, stop) }()
		time.Sleep(2 * time.Second) // a bounded stretch of sequential requests
		close(stop)
		<-done
		if len(lat) < 5 {
			t.Fatalf("only %d requests answered", len(lat))
		}
		return median(lat)
	}
	wf := fmt.Sprintf(streamWorkflow, `,"label_match_all":"hostname=node1"`, `,"label_match_all":"hostname=node2"`)
	fast := newHosts(t, nil)
	base := measure(fast, fast.start(wf))
	fast.remove()
	h := newHosts(t, map[string]time.Duration{"node2": delay})
	slow := measure(h, h.start(wf))
	t.Logf("slow link: request p50 %v on a plain network, %v with node2 behind a %v relay: %v added",
		base.Round(10*time.Microsecond), slow.Round(10*time.Microsecond), delay, (slow - base).Round(10*time.Microsecond))
	if slow-base < delay/2 {
		t.Fatalf("the delay did not show: %v then %v", base, slow)
	}
}

// TestComposeReadme runs the README's "Deploy on several hosts" steps on a
// copy of deploy/ (its own project name and API port): cert init, compose
// up, then ping_pong started with the CLI runs across the node containers.
func TestComposeReadme(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"compose.yaml", "config/controller.toml", "config/orchestrator.toml", "config/node.toml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if f == "compose.yaml" {
			port := freePort(t)
			data = []byte(strings.Replace(string(data), `"127.0.0.1:7001:7001"`, fmt.Sprintf(`"127.0.0.1:%d:7001"`, port), 1))
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "XDG_CONFIG_HOME="+dir, fmt.Sprintf("EDGELESS_UID=%d", os.Getuid()), fmt.Sprintf("EDGELESS_GID=%d", os.Getgid()))
	sh := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	project := fmt.Sprintf("edgelesstest%d", time.Now().UnixNano()%1e9)
	compose := func(args ...string) string {
		return sh("docker-compose", append([]string{"-p", project, "-f", "compose.yaml"}, args...)...)
	}
	sh(bin, "cert", "init", "-dir", "tls", "-nodes", "3", "-host", "controller")
	t.Cleanup(func() {
		cmd := exec.Command("docker-compose", "-p", project, "-f", "compose.yaml", "down", "-v")
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	compose("up", "-d")
	api := strings.TrimSpace(compose("port", "controller", "7001"))
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"workflow", "-c", filepath.Join(dir, "tls", "cli.toml"), "-controller-url", "https://" + api}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	domain := func() string {
		cmd := exec.Command(bin, "domain", "-c", filepath.Join(dir, "tls", "cli.toml"), "-controller-url", "https://"+api, "list")
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	testutil.Eventually(t, 60*time.Second, "three nodes in the domain", func() bool { return domain() == "domain domain-7000 (3 nodes)" })
	wf, err := filepath.Abs("../examples/ping_pong/workflow.json")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cli("start", wf); err != nil {
		t.Fatalf("workflow start: %v\n%s", err, out)
	}
	testutil.Eventually(t, 30*time.Second, "PING-3 -> PONG in a node's log", func() bool {
		return strings.Contains(compose("logs", "--no-color", "node1", "node2", "node3"), "PING-3 -> PONG")
	})
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
