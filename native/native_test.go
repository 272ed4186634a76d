package native

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

var (
	functionsDir string // functions/, its native functions built by TestMain
	probeSO      string // testdata/probe.c built by TestMain
)

// TestMain builds the native functions with the Makefile, as `make test`
// does, and the test-only probe function with the same flags.
func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if functionsDir, err = testutil.Functions("native"); err != nil {
			fmt.Fprintln(os.Stderr, "cannot build the native functions (gcc is needed):", err)
			return 1
		}
		dir, err := os.MkdirTemp("", "native-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		probeSO = filepath.Join(dir, "probe.so")
		sdk := filepath.Join(functionsDir, "sdk", "c")
		out, err := exec.Command("gcc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-fvisibility=hidden",
			"-I"+sdk, "-I.", "-shared", "-pthread", "-o", probeSO, "testdata/probe.c",
			filepath.Join(sdk, "edgeless.c"), filepath.Join(sdk, "edgeless_native.c")).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "cannot build testdata/probe.c: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// so returns the bytes of functions/<name>/<name>.so.
func so(t testing.TB, name string) []byte {
	t.Helper()
	code, err := os.ReadFile(filepath.Join(functionsDir, name, name+".so"))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	r, err := New(Config{Dir: t.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func start(t testing.TB, r *Runtime, code []byte, h Host, init string) *Instance {
	t.Helper()
	m, err := r.Load(code)
	if err != nil {
		t.Fatal(err)
	}
	i, err := r.Instantiate(m, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(i.Close)
	if err := i.Init([]byte(init), nil); err != nil {
		t.Fatal(err)
	}
	return i
}

// hostCall is one call a recorder received, with its bytes copied.
type hostCall struct {
	Op   string
	Out  string // output name or log target
	Data string // payload, state or log message
	ID   core.InstanceID
	N    int64 // delay or log level
}

// recorder is a Host that records every call, answers calls with a fixed
// result and panics in the call named by panic.
type recorder struct {
	self  core.InstanceID
	ret   core.CallRet
	reply []byte
	panic string
	calls []hostCall
	// during runs inside Cast, to call back into the instance.
	during func()
}

func (h *recorder) record(c hostCall) {
	h.calls = append(h.calls, c)
	if c.Op == h.panic {
		panic("boom in " + c.Op)
	}
}

func (h *recorder) Cast(out, p []byte) {
	h.record(hostCall{Op: "cast", Out: string(out), Data: string(p)})
	if h.during != nil {
		h.during()
	}
}
func (h *recorder) CastRaw(to core.InstanceID, p []byte) {
	h.record(hostCall{Op: "cast_raw", ID: to, Data: string(p)})
}
func (h *recorder) Call(out, p []byte) (core.CallRet, []byte) {
	h.record(hostCall{Op: "call", Out: string(out), Data: string(p)})
	return h.ret, h.reply
}
func (h *recorder) CallRaw(to core.InstanceID, p []byte) (core.CallRet, []byte) {
	h.record(hostCall{Op: "call_raw", ID: to, Data: string(p)})
	return h.ret, h.reply
}
func (h *recorder) DelayedCast(ms int64, out, p []byte) {
	h.record(hostCall{Op: "delayed_cast", N: ms, Out: string(out), Data: string(p)})
}
func (h *recorder) Sync(s []byte) { h.record(hostCall{Op: "sync", Data: string(s)}) }
func (h *recorder) TelemetryLog(level int32, target, msg []byte) {
	h.record(hostCall{Op: "log", N: int64(level), Out: string(target), Data: string(msg)})
}
func (h *recorder) Self() core.InstanceID {
	h.record(hostCall{Op: "self"})
	return h.self
}

// take returns the calls recorded so far and forgets them.
func (h *recorder) take() []hostCall {
	c := h.calls
	h.calls = nil
	return c
}

func (h *recorder) expect(t *testing.T, what string, want ...hostCall) {
	t.Helper()
	if got := h.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: host calls\n%+v\nwant\n%+v", what, got, want)
	}
}

var (
	srcID  = core.InstanceID{Node: core.ID{1, 2, 3}, Component: core.ID{4, 5, 6}}
	selfID = core.InstanceID{Node: core.ID{0xaa}, Component: core.ID{0xbb, 0xcc}}
)

func TestLoadRefuses(t *testing.T) {
	r := newRuntime(t)
	noop := so(t, "noop")
	patch := func(at int, b ...byte) []byte {
		c := bytes.Clone(noop)
		copy(c[at:], b)
		return c
	}
	wasm, err := os.ReadFile(filepath.Join(functionsDir, "noop", "noop.wasm"))
	if err != nil {
		wasm = []byte("\x00asm\x01\x00\x00\x00") // built only by the full Makefile
	}
	f := func(name string, code []byte, sentinel error, want string) {
		t.Helper()
		_, err := r.Load(code)
		if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: Load error = %v, want %v containing %q", name, err, sentinel, want)
		}
		if !strings.HasPrefix(err.Error(), "cannot load native function: ") {
			t.Fatalf("%s: error %q does not say what failed", name, err)
		}
	}
	f("empty", nil, ErrFormat, "the code is empty")
	f("text", []byte("#!/bin/sh\necho hi\n"), ErrFormat, "not an ELF file (starts with 23 21 2f 62, want 7f 45 4c 46)")
	f("wasm", wasm, ErrFormat, "not an ELF file but a WebAssembly module (use function type RUST_WASM)")
	f("truncated", noop[:40], ErrFormat, "malformed ELF file")
	f("aarch64", patch(18, byte(183), 0), ErrFormat, "ELF file built for EM_AARCH64 (ELFCLASS64, ELFDATA2LSB), this node runs linux/amd64 and needs EM_X86_64")
	f("executable", patch(16, 2, 0), ErrFormat, "ELF file of type ET_EXEC, want a shared object")
	f("no handlers", so(t, "bad_native"), ErrABI, "missing symbols edgeless_native_handle_init, edgeless_native_handle_cast, edgeless_native_handle_call, edgeless_native_handle_stop")
	f("future ABI", so(t, "wrong_abi"), ErrABI, "built for native ABI version 2 (edgeless_native_abi_version), this node supports version 1")
}

// TestInstantiateChecksAgain bypasses Load: the dynamic linker's view of
// the library is checked too, and every failure leaves nothing behind.
func TestInstantiateChecksAgain(t *testing.T) {
	r := newRuntime(t)
	f := func(name string, code []byte, sentinel error, want string) {
		t.Helper()
		_, err := r.Instantiate(&Module{rt: r, code: code}, &recorder{})
		if (sentinel != nil && !errors.Is(err, sentinel)) || err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: Instantiate error = %v, want %v containing %q", name, err, sentinel, want)
		}
		if left, _ := os.ReadDir(r.dir); len(left) != 0 {
			t.Fatalf("%s: files left in the runtime's directory: %v", name, left)
		}
	}
	f("not ELF", []byte("hello"), nil, "cannot load the library: ")
	f("no handlers", so(t, "bad_native"), ErrABI, "missing symbols edgeless_native_handle_init, edgeless_native_handle_cast, edgeless_native_handle_call, edgeless_native_handle_stop")
	f("future ABI", so(t, "wrong_abi"), ErrABI, "built for native ABI version 2")
	if r.live != 0 {
		t.Fatalf("%d instances counted after failed starts", r.live)
	}
}

func TestCounter(t *testing.T) {
	r := newRuntime(t)
	h := &recorder{}
	i := start(t, r, so(t, "counter"), h, "period=5,start=10")
	h.expect(t, "init", hostCall{Op: "delayed_cast", N: 5, Out: "self", Data: "wakeup"})
	for n := 11; n <= 13; n++ {
		if err := i.Cast(srcID, []byte("wakeup")); err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprint(n)
		h.expect(t, "wakeup "+v,
			hostCall{Op: "sync", Data: v},
			hostCall{Op: "cast", Out: "output", Data: v},
			hostCall{Op: "delayed_cast", N: 5, Out: "self", Data: "wakeup"})
	}
	if err := i.Cast(srcID, []byte("other")); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "other cast")
	ret, reply, err := i.Call(srcID, nil)
	if err != nil || ret != core.CallReply || string(reply) != "13" {
		t.Fatalf("Call = %v %q %v, want Reply 13", ret, reply, err)
	}
	if err := i.Stop(); err != nil {
		t.Fatal(err)
	}
	i.Close()
	i.Close()
	if err := i.Cast(srcID, nil); !errors.Is(err, ErrDead) {
		t.Fatalf("Cast after Close = %v, want ErrDead", err)
	}
}

func TestStateFromSync(t *testing.T) {
	r := newRuntime(t)
	h := &recorder{}
	m, _ := r.Load(so(t, "counter"))
	i, err := r.Instantiate(m, h)
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	if err := i.Init([]byte("start=1"), []byte("41")); err != nil {
		t.Fatal(err)
	}
	i.Cast(srcID, []byte("wakeup"))
	if c := h.calls[2]; c.Op != "cast" || c.Data != "42" {
		t.Fatalf("after state 41 the counter cast %+v, want 42", c)
	}
}

func TestDouble(t *testing.T) {
	r := newRuntime(t)
	h := &recorder{}
	i := start(t, r, so(t, "double"), h, "")
	f := func(in string, wantRet core.CallRet, want string) {
		t.Helper()
		ret, reply, err := i.Call(srcID, []byte(in))
		if err != nil || ret != wantRet || string(reply) != want {
			t.Fatalf("Call(%q) = %v %q %v, want %v %q", in, ret, reply, err, wantRet, want)
		}
	}
	f("21", core.CallReply, "42")
	f("-4611686018427387904", core.CallReply, "-9223372036854775808")
	f("4611686018427387904", core.CallErr, "")
	f("x", core.CallErr, "")
	f("", core.CallErr, "")
	if err := i.Cast(srcID, []byte("5")); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "cast", hostCall{Op: "cast", Out: "output", Data: "10"})
	i.Cast(srcID, nil)
	h.expect(t, "empty cast", hostCall{Op: "log", N: 1, Out: "double", Data: "input is not a 64-bit integer or the result overflows"})
}

// TestHostCalls drives every host call through the SDK and the host table.
func TestHostCalls(t *testing.T) {
	r := newRuntime(t)
	probe, err := os.ReadFile(probeSO)
	if err != nil {
		t.Fatal(err)
	}
	h := &recorder{self: selfID, ret: core.CallReply}
	i := start(t, r, probe, h, "")
	cast := func(cmd string, want ...hostCall) {
		t.Helper()
		if err := i.Cast(srcID, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
		h.expect(t, cmd, want...)
	}
	// A reply longer than the host's first buffer makes it grow.
	for _, n := range []int{0, 3, 5000} {
		h.reply = bytes.Repeat([]byte{'r', 0}, n)[:n]
		want := []hostCall{{Op: "call_raw", ID: srcID, Data: "q"}, {Op: "cast", Out: "out", Data: string(h.reply)}}
		cast("raw", want...)
	}
	h.ret = core.CallErr
	cast("raw", hostCall{Op: "call_raw", ID: srcID, Data: "q"})
	cast("self", hostCall{Op: "self"}, hostCall{Op: "cast_raw", ID: selfID, Data: "me"})
	cast("bin", hostCall{Op: "sync", Data: "a\x00b"}, hostCall{Op: "log", N: 2, Out: "probe", Data: "a\x00b"})

	for _, p := range []string{"", "x", "\x00\x01\x02"} {
		ret, reply, err := i.Call(srcID, []byte(p))
		if err != nil || ret != core.CallReply || string(reply) != p {
			t.Fatalf("Call(%q) = %v %q %v, want the payload back", p, ret, reply, err)
		}
	}
}

// TestOtherThreadRefused: a host call from a thread the function started is
// refused, and the handler's own calls go through.
func TestOtherThreadRefused(t *testing.T) {
	r := newRuntime(t)
	probe, _ := os.ReadFile(probeSO)
	h := &recorder{}
	i := start(t, r, probe, h, "")
	if err := i.Cast(srcID, []byte("thread")); err != nil {
		t.Fatal(err)
	}
	h.expect(t, "thread", hostCall{Op: "cast", Out: "out", Data: "after-thread"})
	if i.refused != 1 {
		t.Fatalf("refused host calls = %d, want 1", i.refused)
	}
}

// TestSeparateState: instances of the same library each get their own copy,
// so the statics of one are not those of another.
func TestSeparateState(t *testing.T) {
	r := newRuntime(t)
	code := so(t, "counter")
	var insts []*Instance
	for range 8 {
		insts = append(insts, start(t, r, code, &recorder{}, ""))
	}
	for k, i := range insts {
		for range k {
			if err := i.Cast(srcID, []byte("wakeup")); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, i := range insts {
		_, reply, err := i.Call(srcID, nil)
		if err != nil || string(reply) != fmt.Sprint(k) {
			t.Fatalf("instance %d counts %q (%v), want %d", k, reply, err, k)
		}
	}
	// Restarting one instance leaves the others alone.
	insts[3].Close()
	i := start(t, r, code, &recorder{}, "")
	if _, reply, _ := i.Call(srcID, nil); string(reply) != "0" {
		t.Fatalf("new instance counts %q, want 0", reply)
	}
	if _, reply, _ := insts[7].Call(srcID, nil); string(reply) != "7" {
		t.Fatalf("instance 7 counts %q after another restarted, want 7", reply)
	}
}

func TestHostPanic(t *testing.T) {
	r := newRuntime(t)
	f := func(fn, op, event string, call bool) {
		t.Helper()
		h := &recorder{panic: op, ret: core.CallReply, reply: []byte("r")}
		i := start(t, r, so(t, fn), h, "")
		var err error
		if call {
			_, _, err = i.Call(srcID, []byte(event))
		} else {
			err = i.Cast(srcID, []byte(event))
		}
		want := "native function failed in edgeless_native_handle_" + map[bool]string{true: "call", false: "cast"}[call] +
			": host call " + op + " panicked: boom in " + op
		if err == nil || err.Error() != want {
			t.Fatalf("%s: err = %v, want %q", fn, err, want)
		}
		if err := i.Cast(srcID, nil); !errors.Is(err, ErrDead) {
			t.Fatalf("%s: Cast after a host panic = %v, want ErrDead", fn, err)
		}
	}
	f("double", "cast", "1", false)
	f("counter", "sync", "wakeup", false)
	f("relay", "call", "x", true)
}

func TestReentry(t *testing.T) {
	r := newRuntime(t)
	h := &recorder{}
	i := start(t, r, so(t, "double"), h, "")
	var inner error
	h.during = func() { inner = i.Cast(srcID, []byte("1")) }
	if err := i.Cast(srcID, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, ErrReentered) {
		t.Fatalf("Cast from the host = %v, want ErrReentered", inner)
	}
}

// TestFiles: the copy of the library is gone once it is loaded, and the
// runtime's directory once the runtime is closed, which waits for the
// instances.
func TestFiles(t *testing.T) {
	r, err := New(Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Load(so(t, "noop"))
	if err != nil {
		t.Fatal(err)
	}
	i, err := r.Instantiate(m, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(r.dir); len(left) != 0 {
		t.Fatalf("files left after loading: %v", left)
	}
	if err := r.Close(); err == nil || !strings.Contains(err.Error(), "1 instances are still open") {
		t.Fatalf("Close with an open instance = %v", err)
	}
	i.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.dir); !os.IsNotExist(err) {
		t.Fatalf("runtime directory still there: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Instantiate(m, &recorder{}); !errors.Is(err, errClosed) {
		t.Fatalf("Instantiate after Close = %v", err)
	}
}
