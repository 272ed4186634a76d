package inabox

import (
	"encoding/binary"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// TestBadWorkflowFiles: the CLI refuses malformed workflow files with an
// error naming the file, the JSON path and what is wrong, and the controller
// refuses the same through its API.
func TestBadWorkflowFiles(t *testing.T) {
	b := startBox(t, 1, nil)
	f := func(name, doc string, want ...string) {
		t.Helper()
		file := filepath.Join(b.dir, name)
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := b.cli("start", file)
		if err == nil {
			t.Fatalf("%s: workflow start succeeded", name)
		}
		for _, w := range append([]string{name}, want...) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %q lacks %q", name, err, w)
			}
		}
	}
	code, _ := filepath.Abs(filepath.Join(root, "functions/noop/noop.wasm"))
	fnJSON := func(name, ftype, code string, mapping string) string {
		return `{"name":"` + name + `","class_specification":{"id":"noop","function_type":"` + ftype +
			`","version":"0.1","code":"` + code + `","outputs":[]},"output_mapping":{` + mapping + `},"annotations":{}}`
	}
	wf := func(fns ...string) string {
		return `{"functions":[` + strings.Join(fns, ",") + `],"resources":[],"annotations":{}}`
	}
	f("malformed.json", "{\n  \"functions\": [,\n", ":2:17:", "malformed JSON")
	f("unknown-target.json", wf(fnJSON("a", "RUST_WASM", code, `"out":"nowhere"`)), "functions[0].output_mapping", "nowhere")
	f("duplicate.json", wf(fnJSON("a", "RUST_WASM", code, ""), fnJSON("a", "RUST_WASM", code, "")), "functions[1].name", "duplicate")
	f("missing-code.json", wf(fnJSON("a", "RUST_WASM", "does/not/exist.wasm", "")), "functions[0].class_specification.code", "exist.wasm")
	f("bad-type.json", wf(fnJSON("a", "PYTHON", code, "")), "functions[0].class_specification.function_type", "PYTHON")

	resp, err := b.api(http.MethodPost, "/api/v1/workflows",
		wf(`{"name":"a","class_specification":{"id":"x","function_type":"PYTHON","version":"1","binary":"AA==","outputs":[]},"output_mapping":{},"annotations":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	var e spec.ErrorReply
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, "function_type") {
		t.Fatalf("API answered %s %q, want 400 naming function_type", resp.Status, e.Error)
	}
	if list, _ := b.cli("list"); list != "" {
		t.Fatalf("workflows listed after failed starts: %q", list)
	}
}

// TestMissingExportRollsBack: a module without handle_call_asm fails the
// workflow start with that reason, and the function already started is
// stopped again.
func TestMissingExportRollsBack(t *testing.T) {
	b := startBox(t, 1, nil)
	_, err := b.startSpec(workflow(fn(t, "fine", "noop", nil, ""), fn(t, "broken", "bad_abi", nil, "")))
	if err == nil || !strings.Contains(err.Error(), "handle_call_asm") || !strings.Contains(err.Error(), `"broken"`) {
		t.Fatalf("start err = %v, want one naming function \"broken\" and the missing handle_call_asm", err)
	}
	if got := b.Nodes[0].Instances(); len(got) != 0 {
		t.Fatalf("instances left after a failed start: %v", got)
	}
	if list, _ := b.cli("list"); list != "" {
		t.Fatalf("failed workflow listed: %q", list)
	}
}

// TestRunawayFunctions: a trapping function and one looping forever are each
// stopped (the loop within its time budget) while another workflow keeps
// running on the same node.
func TestRunawayFunctions(t *testing.T) {
	b := startBox(t, 1, func(c *Config) { c.Node.WASM.HandlerTimeoutMS = 200 })
	id := b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=20") })
	pinger := component(b.inspect(id), "pinger")
	testutil.Eventually(t, 10*time.Second, "the ping counter to reach 3", func() bool { return b.state(pinger.LogicalID) >= 3 })

	b.mustStartSpec(workflow(fn(t, "gen", "message_generator", map[string]string{"output": "looper"}, "period=10"), fn(t, "looper", "loop", nil, "")))
	b.mustStartSpec(workflow(fn(t, "gen", "message_generator", map[string]string{"output": "trapper"}, "period=10"), fn(t, "trapper", "trap", nil, "")))
	testutil.Eventually(t, 10*time.Second, "the looping instance to be stopped", func() bool {
		return b.logs.count("instance failed", "function=looper", "time budget") > 0
	})
	testutil.Eventually(t, 10*time.Second, "the trapping instance to be stopped", func() bool {
		return b.logs.count("instance failed", "function=trapper", "unreachable") > 0
	})
	before := b.state(pinger.LogicalID)
	testutil.Eventually(t, 10*time.Second, "the ping counter to keep advancing", func() bool { return b.state(pinger.LogicalID) >= before+5 })
}

func (b *box) mustStartSpec(w *spec.Workflow) string {
	b.t.Helper()
	id, err := b.startSpec(w)
	if err != nil {
		b.t.Fatalf("workflow start: %v", err)
	}
	return id
}

// TestMemoryLimitAnnotation: memory_mb limits one function's instances below
// the node's limit. Two hogs each get 1, 2, 3, … MiB more per event: the one
// limited to 2 MiB fails at its second event, while the one under the
// node's 64 MiB holds 10 MiB after its fourth.
func TestMemoryLimitAnnotation(t *testing.T) {
	b := startBox(t, 1, nil)
	limited := fn(t, "limited", "hog", nil, "")
	limited.Annotations[spec.KeyMemoryMB] = "2"
	b.mustStartSpec(workflow(fn(t, "count", "counter", map[string]string{"output": "limited"}, "period=50"), limited))
	testutil.Eventually(t, 10*time.Second, "the limited hog to fail", func() bool {
		return b.logs.count("instance failed", "function=limited") > 0
	})
	id := b.mustStartSpec(workflow(fn(t, "count", "counter", map[string]string{"output": "free"}, "period=50"), fn(t, "free", "hog", nil, "")))
	counter := component(b.inspect(id), "count")
	testutil.Eventually(t, 10*time.Second, "four events for the unlimited hog", func() bool { return b.state(counter.LogicalID) >= 5 })
	if n := b.logs.count("instance failed", "function=free"); n != 0 {
		t.Fatalf("the hog under the node's limit failed %d times", n)
	}
}

// TestLargeFunction deploys a 20 MB function (noop with a 20 MB custom
// section; the outbound queues used to hold 8 MiB) end to end: controller,
// orchestrator and node take it.
func TestLargeFunction(t *testing.T) {
	// Minutes, not seconds, for the race detector's sake.
	b := startBox(t, 1, func(c *Config) { c.Controller.RequestTimeoutSec = 600 })
	f := fn(t, "big", "noop", nil, "")
	f.ClassSpecification.Binary = padWASM(f.ClassSpecification.Binary, 20<<20)
	id, err := b.startSpec(workflow(f))
	if err != nil {
		t.Fatalf("a 20 MB function: %v", err)
	}
	if got := len(component(b.inspect(id), "big").Instances); got != 1 {
		t.Fatalf("%d instances of the 20 MB function, want 1", got)
	}
}

// padWASM appends a custom section of n bytes to a WASM module. Section
// sizes are unsigned LEB128, which binary.AppendUvarint writes.
func padWASM(module []byte, n int) []byte {
	name := "padding"
	sec := append(binary.AppendUvarint(nil, uint64(len(name))), name...)
	sec = append(sec, make([]byte, n)...)
	return append(binary.AppendUvarint(append(module, 0), uint64(len(sec))), sec...)
}
