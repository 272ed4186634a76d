package orc

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/proxyschema"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/redistest"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// fakeNode answers an orchestrator's node requests and remembers which
// physical instances it runs.
type fakeNode struct {
	id  core.ID
	srv *wire.Server

	mu      sync.Mutex
	running map[core.ID]bool
}

type noEvents struct{}

func (noEvents) HandleEvent(*core.Event) {}

func startFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	n := &fakeNode{id: core.NewID(), running: map[core.ID]bool{}}
	mux := &wire.Mux{}
	ok := func(context.Context, *wire.Empty) (*wire.Empty, error) { return &wire.Empty{}, nil }
	wire.Method(mux, wire.MethodNodeStartFunction, func(_ context.Context, r *wire.StartFunction) (*wire.Empty, error) {
		n.set(r.Component, true)
		return &wire.Empty{}, nil
	})
	wire.Method(mux, wire.MethodNodeStartResource, func(_ context.Context, r *wire.StartResource) (*wire.Empty, error) {
		n.set(r.Component, true)
		return &wire.Empty{}, nil
	})
	wire.Method(mux, wire.MethodNodeStop, func(_ context.Context, r *wire.StopComponent) (*wire.Empty, error) {
		n.set(r.ID, false)
		return &wire.Empty{}, nil
	})
	wire.Method(mux, wire.MethodNodePatch, func(context.Context, *wire.PatchNode) (*wire.Empty, error) { return &wire.Empty{}, nil })
	wire.Method(mux, wire.MethodNodePeers, func(context.Context, *wire.UpdatePeers) (*wire.Empty, error) { return &wire.Empty{}, nil })
	wire.Method(mux, wire.MethodNodeReset, ok)
	srv, err := wire.NewServer(wire.ServerConfig{Addr: "127.0.0.1:0", MaxFrame: wire.MaxControlFrame, Handler: noEvents{}, Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	n.srv = srv
	return n
}

func (n *fakeNode) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.running)
}

func (n *fakeNode) set(id core.ID, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if on {
		n.running[id] = true
	} else {
		delete(n.running, id)
	}
}

// proxyEnv is an orchestrator with the Redis proxy on, its Redis, and a
// client to both.
type proxyEnv struct {
	t     *testing.T
	orc   *Orc
	redis *redistest.Server
	rdb   *redis.Client
	ctl   *wire.Client
	start time.Time
}

func startProxyOrc(t *testing.T, mutate func(*Config), seed func(*redis.Client)) *proxyEnv {
	t.Helper()
	srv := redistest.Start(t)
	opts, _ := redis.ParseURL(srv.URL())
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	if seed != nil {
		seed(rdb)
	}
	cfg := Default()
	cfg.General.OrchestratorURL = wire.MustAddr("127.0.0.1:0")
	cfg.General.NodeRegisterURL = wire.Addr{}
	cfg.General.DomainID = "domain-test"
	// No controller: the registrations fail, which the orchestrator only logs.
	cfg.General.DomainRegisterURL = wire.MustAddr("127.0.0.1:1")
	cfg.General.ReconcileIntervalMS = 20
	cfg.General.MetricsURL = wire.Addr{}
	cfg.Proxy.ProxyType = "Redis"
	cfg.Proxy.RedisURL = srv.URL()
	// The test's one client plays the nodes and the controller, which TLS
	// would tell apart: these tests are about the mirror.
	cfg.TLS.Enabled = false
	if mutate != nil {
		mutate(&cfg)
	}
	start := time.Now()
	o, err := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	ctl := wire.NewClient(o.Addr(), wire.ClientOptions{MaxFrame: wire.MaxControlFrame})
	t.Cleanup(func() { ctl.Close() })
	return &proxyEnv{t: t, orc: o, redis: srv, rdb: rdb, ctl: ctl, start: start}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func call[Req, Resp any](e *proxyEnv, method string, req *Req) *Resp {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := wire.Call[Req, Resp](ctx, e.ctl, method, req)
	if err != nil {
		e.t.Fatalf("%s: %v", method, err)
	}
	return resp
}

// register registers n with the orchestrator, with a health status and
// whatever telemetry is given.
func (e *proxyEnv) register(n *fakeNode, refreshMS int64, health wire.NodeHealth, samples []wire.Sample, logs []wire.LogEntry) {
	e.t.Helper()
	call[wire.UpdateNode, wire.UpdateNodeResponse](e, wire.MethodOrcUpdateNode, &wire.UpdateNode{
		Node: n.id, Addr: n.srv.Addr(), Nonce: 1, RefreshMS: refreshMS,
		Capabilities: wire.Capabilities{NumCPUs: 4, NumCores: 2, ClockFreqMHz: 2400.5, MemSizeMiB: 8192, Labels: []string{"hostname=h-" + n.id.String()[:4]}, Runtimes: []string{"RUST_WASM"}},
		Providers:    []wire.Provider{{ID: "file-log-" + n.id.String()[:4], ClassType: "file-log"}},
		Health:       health, Samples: samples, Logs: logs,
	})
}

func (e *proxyEnv) get(key string) string {
	e.t.Helper()
	v, err := e.rdb.Get(context.Background(), key).Result()
	if err != nil {
		e.t.Fatalf("GET %s: %v", key, err)
	}
	return v
}

// waitKey polls until key holds want ("" = until the key is gone).
func (e *proxyEnv) waitKey(key, want string) {
	e.t.Helper()
	var got string
	testutil.EventuallyDetail(e.t, 10*time.Second, "key "+key, func() bool {
		v, err := e.rdb.Get(context.Background(), key).Result()
		if err == redis.Nil {
			v = ""
		}
		got = v
		return v == want
	}, func() string { return "last value " + got + "\nwant " + want })
}

func (e *proxyEnv) checkLastUpdate(cat string) {
	e.t.Helper()
	v := e.get(cat + ":last_update")
	ts, err := strconv.ParseFloat(v, 64)
	if err != nil || ts < unixSeconds(e.start)-1 || ts > unixSeconds(time.Now())+1 {
		e.t.Fatalf("%s:last_update = %q, want a Unix time in seconds since the test started", cat, v)
	}
}

func (e *proxyEnv) pushIntent(key, value string) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.rdb.Set(ctx, key, value, 0).Err(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.rdb.RPush(ctx, "intents", key).Err(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *proxyEnv) nodes() map[core.ID]wire.NodeStatus {
	e.t.Helper()
	out := map[core.ID]wire.NodeStatus{}
	for _, n := range call[wire.Empty, wire.NodeList](e, wire.MethodOrcNodes, &wire.Empty{}).Nodes {
		out[n.Node] = n
	}
	return out
}

func (e *proxyEnv) placement(lid core.ID) []core.InstanceID {
	e.t.Helper()
	return call[wire.Placement, wire.PlacementResponse](e, wire.MethodOrcPlacement, &wire.Placement{Logical: []core.ID{lid}}).Instances[lid]
}

// TestRedisProxyMirror: the orchestrator's nodes, providers, instances,
// dependencies, health and performance samples appear under EDGELESS's keys
// with EDGELESS's value formats, and a node that leaves is removed.
func TestRedisProxyMirror(t *testing.T) {
	e := startProxyOrc(t, nil, func(rdb *redis.Client) {
		rdb.Set(context.Background(), "left:over", "1", 0)
	})
	if n, _ := e.rdb.Exists(context.Background(), "left:over").Result(); n != 0 {
		t.Fatal("the proxy did not flush the database on start")
	}
	a := startFakeNode(t)
	health := wire.NodeHealth{MemFree: 1000, MemUsed: 3000, MemAvailable: 1500, ProcCPUUsage: 12.6, ProcMemory: 20, ProcVMemory: 30,
		LoadAvg1: 150, LoadAvg5: 120, LoadAvg15: 100, TotRxBytes: 1, TotRxPkts: 2, TotRxErrs: 3, TotTxBytes: 4, TotTxPkts: 5, TotTxErrs: 6,
		DiskFreeSpace: 7, DiskTotReads: 8, DiskTotWrites: 9, GPULoadPerc: -1, GPUTempCels: -1, ActivePower: -1,
		RunQueueP99US: 12.5, ContextSwitches: 77, TCPRetransmits: 1}
	pid := core.NewID()
	// Recent enough to survive the GC, with fractions that print exactly.
	ts := float64(time.Now().Unix()) + 0.25
	samples := []wire.Sample{{Instance: pid, Metric: "function_execution_time", Timestamp: ts, Seconds: 0.0015}}
	logs := []wire.LogEntry{{Instance: pid, Timestamp: ts + 1.25, Target: "app", Message: "hello: world"}}
	e.register(a, 60_000, health, samples, logs)

	e.waitKey("domain_info:domain_id", "domain-test")
	e.waitKey("node:capabilities:"+a.id.String(), `{"num_cpus":4,"model_name_cpu":"","clock_freq_cpu":2400.5,"num_cores":2,"mem_size":8192,`+
		`"labels":["hostname=h-`+a.id.String()[:4]+`"],"is_tee_running":false,"has_tpm":false,"runtimes":["RUST_WASM"],`+
		`"disk_tot_space":0,"num_gpus":0,"model_name_gpu":"","mem_size_gpu":0}`)
	e.checkLastUpdate("node:capabilities")
	provider := "provider:file-log-" + a.id.String()[:4]
	e.waitKey(provider, `{"class_type":"file-log","node_id":"`+a.id.String()+`","outputs":[]}`)
	e.checkLastUpdate("provider")

	ctx := context.Background()
	hkey := "node:health:" + a.id.String()
	testutil.Eventually(t, 10*time.Second, "the node's health", func() bool { n, _ := e.rdb.ZCard(ctx, hkey).Result(); return n == 1 })
	hz, err := e.rdb.ZRangeWithScores(ctx, hkey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	wantHealth := `{"mem_free":1000,"mem_used":3000,"mem_available":1500,"proc_cpu_usage":13,"proc_memory":20,"proc_vmemory":30,` +
		`"load_avg_1":150,"load_avg_5":120,"load_avg_15":100,"tot_rx_bytes":1,"tot_rx_pkts":2,"tot_rx_errs":3,` +
		`"tot_tx_bytes":4,"tot_tx_pkts":5,"tot_tx_errs":6,"disk_free_space":7,"disk_tot_reads":8,"disk_tot_writes":9,` +
		`"gpu_load_perc":-1,"gpu_temp_cels":-1,"active_power":-1,"runq_p99_us":12.5,"context_switches":77,"tcp_retransmits":1}`
	if hz[0].Member != wantHealth || hz[0].Score < unixSeconds(e.start)-1 {
		t.Fatalf("health = %v (score %v)\nwant %s", hz[0].Member, hz[0].Score, wantHealth)
	}
	f := func(key string, score float64, member string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, key, func() bool { n, _ := e.rdb.ZCard(ctx, key).Result(); return n == 1 })
		z, _ := e.rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		if z[0].Score != score || z[0].Member != member {
			t.Fatalf("%s = %v, want %v scored %v", key, z, member, score)
		}
	}
	sec := strconv.FormatInt(int64(ts), 10)
	f("performance:"+pid.String()+":function_execution_time", ts, sec+".25:0.0015")
	f("performance:"+pid.String()+":app", ts+1.25, strconv.FormatInt(int64(ts)+1, 10)+".5:hello: world")

	// A node that does not measure its health yet sends zeros: not mirrored.
	e.register(a, 60_000, wire.NodeHealth{}, nil, nil)

	wf := core.NewID()
	fid, rid := core.NewID(), core.NewID()
	call[wire.FunctionSpec, wire.StartResponse](e, wire.MethodOrcStartFunction, &wire.FunctionSpec{
		Logical: fid, Workflow: wf, Name: "counter", ClassID: "counter", FunctionType: "RUST_WASM", Version: "0.1",
		Code: []byte("\x00asm"), Annotations: map[string]string{"init-payload": "a<b"},
	})
	call[wire.ResourceSpec, wire.StartResponse](e, wire.MethodOrcStartResource, &wire.ResourceSpec{
		Logical: rid, Workflow: wf, Name: "log", ClassType: "file-log", Configurations: map[string]string{"filename": "/tmp/x"},
	})
	call[wire.PatchLogical, wire.Empty](e, wire.MethodOrcPatch, &wire.PatchLogical{Logical: fid, Outputs: map[string]core.ID{"output": rid}})
	fi, ri := e.placement(fid)[0], e.placement(rid)[0]
	e.waitKey("instance:"+fid.String(), `{"Function":[{"code":{"function_class_id":"counter","function_class_type":"RUST_WASM",`+
		`"function_class_version":"0.1","function_class_code":[],"function_class_outputs":["output"]},"annotations":{"init-payload":"a<b"},`+
		`"state_specification":{"state_id":"`+fid.String()+`","state_policy":"NodeLocal"},"workflow_id":"`+wf.String()+`"},`+
		`["InstanceId(node_id: `+a.id.String()+`, function_id: `+fi.Component.String()+`)"]]}`)
	e.waitKey("instance:"+rid.String(), `{"Resource":[{"class_type":"file-log","configuration":{"filename":"/tmp/x"},"workflow_id":"`+wf.String()+`"},`+
		`"InstanceId(node_id: `+a.id.String()+`, function_id: `+ri.Component.String()+`)"]}`)
	e.checkLastUpdate("instance")
	e.waitKey("dependency:"+fid.String(), `{"output":"`+rid.String()+`"}`)
	e.checkLastUpdate("dependency")

	call[wire.StopComponent, wire.Empty](e, wire.MethodOrcStop, &wire.StopComponent{ID: rid})
	e.waitKey("instance:"+rid.String(), "")

	// The node stops refreshing: its keys go with it.
	e.register(a, 1, health, nil, nil)
	e.waitKey("node:capabilities:"+a.id.String(), "")
	e.waitKey(provider, "")
	testutil.Eventually(t, 10*time.Second, "the node's health to be removed", func() bool { n, _ := e.rdb.Exists(ctx, hkey).Result(); return n == 0 })
}

// TestRedisProxyIntents: migrate and cordon intents pushed on the intents
// list are applied, with the orchestrator's own migrate and cordon; bad
// intents are dropped.
func TestRedisProxyIntents(t *testing.T) {
	e := startProxyOrc(t, nil, nil)
	a, b := startFakeNode(t), startFakeNode(t)
	e.register(a, 60_000, wire.NodeHealth{}, nil, nil)
	e.register(b, 60_000, wire.NodeHealth{}, nil, nil)
	fid := core.NewID()
	call[wire.FunctionSpec, wire.StartResponse](e, wire.MethodOrcStartFunction, &wire.FunctionSpec{
		Logical: fid, Name: "f", ClassID: "f", FunctionType: "RUST_WASM", Version: "0.1",
		Annotations: map[string]string{spec.KeyNodeIDMatchAny: a.id.String() + "," + b.id.String()},
	})
	from := e.placement(fid)[0]
	to := a
	if from.Node == a.id {
		to = b
	}
	// Bad intents first: they are dropped without stopping the others.
	e.pushIntent("intent:migrate:not-a-uuid", to.id.String())
	e.pushIntent("intent:frobnicate:"+fid.String(), "x")
	e.pushIntent("intent:cordon:"+to.id.String(), "maybe")
	e.rdb.RPush(context.Background(), "intents", "intent:migrate:"+core.NewID().String()) // no value
	e.pushIntent("intent:migrate:"+fid.String(), core.NewID().String()+","+to.id.String())
	testutil.EventuallyDetail(t, 10*time.Second, "the migration", func() bool {
		p := e.placement(fid)
		return len(p) == 1 && p[0].Node == to.id
	}, func() string { return "placement " + e.placement(fid)[0].String() })
	if n := to.count(); n != 1 {
		t.Fatalf("target node runs %d instances, want 1", n)
	}
	if n := map[core.ID]*fakeNode{a.id: a, b.id: b}[from.Node].count(); n != 0 {
		t.Fatalf("the old node still runs %d instances", n)
	}
	testutil.Eventually(t, 10*time.Second, "the intents list and keys to be consumed", func() bool {
		keys, _ := e.rdb.Keys(context.Background(), "intent*").Result()
		return len(keys) == 0
	})

	e.pushIntent("intent:cordon:"+to.id.String(), "yes")
	testutil.Eventually(t, 10*time.Second, "the cordon", func() bool { return e.nodes()[to.id].Cordoned })
	other := map[core.ID]*fakeNode{a.id: b, b.id: a}[to.id]
	for range 5 {
		lid := core.NewID()
		call[wire.FunctionSpec, wire.StartResponse](e, wire.MethodOrcStartFunction, &wire.FunctionSpec{Logical: lid, Name: "g", FunctionType: "RUST_WASM"})
		if p := e.placement(lid); p[0].Node != other.id {
			t.Fatalf("a new instance was placed on the cordoned node")
		}
	}
	// Migrating to a cordoned node is infeasible: the function stays.
	e.pushIntent("intent:migrate:"+fid.String(), other.id.String())
	testutil.Eventually(t, 10*time.Second, "the migration back", func() bool {
		p := e.placement(fid) // empty while the instance moves
		return len(p) == 1 && p[0].Node == other.id
	})
	// Intents apply in order: once the uncordon is seen, the migration
	// before it was tried.
	e.pushIntent("intent:migrate:"+fid.String(), to.id.String())
	e.pushIntent("intent:cordon:"+to.id.String(), "no")
	testutil.Eventually(t, 10*time.Second, "the uncordon", func() bool { return !e.nodes()[to.id].Cordoned })
	if p := e.placement(fid); p[0].Node != other.id {
		t.Fatal("a function was migrated to a cordoned node")
	}
}

// TestRedisProxyGC: entries older than the GC period are removed, newer
// ones stay.
func TestRedisProxyGC(t *testing.T) {
	e := startProxyOrc(t, func(c *Config) { c.Proxy.ProxyGCPeriodSeconds = 1 }, nil)
	a := startFakeNode(t)
	pid := core.NewID()
	now := unixSeconds(time.Now())
	e.register(a, 60_000, wire.NodeHealth{MemFree: 1}, []wire.Sample{
		{Instance: pid, Metric: "function_transfer_time", Timestamp: now - 100, Seconds: 1},
		{Instance: pid, Metric: "function_transfer_time", Timestamp: now + 30, Seconds: 2},
	}, nil)
	key := "performance:" + pid.String() + ":function_transfer_time"
	testutil.Eventually(t, 10*time.Second, "the old sample to be removed", func() bool {
		m, _ := e.rdb.ZRange(context.Background(), key, 0, -1).Result()
		return slices.Equal(m, []string{proxyschema.Member(now+30, "2")})
	})
}

// TestRedisProxyRestart: after Redis lost its data, the proxy writes
// everything again.
func TestRedisProxyRestart(t *testing.T) {
	e := startProxyOrc(t, nil, nil)
	a := startFakeNode(t)
	e.register(a, 60_000, wire.NodeHealth{}, nil, nil)
	key := "node:capabilities:" + a.id.String()
	testutil.Eventually(t, 10*time.Second, key, func() bool { n, _ := e.rdb.Exists(context.Background(), key).Result(); return n == 1 })
	e.redis.Kill()
	if err := e.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, key+" after the restart", func() bool { n, _ := e.rdb.Exists(context.Background(), key).Result(); return n == 1 })
	e.waitKey("domain_info:domain_id", "domain-test")
}

// TestRedisProxyDataset: with a dataset path, the mirrored data is also
// appended to CSV files with EDGELESS's names and columns.
func TestRedisProxyDataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds") + "/"
	e := startProxyOrc(t, func(c *Config) {
		c.Proxy.ProxyGCPeriodSeconds = 0
		c.Proxy.DatasetSettings = DatasetSettings{DatasetPath: dir, Append: true, AdditionalFields: "run1", AdditionalHeader: "run"}
	}, nil)
	a := startFakeNode(t)
	pid := core.NewID()
	e.register(a, 60_000, wire.NodeHealth{MemFree: 5, GPUTempCels: 45000, ActivePower: -1},
		[]wire.Sample{{Instance: pid, Metric: "function_execution_time", Timestamp: 1750000000.5, Seconds: 0.25}},
		[]wire.LogEntry{{Instance: pid, Timestamp: 1750000000.75, Target: "app", Message: `a, "b"`}})
	lid := core.NewID()
	call[wire.FunctionSpec, wire.StartResponse](e, wire.MethodOrcStartFunction, &wire.FunctionSpec{Logical: lid, Name: "g", FunctionType: "RUST_WASM"})
	inst := e.placement(lid)[0]
	read := func(name string) []string {
		data, _ := os.ReadFile(dir + name + ".csv")
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
	f := func(name, header string, rowPrefix, rowSuffix string) {
		t.Helper()
		var lines []string
		testutil.EventuallyDetail(t, 10*time.Second, name+" rows", func() bool { lines = read(name); return len(lines) >= 2 }, func() string { return strings.Join(lines, "\n") })
		if lines[0] != header || !strings.HasPrefix(lines[1], rowPrefix) || !strings.HasSuffix(lines[1], rowSuffix) {
			t.Fatalf("%s.csv =\n%s\nwant header %q and a row %q…%q", name, strings.Join(lines, "\n"), header, rowPrefix, rowSuffix)
		}
	}
	f("performance_samples", "run,identifier,metric,timestamp,value", "run1,"+pid.String()+",function_execution_time,1750000000.5,0.25", "")
	f("application_logs", "run,identifier,target,timestamp,message", "run1,"+pid.String()+`,app,1750000000.75,"a, ""b"""`, "")
	f("health_status", "run,timestamp,node_id,"+healthCSVHeader, "run1,", ","+a.id.String()+",5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,45,-1")
	f("capabilities", "run,"+datasetHeaders["capabilities"], "run1,", ","+a.id.String()+",4,,2400.5,2,8192,[hostname=h-"+a.id.String()[:4]+"],false,false,[RUST_WASM],0,0,,0")
	f("mapping_to_instance_id", "run,timestamp,logical_id,workflow_id,node_id,physical_id", "run1,",
		","+lid.String()+","+core.ID{}.String()+","+a.id.String()+","+inst.Component.String())
}

// TestProxyConfig: the proxy settings are validated.
func TestProxyConfig(t *testing.T) {
	f := func(mutate func(*ProxySettings), want string) {
		t.Helper()
		cfg := Default()
		mutate(&cfg.Proxy)
		err := cfg.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Fatalf("Validate() = %v, want %q", err, want)
		}
	}
	f(func(*ProxySettings) {}, "")
	f(func(p *ProxySettings) { p.ProxyType = "Redis" }, "")
	f(func(p *ProxySettings) { p.ProxyType = "redis" }, "proxy.proxy_type")
	f(func(p *ProxySettings) { p.ProxyType, p.RedisURL = "Redis", "http://x" }, "proxy.redis_url")
	f(func(p *ProxySettings) { p.ProxyGCPeriodSeconds = -1 }, "proxy.proxy_gc_period_seconds")
}
