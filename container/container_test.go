package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

func randomID() core.ID { return core.NewID() }

// recorder is a Host that records the host calls it gets; Call answers
// "42", CallRaw "raw".
type recorder struct {
	self  core.InstanceID
	mu    sync.Mutex
	calls []string
	state []byte
}

func newRecorder() *recorder {
	return &recorder{self: core.InstanceID{Node: core.NewID(), Component: core.NewID()}}
}

func (h *recorder) add(format string, args ...any) {
	h.mu.Lock()
	h.calls = append(h.calls, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

func (h *recorder) Cast(output, payload []byte) { h.add("cast %s %s", output, payload) }
func (h *recorder) CastRaw(to core.InstanceID, payload []byte) {
	h.add("cast_raw %s %s", to, payload)
}
func (h *recorder) Call(output, payload []byte) (core.CallRet, []byte) {
	h.add("call %s %s", output, payload)
	return core.CallReply, []byte("42")
}
func (h *recorder) CallRaw(to core.InstanceID, payload []byte) (core.CallRet, []byte) {
	h.add("call_raw %s %s", to, payload)
	return core.CallReply, []byte("raw")
}
func (h *recorder) DelayedCast(ms int64, output, payload []byte) {
	h.add("delayed_cast %d %s %s", ms, output, payload)
}
func (h *recorder) Sync(state []byte) {
	h.mu.Lock()
	h.state = append([]byte(nil), state...)
	h.mu.Unlock()
	h.add("sync %s", state)
}
func (h *recorder) TelemetryLog(level int32, target, msg []byte) {
	h.add("log %d %s %s", level, target, msg)
}
func (h *recorder) Self() core.InstanceID { return h.self }

func (h *recorder) has(call string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.calls {
		if c == call {
			return true
		}
	}
	return false
}

func (h *recorder) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.calls, "\n")
}

func start(t *testing.T, r *Runtime, s Spec, h Host, init string, state []byte) *Instance {
	t.Helper()
	i, err := r.Instantiate(context.Background(), s, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(i.Close)
	if err := i.Init([]byte(init), state); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return i
}

func call(t *testing.T, i *Instance, msg string) (core.CallRet, string) {
	t.Helper()
	ret, reply, err := i.Call(core.InstanceID{}, []byte(msg))
	if err != nil {
		t.Fatalf("call %q: %v", msg, err)
	}
	return ret, string(reply)
}

// TestHostCalls has a Python container function make every GuestAPIHost
// call, and checks what reached the Host and what the function got back.
func TestHostCalls(t *testing.T) {
	r := newRuntime(t, nil)
	h := newRecorder()
	i := start(t, r, Spec{Image: "edgeless-testfn-py:latest"}, h, "a=1", []byte("7"))
	if ret, got := call(t, i, "init"); ret != core.CallReply || got != "a=1" {
		t.Fatalf("init payload = %v %q, want a=1", ret, got)
	}
	if _, got := call(t, i, "state"); got != "7" {
		t.Fatalf("state handed to init = %q, want 7", got)
	}
	src := core.InstanceID{Node: core.NewID(), Component: core.NewID()}
	ret, reply, err := i.Call(src, []byte("hostcalls"))
	if err != nil || ret != core.CallReply {
		t.Fatalf("hostcalls = %v, %v", ret, err)
	}
	want := fmt.Sprintf("%s %s 1 42 1 raw", h.self.Node, h.self.Component)
	if string(reply) != want {
		t.Fatalf("hostcalls replied %q, want %q", reply, want)
	}
	for _, c := range []string{
		"log 3 testfn init a=1",
		"cast out cast",
		"cast_raw " + src.String() + " cast_raw",
		"call peer 21",
		"call_raw " + src.String() + " call_raw",
		"delayed_cast 50 out delayed",
		"log 2 testfn telemetry",
		"sync synced",
	} {
		if !h.has(c) {
			t.Errorf("host call %q missing; got:\n%s", c, h)
		}
	}
	// A host call from a thread of the function, made while no handler
	// runs, is refused.
	call(t, i, "later")
	time.Sleep(500 * time.Millisecond) // no handler runs when it calls, 200 ms later
	testutil.Eventually(t, 5*time.Second, "the late host call refused", func() bool {
		switch _, got := call(t, i, "late"); got {
		case "FAILED_PRECONDITION":
			return true
		case "pending":
			return false
		default:
			t.Fatalf("a host call outside a handler: %q, want FAILED_PRECONDITION", got)
			return false
		}
	})
	if ret, _ := call(t, i, "noreply"); ret != core.CallNoReply {
		t.Errorf("noreply = %v, want CallNoReply", ret)
	}
	if ret, _ := call(t, i, "fail"); ret != core.CallErr {
		t.Errorf("fail = %v, want CallErr", ret)
	}
	// A cast counts from the state, syncs and casts the count.
	if err := i.Cast(src, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if !h.has("sync 8") || !h.has("cast out 8") {
		t.Fatalf("cast did not sync and cast 8:\n%s", h)
	}
	if err := i.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// TestGoFunction runs the Go example image, with EDGELESS's loopback
// guest_api_host_url, which the runtime moves to the network's gateway.
func TestGoFunction(t *testing.T) {
	r := newRuntime(t, func(c *Config) { c.HostURL = "http://127.0.0.1:0" })
	if strings.Contains(r.Endpoint(), "127.0.0.1") {
		t.Fatalf("containers are told to call %s, their own loopback", r.Endpoint())
	}
	h := newRecorder()
	i := start(t, r, Spec{Image: "edgeless-double-go:latest"}, h, "", nil)
	if ret, got := call(t, i, "21"); ret != core.CallReply || got != "42" {
		t.Fatalf("call 21 = %v %q, want 42", ret, got)
	}
	if err := i.Cast(core.InstanceID{}, []byte("5")); err != nil {
		t.Fatal(err)
	}
	if !h.has("cast output 10") {
		t.Fatalf("cast 5 did not cast 10:\n%s", h)
	}
}

// TestCrashAndHang: a container that exits in a handler, and one that hangs
// past the handler timeout, fail their instance with the reason, and their
// containers are gone.
func TestCrashAndHang(t *testing.T) {
	r := newRuntime(t, func(c *Config) { c.HandlerTimeout = time.Second })
	f := func(cmd string, want error) {
		t.Helper()
		i := start(t, r, Spec{Image: "edgeless-testfn-py:latest"}, newRecorder(), "", nil)
		id := i.own.id
		_, _, err := i.Call(core.InstanceID{}, []byte(cmd))
		if !errors.Is(err, want) {
			t.Fatalf("%s: err = %v, want %v", cmd, err, want)
		}
		if _, _, err := i.Call(core.InstanceID{}, []byte("count")); !errors.Is(err, ErrDead) {
			t.Fatalf("%s: a later call = %v, want ErrDead", cmd, err)
		}
		if _, err := r.docker.ContainerInspect(context.Background(), id); err == nil {
			t.Fatalf("%s: container %s still exists", cmd, id[:12])
		}
	}
	f("crash", ErrExited)
	f("hang", ErrHung)
}

// TestExitedWhileIdle: a container killed between events closes Exited.
func TestExitedWhileIdle(t *testing.T) {
	r := newRuntime(t, nil)
	i := start(t, r, Spec{Image: "edgeless-testfn-py:latest"}, newRecorder(), "", nil)
	if err := r.docker.ContainerKill(context.Background(), i.own.id, "KILL"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-i.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("Exited not closed 10 s after the container was killed")
	}
}

// TestMemoryLimit: Docker enforces memory_mb: the container is limited, an
// allocation within it succeeds and one past it kills the container.
func TestMemoryLimit(t *testing.T) {
	r := newRuntime(t, nil)
	i := start(t, r, Spec{Image: "edgeless-testfn-py:latest", MemoryMB: 64, CPUs: 0.5}, newRecorder(), "", nil)
	info, err := r.docker.ContainerInspect(context.Background(), i.own.id)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.HostConfig.Memory; got != 64<<20 {
		t.Fatalf("memory limit = %d, want %d", got, 64<<20)
	}
	if got := info.HostConfig.NanoCPUs; got != 5e8 {
		t.Fatalf("CPU limit = %d nano-CPUs, want 5e8", got)
	}
	if _, got := call(t, i, "alloc 16"); got != "16" {
		t.Fatalf("alloc 16 = %q", got)
	}
	_, _, err = i.Call(core.InstanceID{}, []byte("alloc 128"))
	if !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("alloc 128 in 64 MiB: err = %v, want ErrMemoryLimit", err)
	}
}

// TestPython310 runs a Serverledge-style handler from a source file in
// pooled containers: the pool is reused, an idle container is evicted (scale
// to zero), a crashed container is replaced, and the function lives on.
func TestPython310(t *testing.T) {
	r := newRuntime(t, func(c *Config) { c.IdleExpiration = 1500 * time.Millisecond })
	src := []byte(`import os

def handler(params, context):
    if params.get("crash"):
        os._exit(1)
    return {"sum": params["a"] + params["b"], "pid": os.getpid()}
`)
	s := Spec{Image: "edgeless-python:latest", Runtime: "python310", Code: src, Handler: "adder.handler"}
	i := start(t, r, s, newRecorder(), "", nil)
	ret, got := call(t, i, `{"a": 2, "b": 3}`)
	if ret != core.CallReply || !strings.HasPrefix(got, `{"sum": 5, "pid": `) {
		t.Fatalf("handler = %v %q", ret, got)
	}
	if _, again := call(t, i, `{"a": 2, "b": 3}`); again != got {
		t.Fatalf("second call ran elsewhere: %q, then %q; want the warm container reused", got, again)
	}
	if n := countContainers(t, r, "python310"); n != 1 {
		t.Fatalf("%d python310 containers, want 1", n)
	}
	testutil.Eventually(t, 10*time.Second, "the idle container's eviction", func() bool { return countContainers(t, r, "python310") == 0 })
	// Cold start after scaling to zero, then a crash that is replaced.
	if ret, _ := call(t, i, `{"crash": true}`); ret != core.CallErr {
		t.Fatalf("crash = %v, want CallErr", ret)
	}
	if ret, got := call(t, i, `{"a": 1, "b": 1}`); ret != core.CallReply || !strings.HasPrefix(got, `{"sum": 2`) {
		t.Fatalf("after the crash = %v %q", ret, got)
	}
}

// TestPython310Archive loads a handler from a tar archive of modules.
func TestPython310Archive(t *testing.T) {
	r := newRuntime(t, nil)
	var tarball bytes.Buffer
	writeTar(t, &tarball, map[string]string{
		"pkg/__init__.py": "",
		"pkg/util.py":     "def greet(name):\n    return 'hello ' + name\n",
		"main.py":         "from pkg.util import greet\n\ndef handler(params, context):\n    return greet(params['name'])\n",
	})
	s := Spec{Image: "edgeless-python:latest", Runtime: "python310", Code: tarball.Bytes(), Handler: "main.handler"}
	i := start(t, r, s, newRecorder(), "", nil)
	if ret, got := call(t, i, `{"name": "edge"}`); ret != core.CallReply || got != `"hello edge"` {
		t.Fatalf("handler = %v %q", ret, got)
	}
}

// TestPython310Spare: a pooled container can come from a spare started
// before the function was known; its code comes with Init.
func TestPython310Spare(t *testing.T) {
	r := newRuntime(t, func(c *Config) { c.Spares = 1 })
	s := Spec{Image: "edgeless-python:latest", Runtime: "python310", Code: []byte("def h(p, c):\n    return p * 3\n"), Handler: "triple.h"}
	k := s.Image
	r.refill(k)
	testutil.Eventually(t, 20*time.Second, "a spare container", func() bool { return r.spareCount(k) == 1 })
	i := start(t, r, s, newRecorder(), "", nil)
	if ret, got := call(t, i, "7"); ret != core.CallReply || got != "21" {
		t.Fatalf("call 7 = %v %q, want 21", ret, got)
	}
	if n := countContainers(t, r, "spare"); n < 1 {
		t.Fatal("the pooled container is not the spare")
	}
}

// TestBadHandler: a handler that cannot load fails Init with the reason.
func TestBadHandler(t *testing.T) {
	r := newRuntime(t, nil)
	i, err := r.Instantiate(context.Background(), Spec{Image: "edgeless-python:latest", Runtime: "python310", Code: []byte("x = 1\n"), Handler: "m.handler"}, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	if err := i.Init(nil, nil); err == nil || !strings.Contains(err.Error(), "m.handler") {
		t.Fatalf("Init = %v, want an error naming the handler", err)
	}
}

// TestOrphansRemoved: a container left by a node with the same id is removed
// when a runtime starts; another live node's container is not.
func TestOrphansRemoved(t *testing.T) {
	r1 := newRuntime(t, nil)
	i := start(t, r1, Spec{Image: "edgeless-double-go:latest"}, newRecorder(), "", nil)
	other := newRuntime(t, nil)
	j := start(t, other, Spec{Image: "edgeless-double-go:latest"}, newRecorder(), "", nil)
	newRuntime(t, func(c *Config) { c.NodeID = r1.cfg.NodeID }) // r1's node restarted
	if _, err := r1.docker.ContainerInspect(context.Background(), i.own.id); err == nil {
		t.Fatal("the restarted node's old container survived")
	}
	if _, err := other.docker.ContainerInspect(context.Background(), j.own.id); err != nil {
		t.Fatalf("a live node's container was removed: %v", err)
	}
}

// TestMissingImage fails with a clear error and leaves no container.
func TestMissingImage(t *testing.T) {
	r := newRuntime(t, nil)
	_, err := r.Instantiate(context.Background(), Spec{Image: "edgeless-no-such-image:latest"}, newRecorder())
	if !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), "edgeless-no-such-image") {
		t.Fatalf("err = %v, want ErrNoImage naming the image", err)
	}
}

func TestImage(t *testing.T) {
	f := func(code, want string, ok bool) {
		t.Helper()
		got, err := Image(code)
		if (err == nil) != ok || got != want {
			t.Errorf("Image(%q) = %q, %v; want %q, ok=%v", code, got, err, want, ok)
		}
	}
	f("container:edgeless-double-py:latest", "edgeless-double-py:latest", true)
	f("edgeless-double-py", "edgeless-double-py", true)
	f("container:", "", false)
	f("container:a b", "", false)
}

func countContainers(t *testing.T, r *Runtime, kind string) int {
	t.Helper()
	list, err := r.docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelNode+"="+r.cfg.NodeID.String()), filters.Arg("label", labelKind+"="+kind))})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// TestSpares: with a spare container kept per image, the next instance of
// the image takes the started container instead of creating one.
func TestSpares(t *testing.T) {
	r := newRuntime(t, func(c *Config) { c.Spares = 1 })
	s := Spec{Image: "edgeless-double-go:latest"}
	start(t, r, s, newRecorder(), "", nil)
	var spare *box
	testutil.Eventually(t, 20*time.Second, "a spare container", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if l := r.spares.boxes[s.Image]; len(l) == 1 {
			spare = l[0]
		}
		return spare != nil
	})
	i := start(t, r, s, newRecorder(), "", nil)
	if i.own != spare {
		t.Fatal("the second instance did not take the spare container")
	}
	if ret, got := call(t, i, "4"); ret != core.CallReply || got != "8" {
		t.Fatalf("call 4 on the spare = %v %q", ret, got)
	}
}

// TestOrphanOfDeadProcess: a container labelled with a process of this host
// that is gone, or a zombie, or whose pid another process has since, is an
// orphan; one of a live process is not.
func TestOrphanOfDeadProcess(t *testing.T) {
	r, err := New(Config{NodeID: core.NewID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	zombie := cmd.Process.Pid
	testutil.Eventually(t, 5*time.Second, "the child to become a zombie", func() bool { state, _, _ := procStat(zombie); return state == "Z" })
	labels := func(pid int, start string) map[string]string {
		return map[string]string{LabelNode: core.NewID().String(), labelHost: r.labels[labelHost],
			labelPID: strconv.Itoa(pid), labelStart: start}
	}
	f := func(name string, l map[string]string, want bool) {
		t.Helper()
		if got := r.orphan(l); got != want {
			t.Errorf("%s: orphan = %v, want %v", name, got, want)
		}
	}
	f("live", labels(os.Getpid(), r.labels[labelStart]), false)
	f("zombie", labels(zombie, ""), true)
	f("pid reused", labels(os.Getpid(), "1"), true)
	cmd.Wait()
	f("gone", labels(zombie, ""), true)
	other := labels(zombie, "")
	other[labelHost] = "another-host"
	f("another host's", other, false)
	f("same node id", map[string]string{LabelNode: r.labels[LabelNode]}, true)
}

// TestSpareLimits: a spare started with the default limits gets the
// function's memory and CPU limits when an instance takes it, and Docker
// enforces them.
func TestSpareLimits(t *testing.T) {
	r := newRuntime(t, func(c *Config) { c.Spares = 1; c.Prestart = []string{"edgeless-testfn-py:latest"} })
	testutil.Eventually(t, 20*time.Second, "a prestarted spare", func() bool { return r.spareCount("edgeless-testfn-py:latest") == 1 })
	i := start(t, r, Spec{Image: "edgeless-testfn-py:latest", MemoryMB: 64, CPUs: 0.5}, newRecorder(), "", nil)
	info, err := r.docker.ContainerInspect(context.Background(), i.own.id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Labels[labelKind] != "spare" {
		t.Fatal("the instance did not take the spare")
	}
	if info.HostConfig.Memory != 64<<20 || info.HostConfig.NanoCPUs != 5e8 {
		t.Fatalf("limits = %d B, %d nano-CPUs; want 64 MiB, 5e8", info.HostConfig.Memory, info.HostConfig.NanoCPUs)
	}
	if _, _, err := i.Call(core.InstanceID{}, []byte("alloc 128")); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("alloc 128 in 64 MiB: err = %v, want ErrMemoryLimit", err)
	}
}

// spareCount returns how many spare containers of image r keeps.
func (r *Runtime) spareCount(image string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spares.boxes[image])
}
