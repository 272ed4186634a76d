package sandbox

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadChecksABI(t *testing.T) {
	r := newRuntime(t, Config{})
	f := func(name, src string, want ...string) {
		t.Helper()
		_, err := r.Load(wat(t, src))
		if !errors.Is(err, ErrABI) {
			t.Fatalf("%s: got %v, want an ErrABI error", name, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %q does not mention %q", name, err, w)
			}
		}
	}
	cast := `(func (export "handle_cast_asm") (param i32 i32 i32 i32))`
	call := `(func (export "handle_call_asm") (param i32 i32 i32 i32 i32 i32) (result i32) i32.const 0)`
	f("missing exports", `(module`+noopExports+`)`,
		"missing export(s) handle_cast_asm, handle_call_asm")
	f("empty module", `(module)`,
		"missing export(s) memory, edgeless_mem_alloc, edgeless_mem_free, edgeless_mem_clear, handle_cast_asm, handle_call_asm, handle_init_asm, handle_stop_asm")
	f("wrong handler type", `(module`+noopExports+call+`(func (export "handle_cast_asm") (param i32 i32 i32)))`,
		"exports handle_cast_asm as function (i32, i32, i32) -> (), want (i32, i32, i32, i32) -> ()")
	f("unknown env import", `(module (import "env" "launch_missiles" (func))`+noopExports+cast+call+`)`,
		"imports env.launch_missiles, which the host does not provide")
	f("wrong import type", `(module (import "env" "sync_asm" (func (param i64)))`+noopExports+cast+call+`)`,
		"imports env.sync_asm as function (i64) -> (), but the host provides (i32, i32) -> ()")
	f("other import module", `(module (import "edgeless" "cast" (func))`+noopExports+cast+call+`)`,
		"imports edgeless.cast, which the host does not provide")
	f("unknown WASI function", `(module (import "wasi_snapshot_preview1" "no_such_call" (func))`+noopExports+cast+call+`)`,
		"wasi_snapshot_preview1::no_such_call")
	f("bad _initialize", `(module`+noopExports+cast+call+`(func (export "_initialize") (param i32)))`,
		"exports _initialize as function (i32) -> (), want () -> ()")
	f("several problems", `(module (import "env" "nope" (func))`+noopExports+`)`,
		"missing export(s) handle_cast_asm, handle_call_asm", "imports env.nope")

	if _, err := r.Load([]byte("not wasm")); err == nil || errors.Is(err, ErrABI) {
		t.Fatalf("loading garbage: %v, want a compile error", err)
	}
}

func TestLoadAcceptsAllImports(t *testing.T) {
	r := newRuntime(t, Config{})
	src := `(module`
	for _, imp := range hostImports {
		src += `(import "env" "` + imp.name + `" (func ` + wasmSig(imp.sig) + `))`
	}
	src += noopExports + `(func (export "handle_cast_asm") (param i32 i32 i32 i32))
  (func (export "handle_call_asm") (param i32 i32 i32 i32 i32 i32) (result i32) i32.const 0))`
	load(t, r, wat(t, src))
}

func wasmSig(s signature) string {
	f := func(kw, sig string) string {
		if sig == "" {
			return ""
		}
		out := "(" + kw
		for _, c := range sig {
			if c == 'I' {
				out += " i64"
			} else {
				out += " i32"
			}
		}
		return out + ")"
	}
	return f("param", s.params) + f("result", s.results)
}
