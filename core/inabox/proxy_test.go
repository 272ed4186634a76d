package inabox

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/cli"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/redistest"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// redisCLI runs the real redis-cli against srv, as an operator or an
// outside orchestrator would.
func redisCLI(t *testing.T, srv *redistest.Server, args ...string) string {
	t.Helper()
	_, port, _ := strings.Cut(srv.Addr(), ":")
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// jsonKeys returns the sorted keys of a JSON object.
func jsonKeys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %s: %v", raw, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func wantKeys(t *testing.T, what string, raw json.RawMessage, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := jsonKeys(t, raw); !slices.Equal(got, want) {
		t.Fatalf("%s has fields %v, want %v:\n%s", what, got, want, raw)
	}
}

// TestRedisProxy: with the Redis proxy on, the orchestrator mirrors its
// state under EDGELESS's keys and value formats; a migrate intent written
// with redis-cli moves a function, whose counter continues on the new node;
// a cordon intent keeps new instances off a node.
func TestRedisProxy(t *testing.T) {
	srv := redistest.Start(t)
	b := startBox(t, 2, func(c *Config) {
		c.Orchestrator.Proxy.ProxyType = "Redis"
		c.Orchestrator.Proxy.RedisURL = srv.URL()
		c.Node.Telemetry.PerformanceSamples = true
	})
	opts, _ := redis.ParseURL(srv.URL())
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	get := func(key string) string {
		t.Helper()
		var v string
		testutil.Eventually(t, 10*time.Second, "key "+key, func() bool {
			var err error
			v, err = rdb.Get(ctx, key).Result()
			return err == nil
		})
		return v
	}

	id := b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=20") })
	logFile := filepath.Join(b.dir, "counter.log")
	w := workflow(fn(t, "counter", "counter", map[string]string{"output": "log"}, "period=50"))
	w.Resources = []spec.Resource{{Name: "log", ClassType: "file-log", OutputMapping: map[string]string{}, Configurations: map[string]string{"filename": logFile}}}
	wid := b.mustStartSpec(w)
	info := b.inspect(id)
	pinger, ponger := component(info, "pinger"), component(info, "ponger")
	res := component(b.inspect(wid), "log")

	if v := get("domain_info:domain_id"); v != b.cfg.Orchestrator.General.DomainID {
		t.Fatalf("domain_info:domain_id = %q", v)
	}
	for _, n := range b.Nodes {
		caps := get("node:capabilities:" + n.ID().String())
		wantKeys(t, "NodeCapabilities", json.RawMessage(caps), "num_cpus", "model_name_cpu", "clock_freq_cpu", "num_cores", "mem_size", "labels",
			"is_tee_running", "has_tpm", "runtimes", "disk_tot_space", "num_gpus", "model_name_gpu", "mem_size_gpu")
		var c struct{ Runtimes []string }
		json.Unmarshal([]byte(caps), &c)
		if !slices.Contains(c.Runtimes, "RUST_WASM") {
			t.Fatalf("node %s capabilities %s lack RUST_WASM", n.ID(), caps)
		}
	}
	providers, _ := rdb.Keys(ctx, "provider:file-log-*").Result()
	if len(providers) != 2 {
		t.Fatalf("file-log providers in Redis: %v, want one per node", providers)
	}
	var prov struct {
		ClassType string `json:"class_type"`
		NodeID    string `json:"node_id"`
	}
	raw := get(providers[0])
	wantKeys(t, "ResourceProvider", json.RawMessage(raw), "class_type", "node_id", "outputs")
	nodeIDs := map[string]bool{}
	for _, n := range b.Nodes {
		nodeIDs[n.ID().String()] = true
	}
	if json.Unmarshal([]byte(raw), &prov); prov.ClassType != "file-log" || !nodeIDs[prov.NodeID] {
		t.Fatalf("%s = %s", providers[0], raw)
	}

	// instance:<lid> = {"Function":[request,[ids]]}.
	instanceOf := func(lid string) (spec json.RawMessage, ids []string) {
		t.Helper()
		v := get("instance:" + lid)
		var variant map[string][2]json.RawMessage
		if err := json.Unmarshal([]byte(v), &variant); err != nil || len(variant) != 1 {
			t.Fatalf("instance:%s = %s: not an ActiveInstance", lid, v)
		}
		if pair, ok := variant["Function"]; ok {
			json.Unmarshal(pair[1], &ids)
			return pair[0], ids
		}
		var one string
		json.Unmarshal(variant["Resource"][1], &one)
		return variant["Resource"][0], []string{one}
	}
	req, ids := instanceOf(pinger.LogicalID)
	wantKeys(t, "SpawnFunctionRequest", req, "code", "annotations", "state_specification", "workflow_id")
	var sr struct {
		Code               json.RawMessage `json:"code"`
		StateSpecification json.RawMessage `json:"state_specification"`
		WorkflowID         string          `json:"workflow_id"`
	}
	json.Unmarshal(req, &sr)
	wantKeys(t, "FunctionClassSpecification", sr.Code, "function_class_id", "function_class_type", "function_class_version", "function_class_code", "function_class_outputs")
	wantKeys(t, "StateSpecification", sr.StateSpecification, "state_id", "state_policy")
	instanceID := func(i spec.InstanceInfo) string {
		return "InstanceId(node_id: " + i.Node + ", function_id: " + i.Instance + ")"
	}
	if sr.WorkflowID != id || len(ids) != 1 || ids[0] != instanceID(pinger.Instances[0]) {
		t.Fatalf("instance:%s = %s %v, want workflow %s and instance %s", pinger.LogicalID, req, ids, id, instanceID(pinger.Instances[0]))
	}
	req, ids = instanceOf(res.LogicalID)
	wantKeys(t, "ResourceInstanceSpecification", req, "class_type", "configuration", "workflow_id")
	if ids[0] != instanceID(res.Instances[0]) {
		t.Fatalf("instance:%s ids %v, want %s", res.LogicalID, ids, instanceID(res.Instances[0]))
	}
	if v := get("dependency:" + pinger.LogicalID); v != `{"ponger":"`+ponger.LogicalID+`"}` {
		t.Fatalf("dependency:%s = %s", pinger.LogicalID, v)
	}
	// Health: a sorted set of NodeHealthStatus, scored by time.
	for _, n := range b.Nodes {
		key := "node:health:" + n.ID().String()
		var last []redis.Z
		testutil.Eventually(t, 10*time.Second, key, func() bool {
			last, _ = rdb.ZRangeWithScores(ctx, key, -1, -1).Result()
			return len(last) == 1
		})
		wantKeys(t, "NodeHealthStatus", json.RawMessage(last[0].Member.(string)), "mem_free", "mem_used", "mem_available", "proc_cpu_usage",
			"proc_memory", "proc_vmemory", "load_avg_1", "load_avg_5", "load_avg_15", "tot_rx_bytes", "tot_rx_pkts", "tot_rx_errs",
			"tot_tx_bytes", "tot_tx_pkts", "tot_tx_errs", "disk_free_space", "disk_tot_reads", "disk_tot_writes", "gpu_load_perc",
			"gpu_temp_cels", "active_power", "runq_p99_us", "context_switches", "tcp_retransmits")
		if age := float64(time.Now().UnixNano())/1e9 - last[0].Score; age < 0 || age > 10 {
			t.Fatalf("%s scored %v: not the time it arrived", key, last[0].Score)
		}
	}
	// Performance samples: "<ts>:<seconds>" scored by ts, per physical instance.
	perfKey := "performance:" + pinger.Instances[0].Instance + ":function_execution_time"
	var samples []redis.Z
	testutil.Eventually(t, 10*time.Second, perfKey, func() bool {
		samples, _ = rdb.ZRangeWithScores(ctx, perfKey, 0, -1).Result()
		return len(samples) > 0
	})
	ts, secs, _ := strings.Cut(samples[0].Member.(string), ":")
	if v, err := strconv.ParseFloat(ts, 64); err != nil || v != samples[0].Score {
		t.Fatalf("%s member %q scored %v", perfKey, samples[0].Member, samples[0].Score)
	}
	if v, err := strconv.ParseFloat(secs, 64); err != nil || v <= 0 || v > 10 {
		t.Fatalf("%s member %q: not a duration in seconds", perfKey, samples[0].Member)
	}
	for _, cat := range []string{"node:capabilities", "provider", "instance", "dependency"} {
		if _, err := strconv.ParseFloat(get(cat+":last_update"), 64); err != nil {
			t.Fatalf("%s:last_update: %v", cat, err)
		}
	}
	var out bytes.Buffer
	if err := cli.Proxy(ctx, []string{"-r", srv.URL(), "--node-print-format", "uuid", "show", "functions"}, &out); err != nil {
		t.Fatal(err)
	}
	if want := pinger.LogicalID + " -> " + pinger.Instances[0].Node + "\n"; !strings.Contains(out.String(), want) {
		t.Fatalf("proxy show functions =\n%s\nwant a line %q", out.String(), want)
	}

	// Migrate the pinger with redis-cli.
	testutil.Eventually(t, 10*time.Second, "the ping counter to reach 3", func() bool { return b.state(pinger.LogicalID) >= 3 })
	from := pinger.Instances[0].Node
	var to core.ID
	for _, n := range b.Nodes {
		if n.ID().String() != from {
			to = n.ID()
		}
	}
	before := b.state(pinger.LogicalID)
	key := "intent:migrate:" + pinger.LogicalID
	if got := redisCLI(t, srv, "SET", key, to.String()); got != "OK" {
		t.Fatalf("SET: %s", got)
	}
	redisCLI(t, srv, "RPUSH", "intents", key)
	testutil.Eventually(t, 10*time.Second, "the pinger to move", func() bool {
		in := component(b.inspect(id), "pinger").Instances
		return len(in) == 1 && in[0].Node == to.String()
	})
	moved := component(b.inspect(id), "pinger").Instances[0]
	testutil.Eventually(t, 10*time.Second, "instance:<pinger> to show the new node", func() bool {
		_, ids := instanceOf(pinger.LogicalID)
		return len(ids) == 1 && ids[0] == instanceID(moved)
	})
	testutil.Eventually(t, 10*time.Second, "the counter to continue on the new node", func() bool {
		n := b.state(pinger.LogicalID)
		if n < before {
			t.Fatalf("counter went back from %d to %d", before, n)
		}
		return n >= before+3
	})
	if n, _ := rdb.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("the intent key was not deleted")
	}

	// Cordon the node the pinger left: new workflows all go to the other.
	cordoned, _ := core.ParseID(from)
	key = "intent:cordon:" + from
	redisCLI(t, srv, "SET", key, "yes")
	redisCLI(t, srv, "RPUSH", "intents", key)
	testutil.Eventually(t, 10*time.Second, "the cordon", func() bool {
		list, err := orcCall[wire.Empty, wire.NodeList](t, b, wire.MethodOrcNodes, &wire.Empty{})
		return err == nil && slices.ContainsFunc(list.Nodes, func(n wire.NodeStatus) bool { return n.Node == cordoned && n.Cordoned })
	})
	for range 3 {
		wi := b.inspect(b.mustStart("ping_pong/workflow.json", nil))
		for _, c := range wi.Components {
			for _, i := range c.Instances {
				if i.Node == from {
					t.Fatalf("%s was placed on the cordoned node %s", c.Name, from)
				}
			}
		}
	}
	redisCLI(t, srv, "SET", key, "no")
	redisCLI(t, srv, "RPUSH", "intents", key)
	testutil.Eventually(t, 10*time.Second, "the uncordon", func() bool {
		list, err := orcCall[wire.Empty, wire.NodeList](t, b, wire.MethodOrcNodes, &wire.Empty{})
		return err == nil && !slices.ContainsFunc(list.Nodes, func(n wire.NodeStatus) bool { return n.Cordoned })
	})
}
