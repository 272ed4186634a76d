package inabox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/redistest"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// ingress sends one request to node 0's http-ingress and returns the status
// and body, or -1 and the error text.
func (b *box) ingress(method, host, path string, body []byte) (int, string) {
	req, err := http.NewRequest(method, "http://"+b.Nodes[0].HTTPIngressAddr()+path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// waitIngress polls until a request gets want, which it does once the
// workflow's instances run and their outputs are mapped.
func (b *box) waitIngress(method, host, path string, body []byte, want int) {
	b.t.Helper()
	testutil.Eventually(b.t, 10*time.Second, fmt.Sprintf("%s %s%s to answer %d", method, host, path, want), func() bool {
		status, _ := b.ingress(method, host, path, body)
		return status == want
	})
}

func ingressRes(name, target string, conf map[string]string) spec.Resource {
	return spec.Resource{Name: name, ClassType: "http-ingress", OutputMapping: map[string]string{"new_request": target}, Configurations: conf}
}

func fileLogRes(name, file string) spec.Resource {
	return spec.Resource{Name: name, ClassType: "file-log", OutputMapping: map[string]string{}, Configurations: map[string]string{"filename": file}}
}

func readLines(file string) []string {
	data, err := os.ReadFile(file)
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// TestHTTPIngressSync runs examples/http_ingress (EDGELESS JSON mode) and the
// raw mode: real clients (net/http and curl), a binary body, an oversize
// body, an unknown host, and 1,000 concurrent requests.
func TestHTTPIngressSync(t *testing.T) {
	b := startBox(t, 1, func(c *Config) {
		c.Node.Resources.HTTPIngressMaxBodyBytes = 64 << 10
		// The 1,000 TLS clients below can starve the node's registration
		// for longer than the harness's 0.2 s refresh allows before it
		// fences itself, when other test packages load the machine too.
		c.Orchestrator.General.SubscriptionRefreshIntervalSec = 1
		c.Node.General.SubscriptionRefreshIntervalSec = 1
	})
	b.mustStart("http_ingress/workflow.json", nil)
	b.mustStart("http_ingress/workflow-raw.json", nil)
	b.waitIngress("GET", "demo.edgeless.com", "/hello", nil, 200)

	f := func(method, host, path string, body []byte, wantStatus int, wantBody string) {
		t.Helper()
		status, got := b.ingress(method, host, path, body)
		if status != wantStatus || got != wantBody {
			t.Fatalf("%s %s%s: %d %.80q, want %d %.80q", method, host, path, status, got, wantStatus, wantBody)
		}
	}
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	f("GET", "demo.edgeless.com", "/hello", nil, 200, "World")
	f("POST", "demo.edgeless.com:7008", "/hello?x=1", []byte("ignored"), 200, "World")
	f("POST", "demo.edgeless.com", "/echo", binary, 200, string(binary))
	f("GET", "demo.edgeless.com", "/other", nil, 404, "Not Found")
	f("PUT", "demo.edgeless.com", "/hello", nil, 404, "Not Found\n")
	f("GET", "unknown.example.com", "/hello", nil, 404, "Not Found\n")
	f("POST", "demo.edgeless.com", "/echo", bytes.Repeat([]byte("x"), 64<<10+1), 413, "Request Entity Too Large\n")
	b.waitIngress("POST", "echo.edgeless.com", "/", []byte("x"), 200)
	f("POST", "echo.edgeless.com", "/", binary, 200, string(binary))

	// curl -d @file, as a user would.
	file := filepath.Join(b.dir, "body.bin")
	payload := bytes.Repeat([]byte("curl body \x00\x01\xff "), 1000)
	if err := os.WriteFile(file, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("curl", "-sS", "--fail", "-H", "Host: echo.edgeless.com", "--data-binary", "@"+file,
		"http://"+b.Nodes[0].HTTPIngressAddr()+"/").Output()
	if err != nil || !bytes.Equal(out, payload) {
		t.Fatalf("curl --data-binary @file: %v, got %d bytes, want the file's %d", err, len(out), len(payload))
	}
	out, err = exec.Command("curl", "-sS", "-H", "Host: demo.edgeless.com", "http://"+b.Nodes[0].HTTPIngressAddr()+"/hello").Output()
	if err != nil || string(out) != "World" {
		t.Fatalf("curl /hello: %q, %v", out, err)
	}

	// 1,000 concurrent requests, each on its own connection, each with its own
	// body echoed back.
	const n = 1000
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	url := "http://" + b.Nodes[0].HTTPIngressAddr() + "/echo"
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := "request " + strconv.Itoa(i)
			req, _ := http.NewRequest("POST", url, strings.NewReader(want))
			req.Host = "demo.edgeless.com"
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != want {
				errs <- fmt.Errorf("request %d: %d %q", i, resp.StatusCode, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed < 5 {
			t.Error(err)
		}
		failed++
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent requests failed", failed, n)
	}
}

// TestHTTPIngressAsync runs examples/http_ingress/workflow-async.json: the
// body is cast to a file-log and only requests naming the workflow match.
func TestHTTPIngressAsync(t *testing.T) {
	b := startBox(t, 1, nil)
	logFile := filepath.Join(b.dir, "async.log")
	id := b.mustStart("http_ingress/workflow-async.json", func(w *spec.Workflow) {
		w.Resources[1].Configurations["filename"] = logFile
		w.Resources[1].Configurations["add-timestamp"] = "false"
	})
	b.waitIngress("POST", "async.edgeless.com", "/?wf_id="+id, []byte("first"), 200)
	if status, body := b.ingress("POST", "async.edgeless.com", "/?wf_id="+id, []byte("second")); status != 200 || body != "OK" {
		t.Fatalf("async POST: %d %q, want 200 OK", status, body)
	}
	if status, _ := b.ingress("POST", "async.edgeless.com", "/", []byte("no id")); status != 404 {
		t.Fatalf("async POST without wf_id: %d, want 404", status)
	}
	if status, _ := b.ingress("GET", "async.edgeless.com", "/?wf_id="+id, nil); status != 404 {
		t.Fatalf("async GET: %d, want 404 (method POST only)", status)
	}
	testutil.Eventually(t, 5*time.Second, "the bodies in the file-log", func() bool {
		l := readLines(logFile)
		return len(l) >= 2 && l[len(l)-1] == "second"
	})
}

// TestHTTPIngressTimeout answers 504 when the function does not reply in
// time.
func TestHTTPIngressTimeout(t *testing.T) {
	b := startBox(t, 1, func(c *Config) { c.Node.WASM.HandlerTimeoutMS = 1000 })
	w := workflow(fn(t, "spin", "loop", map[string]string{}, ""))
	w.Resources = []spec.Resource{ingressRes("in", "spin", map[string]string{"host": "slow.example", "timeout_ms": "200"})}
	if _, err := b.startSpec(w); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.waitIngress("GET", "slow.example", "/", nil, 504)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("504 after %v", d)
	}
}

// TestHTTPEgress calls a real web server through http-egress, then a closed
// port: the function gets the response, then Err.
func TestHTTPEgress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pong %s", r.URL.Path)
	}))
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	b := startBox(t, 1, nil)
	run := func(host string) string {
		logFile := filepath.Join(b.dir, "egress-"+strings.ReplaceAll(host, ":", "_")+".log")
		w := workflow(fn(t, "req", "http_requestor", map[string]string{"http-egress": "egress", "output": "log"},
			"host="+host+",path=/ping,period=20"))
		w.Resources = []spec.Resource{
			{Name: "egress", ClassType: "http-egress", OutputMapping: map[string]string{}, Configurations: map[string]string{"timeout_ms": "500"}},
			fileLogRes("log", logFile),
		}
		if _, err := b.startSpec(w); err != nil {
			t.Fatal(err)
		}
		return logFile
	}
	okLog := run(strings.TrimPrefix(srv.URL, "http://"))
	failLog := run(closed)
	testutil.Eventually(t, 10*time.Second, "three responses", func() bool { return len(readLines(okLog)) >= 3 })
	testutil.Eventually(t, 10*time.Second, "three errors", func() bool { return len(readLines(failLog)) >= 3 })
	for _, line := range readLines(okLog) {
		if _, rest, _ := strings.Cut(line, " "); rest != "200 pong /ping" {
			t.Fatalf("response line %q, want <n> 200 pong /ping", line)
		}
	}
	for _, line := range readLines(failLog) {
		if _, rest, _ := strings.Cut(line, " "); rest != "error" {
			t.Fatalf("line %q for a closed port, want <n> error", line)
		}
	}
}

// TestHTTPPoster posts a counter's values to a real web server.
func TestHTTPPoster(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+string(body))
		mu.Unlock()
	}))
	defer srv.Close()
	b := startBox(t, 1, nil)
	w := workflow(fn(t, "counter", "counter", map[string]string{"output": "poster"}, "period=20"))
	w.Resources = []spec.Resource{{Name: "poster", ClassType: "http-poster", OutputMapping: map[string]string{},
		Configurations: map[string]string{"url": srv.URL + "/in"}}}
	if _, err := b.startSpec(w); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "three posts", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 3 })
	mu.Lock()
	defer mu.Unlock()
	for i, g := range got[:3] {
		if g != "POST "+strconv.Itoa(i+1) {
			t.Fatalf("posts %q, want POST 1, POST 2, POST 3", got)
		}
	}
}

// TestRedis stores a counter in a real Redis and reads it back through
// http-ingress → relay → redis; Redis is killed mid-test and restarted on the
// same port, and the workflow recovers.
func TestRedis(t *testing.T) {
	rs := redistest.Start(t)
	b := startBox(t, 1, nil)
	id := b.mustStart("redis/workflow.json", func(w *spec.Workflow) {
		setInit(w, "counter", "period=20")
		w.Resources[0].Configurations["url"] = rs.URL()
		w.Resources[0].Configurations["add-workflow-id"] = "true"
	})
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr(), DisableIdentity: true})
	defer rc.Close()
	key := id + ":example-redis"
	value := func() int {
		v, err := rc.Get(context.Background(), key).Int()
		if err != nil {
			return -1
		}
		return v
	}
	testutil.Eventually(t, 10*time.Second, "the counter in Redis", func() bool { return value() >= 3 })
	b.waitIngress("POST", "redis.edgeless.com", "/", []byte("example-redis"), 200)
	if status, body := b.ingress("POST", "redis.edgeless.com", "/", []byte("example-redis")); status != 200 {
		t.Fatalf("GET through http-ingress: %d %q", status, body)
	} else if n, err := strconv.Atoi(body); err != nil || n < 3 {
		t.Fatalf("GET through http-ingress: %q, want the counter", body)
	}
	if status, _ := b.ingress("POST", "redis.edgeless.com", "/", []byte("no-such-key")); status != 500 {
		t.Fatalf("GET of a missing key: %d, want 500 (Err)", status)
	}

	rs.Kill()
	testutil.Eventually(t, 10*time.Second, "dropped casts reported", func() bool { return b.logs.count("redis cast dropped", "dropped=") > 0 })
	if status, _ := b.ingress("POST", "redis.edgeless.com", "/", []byte("example-redis")); status != 500 {
		t.Fatalf("GET while Redis is down: %d, want 500 (Err)", status)
	}
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	// The restarted Redis is empty; the counter's next values land in it.
	testutil.Eventually(t, 10*time.Second, "the counter in the restarted Redis", func() bool { return value() > 0 })
	b.waitIngress("POST", "redis.edgeless.com", "/", []byte("example-redis"), 200)
}

// TestTutorial01 runs examples/tutorial-01: readings in range reach Redis as
// moving averages, the others the file-log.
func TestTutorial01(t *testing.T) {
	rs := redistest.Start(t)
	b := startBox(t, 1, nil)
	errLog := filepath.Join(b.dir, "reading-errors.log")
	b.mustStart("tutorial-01/workflow.json", func(w *spec.Workflow) {
		setInit(w, "sensor_simulator", "period=10,min-value=-100,max-value=100,seed=42")
		for i := range w.Resources {
			switch w.Resources[i].Name {
			case "redis":
				w.Resources[i].Configurations["url"] = rs.URL()
			case "file-log":
				w.Resources[i].Configurations["filename"] = errLog
			}
		}
	})
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr(), DisableIdentity: true})
	defer rc.Close()
	testutil.Eventually(t, 10*time.Second, "a moving average in Redis", func() bool {
		v, err := rc.Get(context.Background(), "tutorial-01").Float64()
		return err == nil && v >= 0 && v <= 100
	})
	testutil.Eventually(t, 10*time.Second, "readings out of range in the file-log", func() bool { return len(readLines(errLog)) >= 3 })
	for _, line := range readLines(errLog) {
		v, err := strconv.ParseFloat(strings.TrimPrefix(line, "out of range: "), 64)
		if err != nil || v >= 0 {
			t.Fatalf("error line %q, want out of range: <negative reading>", line)
		}
	}
}

// TestMetricsCollector runs examples/metrics_collector against a real Redis
// and checks the keys and formats EDGELESS's collector writes.
func TestMetricsCollector(t *testing.T) {
	rs := redistest.Start(t)
	b := startBox(t, 1, func(c *Config) {
		c.Node.Resources.MetricsCollectorProvider.Provider = "metrics-collector-1"
		c.Node.Resources.MetricsCollectorProvider.RedisURL = rs.URL()
	})
	id := b.mustStart("metrics_collector/workflow.json", func(w *spec.Workflow) { setInit(w, "timed_task", "period=30,duration=20") })
	task := component(b.inspect(id), "timed_task")
	if len(task.Instances) != 1 {
		t.Fatalf("timed_task instances: %+v", task.Instances)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr(), DisableIdentity: true})
	defer rc.Close()
	ctx := context.Background()
	checkSamples := func(key string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, "3 samples in "+key, func() bool { n, _ := rc.LLen(ctx, key).Result(); return n >= 3 })
		samples, _ := rc.LRange(ctx, key, 0, -1).Result()
		for _, s := range samples {
			ms, ts, _ := strings.Cut(s, ",")
			v, err1 := strconv.Atoi(ms)
			sec, frac, _ := strings.Cut(ts, ".")
			unix, err2 := strconv.ParseInt(sec, 10, 64)
			// The collector times the marks' arrival, so a begin mark queued
			// longer than its end mark shortens the 20 ms: on a loaded machine
			// one sample may be far below it (the average is checked below).
			if err1 != nil || err2 != nil || len(frac) != 3 || v < 0 || v > 2000 || time.Since(time.Unix(unix, 0)) > time.Minute {
				t.Fatalf("%s sample %q, want <about 20 ms>,<unix s>.<mmm>", key, s)
			}
		}
	}
	checkAverage := func(key string) {
		t.Helper()
		v, err := rc.Get(ctx, key).Float64()
		if err != nil || v < 10 || v > 2000 {
			t.Fatalf("%s = %v, %v; want about 20", key, v, err)
		}
	}
	checkSamples("workflow:timed_wf:samples")
	checkAverage("workflow:timed_wf:average")
	checkSamples("function:" + task.Instances[0].Instance + ":samples")
	checkAverage("function:" + task.LogicalID + ":average")
}

// TestFilePusher casts the files of a directory to a file-log.
func TestFilePusher(t *testing.T) {
	files := t.TempDir()
	for name, data := range map[string]string{"2.txt": "two", "1.txt": "one"} {
		if err := os.WriteFile(filepath.Join(files, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := startBox(t, 1, func(c *Config) {
		c.Node.Resources.FilePusherProvider.Provider = "file-pusher-1"
		c.Node.Resources.FilePusherProvider.Directory = files
	})
	logFile := filepath.Join(b.dir, "pushed.log")
	b.mustStart("file_pusher/workflow.json", func(w *spec.Workflow) {
		w.Resources[0].Configurations["period-ms"] = "10"
		w.Resources[1].Configurations["filename"] = logFile
		w.Resources[1].Configurations["add-timestamp"] = "false"
	})
	testutil.Eventually(t, 10*time.Second, "four files pushed", func() bool { return len(readLines(logFile)) >= 4 })
	lines := readLines(logFile)
	// The first casts may precede the output mapping and be dropped; after
	// that the files alternate in name order.
	for i := 1; i < len(lines); i++ {
		if lines[i] == lines[i-1] || (lines[i] != "one" && lines[i] != "two") {
			t.Fatalf("pushed lines %q, want one and two alternating", lines)
		}
	}
}

// TestProvidersOnTwoNodes checks that every node gets its own provider ids
// and its own http-ingress listener.
func TestProvidersOnTwoNodes(t *testing.T) {
	b := startBox(t, 2, nil)
	a0, a1 := b.Nodes[0].HTTPIngressAddr(), b.Nodes[1].HTTPIngressAddr()
	if a0 == "" || a1 == "" || a0 == a1 {
		t.Fatalf("http-ingress addresses %q and %q, want two", a0, a1)
	}
	cfg, err := b.nodeConfig(1, b.Orc.NodeRegisterAddr())
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Resources
	if r.HTTPIngressProvider != "http-ingress-2" || r.FileLogProvider != "file-log-2" || r.RedisProvider != "redis-2" ||
		r.HTTPEgressProvider != "http-egress-2" || r.HTTPPosterProvider != "http-poster-2" {
		t.Fatalf("node 1 providers %+v, want the -2 names", r)
	}
}
