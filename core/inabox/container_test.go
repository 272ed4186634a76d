package inabox

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dcontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/edgeless-go/edgeless/container"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/dockertest"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// logNumbers returns the integers of a file-log's lines.
func logNumbers(t *testing.T, file string) []int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []int
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		n, err := strconv.Atoi(line)
		if err != nil {
			t.Fatalf("%s: line %q is not a number", file, line)
		}
		out = append(out, n)
	}
	return out
}

// setLog points the workflow's file-log resource named name at a file of
// the box's directory.
func (b *box) setLog(w *spec.Workflow, name string) string {
	file := filepath.Join(b.dir, name+".log")
	for i := range w.Resources {
		if w.Resources[i].Name == name {
			w.Resources[i].Configurations["filename"] = file
		}
	}
	return file
}

// nodeContainers lists the ids of the function-instance containers of the
// box's first node.
func (b *box) nodeContainers() []string {
	b.t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.ContainerList(context.Background(), dcontainer.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", container.LabelNode+"="+b.Nodes[0].ID().String()))})
	if err != nil {
		b.t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestContainerExample runs examples/container: a WASM counter casts every
// 100 ms to a Python CONTAINER function that doubles the number, and a
// file-log writes the results. Every count arrives doubled and in order;
// stopping the workflow removes the container.
func TestContainerExample(t *testing.T) {
	dockertest.Need(t)
	b := startBox(t, 1, func(c *Config) { c.Node.Telemetry.MetricsURL = wire.MustAddr("127.0.0.1:0") })
	var file string
	id := b.mustStart("container/workflow.json", func(w *spec.Workflow) {
		file = b.setLog(w, "log")
		setInit(w, "counter", "period=20")
	})
	testutil.Eventually(t, 30*time.Second, "10 doubled numbers in the log", func() bool { return len(logNumbers(t, file)) >= 10 })
	nums := logNumbers(t, file)
	for k := 1; k < len(nums); k++ {
		if nums[k] != nums[k-1]+2 || nums[k]%2 != 0 {
			t.Fatalf("log %v: want consecutive doubled counts", nums)
		}
	}
	if got := len(b.nodeContainers()); got != 1 {
		t.Fatalf("%d containers run, want 1", got)
	}
	text := scrape(t, b.Nodes[0].MetricsAddr())
	promtool(t, text)
	for pattern, want := range map[string]float64{
		`edgeless_node_containers\{state="all"\}`:                      1,
		`edgeless_node_container_starts_total\{from="create"\}`:        1,
		`edgeless_node_container_host_calls_total\{result="refused"\}`: 0,
	} {
		if got := metricValue(t, text, pattern); got != want {
			t.Errorf("%s = %v, want %v", pattern, got, want)
		}
	}
	if got := metricValue(t, text, `edgeless_node_container_host_calls_total\{result="served"\}`); got < 10 {
		t.Errorf("%v host calls served, want the casts of at least 10 events", got)
	}
	if out, err := b.cli("stop", id); err != nil {
		t.Fatalf("workflow stop = %q, %v", out, err)
	}
	if got := b.nodeContainers(); len(got) != 0 {
		t.Fatalf("containers left after stop: %v", got)
	}
}

// TestContainerReplaced kills a container function's container: the node
// reports the instance failed, the orchestrator re-creates it in a new
// container, and the state it saved with sync is handed back, so its count
// goes on where it stopped.
func TestContainerReplaced(t *testing.T) {
	dockertest.Need(t)
	b := startBox(t, 1, nil)
	w := workflow(fn(t, "counter", "counter", map[string]string{"output": "testfn"}, "period=20"))
	w.Functions = append(w.Functions, spec.Function{
		Name: "testfn",
		ClassSpecification: spec.ClassSpec{ID: "testfn", FunctionType: "CONTAINER", Version: "0.1",
			Binary: []byte("container:edgeless-testfn-py:latest"), Outputs: []string{}},
		OutputMapping: map[string]string{"out": "log"},
		Annotations:   map[string]string{},
	})
	w.Resources = append(w.Resources, spec.Resource{Name: "log", ClassType: "file-log", OutputMapping: map[string]string{},
		Configurations: map[string]string{}})
	file := b.setLog(w, "log")
	b.mustStartSpec(w)
	testutil.Eventually(t, 30*time.Second, "5 counts in the log", func() bool { return len(logNumbers(t, file)) >= 5 })
	first := b.nodeContainers()
	if len(first) != 1 {
		t.Fatalf("%d containers, want 1", len(first))
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.ContainerKill(context.Background(), first[0], "KILL"); err != nil {
		t.Fatal(err)
	}
	before := len(logNumbers(t, file))
	testutil.Eventually(t, 30*time.Second, "a new container", func() bool {
		now := b.nodeContainers()
		return len(now) == 1 && now[0] != first[0]
	})
	testutil.Eventually(t, 30*time.Second, "counts from the new container", func() bool { return len(logNumbers(t, file)) >= before+5 })
	// The kill may fall between a count's sync and its cast: that one count
	// is synced but never logged. Any other gap, or a restart from 1, is a
	// lost state.
	nums := logNumbers(t, file)
	for k := 1; k < len(nums); k++ {
		if d := nums[k] - nums[k-1]; d < 1 || d > 2 {
			t.Fatalf("log %v: the count did not go on from the synced state", nums)
		}
	}
	if n := b.logs.count("instance failed", "its container exited"); n != 1 {
		t.Fatalf("%d failure reports, want 1", n)
	}
}

// TestPython310Function creates a standalone python310 function from a
// source file, as Serverledge does, and invokes it: its handler gets the
// parameters and its return value is the result.
func TestPython310Function(t *testing.T) {
	dockertest.Need(t)
	b := startBox(t, 1, nil)
	src := filepath.Join(b.dir, "adder.py")
	os.WriteFile(src, []byte("def handler(params, context):\n    return int(params['a']) + int(params['b'])\n"), 0o644)
	if _, err := b.fcli("create", "-f", "adder", "--src", src, "--runtime", "python310", "--annotation", "handler=adder.handler", "--memory", "64"); err != nil {
		t.Fatal(err)
	}
	if out, err := b.fcli("list"); err != nil || out != "adder\tpython310\n" {
		t.Fatalf("list = %q, %v", out, err)
	}
	for range 3 {
		if out, err := b.fcli("invoke", "-f", "adder", "-p", "a:2", "-p", "b:3"); err != nil || out != "5\n" {
			t.Fatalf("invoke = %q, %v; want 5", out, err)
		}
	}
	if _, err := b.fcli("delete", "-f", "adder"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the pool's containers removed", func() bool { return len(b.nodeContainers()) == 0 })
}

// TestServerledgePython310 creates a python310 function through
// Serverledge's API, from a tar of two modules, and invokes it: the
// handler named by the request gets the parameters, its return value is
// the result, cold then warm.
func TestServerledgePython310(t *testing.T) {
	dockertest.Need(t)
	b := startBox(t, 1, nil)
	sl := newSLClient(t, b, "")
	files := map[string]string{
		"hello.py": "from util import greet\n\ndef handler(params, context):\n    return greet(params['name'])\n",
		"util.py":  "def greet(name):\n    return 'Hello, ' + name\n",
	}
	paths := map[string]string{}
	for name, src := range files {
		p := filepath.Join(b.dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		paths[name] = p
	}
	f := slFunction{Name: "hello", Runtime: "python310", MemoryMB: 64, Handler: "hello.handler", TarFunctionCode: tarOf(t, paths)}
	sl.want(http.MethodPost, "/create", f, http.StatusOK, `{"Created":"hello"}`)
	sl.invoke("hello", map[string]any{"name": "edge"}, `"Hello, edge"`, false)
	sl.invoke("hello", map[string]any{"name": "cloud"}, `"Hello, cloud"`, true)
	sl.want(http.MethodPost, "/delete", map[string]string{"Name": "hello"}, http.StatusOK, `{"Deleted":"hello"}`)
	testutil.Eventually(t, 10*time.Second, "the function's containers removed", func() bool { return len(b.nodeContainers()) == 0 })
}
