package inabox

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/redistest"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
	"github.com/redis/go-redis/v9"
)

// orcCall makes a control request to the box's orchestrator, as an operator's tool would.
func orcCall[Req, Resp any](t *testing.T, b *box, method string, req *Req) (*Resp, error) {
	t.Helper()
	// The orchestrator takes orders from the controller only: the test
	// speaks with a controller's certificate from the box's CA.
	creds, err := b.CA().Credentials(wire.Identity{Role: wire.RoleController, ID: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := wire.NewClient(b.Orc.Addr(), wire.ClientOptions{TLS: creds.ClientTLS(wire.Identity{Role: wire.RoleOrchestrator})})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return wire.Call[Req, Resp](ctx, c, method, req)
}

// TestMaxInstancesSpread: a function with max_instances=3 gets three
// instances on three nodes, and its caller's casts are balanced over them.
func TestMaxInstancesSpread(t *testing.T) {
	b := startBox(t, 3, nil)
	logFile := filepath.Join(b.dir, "spread.log")
	w := workflow(
		fn(t, "counter", "counter", map[string]string{"output": "incr"}, "period=5"),
		fn(t, "incr", "incr", map[string]string{"output": "log"}, ""),
	)
	w.Functions[1].Annotations[spec.KeyMaxInstances] = "3"
	w.Resources = []spec.Resource{{
		Name: "log", ClassType: "file-log", OutputMapping: map[string]string{},
		Configurations: map[string]string{"filename": logFile, "add-source-id": "true"},
	}}
	id := b.mustStartSpec(w)
	incr := component(b.inspect(id), "incr")
	nodes := map[string]bool{}
	for _, i := range incr.Instances {
		nodes[i.Node] = true
	}
	if len(incr.Instances) != 3 || len(nodes) != 3 {
		t.Fatalf("incr instances = %+v, want 3 on 3 nodes", incr.Instances)
	}
	var lines []string
	testutil.Eventually(t, 10*time.Second, "30 lines in the log", func() bool {
		data, _ := os.ReadFile(logFile)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) >= 30
	})
	// Round robin: the counter's n-th event goes to instance n mod 3, so each
	// instance only ever sees values of one residue modulo 3.
	residue := map[string]int{}
	for _, l := range lines[:30] {
		src, val, _ := strings.Cut(l, " ")
		v, err := strconv.Atoi(val)
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if r, seen := residue[src]; seen && r != v%3 {
			t.Fatalf("instance %s got values of residues %d and %d: not round robin\n%s", src, r, v%3, strings.Join(lines[:30], "\n"))
		}
		residue[src] = v % 3
	}
	if len(residue) != 3 {
		t.Fatalf("events came from %d instances, want 3: %v", len(residue), residue)
	}
}

// TestMaxInstancesEven: instances go to distinct nodes first, then evenly:
// 5 instances on 3 nodes are 2, 2 and 1, never 3 on one node.
func TestMaxInstancesEven(t *testing.T) {
	b := startBox(t, 3, nil)
	fns := []spec.Function{fn(t, "counter", "counter", map[string]string{"output": "i0"}, "period=1000")}
	const chain = 6
	for k := range chain {
		next := map[string]string{}
		if k+1 < chain {
			next["output"] = "i" + strconv.Itoa(k+1)
		}
		f := fn(t, "i"+strconv.Itoa(k), "incr", next, "")
		f.Annotations[spec.KeyMaxInstances] = "5"
		fns = append(fns, f)
	}
	id := b.mustStartSpec(workflow(fns...))
	wi := b.inspect(id)
	for k := range chain {
		ci := component(wi, "i"+strconv.Itoa(k))
		per := map[string]int{}
		for _, i := range ci.Instances {
			per[i.Node]++
		}
		if len(ci.Instances) != 5 || len(per) != 3 {
			t.Fatalf("%s: instances per node %v, want 5 on 3 nodes", ci.Name, per)
		}
		for node, n := range per {
			if n > 2 {
				t.Fatalf("%s: %d instances on node %s, want at most 2 (%v)", ci.Name, n, node, per)
			}
		}
	}
}

// TestSourceOneInstance: a function that nothing sends events to (it casts
// from a timer) runs one instance despite max_instances, since each instance
// would produce every event; min_instances asks for more explicitly.
func TestSourceOneInstance(t *testing.T) {
	b := startBox(t, 3, nil)
	logFile := filepath.Join(b.dir, "source.log")
	w := workflow(fn(t, "counter", "counter", map[string]string{"output": "log"}, "period=5"))
	w.Functions[0].Annotations[spec.KeyMaxInstances] = "3"
	w.Resources = []spec.Resource{{Name: "log", ClassType: "file-log", OutputMapping: map[string]string{},
		Configurations: map[string]string{"filename": logFile}}}
	id := b.mustStartSpec(w)
	if c := component(b.inspect(id), "counter"); len(c.Instances) != 1 {
		t.Fatalf("counter instances = %+v, want one", c.Instances)
	}
	var lines []string
	testutil.Eventually(t, 10*time.Second, "20 lines in the log", func() bool {
		data, _ := os.ReadFile(logFile)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) >= 20
	})
	seen := map[string]bool{}
	for _, l := range lines[:20] {
		if seen[l] {
			t.Fatalf("value %s logged twice:\n%s", l, strings.Join(lines[:20], "\n"))
		}
		seen[l] = true
	}

	w.Functions[0].Annotations[spec.KeyMinInstances] = "2"
	id = b.mustStartSpec(w)
	if c := component(b.inspect(id), "counter"); len(c.Instances) != 2 {
		t.Fatalf("with min_instances=2: counter instances = %+v, want two", c.Instances)
	}
}

// TestCordonAndMigrate: a cordoned node is refused as a target; migrating the
// pinger moves it to the named node and its counter continues there.
func TestCordonAndMigrate(t *testing.T) {
	b := startBox(t, 3, nil)
	id := b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=20") })
	pinger := component(b.inspect(id), "pinger")
	testutil.Eventually(t, 10*time.Second, "the ping counter to reach 3", func() bool { return b.state(pinger.LogicalID) >= 3 })

	var others []core.ID
	for _, n := range b.Nodes {
		if n.ID().String() != pinger.Instances[0].Node {
			others = append(others, n.ID())
		}
	}
	logical, _ := core.ParseID(pinger.LogicalID)
	if _, err := orcCall[wire.Cordon, wire.Empty](t, b, wire.MethodOrcCordon, &wire.Cordon{Node: others[0], Cordoned: true}); err != nil {
		t.Fatal(err)
	}
	_, err := orcCall[wire.Migrate, wire.Empty](t, b, wire.MethodOrcMigrate, &wire.Migrate{Logical: logical, Nodes: []core.ID{others[0]}})
	if err == nil || !strings.Contains(err.Error(), "cordoned") {
		t.Fatalf("migrate to a cordoned node: err = %v, want one saying it is cordoned", err)
	}
	list, err := orcCall[wire.Empty, wire.NodeList](t, b, wire.MethodOrcNodes, &wire.Empty{})
	if err != nil || len(list.Nodes) != 3 {
		t.Fatalf("nodes = %+v, %v", list, err)
	}
	for _, n := range list.Nodes {
		if n.Cordoned != (n.Node == others[0]) {
			t.Fatalf("node %s cordoned = %v", n.Node, n.Cordoned)
		}
	}

	before := b.state(pinger.LogicalID)
	if _, err := orcCall[wire.Migrate, wire.Empty](t, b, wire.MethodOrcMigrate, &wire.Migrate{Logical: logical, Nodes: []core.ID{others[0], others[1]}}); err != nil {
		t.Fatal(err)
	}
	moved := component(b.inspect(id), "pinger").Instances
	if len(moved) != 1 || moved[0].Node != others[1].String() {
		t.Fatalf("after migrate pinger runs at %+v, want node %s", moved, others[1])
	}
	testutil.Eventually(t, 10*time.Second, "the counter to continue on the new node", func() bool {
		n := b.state(pinger.LogicalID)
		if n < before {
			t.Fatalf("counter went back from %d to %d", before, n)
		}
		return n >= before+3
	})
	if n := b.logs.count("function instance started", "function=pinger", "state_bytes="+strconv.Itoa(len(strconv.Itoa(before)))); n < 1 {
		t.Fatal("the migrated pinger did not get its state in handle_init")
	}
}

// TestCallToDeadPeerFailsFast pins pinger and ponger to different nodes and
// stops ponger's node: pinger's calls fail at once instead of waiting for the
// call timeout, and the node keeps serving.
func TestCallToDeadPeerFailsFast(t *testing.T) {
	b := startBox(t, 2, func(c *Config) { c.Node.General.CallTimeoutMS = 2000 })
	a, z := b.Nodes[0], b.Nodes[1]
	id := b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) {
		setInit(w, "pinger", "period=20")
		for i := range w.Functions {
			node := a.ID()
			if w.Functions[i].Name == "ponger" {
				node = z.ID()
			}
			w.Functions[i].Annotations[spec.KeyNodeIDMatchAny] = node.String()
		}
	})
	pinger := component(b.inspect(id), "pinger")
	testutil.Eventually(t, 10*time.Second, "a PONG across nodes", func() bool { return b.logs.count("function=pinger", "-> PONG") >= 3 })
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	n := b.state(pinger.LogicalID)
	// Five failed calls within 3 s while a call may wait 2 s for its reply:
	// they failed at once (one call in flight as the node went may time out).
	// The log line of a failed call comes before the sync of its tick.
	testutil.Eventually(t, 3*time.Second, "calls to the dead node to fail, and pinger to advance by five", func() bool {
		return b.logs.count("function=pinger", "call failed") >= 5 && b.state(pinger.LogicalID) >= n+5
	})
}

// TestStateInRedis keeps function state in a real Redis: the pinger's counter
// is there under its logical id, and a pinger re-created on another node
// continues from it.
func TestStateInRedis(t *testing.T) {
	srv := redistest.Start(t)
	b := startBox(t, 2, func(c *Config) {
		c.Node.State.RedisURL = "redis://" + srv.Addr() + "/0"
		c.Node.State.Dir = ""
	})
	id := b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=20") })
	pinger := component(b.inspect(id), "pinger")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	counter := func() int {
		v, err := rdb.Get(context.Background(), "edgeless:state:"+pinger.LogicalID).Int()
		if err != nil {
			return -1
		}
		return v
	}
	testutil.Eventually(t, 10*time.Second, "the counter in Redis to reach 5", func() bool { return counter() >= 5 })
	if b.state(pinger.LogicalID) != -1 {
		t.Fatal("state written to the state directory although redis_url is set")
	}
	victim := b.Nodes[0]
	if victim.ID().String() != pinger.Instances[0].Node {
		victim = b.Nodes[1]
	}
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	last := counter()
	testutil.Eventually(t, 10*time.Second, "the re-created pinger to continue", func() bool {
		n := counter()
		if n < last {
			t.Fatalf("counter went back from %d to %d", last, n)
		}
		return n >= last+3
	})
}

// TestWorkflowMigrateCLI moves a workflow's function with `workflow migrate`.
func TestWorkflowMigrateCLI(t *testing.T) {
	b := startBox(t, 2, nil)
	id := b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=20") })
	pinger := component(b.inspect(id), "pinger")
	target := b.Nodes[0].ID().String()
	if target == pinger.Instances[0].Node {
		target = b.Nodes[1].ID().String()
	}
	if out, err := b.cli("migrate", id, "pinger", target); err != nil || out != "Workflow "+id+" migrated\n" {
		t.Fatalf("workflow migrate = %q, %v", out, err)
	}
	if in := component(b.inspect(id), "pinger").Instances; len(in) != 1 || in[0].Node != target {
		t.Fatalf("pinger runs at %+v, want node %s", in, target)
	}
	_, err := b.cli("migrate", id, "nosuch", target)
	if err == nil || !strings.Contains(err.Error(), `no component "nosuch"`) {
		t.Fatalf("migrate of an unknown component: %v", err)
	}
}
