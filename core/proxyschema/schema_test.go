package proxyschema

import (
	"reflect"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/core"
)

// TestRoundTrip: every record reads back as it was written, and is written
// as EDGELESS writes it.
func TestRoundTrip(t *testing.T) {
	node, lid, pid := core.NewID(), core.NewID(), core.NewID()
	f := func(name, encoded, want string, decode func(string) (any, error), in any) {
		t.Helper()
		if encoded != want {
			t.Fatalf("%s encodes as\n%s\nwant\n%s", name, encoded, want)
		}
		got, err := decode(encoded)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Fatalf("%s reads back as %+v, want %+v", name, got, in)
		}
	}
	caps := Capabilities{NumCPUs: 4, ClockFreqCPU: 2400.5, NumCores: 2, MemSize: 8192, Labels: []string{"hostname=a"}, HasTPM: true, Runtimes: []string{}}
	f("capabilities", caps.Encode(),
		`{"num_cpus":4,"model_name_cpu":"","clock_freq_cpu":2400.5,"num_cores":2,"mem_size":8192,"labels":["hostname=a"],"is_tee_running":false,"has_tpm":true,"runtimes":[],"disk_tot_space":0,"num_gpus":0,"model_name_gpu":"","mem_size_gpu":0}`,
		func(s string) (any, error) { return DecodeCapabilities(s) }, caps)

	h := Health{MemFree: 1, ProcCPUUsage: 12.6, GPULoadPerc: -1, ActivePower: 0, RunQueueP99US: 1.5}
	rounded := h
	rounded.ProcCPUUsage = 13
	f("health", h.Encode(),
		`{"mem_free":1,"mem_used":0,"mem_available":0,"proc_cpu_usage":13,"proc_memory":0,"proc_vmemory":0,"load_avg_1":0,"load_avg_5":0,"load_avg_15":0,"tot_rx_bytes":0,"tot_rx_pkts":0,"tot_rx_errs":0,"tot_tx_bytes":0,"tot_tx_pkts":0,"tot_tx_errs":0,"disk_free_space":0,"disk_tot_reads":0,"disk_tot_writes":0,"gpu_load_perc":-1,"gpu_temp_cels":0,"active_power":0,"runq_p99_us":1.5,"context_switches":0,"tcp_retransmits":0}`,
		func(s string) (any, error) { return DecodeHealth(s) }, rounded)

	p := Provider{ClassType: "http-ingress", NodeID: node.String(), Outputs: []string{"new_request"}}
	f("provider", p.Encode(), `{"class_type":"http-ingress","node_id":"`+node.String()+`","outputs":["new_request"]}`,
		func(s string) (any, error) { return DecodeProvider(s) }, p)

	d := Dependencies{"output": lid}
	f("dependencies", d.Encode(), `{"output":"`+lid.String()+`"}`, func(s string) (any, error) { return DecodeDependencies(s) }, d)

	var spawn Spawn
	spawn.Code.ID, spawn.Code.Type, spawn.Code.Version, spawn.Code.Outputs = "counter", "RUST_WASM", "0.1", []string{"output"}
	spawn.Code.Code, spawn.Annotations = []int{}, map[string]string{"init-payload": "<a&b>"}
	spawn.StateSpecification.StateID, spawn.StateSpecification.StatePolicy, spawn.WorkflowID = lid.String(), "NodeLocal", "w"
	fn := Instance{Function: &spawn, Placed: []core.InstanceID{{Node: node, Component: pid}}}
	wantFn := `{"Function":[{"code":{"function_class_id":"counter","function_class_type":"RUST_WASM","function_class_version":"0.1","function_class_code":[],"function_class_outputs":["output"]},` +
		`"annotations":{"init-payload":"<a&b>"},"state_specification":{"state_id":"` + lid.String() + `","state_policy":"NodeLocal"},"workflow_id":"w"},` +
		`["InstanceId(node_id: ` + node.String() + `, function_id: ` + pid.String() + `)"]]}`
	f("function instance", fn.Encode(), wantFn, func(s string) (any, error) { in, err := DecodeInstance(s); in.Spec = nil; return in, err }, fn)

	res := Instance{Resource: &Resource{ClassType: "file-log", Configuration: map[string]string{}, WorkflowID: "w"}, Placed: []core.InstanceID{{Node: node, Component: pid}}}
	f("resource instance", res.Encode(),
		`{"Resource":[{"class_type":"file-log","configuration":{},"workflow_id":"w"},"InstanceId(node_id: `+node.String()+`, function_id: `+pid.String()+`)"]}`,
		func(s string) (any, error) { in, err := DecodeInstance(s); in.Spec = nil; return in, err }, res)

	key := PerformanceKey(pid, "function_execution_time")
	if got, series, ok := ParsePerformanceKey(key); !ok || got != pid || series != "function_execution_time" {
		t.Fatalf("ParsePerformanceKey(%q) = %v %q %v", key, got, series, ok)
	}
	// A log target may hold the separator: it stays in the series.
	if _, series, ok := ParsePerformanceKey(PerformanceKey(pid, "a:b")); !ok || series != "a:b" {
		t.Fatalf("series %q, %v; want a:b", series, ok)
	}
	if ts, v, ok := SplitMember(Member(1750000001.25, "hello: world")); !ok || ts != "1750000001.25" || v != "hello: world" {
		t.Fatalf("SplitMember = %q %q %v", ts, v, ok)
	}
	if got := []string{CapabilitiesKey(node), HealthKey(node), InstanceKey(lid), DependencyKey(lid), ProviderKey("p"), LastUpdateKey(CategoryInstance)}; got[0] != "node:capabilities:"+node.String() ||
		got[1] != "node:health:"+node.String() || got[2] != "instance:"+lid.String() || got[3] != "dependency:"+lid.String() || got[4] != "provider:p" || got[5] != "instance:last_update" {
		t.Fatalf("keys %q", got)
	}
}

// TestDecodeEDGELESS: values in the forms other EDGELESS versions write.
func TestDecodeEDGELESS(t *testing.T) {
	node, pid := "22222222-2222-4222-8222-222222222222", "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
	in, err := DecodeInstance(`{"Function":[{"code":{"function_class_id":"c","function_class_type":"RUST_WASM","function_class_version":"0.1","function_class_code":[],"function_class_outputs":[]},` +
		`"annotations":{},"state_specification":{"state_id":"s","state_policy":"NodeLocal"},"workflow_id":"w","future_field":1},["(InstanceId(node_id: ` + node + `, function_id: ` + pid + `), true)"]]}`)
	if err != nil || len(in.Placed) != 1 || in.Placed[0].Node.String() != node || in.Placed[0].Component.String() != pid || in.Workflow() != "w" {
		t.Fatalf("hot-standby form: %+v, %v", in, err)
	}
	if !strings.Contains(string(in.Spec), `"future_field":1`) {
		t.Fatalf("the spec as read lost a field: %s", in.Spec)
	}
	h, err := DecodeHealth(`{"mem_free":5,"gpu_load_perc":30}`)
	if err != nil || h.MemFree != 5 || h.ActivePower != -1 {
		t.Fatalf("health without active_power: %+v, %v", h, err)
	}

	bad := func(value, want string) {
		t.Helper()
		if _, err := DecodeInstance(value); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("DecodeInstance(%s): %v, want %q", value, err, want)
		}
	}
	bad(`[]`, "cannot decode instance")
	bad(`{}`, "want one of Function and Resource")
	bad(`{"Pod":[{},"x"]}`, `unknown kind "Pod"`)
	bad(`{"Resource":[{},"InstanceId(node_id: nope)"]}`, "node_id")
	if _, err := DecodeDependencies(`{"output":"nope"}`); err == nil || !strings.Contains(err.Error(), `channel "output"`) {
		t.Fatalf("bad dependency: %v", err)
	}
}

func TestIntent(t *testing.T) {
	lid, a, b := core.NewID(), core.NewID(), core.NewID()
	for _, in := range []Intent{
		{Kind: IntentMigrate, Logical: lid, Targets: []core.ID{a, b}},
		{Kind: IntentCordon, Node: a, Cordoned: true},
		{Kind: IntentCordon, Node: b},
	} {
		got, err := ParseIntent(in.Key(), in.Value())
		if err != nil || !reflect.DeepEqual(got, in) {
			t.Fatalf("%s = %s reads back as %+v, %v; want %+v", in.Key(), in.Value(), got, err, in)
		}
	}
	if k := (Intent{Kind: IntentMigrate, Logical: lid}).Key(); k != "intent:migrate:"+lid.String() {
		t.Fatalf("migrate key %q", k)
	}
	if got, err := ParseIntent("intent:migrate:"+lid.String(), " "+a.String()+" , ,"+b.String()); err != nil || len(got.Targets) != 2 {
		t.Fatalf("spaced targets: %+v, %v", got, err)
	}
	f := func(key, value, want string) {
		t.Helper()
		if _, err := ParseIntent(key, value); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseIntent(%q, %q): %v, want %q", key, value, err, want)
		}
	}
	f("migrate:"+lid.String(), a.String(), `does not start with "intent:"`)
	f("intent:migrate:nope", a.String(), "bad component")
	f("intent:migrate:"+lid.String(), "nope", "bad target node")
	f("intent:cordon:nope", "yes", "bad node")
	f("intent:cordon:"+a.String(), "maybe", `got "maybe"`)
	f("intent:frobnicate:"+a.String(), "x", `unknown intent "frobnicate"`)
}
