package inabox

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/controller"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// slClient is a tiny Serverledge client written from its API's shapes alone,
// as serverledge-cli speaks it: plain HTTP, no token.
type slClient struct {
	t     *testing.T
	base  string // http://host:port
	http  *http.Client
	token string // sent as a bearer token when set
}

// The shapes of Serverledge's API, independent of the controller's types.
type (
	slFunction struct {
		Name            string
		Runtime         string
		MemoryMB        int64
		CPUDemand       float64
		Handler         string
		TarFunctionCode string
		CustomImage     string
		Signature       *struct{} // serverledge-cli always sends null
	}
	slInvocation struct {
		Params          map[string]any
		QoSClass        int64
		QoSMaxRespT     float64
		CanDoOffloading bool
		Async           bool
		ReturnOutput    bool
	}
	slReport struct {
		Success        bool
		Result         string
		ResponseTime   float64
		IsWarmStart    bool
		InitTime       float64
		OffloadLatency float64
		Duration       float64
		SchedAction    string
		Output         string
	}
)

// newSLClient returns a client of the box's API address over plain HTTP,
// dialling from the local address from (e.g. 127.0.0.2), or the default.
func newSLClient(t *testing.T, b *box, from string) *slClient {
	tr := &http.Transport{}
	if from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		tr.DialContext = d.DialContext
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &slClient{t: t, base: "http://" + b.Con.Addr(), http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// do sends body (marshalled unless nil) and returns the status and the
// reply's bytes.
func (c *slClient) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// want checks a reply's status and, when body is not "", its exact body
// (JSON replies without their trailing newline).
func (c *slClient) want(method, path string, req any, status int, body string) []byte {
	c.t.Helper()
	got, data := c.do(method, path, req)
	if got != status || body != "" && strings.TrimSpace(string(data)) != body {
		c.t.Fatalf("%s %s = %d %q, want %d %q", method, path, got, data, status, body)
	}
	return data
}

// invoke calls fun synchronously and checks the report's every field but
// the times, which it returns.
func (c *slClient) invoke(fun string, params map[string]any, result string, warm bool) slReport {
	c.t.Helper()
	data := c.want(http.MethodPost, "/invoke/"+fun, slInvocation{Params: params, QoSMaxRespT: 5}, http.StatusOK, "")
	return c.report(data, result, warm)
}

func (c *slClient) report(data []byte, result string, warm bool) slReport {
	c.t.Helper()
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		c.t.Fatalf("report %q: %v", data, err)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"Duration", "InitTime", "IsWarmStart", "OffloadLatency", "Output", "ResponseTime", "Result", "SchedAction", "Success"}
	if !slices.Equal(keys, want) {
		c.t.Fatalf("report fields %v, want %v", keys, want)
	}
	var r slReport
	json.Unmarshal(data, &r)
	switch {
	case !r.Success || r.Result != result || r.IsWarmStart != warm || r.SchedAction != "" || r.Output != "" || r.OffloadLatency != 0:
		c.t.Fatalf("report %+v, want Success, Result %q, IsWarmStart %v, served in place", r, result, warm)
	case r.Duration <= 0 || r.ResponseTime < r.Duration:
		c.t.Fatalf("report %+v: want 0 < Duration <= ResponseTime", r)
	case warm && r.InitTime != 0, !warm && (r.InitTime <= 0 || r.ResponseTime < r.InitTime+r.Duration):
		c.t.Fatalf("report %+v: InitTime must be positive and within ResponseTime for a cold start, 0 for a warm one", r)
	}
	return r
}

// warm returns how many instances of fun /status counts.
func (c *slClient) warm(fun string) int {
	c.t.Helper()
	var st struct {
		AvailableWarmContainers map[string]int
		AvailableMemMB          int64
		AvailableCPUs           float64
		UsedMemMB               int64
		LoadAvg                 []float64
	}
	data := c.want(http.MethodGet, "/status", nil, http.StatusOK, "")
	if err := json.Unmarshal(data, &st); err != nil {
		c.t.Fatal(err)
	}
	if st.AvailableCPUs < 1 || st.AvailableMemMB <= 0 || len(st.LoadAvg) != 3 {
		c.t.Fatalf("status %s: want CPUs, memory and three load averages", data)
	}
	return st.AvailableWarmContainers[fun]
}

// tarOf returns the base64 of a tar archive holding files (name → path), as
// serverledge-cli's --src makes it.
func tarOf(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// TestServerledgeAPI drives every path of Serverledge's API with its own
// bodies, over plain HTTP on the controller's HTTPS address, from loopback
// without a token: create, invoke (cold, warm, cold again after scale to
// zero, warm after a prewarm), async with poll, list, status, delete and
// every refusal.
func TestServerledgeAPI(t *testing.T) {
	native := allowNative(t)
	b := startBox(t, 1, func(c *Config) {
		c.Orchestrator.General.ScaleInAfterSec = 1
		native(c)
	})
	sl := newSLClient(t, b, "")
	// The same C source as a native shared object, on a node that allows it.
	so := slFunction{Name: "sumn", Runtime: "native", MemoryMB: 16, TarFunctionCode: tarOf(t, map[string]string{"sum.so": filepath.Join(root, "functions/sum/sum.so")})}
	sl.want(http.MethodPost, "/create", so, http.StatusOK, `{"Created":"sumn"}`)
	sl.invoke("sumn", map[string]any{"a": "2", "b": "3"}, "5", false)
	sl.want(http.MethodPost, "/delete", map[string]string{"Name": "sumn"}, http.StatusOK, `{"Deleted":"sumn"}`)
	code := tarOf(t, map[string]string{"sum.wasm": filepath.Join(root, "functions/sum/sum.wasm")})
	sum := slFunction{Name: "sum", Runtime: "wasm", MemoryMB: 16, CPUDemand: 1, TarFunctionCode: code}
	sl.want(http.MethodPost, "/create", sum, http.StatusOK, `{"Created":"sum"}`)
	sl.want(http.MethodPost, "/create", sum, http.StatusConflict, "")
	sl.want(http.MethodPost, "/create", slFunction{Name: "js", Runtime: "nodejs17ng", MemoryMB: 64, TarFunctionCode: code}, http.StatusNotFound, `"Invalid runtime."`)
	sl.want(http.MethodPost, "/create", slFunction{Name: "nomem", Runtime: "wasm", TarFunctionCode: code}, http.StatusUnprocessableEntity, "Invalid memory limit")
	two := tarOf(t, map[string]string{"a.txt": filepath.Join(root, "functions/sum/sum.c"), "b.txt": filepath.Join(root, "functions/sum/sum.c")})
	if _, data := sl.do(http.MethodPost, "/create", slFunction{Name: "two", Runtime: "wasm", MemoryMB: 16, TarFunctionCode: two}); !strings.Contains(string(data), "which is the code") {
		t.Fatalf("a tar without one module: %q", data)
	}
	sl.want(http.MethodGet, "/function", nil, http.StatusOK, `["sum"]`)
	// /update replaces a function, here with the same module; a bad
	// replacement leaves it alone.
	sl.want(http.MethodPost, "/update", sum, http.StatusOK, `{"Created":"sum"}`)
	sl.want(http.MethodPost, "/update", slFunction{Name: "sum", Runtime: "nodejs17ng", MemoryMB: 16, TarFunctionCode: code}, http.StatusNotFound, `"Invalid runtime."`)
	sl.want(http.MethodGet, "/function", nil, http.StatusOK, `["sum"]`)

	// Serverledge's functions scale to zero: the first call starts one.
	if n := sl.warm("sum"); n != 0 {
		t.Fatalf("%d instances before the first call, want 0", n)
	}
	cold := sl.invoke("sum", map[string]any{"a": "2", "b": "3"}, "5", false)
	warm := sl.invoke("sum", map[string]any{"a": 40, "b": 2.5}, "42.5", true)
	testutil.Eventually(t, 15*time.Second, "the idle instance evicted", func() bool { return sl.warm("sum") == 0 })
	again := sl.invoke("sum", map[string]any{"a": "1", "b": "1"}, "2", false)
	testutil.Eventually(t, 15*time.Second, "the idle instance evicted", func() bool { return sl.warm("sum") == 0 })
	sl.want(http.MethodPost, "/prewarm", map[string]any{"Function": "sum", "Instances": 2, "ForceImagePull": false}, http.StatusOK, `{"Prewarmed":2}`)
	if n := sl.warm("sum"); n != 2 {
		t.Fatalf("%d instances after prewarming 2", n)
	}
	prewarmed := sl.invoke("sum", map[string]any{"a": "2", "b": "2"}, "4", true)
	t.Logf("response time (init): first cold start %.3f ms (%.3f ms, module compiled), warm %.3f ms, cold after scale to zero %.3f ms (%.3f ms), after prewarm %.3f ms",
		cold.ResponseTime*1e3, cold.InitTime*1e3, warm.ResponseTime*1e3, again.ResponseTime*1e3, again.InitTime*1e3, prewarmed.ResponseTime*1e3)

	// The same through edgeless's CLI.
	if out, err := b.fcli("prewarm", "-f", "sum", "-n", "3"); err != nil || out != "Function sum: 1 instances started, 3 running\n" {
		t.Fatalf("function prewarm = %q, %v", out, err)
	}
	if _, err := b.fcli("prewarm", "-f", "nosuch"); err == nil || !strings.Contains(err.Error(), `no function "nosuch"`) {
		t.Fatalf("prewarm of an unknown function: %v", err)
	}

	var acc struct{ ReqId string }
	data := sl.want(http.MethodPost, "/invoke/sum", slInvocation{Params: map[string]any{"a": "20", "b": "22"}, Async: true}, http.StatusOK, "")
	if err := json.Unmarshal(data, &acc); err != nil || acc.ReqId == "" || strings.Contains(string(data), ",") {
		t.Fatalf("async reply %q, want {\"ReqId\": …}", data)
	}
	var polled []byte
	testutil.Eventually(t, 10*time.Second, "the async result", func() bool {
		status, data := sl.do(http.MethodGet, "/poll/"+acc.ReqId, nil)
		if status != http.StatusOK && status != http.StatusNotFound {
			t.Fatalf("poll = %d %q", status, data)
		}
		polled = data
		return status == http.StatusOK
	})
	sl.report(polled, "42", true)
	sl.want(http.MethodGet, "/poll/nosuch", nil, http.StatusNotFound, "")

	sl.want(http.MethodPost, "/invoke/nosuch", slInvocation{}, http.StatusNotFound, "Function unknown")
	sl.want(http.MethodPost, "/prewarm", map[string]any{"Function": "nosuch", "Instances": 1}, http.StatusNotFound, "Function unknown")
	if status, data := sl.do(http.MethodPost, "/invoke/sum", slInvocation{Params: map[string]any{"a": "two"}}); status != http.StatusInternalServerError || !strings.Contains(string(data), "returned an error") {
		t.Fatalf("failing call = %d %q", status, data)
	}
	// A plain-HTTP client reaches nothing but Serverledge's paths.
	if status, _ := sl.do(http.MethodGet, "/api/v1/functions", nil); status != http.StatusBadRequest {
		t.Fatalf("plain GET /api/v1/functions = %d, want 400", status)
	}
	// Invocations take the front's own path (fastInvoke): the same rules,
	// and what it leaves to the mux answers as the mux does.
	sl.token = b.AdminToken()
	if status, data := sl.do(http.MethodPost, "/api/v1/invoke/sum", map[string]any{"params": map[string]any{"a": "1", "b": "2"}}); status != http.StatusBadRequest || !strings.Contains(string(data), "speaks HTTPS") {
		t.Fatalf("plain POST /api/v1/invoke/sum with a token = %d %q, want 400", status, data)
	}
	sl.token = ""
	for path, want := range map[string]int{"/invoke/sum/": http.StatusNotFound, "/invoke/": http.StatusNotFound, "/invoke/a%2Fb": http.StatusNotFound} {
		if status, data := sl.do(http.MethodPost, path, slInvocation{}); status != want {
			t.Fatalf("POST %s = %d %q, want %d", path, status, data, want)
		}
	}
	if status, data := sl.do(http.MethodGet, "/invoke/sum", nil); status != http.StatusMethodNotAllowed {
		t.Fatalf("GET /invoke/sum = %d %q, want 405", status, data)
	}
	sl.report(sl.want(http.MethodPost, "/invoke/../invoke/sum", slInvocation{Params: map[string]any{"a": "1", "b": "2"}}, http.StatusOK, ""), "3", true)
	sl.want(http.MethodPost, "/delete", map[string]string{"Name": "sum"}, http.StatusOK, `{"Deleted":"sum"}`)
	sl.want(http.MethodPost, "/delete", map[string]string{"Name": "sum"}, http.StatusNotFound, "Unknown function")
	sl.want(http.MethodGet, "/function", nil, http.StatusOK, `[]`)
}

// TestServerledgeAuth: without a token only loopback (127.0.0.1) clients
// may call Serverledge's paths by default; 127.0.0.2 counts as another
// host. A token lets anyone through; serverledge_auth changes the rule.
func TestServerledgeAuth(t *testing.T) {
	f := func(auth string, localOK, remoteOK bool) {
		t.Helper()
		b := startBox(t, 1, func(c *Config) {
			if auth != "" {
				c.Controller.ServerledgeAuth = auth
			}
		})
		status := func(ok bool) int {
			if ok {
				return http.StatusOK
			}
			return http.StatusUnauthorized
		}
		local := newSLClient(t, b, "")
		local.want(http.MethodGet, "/function", nil, status(localOK), "")
		remote := newSLClient(t, b, "127.0.0.2")
		remote.want(http.MethodGet, "/function", nil, status(remoteOK), "")
		// An invocation is admitted alike (fastInvoke); no function x.
		admitted := func(ok bool) int { return map[bool]int{true: http.StatusNotFound, false: http.StatusUnauthorized}[ok] }
		local.want(http.MethodPost, "/invoke/x", slInvocation{}, admitted(localOK), "")
		remote.want(http.MethodPost, "/invoke/x", slInvocation{}, admitted(remoteOK), "")
		remote.want(http.MethodPost, "/create", slFunction{Name: "x", Runtime: "wasm", MemoryMB: 1}, map[bool]int{true: http.StatusBadRequest, false: http.StatusUnauthorized}[remoteOK], "")
		remote.token = b.AdminToken()
		remote.want(http.MethodGet, "/function", nil, http.StatusOK, "[]")
		remote.want(http.MethodPost, "/invoke/x", slInvocation{}, http.StatusNotFound, "Function unknown")
		remote.token = "edg_wrong"
		remote.want(http.MethodGet, "/function", nil, http.StatusUnauthorized, "")
		remote.want(http.MethodPost, "/invoke/x", slInvocation{}, http.StatusUnauthorized, "")
		// Native code stays off unless the node allows it.
		remote.token = b.AdminToken()
		so := slFunction{Name: "sumn", Runtime: "native", MemoryMB: 16, TarFunctionCode: tarOf(t, map[string]string{"sum.so": filepath.Join(root, "functions/sum/sum.so")})}
		if status, data := remote.do(http.MethodPost, "/create", so); status != http.StatusServiceUnavailable || !strings.Contains(string(data), "lacks [function type RUST_NATIVE") {
			t.Fatalf("native create on a node without the native runtime = %d %q", status, data)
		}
	}
	f("", true, false)
	f(controller.ServerledgeAuthToken, false, false)
	f(controller.ServerledgeAuthNone, true, true)
}

// TestServerledgeHighPerformance: a call of QoS class 1 (high performance)
// jumps the queue of low-class calls waiting at the function's instance.
func TestServerledgeHighPerformance(t *testing.T) {
	b := startBox(t, 1, nil)
	sl := newSLClient(t, b, "")
	code := tarOf(t, map[string]string{"busy.wasm": filepath.Join(root, "functions/busy/busy.wasm")})
	sl.want(http.MethodPost, "/create", slFunction{Name: "busy", Runtime: "wasm", MemoryMB: 32, TarFunctionCode: code}, http.StatusOK, "")
	sl.want(http.MethodPost, "/invoke/busy", slInvocation{Params: map[string]any{"work": 0}}, http.StatusOK, "") // the cold start
	const queued, each = 6, 0.2
	var ids []string
	for range queued {
		var acc struct{ ReqId string }
		json.Unmarshal(sl.want(http.MethodPost, "/invoke/busy", slInvocation{Params: map[string]any{"work": 0, "sleep_ms": each * 1000}, Async: true}, http.StatusOK, ""), &acc)
		ids = append(ids, acc.ReqId)
	}
	pending := func() int {
		n := 0
		for _, id := range ids {
			if status, _ := sl.do(http.MethodGet, "/poll/"+id, nil); status == http.StatusNotFound {
				n++
			}
		}
		return n
	}
	// Once the first is done, the others wait at the instance.
	testutil.Eventually(t, 10*time.Second, "the first queued call done", func() bool { return pending() < queued })
	r := sl.invoke2(slInvocation{Params: map[string]any{"work": 0}, QoSClass: 1})
	left := pending()
	t.Logf("high-performance call: %.1f ms at the node with %d low-class calls of %.0f ms still waiting after it", r.Duration*1e3, left, each*1e3)
	if r.Duration > 2.5*each || left < 2 {
		t.Fatalf("the high-performance call took %.3f s at the node and %d low-class calls were still waiting: it did not jump the queue", r.Duration, left)
	}
	testutil.Eventually(t, 20*time.Second, "the low-class calls done", func() bool { return pending() == 0 })
}

// invoke2 calls busy synchronously with inv and returns its report.
func (c *slClient) invoke2(inv slInvocation) slReport {
	c.t.Helper()
	data := c.want(http.MethodPost, "/invoke/busy", inv, http.StatusOK, "")
	return c.report(data, "done", true)
}
