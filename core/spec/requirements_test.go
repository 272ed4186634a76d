package spec

import (
	"reflect"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/core"
)

func mustID(t *testing.T, s string) core.ID {
	t.Helper()
	id, err := core.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

const (
	node1 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	node2 = "fda6ce79-46df-4f96-a0d2-456f720f606c"
)

func TestParseRequirements(t *testing.T) {
	f := func(name string, in map[string]string, want Requirements) {
		t.Helper()
		got, err := ParseRequirements(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %+v, want %+v", name, got, want)
		}
	}
	f("none", nil, Requirements{})
	f("other keys ignored", map[string]string{"init-payload": "x", "filename": "a.log"}, Requirements{})
	f("all", map[string]string{
		"max_instances":      "3",
		"node_id_match_any":  node1 + ", " + node2,
		"label_match_all":    "hostname=edge1,gpu",
		"resource_match_all": "file-log-1, redis-1,",
		"tee":                "Required",
		"tpm":                "REQUIRED",
	}, Requirements{
		MaxInstances:     3,
		NodeIDMatchAny:   []core.ID{mustID(t, node1), mustID(t, node2)},
		LabelMatchAll:    []string{"hostname=edge1", "gpu"},
		ResourceMatchAll: []string{"file-log-1", "redis-1"},
		TEE:              true,
		TPM:              true,
	})
	f("container limits", map[string]string{"memory_mb": "128", "cpus": "0.5"}, Requirements{MemoryMB: 128, CPUs: 0.5})
	f("zero and empty values", map[string]string{
		"max_instances": "0", "node_id_match_any": "", "label_match_all": " , ", "tee": "not-required", "tpm": "",
	}, Requirements{})
}

func TestParseRequirementsErrors(t *testing.T) {
	f := func(name string, in map[string]string, wantPath string, wantMsgContains string) {
		t.Helper()
		_, err := ParseRequirements(in)
		for _, e := range specErrors(t, err) {
			if e.Path == wantPath && strings.Contains(e.Msg, wantMsgContains) {
				if !strings.Contains(err.Error(), wantPath) || !strings.Contains(err.Error(), in[wantPath]) {
					t.Fatalf("%s: error text %q does not name the key and the value", name, err)
				}
				return
			}
		}
		t.Fatalf("%s: no error at %q containing %q; got %v", name, wantPath, wantMsgContains, err)
	}
	f("max_instances word", map[string]string{"max_instances": "many"}, "max_instances", `bad value "many": want an integer >= 0`)
	f("max_instances negative", map[string]string{"max_instances": "-2"}, "max_instances", `bad value "-2"`)
	f("max_instances fraction", map[string]string{"max_instances": "1.5"}, "max_instances", `bad value "1.5"`)
	f("max_instances empty", map[string]string{"max_instances": ""}, "max_instances", `bad value ""`)
	f("node id", map[string]string{"node_id_match_any": node1 + ",node-2"}, "node_id_match_any", `"node-2" is not a node UUID`)
	f("tee", map[string]string{"tee": "true"}, "tee", `bad value "true": want "required" or "not-required"`)
	f("tpm", map[string]string{"tpm": "yes"}, "tpm", `bad value "yes"`)
	f("cpus zero", map[string]string{"cpus": "0"}, "cpus", `bad value "0": want a number of cores > 0`)
	f("cpus word", map[string]string{"cpus": "half"}, "cpus", `bad value "half"`)
	f("all reported", map[string]string{"tee": "x", "tpm": "y", "max_instances": "z"}, "tpm", `bad value "y"`)
}

func TestRequirementsMatches(t *testing.T) {
	n := NodeInfo{
		ID:        mustID(t, node1),
		Labels:    []string{"hostname=edge1", "gpu"},
		Providers: []string{"file-log-1", "redis-1"},
		Runtimes:  []string{"RUST_WASM"},
		TEE:       true,
	}
	f := func(name string, r Requirements, want bool) {
		t.Helper()
		if got := r.Matches(n); got != want {
			t.Fatalf("%s: Matches = %v, want %v", name, got, want)
		}
	}
	f("no requirements", Requirements{}, true)
	f("max_instances does not filter", Requirements{MaxInstances: 1}, true)
	f("node listed", Requirements{NodeIDMatchAny: []core.ID{mustID(t, node2), mustID(t, node1)}}, true)
	f("node not listed", Requirements{NodeIDMatchAny: []core.ID{mustID(t, node2)}}, false)
	f("labels all present", Requirements{LabelMatchAll: []string{"gpu", "hostname=edge1"}}, true)
	f("label missing", Requirements{LabelMatchAll: []string{"gpu", "arm"}}, false)
	f("providers present", Requirements{ResourceMatchAll: []string{"redis-1"}}, true)
	f("provider missing", Requirements{ResourceMatchAll: []string{"redis-1", "kafka-1"}}, false)
	f("tee available", Requirements{TEE: true}, true)
	f("tpm missing", Requirements{TPM: true}, false)
}

func TestNodeInfoHasRuntime(t *testing.T) {
	f := func(runtimes []string, functionType string, want bool) {
		t.Helper()
		if got := (NodeInfo{Runtimes: runtimes}).HasRuntime(functionType); got != want {
			t.Fatalf("HasRuntime(%q) on %q = %v, want %v", functionType, runtimes, got, want)
		}
	}
	f([]string{"RUST_WASM"}, "RUST_WASM", true)
	f([]string{"RUST_WASM"}, "WASM", true)
	f([]string{"WASM"}, "RUST_WASM", true)
	f([]string{"CONTAINER", "RUST_WASM"}, "CONTAINER", true)
	f([]string{"RUST_WASM"}, "CONTAINER", false)
	f([]string{"NATIVE", "RUST_NATIVE", "RUST_WASM", "WASM"}, "NATIVE", true)
	f([]string{"RUST_NATIVE"}, "NATIVE", true)
	f([]string{"RUST_WASM", "WASM"}, "RUST_NATIVE", false)
	f(nil, "RUST_WASM", false)
}
