package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFunctionBuild builds a C function directory with the C SDK to
// WebAssembly and to a native shared object, as `edgeless function build`.
func TestFunctionBuild(t *testing.T) {
	sdk, _ := filepath.Abs("../../functions/sdk")
	src, err := os.ReadFile("../../functions/double/double.c")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "twice")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "twice.c"), src, 0o644)
	os.WriteFile(filepath.Join(dir, "function.json"), []byte(`{"id":"twice","function_type":"RUST_WASM","version":"0.1","build":"Makefile","outputs":["output"]}`), 0o644)
	f := func(arg string, extra []string, want string, magic []byte) {
		t.Helper()
		var out bytes.Buffer
		if err := Function(context.Background(), append(append([]string{"build"}, extra...), "--sdk", sdk, arg), &out); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out.String()); got != want {
			t.Fatalf("build printed %q, want %q", got, want)
		}
		data, _ := os.ReadFile(want)
		if !bytes.HasPrefix(data, magic) {
			t.Fatalf("%s starts %q, want %q", want, data[:min(8, len(data))], magic)
		}
	}
	f(filepath.Join(dir, "function.json"), nil, filepath.Join(dir, "twice.wasm"), []byte("\x00asm"))
	f(dir, []string{"--native"}, filepath.Join(dir, "twice.so"), []byte("\x7fELF"))

	var out bytes.Buffer
	err = Function(context.Background(), []string{"build", t.TempDir()}, &out)
	if err == nil || !strings.Contains(err.Error(), "no C (*.c), Go (*.go) or Rust (Cargo.toml) sources") {
		t.Fatalf("empty directory: %v", err)
	}
}

// TestFunctionRepository pushes a module to a directory repository, gets its
// class and downloads its code back.
func TestFunctionRepository(t *testing.T) {
	repo, work := t.TempDir(), t.TempDir()
	bin := filepath.Join(work, "noop.wasm")
	os.WriteFile(bin, []byte("\x00asm module"), 0o644)
	cliToml := filepath.Join(work, "cli.toml")
	os.WriteFile(cliToml, []byte("controller_url = \"http://127.0.0.1:7001\"\n[function_repository]\nurl = \"file://"+repo+"\"\napi_key = \"\"\n"), 0o644)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Function(context.Background(), append(args, "-c", cliToml), &out)
		return out.String(), err
	}
	out, err := run("push", bin, "RUST_WASM")
	if err != nil || !strings.Contains(out, "function noop pushed") {
		t.Fatalf("push: %v\n%s", err, out)
	}
	codeID := out[strings.Index(out, `"id": "`)+7:][:32]
	out, err = run("get", "noop")
	if err != nil || !strings.HasPrefix(out, "Successfully get function {") || !strings.Contains(out, `"code_file_id": "`+codeID+`"`) {
		t.Fatalf("get: %v\n%s", err, out)
	}
	dl := t.TempDir()
	t.Chdir(dl)
	if out, err = run("download", codeID); err != nil || !strings.Contains(out, "File downloaded successfully.") {
		t.Fatalf("download: %v\n%s", err, out)
	}
	if data, _ := os.ReadFile(filepath.Join(dl, "noop.wasm")); string(data) != "\x00asm module" {
		t.Fatalf("downloaded %q", data)
	}
	if _, err := run("get", "../etc"); err == nil || !strings.Contains(err.Error(), "want a plain name") {
		t.Fatalf("get ../etc: %v", err)
	}
	os.WriteFile(cliToml, []byte("[function_repository]\nurl = \"https://repo.example\"\n"), 0o644)
	if _, err := run("get", "noop"); err == nil || !strings.Contains(err.Error(), "only a directory is supported") {
		t.Fatalf("HTTP repository: %v", err)
	}
}
