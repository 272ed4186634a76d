package inabox

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// TestPingPong runs the ping_pong example end to end: the counter advances,
// pong answers, the CLI lists and inspects the workflow, and stopping it calls
// handle_stop and removes every instance.
func TestPingPong(t *testing.T) {
	b := startBox(t, 1, nil)
	id := b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=20") })
	wi := b.inspect(id)
	pinger := component(wi, "pinger")
	if len(pinger.Instances) != 1 || pinger.Instances[0].Node != b.Nodes[0].ID().String() {
		t.Fatalf("pinger instances = %+v, want one on node %s", pinger.Instances, b.Nodes[0].ID())
	}
	testutil.Eventually(t, 10*time.Second, "the ping counter to reach 5", func() bool { return b.state(pinger.LogicalID) >= 5 })
	if n := b.logs.count("function=pinger", "PONG"); n < 3 {
		t.Fatalf("pinger logged %d PONG replies, want at least 3", n)
	}

	list, err := b.cli("list")
	if err != nil || strings.TrimSpace(list) != id {
		t.Fatalf("workflow list = %q, %v; want %s", list, err, id)
	}
	out, err := b.cli("inspect", id)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"* function pinger", "* function ponger", "OUT ponger -> ponger", "OUT ping -> pinger",
		"instance " + pinger.Instances[0].Instance + " on node " + b.Nodes[0].ID().String(),
		"* mapping\n", "MAP pinger -> domain-7000 [logical ID " + pinger.LogicalID + "]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("workflow inspect lacks %q:\n%s", want, out)
		}
	}

	if got := len(b.Nodes[0].Instances()); got != 2 {
		t.Fatalf("node runs %d instances, want 2", got)
	}
	out, err = b.cli("stop", id)
	if err != nil || out != "Workflow "+id+" stopped\n" {
		t.Fatalf("workflow stop = %q, %v", out, err)
	}
	if got := b.Nodes[0].Instances(); len(got) != 0 {
		t.Fatalf("instances left after stop: %v", got)
	}
	if n := b.logs.count("function=pinger", "stopped at"); n != 1 {
		t.Fatalf("pinger's handle_stop logged %d times, want 1", n)
	}
	if list, _ := b.cli("list"); list != "" {
		t.Fatalf("workflow list after stop = %q, want nothing", list)
	}
	if _, err := b.cli("stop", id); err == nil || !strings.Contains(err.Error(), "no such workflow") {
		t.Fatalf("second stop: err = %v, want no such workflow", err)
	}
}

// TestStateSurvivesRecreation stops the node running the stateful pinger:
// the orchestrator re-creates it on the other node, which hands the synced
// counter back to handle_init, so the counter continues instead of restarting.
func TestStateSurvivesRecreation(t *testing.T) {
	b := startBox(t, 2, nil)
	id := b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=20") })
	pinger := component(b.inspect(id), "pinger")
	testutil.Eventually(t, 10*time.Second, "the ping counter to reach 5", func() bool { return b.state(pinger.LogicalID) >= 5 })

	victim := 0
	if b.Nodes[1].ID().String() == pinger.Instances[0].Node {
		victim = 1
	}
	survivor := b.Nodes[1-victim]
	if err := b.Nodes[victim].Close(); err != nil {
		t.Fatal(err)
	}
	last := b.state(pinger.LogicalID)

	testutil.Eventually(t, 10*time.Second, "pinger to be re-created on the surviving node", func() bool {
		in := component(b.inspect(id), "pinger").Instances
		return len(in) == 1 && in[0].Node == survivor.ID().String()
	})
	testutil.Eventually(t, 10*time.Second, "the counter to pass its last synced value", func() bool {
		n := b.state(pinger.LogicalID)
		if n < last {
			t.Fatalf("counter went back from %d to %d: state was not restored", last, n)
		}
		return n >= last+3
	})
	if n := b.logs.count("function instance started", "function=pinger", "state_bytes="+strconv.Itoa(len(strconv.Itoa(last)))); n != 1 {
		t.Fatalf("re-created pinger got its state %d times in handle_init, want once", n)
	}
}

// TestFileLog runs the file_log example: message_generator casts to a
// file-log resource, whose lines carry a timestamp and the messages in order.
func TestFileLog(t *testing.T) {
	b := startBox(t, 1, nil)
	logFile := filepath.Join(b.dir, "messages.log")
	b.mustStart("file_log/workflow.json", func(w *spec.Workflow) {
		setInit(w, "message_generator", "message=hello world,period=10")
		w.Resources[0].Configurations["filename"] = logFile
	})
	var lines []string
	testutil.Eventually(t, 10*time.Second, "three lines in the log file", func() bool {
		data, _ := os.ReadFile(logFile)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) >= 3
	})
	re := regexp.MustCompile(`^(\S+) hello world #(\d+)$`)
	for i, l := range lines[:3] {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d = %q, want '<timestamp> hello world #<n>'", i, l)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("line %d: bad timestamp: %v", i, err)
		}
		if m[2] != strconv.Itoa(i) {
			t.Fatalf("line %d carries message #%s, want #%d", i, m[2], i)
		}
	}
	if _, err := b.cli("stop", "all"); err != nil {
		t.Fatal(err)
	}
	if got := b.Nodes[0].Instances(); len(got) != 0 {
		t.Fatalf("instances left after stop all: %v", got)
	}
}

// TestGoAndCFunctions chains functions built with both SDKs: a Go counter
// feeds a Go doubler, a C incrementer adds one, and a file-log records 2n+1
// for consecutive n. (Counts made before the workflow's mappings are patched
// go nowhere, as in EDGELESS, so n need not start at 1.)
func TestGoAndCFunctions(t *testing.T) {
	b := startBox(t, 1, nil)
	logFile := filepath.Join(b.dir, "odd.log")
	w := workflow(
		fn(t, "counter", "counter_go", map[string]string{"output": "double"}, "period=10"),
		fn(t, "double", "double_go", map[string]string{"output": "incr"}, ""),
		fn(t, "incr", "incr", map[string]string{"output": "log"}, ""),
	)
	w.Resources = []spec.Resource{{
		Name: "log", ClassType: "file-log", OutputMapping: map[string]string{},
		Configurations: map[string]string{"filename": logFile},
	}}
	b.mustStartSpec(w)
	var lines []string
	testutil.Eventually(t, 20*time.Second, "five lines in the log file", func() bool {
		data, _ := os.ReadFile(logFile)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) >= 5
	})
	first, err := strconv.Atoi(lines[0])
	if err != nil || first%2 != 1 {
		t.Fatalf("first line %q is not an odd number", lines[0])
	}
	for i, l := range lines[:5] {
		if want := strconv.Itoa(first + 2*i); l != want {
			t.Fatalf("line %d = %q, want %s (all: %q)", i, l, want, lines)
		}
	}
}
