package sandbox

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wasmtime "github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// hostCall is one call a recordingHost received, with its byte arguments
// copied.
type hostCall struct {
	Op    string
	Out   string // output name or log target
	Data  []byte // payload, state or log message
	ID    core.InstanceID
	N     int64 // delay or log level
	Reply core.CallRet
}

// recordingHost is a Host that records every call and answers calls with a
// fixed result.
type recordingHost struct {
	self  core.InstanceID
	ret   core.CallRet
	reply []byte
	delay time.Duration // how long Call and CallRaw take
	panic string        // Op whose call panics
	calls []hostCall
}

func (h *recordingHost) record(c hostCall) {
	c.Data = bytes.Clone(c.Data)
	if len(c.Data) == 0 {
		c.Data = nil // empty is empty, whether nil or not
	}
	h.calls = append(h.calls, c)
	if c.Op == h.panic {
		panic("boom in " + c.Op)
	}
}

func (h *recordingHost) Cast(out, p []byte) {
	h.record(hostCall{Op: "cast", Out: string(out), Data: p})
}
func (h *recordingHost) CastRaw(t core.InstanceID, p []byte) {
	h.record(hostCall{Op: "cast_raw", ID: t, Data: p})
}
func (h *recordingHost) Call(out, p []byte) (core.CallRet, []byte) {
	h.record(hostCall{Op: "call", Out: string(out), Data: p})
	time.Sleep(h.delay) // stands for waiting on a remote reply
	return h.ret, h.reply
}
func (h *recordingHost) CallRaw(t core.InstanceID, p []byte) (core.CallRet, []byte) {
	h.record(hostCall{Op: "call_raw", ID: t, Data: p})
	return h.ret, h.reply
}
func (h *recordingHost) DelayedCast(ms int64, out, p []byte) {
	h.record(hostCall{Op: "delayed_cast", N: ms, Out: string(out), Data: p})
}
func (h *recordingHost) Sync(s []byte) { h.record(hostCall{Op: "sync", Data: s}) }
func (h *recordingHost) TelemetryLog(level int32, target, msg []byte) {
	h.record(hostCall{Op: "log", N: int64(level), Out: string(target), Data: msg})
}
func (h *recordingHost) Self() core.InstanceID {
	h.record(hostCall{Op: "self"})
	return h.self
}

// take returns the calls recorded so far and forgets them.
func (h *recordingHost) take() []hostCall {
	c := h.calls
	h.calls = nil
	return c
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newRuntime(t testing.TB, cfg Config) *Runtime {
	t.Helper()
	if cfg.MaxInstances == 0 {
		cfg.MaxInstances = 16 // keeps the pool's address-space reservation small
	}
	r, err := New(cfg, testLogger())
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

func wat(t testing.TB, src string) []byte {
	t.Helper()
	b, err := wasmtime.Wat2Wasm(src)
	if err != nil {
		t.Fatalf("cannot compile WAT: %v\n%s", err, src)
	}
	return b
}

func load(t testing.TB, r *Runtime, code []byte) *Module {
	t.Helper()
	m, err := r.Load(code)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func instantiate(t testing.TB, r *Runtime, m *Module, h Host) *Instance {
	t.Helper()
	i, err := r.Instantiate(m, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(i.Close)
	return i
}

// noopExports is the ABI's required exports with empty handlers; tests
// splice other functions or imports around it.
const noopExports = `
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func (export "edgeless_mem_alloc") (param $n i32) (result i32) (local $p i32)
    global.get $top
    local.set $p
    local.get $p
    local.get $n
    i32.add
    i32.const 7
    i32.add
    i32.const -8
    i32.and
    global.set $top
    local.get $p)
  (func (export "edgeless_mem_free") (param i32 i32))
  (func (export "edgeless_mem_clear") i32.const 1024 global.set $top)
  (func (export "handle_init_asm") (param i32 i32 i32 i32))
  (func (export "handle_stop_asm"))
`

// noopWAT is a complete module whose handlers do nothing and whose calls
// answer NoReply.
const noopWAT = `(module` + noopExports + `
  (func (export "handle_cast_asm") (param i32 i32 i32 i32))
  (func (export "handle_call_asm") (param i32 i32 i32 i32 i32 i32) (result i32) i32.const 0))`

// abiGuestC exercises every import and export of the ABI. The first payload
// byte picks what a handler does; the allocator logs its calls so tests can
// check the host's order of allocation and freeing.
const abiGuestC = `
#include <stdint.h>
typedef uint32_t u32;
#define IMPORT(n) __attribute__((import_module("env"), import_name(n)))
#define EXPORT(n) __attribute__((export_name(n)))

IMPORT("cast_raw_asm") void cast_raw_asm(const void *node, const void *comp, const void *p, u32 n);
IMPORT("cast_asm") void cast_asm(const char *t, u32 tl, const void *p, u32 n);
IMPORT("call_raw_asm") int call_raw_asm(const void *node, const void *comp, const void *p, u32 n, u32 *op, u32 *ol);
IMPORT("call_asm") int call_asm(const char *t, u32 tl, const void *p, u32 n, u32 *op, u32 *ol);
IMPORT("telemetry_log_asm") void telemetry_log_asm(int level, const char *t, u32 tl, const char *m, u32 ml);
IMPORT("slf_asm") void slf_asm(void *node, void *comp);
IMPORT("delayed_cast_asm") void delayed_cast_asm(int64_t ms, const char *t, u32 tl, const void *p, u32 n);
IMPORT("sync_asm") void sync_asm(const void *p, u32 n);

void *memcpy(void *d, const void *s, unsigned long n) {
  unsigned char *dd = d; const unsigned char *ss = s;
  while (n--) *dd++ = *ss++;
  return d;
}

static unsigned char heap[1 << 16];
static u32 top;
static u32 alog[256];
static u32 nlog;
static unsigned char buf[4096];
volatile u32 spin;

static void logev(u32 op, u32 n) { if (nlog < 256) alog[nlog++] = op << 24 | n; }

EXPORT("edgeless_mem_alloc") void *mem_alloc(u32 n) {
  top = (top + 7) & ~7u;
  void *p = heap + top;
  top += n;
  logev('A', n);
  return p;
}
EXPORT("edgeless_mem_free") void mem_free(void *p, u32 n) { logev('F', n); }
EXPORT("edgeless_mem_clear") void mem_clear(void) { top = 0; logev('C', 0); }

static void put32(unsigned char *b, u32 v) { b[0] = v; b[1] = v >> 8; b[2] = v >> 16; b[3] = v >> 24; }

// report casts "ret": the call's code, the reply length and the reply.
static void report(int r, u32 rp, u32 rl) {
  put32(buf, (u32)r);
  put32(buf + 4, rl);
  u32 n = 8;
  if (r == 1) { memcpy(buf + 8, (void *)rp, rl); n += rl; mem_free((void *)rp, rl); }
  cast_asm("ret", 3, buf, n);
}

EXPORT("handle_cast_asm") void handle_cast(const unsigned char *node, const unsigned char *comp, const unsigned char *p, u32 n) {
  u32 rp = 0xAAAA, rl = 0xBBBB;
  int64_t ms;
  switch (p[0]) {
  case 'c': cast_asm("out", 3, p + 1, n - 1); break;
  case 'r': cast_raw_asm(p + 1, p + 17, p + 33, n - 33); break;
  case 'l': telemetry_log_asm(3, "tgt", 3, (const char *)p + 1, n - 1); break;
  case 's': sync_asm(p + 1, n - 1); break;
  case 'd': memcpy(&ms, p + 1, 8); delayed_cast_asm(ms, "later", 5, p + 9, n - 9); break;
  case 'S': slf_asm(buf, buf + 16); cast_asm("slf", 3, buf, 32); break;
  case 'C': report(call_asm("out", 3, p + 1, n - 1, &rp, &rl), rp, rl); break;
  case 'R': report(call_raw_asm(p + 1, p + 17, p + 33, n - 33, &rp, &rl), rp, rl); break;
  case 'E': memcpy(buf, node, 16); memcpy(buf + 16, comp, 16); cast_asm("src", 3, buf, 32); break;
  case 'A': cast_asm("alog", 4, alog, nlog * 4); nlog = 0; break;
  case 'u': __builtin_trap();
  case 'L': for (;;) spin++;
  case 'G': while (__builtin_wasm_memory_grow(0, 1) != -1) {} __builtin_trap();
  case 'O': cast_asm("out", 3, (void *)0xFFFFFFF0u, 100); break;
  case 'P': call_asm("out", 3, p, n, (u32 *)0xFFFFFFFEu, &rl); break;
  case 'M': telemetry_log_asm(1, "t", 1, (const char *)p, 0x7FFFFFFF); break;
  case 'N': slf_asm((void *)0xFFFFFFF8u, buf); break;
  case 'X': *(volatile u32 *)0xFFFFFFF0u = 1; break;
  case 'V': handle_cast(node, comp, p, n + spin); spin++; break;
  case 'Q': // casts around other imports, one too large to queue, then a trap if asked
    cast_asm("out", 3, "1", 1);
    cast_raw_asm(buf, buf + 16, "2", 1);
    telemetry_log_asm(3, "tgt", 3, "3", 1);
    cast_asm("out", 3, "4", 1);
    cast_asm("big", 3, heap, sizeof heap);
    cast_asm("out", 3, "5", 1);
    if (n > 1 && p[1] == 'u') __builtin_trap();
    break;
  }
}

EXPORT("handle_call_asm") int handle_call(const unsigned char *node, const unsigned char *comp, const unsigned char *p, u32 n, u32 *op, u32 *ol) {
  unsigned char *r;
  switch (p[0]) {
  case 'r': // reply 0x00 0xFF 0xFE followed by the rest of the payload
    r = mem_alloc(n + 2);
    r[0] = 0x00; r[1] = 0xFF; r[2] = 0xFE;
    memcpy(r + 3, p + 1, n - 1);
    *op = (u32)r; *ol = n + 2;
    return 1;
  case 'i':
    r = mem_alloc(32);
    memcpy(r, node, 16); memcpy(r + 16, comp, 16);
    *op = (u32)r; *ol = 32;
    return 1;
  case 'z': *op = 0; *ol = 0; return 1;
  case 'n': return 0;
  case 'e': return 2;
  case 'x': return 7;
  case 'b': *op = 0xFFFFFF00u; *ol = 1000; return 1;
  case 'u': __builtin_trap();
  }
  return 2;
}

EXPORT("handle_init_asm") void handle_init(const unsigned char *p, u32 pl, const unsigned char *s, u32 sl) {
  if (p) cast_asm("init-payload", 12, p, pl); else cast_asm("init-payload-none", 17, 0, 0);
  if (s) cast_asm("init-state", 10, s, sl); else cast_asm("init-state-none", 15, 0, 0);
}

EXPORT("handle_stop_asm") void handle_stop(void) { cast_asm("stop", 4, 0, 0); }
`

// wasiGuestC is a reactor built against wasi-libc: it allocates with malloc
// and writes to stderr, so it imports wasi_snapshot_preview1.
const wasiGuestC = `
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef uint32_t u32;
#define EXPORT(n) __attribute__((export_name(n)))
__attribute__((import_module("env"), import_name("cast_asm"))) void cast_asm(const char *t, u32 tl, const void *p, u32 n);

static int inits;
EXPORT("edgeless_mem_alloc") void *mem_alloc(u32 n) { return malloc(n ? n : 1); }
EXPORT("edgeless_mem_free") void mem_free(void *p, u32 n) { free(p); }
EXPORT("edgeless_mem_clear") void mem_clear(void) {}
EXPORT("handle_init_asm") void handle_init(const char *p, u32 pl, const char *s, u32 sl) { inits++; }
EXPORT("handle_stop_asm") void handle_stop(void) {}
EXPORT("handle_cast_asm") void handle_cast(const void *node, const void *comp, const char *p, u32 n) {
  char *m = malloc(n + 16);
  int k = snprintf(m, 16, "wasi%d:", inits);
  memcpy(m + k, p, n);
  fprintf(stderr, "wasi guest got %u bytes\n", n);
  cast_asm("out", 3, m, k + n);
  free(m);
}
EXPORT("handle_call_asm") int handle_call(const void *node, const void *comp, const char *p, u32 n, u32 *op, u32 *ol) { return 0; }
`

// goGuest is a Go wasip1 reactor implementing the ABI with //go:wasmexport.
const goGuest = `package main

import "unsafe"

//go:wasmimport env cast_asm
func castAsm(t, tl, p, pl uint32)

var live = map[uint32][]byte{}
var inits int

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func at(p, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
}

//go:wasmexport edgeless_mem_alloc
func memAlloc(n uint32) uint32 {
	b := make([]byte, n+1)
	p := ptr(b)
	live[p] = b
	return p
}

//go:wasmexport edgeless_mem_free
func memFree(p, n uint32) { delete(live, p) }

//go:wasmexport edgeless_mem_clear
func memClear() {}

//go:wasmexport handle_init_asm
func handleInit(p, pl, s, sl uint32) { inits++ }

//go:wasmexport handle_cast_asm
func handleCast(node, comp, p, pl uint32) {
	out := []byte("out")
	msg := append([]byte{'g', 'o', byte('0' + inits), ':'}, at(p, pl)...)
	castAsm(ptr(out), uint32(len(out)), ptr(msg), uint32(len(msg)))
}

//go:wasmexport handle_call_asm
func handleCall(node, comp, p, pl, op, ol uint32) uint32 {
	r := memAlloc(pl + 1)
	b := at(r, pl+1)
	b[0] = '!'
	copy(b[1:], at(p, pl))
	*(*uint32)(unsafe.Pointer(uintptr(op))) = r
	*(*uint32)(unsafe.Pointer(uintptr(ol))) = pl + 1
	return 1
}

//go:wasmexport handle_stop_asm
func handleStop() {}

func main() {}
`

// build compiles a guest once per test binary with the command cmd, which
// gets the source file and output paths appended ("go" commands run in the
// source directory instead). It skips the test if the tool is missing.
func build(t testing.TB, key, file, src string, cmd ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(cmd[0]); err != nil {
		t.Skip(cmd[0] + " not installed")
	}
	wasm, err := testutil.Once("sandbox guest "+key, func() ([]byte, error) {
		dir, err := os.MkdirTemp("", "sandbox-guest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		in, out := filepath.Join(dir, file), filepath.Join(dir, "out.wasm")
		if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
			return nil, err
		}
		var c *exec.Cmd
		if cmd[0] == "go" {
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module guest\n\ngo 1.24\n"), 0o644); err != nil {
				return nil, err
			}
			c = exec.Command(cmd[0], append(cmd[1:], "-o", out, ".")...)
			c.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-buildvcs=false", "GOWORK=off")
		} else {
			c = exec.Command(cmd[0], append(cmd[1:], "-o", out, in)...)
		}
		c.Dir = dir
		if msg, err := c.CombinedOutput(); err != nil {
			return nil, &buildError{strings.Join(c.Args, " "), string(msg), err}
		}
		return os.ReadFile(out)
	})
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

type buildError struct {
	cmd, out string
	err      error
}

func (e *buildError) Error() string { return e.cmd + ": " + e.err.Error() + "\n" + e.out }

func abiGuest(t testing.TB) []byte {
	return build(t, "abi", "abi.c", abiGuestC,
		"clang", "--target=wasm32", "-O2", "-nostdlib", "-Wl,--no-entry")
}

func wasiGuest(t testing.TB) []byte {
	return build(t, "wasi", "wasi.c", wasiGuestC,
		"clang", "--target=wasm32-wasi", "-O2", "-mexec-model=reactor")
}

func goReactor(t testing.TB) []byte {
	return build(t, "go", "main.go", goGuest, "go", "build", "-buildmode=c-shared")
}
