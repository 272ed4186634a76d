package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// layoutProbe prints the size, alignment and field offsets of every struct
// wt.h declares, and the constants it defines.
const layoutProbe = `
#include <stdio.h>
#include <stddef.h>
#ifdef REAL
#include <wasmtime.h>
#else
#include "wt.h"
#endif
#define S(T) printf("%s size %zu align %zu\n", #T, sizeof(T), _Alignof(T));
#define O(T, f) printf("%s.%s at %zu\n", #T, #f, offsetof(T, f));
#define K(c) printf("%s = %d\n", #c, (int)(c));
int main(void) {
  S(wasm_byte_vec_t) O(wasm_byte_vec_t, size) O(wasm_byte_vec_t, data)
  S(wasm_valtype_vec_t) O(wasm_valtype_vec_t, size) O(wasm_valtype_vec_t, data)
  S(wasm_importtype_vec_t) O(wasm_importtype_vec_t, data)
  S(wasm_exporttype_vec_t) O(wasm_exporttype_vec_t, data)
  S(wasm_valkind_t) S(wasm_externkind_t) S(wasmtime_extern_kind_t) S(wasmtime_trap_code_t)
  S(wasmtime_func_t) O(wasmtime_func_t, store_id) O(wasmtime_func_t, __private)
  S(wasmtime_memory_t) O(wasmtime_memory_t, store_id) O(wasmtime_memory_t, __private1) O(wasmtime_memory_t, __private2)
  S(wasmtime_table_t) S(wasmtime_global_t)
  S(wasmtime_extern_union_t) S(wasmtime_extern_t) O(wasmtime_extern_t, kind) O(wasmtime_extern_t, of)
  S(wasmtime_instance_t) O(wasmtime_instance_t, store_id) O(wasmtime_instance_t, __private)
  S(wasmtime_val_raw_t) O(wasmtime_val_raw_t, i32) O(wasmtime_val_raw_t, i64) O(wasmtime_val_raw_t, funcref)
  K(WASM_I32) K(WASM_I64) K(WASM_F32) K(WASM_F64) K(WASM_EXTERNREF) K(WASM_FUNCREF)
  K(WASM_EXTERN_FUNC) K(WASM_EXTERN_GLOBAL) K(WASM_EXTERN_TABLE) K(WASM_EXTERN_MEMORY)
  K(WASMTIME_EXTERN_FUNC) K(WASMTIME_EXTERN_GLOBAL) K(WASMTIME_EXTERN_TABLE) K(WASMTIME_EXTERN_MEMORY)
  K(WASMTIME_EXTERN_SHAREDMEMORY)
  K(WASMTIME_TRAP_CODE_INTERRUPT)
  return 0;
}
`

// TestLayoutMatchesWasmtime compiles layoutProbe against wasmtime's own
// headers (from the wasmtime-go module) and against wt.h and compares the
// output; then compiles wt.h's prototypes after wasmtime's headers, which
// fails on any declaration that differs.
func TestLayoutMatchesWasmtime(t *testing.T) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skip("no C compiler")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/bytecodealliance/wasmtime-go/v39").Output()
	if err != nil {
		t.Skipf("cannot find the wasmtime-go module: %v", err)
	}
	include := filepath.Join(strings.TrimSpace(string(out)), "build", "include")
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe.c")
	if err := os.WriteFile(probe, []byte(layoutProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		exe := filepath.Join(dir, name)
		if out, err := exec.Command(cc, append(args, "-o", exe, probe)...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", cc, args, err, out)
		}
		out, err := exec.Command(exe).Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	real := run("real", "-DREAL", "-I", include)
	ours := run("ours", "-I", here)
	if real != ours {
		t.Fatalf("wt.h does not match wasmtime's headers:\nwasmtime:\n%s\nwt.h:\n%s", real, ours)
	}

	both := filepath.Join(dir, "both.c")
	src := "#include <wasmtime.h>\n#define EDG_WT_CHECK\n#include \"wt.h\"\n"
	if err := os.WriteFile(both, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-fsyntax-only", "-Werror", "-I", include, "-I", here, both).CombinedOutput(); err != nil {
		t.Fatalf("wt.h declares functions differently from wasmtime:\n%s", out)
	}
}
