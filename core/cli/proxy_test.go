package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// seedMirror writes a mirror as an orchestrator's Redis proxy (ours or
// EDGELESS's) would: node b's function instance uses the newer EDGELESS
// form with a hot-standby flag, and node b's health has no active_power.
func seedMirror(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	opts, _ := redis.ParseURL(srv.URL())
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	now := float64(time.Now().Unix())
	caps := func(host string, tee bool) string {
		t := "false"
		if tee {
			t = "true"
		}
		return `{"num_cpus":4,"model_name_cpu":"Xeon","clock_freq_cpu":2400.5,"num_cores":2,"mem_size":8192,"labels":["hostname=` + host +
			`","gpu"],"is_tee_running":` + t + `,"has_tpm":false,"runtimes":["RUST_WASM"],"disk_tot_space":100,"num_gpus":0,"model_name_gpu":"","mem_size_gpu":0}`
	}
	set := map[string]string{
		"domain_info:domain_id":         "domain-7000",
		"node:capabilities:" + nodeA:    caps("alpha", true),
		"node:capabilities:" + nodeB:    caps("beta", false),
		"node:capabilities:last_update": "1750160496.85848",
		"provider:file-log-1":           `{"class_type":"file-log","node_id":"` + nodeB + `","outputs":[]}`,
		"provider:http-ingress-1":       `{"class_type":"http-ingress","node_id":"` + nodeB + `","outputs":["new_request"]}`,
		"provider:last_update":          "1750160496.8589296",
		"instance:" + funF: `{"Function":[{"code":{"function_class_id":"counter","function_class_type":"RUST_WASM","function_class_version":"0.1",` +
			`"function_class_code":[],"function_class_outputs":["output"]},"annotations":{},"state_specification":{"state_id":"` + funF +
			`","state_policy":"NodeLocal"},"workflow_id":"` + wf + `"},["InstanceId(node_id: ` + nodeA + `, function_id: ` + pidF1 +
			`)","(InstanceId(node_id: ` + nodeB + `, function_id: ` + pidF2 + `), true)"]]}`,
		"instance:" + resR: `{"Resource":[{"class_type":"file-log","configuration":{"filename":"x.log"},"workflow_id":"` + wf +
			`"},"InstanceId(node_id: ` + nodeB + `, function_id: ` + pidR + `)"]}`,
		"instance:last_update":   "1750159583.7702973",
		"dependency:" + funF:     `{"output":"` + resR + `"}`,
		"dependency:last_update": "1750175781.717148",
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
	zadd("node:health:"+nodeA, now-5, `{"mem_free":1,"mem_used":1,"mem_available":1,"proc_cpu_usage":1,"proc_memory":1,"proc_vmemory":1,"load_avg_1":1,"load_avg_5":1,"load_avg_15":1,"tot_rx_bytes":1,"tot_rx_pkts":1,"tot_rx_errs":1,"tot_tx_bytes":1,"tot_tx_pkts":1,"tot_tx_errs":1,"disk_free_space":1,"disk_tot_reads":1,"disk_tot_writes":1,"gpu_load_perc":-1,"gpu_temp_cels":-1,"active_power":-1}`)
	zadd("node:health:"+nodeA, now, `{"mem_free":1000,"mem_used":3000,"mem_available":1000,"proc_cpu_usage":13,"proc_memory":20,"proc_vmemory":30,"load_avg_1":150,"load_avg_5":120,"load_avg_15":100,"tot_rx_bytes":1,"tot_rx_pkts":2,"tot_rx_errs":3,"tot_tx_bytes":4,"tot_tx_pkts":5,"tot_tx_errs":6,"disk_free_space":7,"disk_tot_reads":8,"disk_tot_writes":9,"gpu_load_perc":-1,"gpu_temp_cels":45000,"active_power":2500}`)
	zadd("node:health:"+nodeB, now, `{"mem_free":5,"mem_used":0,"mem_available":0,"proc_cpu_usage":0,"proc_memory":0,"proc_vmemory":0,"load_avg_1":0,"load_avg_5":0,"load_avg_15":0,"tot_rx_bytes":0,"tot_rx_pkts":0,"tot_rx_errs":0,"tot_tx_bytes":0,"tot_tx_pkts":0,"tot_tx_errs":0,"disk_free_space":0,"disk_tot_reads":0,"disk_tot_writes":0,"gpu_load_perc":30,"gpu_temp_cels":-1000}`)
	for i := range 20 {
		ts := now - float64(i)/4
		zadd("performance:"+pidF1+":function_execution_time", ts, formatTS(ts)+":0.001")
	}
	zadd("performance:"+pidR+":function_transfer_time", 1750000000.5, "1750000000.5:0.25")
	zadd("performance:"+pidR+":app", 1750000001.25, "1750000001.25:hello, world")
	return srv, rdb
}

func formatTS(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

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
	out := &syncBuffer{}
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

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
