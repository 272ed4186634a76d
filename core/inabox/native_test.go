package inabox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// nativeFn returns a workflow function running functions/<class>/<class>.so.
func nativeFn(t *testing.T, name, class string, outputs map[string]string, init string) spec.Function {
	t.Helper()
	code, err := os.ReadFile(filepath.Join(root, "functions", class, class+".so"))
	if err != nil {
		t.Fatal(err)
	}
	f := spec.Function{
		Name:               name,
		ClassSpecification: spec.ClassSpec{ID: class, FunctionType: "RUST_NATIVE", Version: "0.1", Binary: code, Outputs: []string{}},
		OutputMapping:      outputs,
		Annotations:        map[string]string{},
	}
	if init != "" {
		f.Annotations[spec.KeyInitPayload] = init
	}
	return f
}

// TestNativePingPong runs the native ping_pong example: the counter
// advances, pong's replies reach ping, and stopping the workflow calls
// handle_stop and unloads both instances.
func TestNativePingPong(t *testing.T) {
	b := startBox(t, 1, allowNative(t))
	id := b.mustStart("ping_pong/workflow_native.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=20") })
	pinger := component(b.inspect(id), "pinger")
	testutil.Eventually(t, 10*time.Second, "the native ping counter to reach 5", func() bool { return b.state(pinger.LogicalID) >= 5 })
	if n := b.logs.count("function=pinger", "PING-", "-> PONG"); n < 3 {
		t.Fatalf("pinger logged %d PONG replies, want at least 3", n)
	}
	if out, err := b.cli("stop", id); err != nil {
		t.Fatalf("workflow stop = %q, %v", out, err)
	}
	if got := b.Nodes[0].Instances(); len(got) != 0 {
		t.Fatalf("instances left after stop: %v", got)
	}
	if n := b.logs.count("function=pinger", "stopped at"); n != 1 {
		t.Fatalf("pinger's handle_stop logged %d times, want 1", n)
	}
}

// TestMixedNativeWASM runs examples/mixed: a native counter feeds a WASM
// doubler whose results a file-log records. Every count arrives, in order:
// the lines are 2n for consecutive n. (Counts made before the mappings are
// patched go nowhere, so n need not start at 1.)
func TestMixedNativeWASM(t *testing.T) {
	b := startBox(t, 1, allowNative(t))
	logFile := filepath.Join(b.dir, "doubled.log")
	id := b.mustStart("mixed/workflow.json", func(w *spec.Workflow) {
		setInit(w, "counter", "period=2")
		w.Resources[0].Configurations["filename"] = logFile
	})
	counter := component(b.inspect(id), "counter")
	const want = 100
	var lines []string
	testutil.Eventually(t, 20*time.Second, strconv.Itoa(want)+" lines in the log file", func() bool {
		data, _ := os.ReadFile(logFile)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) >= want
	})
	first, err := strconv.Atoi(lines[0])
	if err != nil || first%2 != 0 {
		t.Fatalf("first line %q is not an even number", lines[0])
	}
	for i, l := range lines[:want] {
		if w := strconv.Itoa(first + 2*i); l != w {
			t.Fatalf("line %d = %q, want %s: an event was lost or reordered", i, l, w)
		}
	}
	if n := b.state(counter.LogicalID); n < first/2+want-1 {
		t.Fatalf("counter state %d is behind the %d-th doubled value", n, want)
	}
}

// TestNativeSeparateState runs two instances of the same counter.so, one
// starting at a million: each keeps its own count, so the library's
// statics are not shared between them.
func TestNativeSeparateState(t *testing.T) {
	b := startBox(t, 1, allowNative(t))
	id := b.mustStartSpec(workflow(
		nativeFn(t, "low", "counter", nil, "period=5"),
		nativeFn(t, "high", "counter", nil, "period=5,start=1000000"),
	))
	wi := b.inspect(id)
	low, high := component(wi, "low"), component(wi, "high")
	if len(low.Instances) != 1 || len(high.Instances) != 1 || low.Instances[0].Instance == high.Instances[0].Instance {
		t.Fatalf("want two distinct instances, got %+v and %+v", low.Instances, high.Instances)
	}
	testutil.Eventually(t, 10*time.Second, "both counters to advance by 10", func() bool {
		return b.state(low.LogicalID) >= 10 && b.state(high.LogicalID) >= 1000010
	})
	l, h := b.state(low.LogicalID), b.state(high.LogicalID)
	if l >= 1000000 || h < 1000000 {
		t.Fatalf("counters low=%d high=%d: the instances share their state", l, h)
	}
	// Both tick at the same period, so with separate counters they stay
	// close; a shared one would advance twice as fast as either alone.
	if d := (h - 1000000) - l; d < -50 || d > 50 {
		t.Fatalf("counters low=%d high=%d drifted apart by %d ticks", l, h, d)
	}
}

// allowNative enables the native runtime for every .so the functions build,
// and for extra code given as bytes.
func allowNative(t *testing.T, extra ...[]byte) func(*Config) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "functions", "*", "*.so"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no native functions built: %v", err)
	}
	for _, f := range files {
		code, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, code)
	}
	return func(c *Config) {
		for _, code := range extra {
			c.Node.Native.Allow(code)
		}
	}
}

// TestNativeBadCode: a library without the handlers, one built for another
// ABI version, a file that is not ELF and a WASM module given as native code
// each fail the workflow start with a precise reason, leave nothing running,
// and the node goes on serving.
func TestNativeBadCode(t *testing.T) {
	wasm, err := os.ReadFile(filepath.Join(root, "functions", "noop", "noop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	notELF := []byte("#!/bin/sh\nexit 0\n")
	b := startBox(t, 1, allowNative(t, wasm, notELF))
	f := func(name string, code []byte, want ...string) {
		t.Helper()
		broken := nativeFn(t, "broken", "noop", nil, "")
		if code != nil {
			broken.ClassSpecification.Binary = code
		}
		_, err := b.startSpec(workflow(nativeFn(t, "fine", "noop", nil, ""), broken))
		if err == nil {
			t.Fatalf("%s: workflow start succeeded", name)
		}
		t.Logf("%s: %v", name, err)
		for _, w := range append([]string{`"broken"`}, want...) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: start error %q lacks %q", name, err, w)
			}
		}
		if got := b.Nodes[0].Instances(); len(got) != 0 {
			t.Fatalf("%s: instances left after a failed start: %v", name, got)
		}
	}
	so := func(class string) []byte { return nativeFn(t, "x", class, nil, "").ClassSpecification.Binary }
	f("no handlers", so("bad_native"), "missing symbols edgeless_native_handle_init, edgeless_native_handle_cast, edgeless_native_handle_call, edgeless_native_handle_stop")
	f("wrong ABI", so("wrong_abi"), "built for native ABI version 2 (edgeless_native_abi_version), this node supports version 1")
	f("not ELF", notELF, "not an ELF file (starts with 23 21 2f 62")
	f("WASM as native", wasm, "not an ELF file but a WebAssembly module")
	if list, _ := b.cli("list"); list != "" {
		t.Fatalf("failed workflows listed: %q", list)
	}

	id := b.mustStartSpec(workflow(nativeFn(t, "fine", "noop", nil, "")))
	if got := len(b.Nodes[0].Instances()); got != 1 {
		t.Fatalf("node runs %d instances after a good start, want 1", got)
	}
	if _, err := b.cli("stop", id); err != nil {
		t.Fatal(err)
	}
}
