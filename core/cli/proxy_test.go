package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/proxyschema"
	"github.com/edgeless-go/edgeless/internal/redistest"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

const (
	nodeA = "11111111-1111-4111-8111-111111111111"
	nodeB = "22222222-2222-4222-8222-222222222222"
	funF  = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	resR  = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	pidF1 = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
	pidF2 = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
	pidR  = "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee"
	wf    = "ffffffff-ffff-4fff-8fff-ffffffffffff"
)

// id parses one of the ids above.
func id(s string) core.ID {
	v, err := core.ParseID(s)
	if err != nil {
		panic(err)
	}
	return v
}

// seedMirror writes a mirror through the schema the orchestrator's proxy
// writes with: two nodes, a function with an instance on each, a resource,
// health (node b's as an EDGELESS node that does not measure power) and
// performance samples.
func seedMirror(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	opts, _ := redis.ParseURL(srv.URL())
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	now := float64(time.Now().Unix())
	caps := func(host string, tee bool) string {
		return proxyschema.Capabilities{NumCPUs: 4, ModelNameCPU: "Xeon", ClockFreqCPU: 2400.5, NumCores: 2, MemSize: 8192,
			Labels: []string{"hostname=" + host, "gpu"}, IsTEERunning: tee, Runtimes: []string{"RUST_WASM"}, DiskTotSpace: 100}.Encode()
	}
	var spawn proxyschema.Spawn
	spawn.Code.ID, spawn.Code.Type, spawn.Code.Version, spawn.Code.Outputs = "counter", "RUST_WASM", "0.1", []string{"output"}
	spawn.StateSpecification.StateID, spawn.StateSpecification.StatePolicy = funF, "NodeLocal"
	spawn.WorkflowID = wf
	fun := proxyschema.Instance{Function: &spawn, Placed: []core.InstanceID{{Node: id(nodeA), Component: id(pidF1)}, {Node: id(nodeB), Component: id(pidF2)}}}
	res := proxyschema.Instance{Resource: &proxyschema.Resource{ClassType: "file-log", Configuration: map[string]string{"filename": "x.log"}, WorkflowID: wf},
		Placed: []core.InstanceID{{Node: id(nodeB), Component: id(pidR)}}}
	set := map[string]string{
		proxyschema.DomainID:                                        "domain-7000",
		proxyschema.CapabilitiesKey(id(nodeA)):                      caps("alpha", true),
		proxyschema.CapabilitiesKey(id(nodeB)):                      caps("beta", false),
		proxyschema.LastUpdateKey(proxyschema.CategoryCapabilities): "1750160496.85848",
		proxyschema.ProviderKey("file-log-1"):                       proxyschema.Provider{ClassType: "file-log", NodeID: nodeB}.Encode(),
		proxyschema.ProviderKey("http-ingress-1"):                   proxyschema.Provider{ClassType: "http-ingress", NodeID: nodeB, Outputs: []string{"new_request"}}.Encode(),
		proxyschema.LastUpdateKey(proxyschema.CategoryProvider):     "1750160496.8589296",
		proxyschema.InstanceKey(id(funF)):                           fun.Encode(),
		proxyschema.InstanceKey(id(resR)):                           res.Encode(),
		proxyschema.LastUpdateKey(proxyschema.CategoryInstance):     "1750159583.7702973",
		proxyschema.DependencyKey(id(funF)):                         proxyschema.Dependencies{"output": id(resR)}.Encode(),
		proxyschema.LastUpdateKey(proxyschema.CategoryDependency):   "1750175781.717148",
	}
	for k, v := range set {
		if err := rdb.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	zadd := func(key string, score float64, member string) {
		if err := rdb.ZAdd(ctx, key, redis.Z{Score: score, Member: member}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	old := proxyschema.Health{MemFree: 1, MemUsed: 1, MemAvailable: 1, ProcCPUUsage: 1, ProcMemory: 1, ProcVMemory: 1, LoadAvg1: 1, LoadAvg5: 1, LoadAvg15: 1,
		TotRxBytes: 1, TotRxPkts: 1, TotRxErrs: 1, TotTxBytes: 1, TotTxPkts: 1, TotTxErrs: 1, DiskFreeSpace: 1, DiskTotReads: 1, DiskTotWrites: 1,
		GPULoadPerc: -1, GPUTempCels: -1, ActivePower: -1}
	zadd(proxyschema.HealthKey(id(nodeA)), now-5, old.Encode())
	zadd(proxyschema.HealthKey(id(nodeA)), now, proxyschema.Health{MemFree: 1000, MemUsed: 3000, MemAvailable: 1000, ProcCPUUsage: 13, ProcMemory: 20, ProcVMemory: 30,
		LoadAvg1: 150, LoadAvg5: 120, LoadAvg15: 100, TotRxBytes: 1, TotRxPkts: 2, TotRxErrs: 3, TotTxBytes: 4, TotTxPkts: 5, TotTxErrs: 6,
		DiskFreeSpace: 7, DiskTotReads: 8, DiskTotWrites: 9, GPULoadPerc: -1, GPUTempCels: 45000, ActivePower: 2500}.Encode())
	zadd(proxyschema.HealthKey(id(nodeB)), now, proxyschema.Health{MemFree: 5, GPULoadPerc: 30, GPUTempCels: -1000, ActivePower: -1}.Encode())
	for i := range 20 {
		ts := now - float64(i)/4
		zadd(proxyschema.PerformanceKey(id(pidF1), "function_execution_time"), ts, proxyschema.Member(ts, "0.001"))
	}
	zadd(proxyschema.PerformanceKey(id(pidR), "function_transfer_time"), 1750000000.5, proxyschema.Member(1750000000.5, "0.25"))
	zadd(proxyschema.PerformanceKey(id(pidR), "app"), 1750000001.25, proxyschema.Member(1750000001.25, "hello, world"))
	return srv, rdb
}

func runProxy(t *testing.T, url string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := Proxy(context.Background(), append([]string{"-r", url}, args...), &out); err != nil {
		t.Fatalf("proxy %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestProxyShow(t *testing.T) {
	srv, _ := seedMirror(t)
	f := func(want string, args ...string) {
		t.Helper()
		if got := runProxy(t, srv.URL(), args...); got != want {
			t.Fatalf("proxy %s =\n%s\nwant\n%s", strings.Join(args, " "), got, want)
		}
	}
	f(funF+" -> alpha,beta\n", "show", "functions")
	f(funF+" -> "+nodeA+","+nodeB+"\n", "--node-print-format", "uuid", "show", "functions")
	f(resR+" -> hostname=beta,gpu\n", "--node-print-format", "labels", "show", "resources")
	f(funF+" -> "+pidF1+","+pidF2+"\n"+resR+" -> "+pidR+"\n", "show", "logical-to-physical")
	f(funF+" -> "+wf+"\n"+resR+" -> "+wf+"\n", "show", "logical-to-workflow")
	f("alpha -> 4 Xeon CPU(s) at 2400.5 BogoMIPS, 2 core(s), 8192 MiB memory, labels [hostname=alpha,gpu], TEE, runtimes [RUST_WASM], disk space 100 MiB, 0  GPU(s) 0 MiB\n"+
		"beta -> 4 Xeon CPU(s) at 2400.5 BogoMIPS, 2 core(s), 8192 MiB memory, labels [hostname=beta,gpu], runtimes [RUST_WASM], disk space 100 MiB, 0  GPU(s) 0 MiB\n",
		"show", "node", "capabilities")
	f("file-log-1 -> class_type file-log, node_id "+nodeB+", outputs []\nhttp-ingress-1 -> class_type http-ingress, node_id "+nodeB+", outputs [new_request]\n",
		"show", "node", "resource-providers")
	f("alpha -> memory free 1000 kb, used 3000 kb, available 1000 kb, process cpu usage 13.0%, memory 20 kb, vmemory 30 kb, "+
		"load avg 1 minute 150% 5 minutes 120% 15 minutes 100%, network tot rx 1 bytes (2 pkts) 3 errs, tot tx 4 bytes (5 pkts) 6 errs, "+
		"disk available 7 bytes, tot disk reads 8 writes 9, gpu_load_perc -1%, gpu_temp_cels 45.00°, active_power 2500 mW\n"+
		"beta -> memory free 5 kb, used 0 kb, available 0 kb, process cpu usage 0.0%, memory 0 kb, vmemory 0 kb, "+
		"load avg 1 minute 0% 5 minutes 0% 15 minutes 0%, network tot rx 0 bytes (0 pkts) 0 errs, tot tx 0 bytes (0 pkts) 0 errs, "+
		"disk available 0 bytes, tot disk reads 0 writes 0, gpu_load_perc 30%, gpu_temp_cels -1.00°, active_power -1 mW\n",
		"show", "node", "health")
	f("alpha\n[F] "+funF+"\nbeta\n[F] "+funF+"\n[R] "+resR+"\n", "show", "node", "instances")
}

func TestProxyTop(t *testing.T) {
	srv, _ := seedMirror(t)
	got := runProxy(t, srv.URL(), "top", "nodes")
	want := "Node   Runtimes   Load  Proc CPU  Memory  GPU util  Power    Instances  Events/s\n" +
		"alpha  RUST_WASM  1.50  13%       75%     -         2500 mW  1          2.0\n" +
		"beta   RUST_WASM  0.00  0%        -       30%       -        2          -\n"
	if got != want {
		t.Fatalf("top nodes =\n%s\nwant\n%s", got, want)
	}

	// --watch redraws until interrupted.
	ctx, cancel := context.WithCancel(context.Background())
	out := &testutil.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Proxy(ctx, []string{"-r", srv.URL(), "top", "nodes", "--watch", "--interval", "10ms"}, out)
	}()
	testutil.EventuallyDetail(t, 10*time.Second, "three frames", func() bool { return strings.Count(out.String(), "\x1b[H\x1b[2J") >= 3 },
		func() string { return fmt.Sprintf("%q", out.String()) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	frames := strings.Split(out.String(), "\x1b[H\x1b[2J")
	if !strings.Contains(frames[1], "edgeless top") || !strings.HasSuffix(frames[1], want) {
		t.Fatalf("frame =\n%s\nwant the table\n%s", frames[1], want)
	}
}

func TestProxyIntent(t *testing.T) {
	srv, rdb := seedMirror(t)
	ctx := context.Background()
	runProxy(t, srv.URL(), "intent", "migrate", funF, "beta")
	runProxy(t, srv.URL(), "intent", "cordon", nodeA)
	runProxy(t, srv.URL(), "intent", "uncordon", "alpha")
	list, _ := rdb.LRange(ctx, "intents", 0, -1).Result()
	want := []string{"intent:migrate:" + funF, "intent:cordon:" + nodeA, "intent:cordon:" + nodeA}
	if strings.Join(list, " ") != strings.Join(want, " ") {
		t.Fatalf("intents = %v, want %v", list, want)
	}
	if v, _ := rdb.Get(ctx, "intent:migrate:"+funF).Result(); v != nodeB {
		t.Fatalf("migrate intent = %q, want %s", v, nodeB)
	}
	if v, _ := rdb.Get(ctx, "intent:cordon:"+nodeA).Result(); v != "no" {
		t.Fatalf("cordon intent = %q, want no (the uncordon came last)", v)
	}
	f := func(want string, args ...string) {
		t.Helper()
		err := Proxy(ctx, append([]string{"-r", srv.URL()}, args...), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("proxy %v: err = %v, want %q", args, err, want)
		}
	}
	f("invalid logical id", "intent", "migrate", "nope", nodeA)
	f(`no node is named "gamma"`, "intent", "cordon", "gamma")
	f("want NODE", "intent", "cordon")
	f("unknown verb", "show", "everything")
	f("flags go before the verb", "dump", "performance-csv", "-c", "http://x")
	f("invalid --node-print-format", "--node-print-format", "fqdn", "show", "functions")
	f("unknown proxy type", "-p", "Etcd", "show", "functions")
	f("cannot connect to Redis", "-r", "redis://127.0.0.1:1", "show", "functions")
}

func TestProxyDump(t *testing.T) {
	srv, _ := seedMirror(t)
	dir := t.TempDir()
	runProxy(t, srv.URL(), "-o", dir, "dump", "performance")
	data, err := os.ReadFile(filepath.Join(dir, "function_transfer_time-"+pidR+".dat"))
	if err != nil || string(data) != "1750000000.5,0.25\n" {
		t.Fatalf("transfer times = %q, %v", data, err)
	}
	data, _ = os.ReadFile(filepath.Join(dir, "function_execution_time-"+pidF1+".dat"))
	if n := strings.Count(string(data), "\n"); n != 20 {
		t.Fatalf("execution times: %d lines, want 20", n)
	}

	runProxy(t, srv.URL(), "-o", dir, "dump", "instances")
	data, _ = os.ReadFile(filepath.Join(dir, "res-"+resR+".json"))
	want := "{\n  \"class_type\": \"file-log\",\n  \"configuration\": {\n    \"filename\": \"x.log\"\n  },\n  \"workflow_id\": \"" + wf + "\"\n}\n"
	if string(data) != want {
		t.Fatalf("res-%s.json =\n%s\nwant\n%s", resR, data, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "fun-"+funF+".json")); err != nil {
		t.Fatal(err)
	}

	con := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"workflows":[{"id":"` + wf + `","components":[{"name":"log","kind":"resource","logical_id":"` + resR + `"}]}]}`))
	}))
	defer con.Close()
	got := runProxy(t, srv.URL(), "-c", con.URL, "dump", "performance-csv")
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if lines[0] != "metric,name,lid,timestamp,value" || len(lines) != 23 {
		t.Fatalf("performance-csv: %d lines:\n%s", len(lines), got)
	}
	for _, want := range []string{
		"app,log," + resR + `,1750000001.25,"hello, world"`,
		"function_transfer_time,log," + resR + ",1750000000.5,0.25",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Fatalf("performance-csv lacks %q:\n%s", want, got)
		}
	}
}
