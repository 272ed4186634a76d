package node

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	dcontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/edgeless-go/edgeless/container"
	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/dockertest"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// doubles are the same function, double, on each runtime compared: the C
// source built to WASM, and the container examples in Python and Go. Each
// answers a call "21" with "42" and casts 2x of a cast x to "output".
var doubles = []struct {
	name, ftype string
	code        func(b *testing.B) []byte
	annotations map[string]string
}{
	{"wasm", spec.FunctionTypeWASM, func(b *testing.B) []byte { return testutil.Function(b, "double", "wasm") }, nil},
	{"container-python", spec.FunctionTypeContainer, func(*testing.B) []byte { return []byte("container:edgeless-double-py:latest") }, nil},
	{"container-go", spec.FunctionTypeContainer, func(*testing.B) []byte { return []byte("container:edgeless-double-go:latest") }, nil},
	{"python310", spec.FunctionTypePython310, func(*testing.B) []byte {
		return []byte("def handler(params, context):\n    return 2 * params\n")
	}, map[string]string{"handler": "double.handler"}},
}

// startFn starts a function on n and returns its instance.
func startFn(b *testing.B, n *Node, ftype string, code []byte, annotations map[string]string) *instance {
	b.Helper()
	id := core.NewID()
	req := &wire.StartFunction{Component: id, Spec: wire.FunctionSpec{
		Logical: core.NewID(), Name: "double", FunctionType: ftype, Code: code, Annotations: annotations,
	}}
	if _, err := n.startFunction(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	return n.instance(id)
}

// callDouble calls inst with "21" from the node's invoker and checks the
// reply.
func callDouble(b *testing.B, n *Node, inst *instance) {
	ret, reply, err := n.invoker.call(context.Background(), inst.id, []byte("21"), n.route)
	if err != nil || ret != core.CallReply || string(reply) != "42" {
		b.Fatalf("call 21 = %v %q, %v; want 42", ret, reply, err)
	}
}

// noSpares enables the container runtime without spare containers.
func noSpares(c *Config) { c.Container.Enabled, c.Container.SpareContainers = true, 0 }

// BenchmarkColdStart measures a function's cold start: from the node's
// start request (container created, started, booted, init) to the reply of
// its first call. Run it with -benchtime=10x: each op creates a container.
// The spare cases start from a container the node started beforehand
// (spare_containers = 1): they pay Boot and Init only.
func BenchmarkColdStart(b *testing.B) {
	dockertest.Need(b)
	for _, d := range doubles {
		b.Run(d.name, func(b *testing.B) {
			coldStarts(b, d.ftype, d.code(b), d.annotations, 0)
		})
	}
	for _, d := range doubles[1:] {
		b.Run(d.name+"-spare", func(b *testing.B) {
			coldStarts(b, d.ftype, d.code(b), d.annotations, 1)
		})
	}
}

func coldStarts(b *testing.B, ftype string, code []byte, annotations map[string]string, spares int) {
	n := runtimeNode(b, func(c *Config) { c.Container.Enabled, c.Container.SpareContainers = true, spares })
	// Spares are kept per image: the function's and the Python runtime's,
	// which the node keeps ready from its start.
	ready := 2
	if ftype == spec.FunctionTypePython310 {
		ready = 1
	}
	var docker *client.Client
	if spares > 0 {
		var err error
		if docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation()); err != nil {
			b.Fatal(err)
		}
		defer docker.Close()
		// The first instance of an image finds no spare; it has one started.
		inst := startFn(b, n, ftype, code, annotations)
		n.remove(inst.id.Component).stop()
		waitSpares(b, docker, n, ready)
	}
	for b.Loop() {
		inst := startFn(b, n, ftype, code, annotations)
		callDouble(b, n, inst)
		b.StopTimer()
		n.remove(inst.id.Component).stop()
		if spares > 0 {
			// The next instance takes the spare the last one had refilled.
			waitSpares(b, docker, n, ready)
		}
		b.StartTimer()
	}
}

// waitSpares waits until n's container runtime holds want spare
// containers whose servers accept connections: a spare an instance finds
// has usually waited long enough for its interpreter to be up, which the
// spare cases measure.
func waitSpares(b *testing.B, docker *client.Client, n *Node, want int) {
	b.Helper()
	ctx := context.Background()
	filter := filters.NewArgs(filters.Arg("label", container.LabelNode+"="+n.id.String()),
		filters.Arg("label", "edgeless.kind=spare"), filters.Arg("status", "running"))
	testutil.Eventually(b, time.Minute, fmt.Sprintf("%d spare containers accepting connections", want), func() bool {
		list, err := docker.ContainerList(ctx, dcontainer.ListOptions{Filters: filter})
		if err != nil || len(list) != want {
			return false
		}
		for _, c := range list {
			if !accepts(c) {
				return false
			}
		}
		return true
	})
}

// accepts reports whether c's lowest exposed TCP port accepts a connection.
func accepts(c dcontainer.Summary) bool {
	port := 0
	for _, p := range c.Ports {
		if p.Type == "tcp" && (port == 0 || int(p.PrivatePort) < port) {
			port = int(p.PrivatePort)
		}
	}
	for _, nw := range c.NetworkSettings.Networks {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(nw.IPAddress, fmt.Sprint(port)), time.Second)
		if err == nil {
			conn.Close()
			return true
		}
	}
	return false
}

// BenchmarkWarmCall measures one call to a warm instance, one at a time:
// the latency a caller sees, node's invoker to reply.
func BenchmarkWarmCall(b *testing.B) {
	dockertest.Need(b)
	for _, d := range doubles {
		b.Run(d.name, func(b *testing.B) {
			n := runtimeNode(b, noSpares)
			inst := startFn(b, n, d.ftype, d.code(b), d.annotations)
			callDouble(b, n, inst)
			b.ReportAllocs()
			for b.Loop() {
				callDouble(b, n, inst)
			}
		})
	}
}

// BenchmarkCastThroughput pumps casts through double into a WASM noop:
// events/s through one instance of each runtime.
func BenchmarkCastThroughput(b *testing.B) {
	dockertest.Need(b)
	for _, d := range doubles[:3] { // python310 answers calls; its casts carry JSON
		b.Run(d.name, func(b *testing.B) {
			n := runtimeNode(b, noSpares)
			last := startClass(b, n, spec.FunctionTypeWASM, "noop", "wasm", nil)
			first := startFn(b, n, d.ftype, d.code(b), nil)
			first.setOutputs(map[string][]core.InstanceID{"output": {last.id}}, 0)
			pump(b, n, first, last, []byte("21"))
		})
	}
}
