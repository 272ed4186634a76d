package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// buildSpec is EDGELESS's function.json, as `function build` reads it; other
// keys are ignored, as EDGELESS ignores them.
type buildSpec struct {
	ID           string `json:"id"`
	FunctionType string `json:"function_type"`
	Build        string `json:"build"`
}

// build compiles a function directory, or the directory of a function.json,
// to <dir>/<id>.wasm (or <id>.so with --native): C sources with the C SDK
// (clang for wasm32-wasi, gcc for native), Go sources with the Go SDK
// (GOOS=wasip1), a Cargo.toml with cargo for wasm32-unknown-unknown, as
// EDGELESS does. Nothing is rebuilt when the output is newer than every
// source. It prints the path of the output.
func build(args []string, out io.Writer) error {
	flags := flag.NewFlagSet("function build", flag.ContinueOnError)
	native := flags.Bool("native", false, "C only: build a native shared object (<id>.so) instead of WebAssembly")
	sdk := flags.String("sdk", "", "the SDK directory (holding c/edgeless.h and go/); default: found above the function's directory")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return errors.New("function build: want one function directory or function.json")
	}
	dir, spec, err := readBuildSpec(flags.Arg(0))
	if err != nil {
		return err
	}
	srcs, lang, err := sources(dir, spec)
	if err != nil {
		return err
	}
	ext := ".wasm"
	if *native || spec.FunctionType == "RUST_NATIVE" || spec.FunctionType == "NATIVE" {
		if lang != "c" {
			return fmt.Errorf("function build: %s: native shared objects are built from C sources only", dir)
		}
		ext, *native = ".so", true
	}
	outFile := filepath.Join(dir, spec.ID+ext)
	if upToDate(outFile, srcs) {
		fmt.Fprintln(out, outFile)
		return nil
	}
	var cmd *exec.Cmd
	switch lang {
	case "c":
		sdkDir := *sdk
		if sdkDir == "" {
			if sdkDir, err = findUp(dir, "sdk/c/edgeless.h"); err != nil {
				return fmt.Errorf("function build: %w; name it with --sdk", err)
			}
			sdkDir = filepath.Join(sdkDir, "sdk")
		}
		c := filepath.Join(sdkDir, "c")
		if *native {
			abi, err := findUp(sdkDir, "native/edgeless_native.h")
			if err != nil {
				return fmt.Errorf("function build: %w", err)
			}
			args := []string{"-O2", "-std=c11", "-Wall", "-Wextra", "-fPIC", "-fvisibility=hidden", "-I" + c, "-I" + filepath.Join(abi, "native"),
				"-shared", "-Wl,-z,defs", "-o", outFile}
			args = append(append(args, srcs...), filepath.Join(c, "edgeless.c"), filepath.Join(c, "edgeless_native.c"))
			cmd = exec.Command(envOr("CC", "gcc"), args...)
			break
		}
		args := []string{"--target=wasm32-wasi", "-O2", "-flto", "-std=c11", "-Wall", "-Wextra", "-I" + c,
			"-mexec-model=reactor", "-Wl,--strip-debug", "-o", outFile}
		args = append(append(args, srcs...), filepath.Join(c, "edgeless.c"), filepath.Join(c, "edgeless_wasm.c"), filepath.Join(c, "edgeless_http.c"))
		cmd = exec.Command(envOr("CLANG", "clang"), args...)
	case "go":
		cmd = exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", outFile, ".")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	case "rust":
		tmp, err := os.MkdirTemp("", "edgeless-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		cmd = exec.Command("cargo", "build", "--release", "--target", "wasm32-unknown-unknown", "--target-dir", tmp)
		cmd.Dir = dir
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("function build: cargo in %s: %v\n%s", dir, err, stderr.String())
		}
		built, _ := filepath.Glob(filepath.Join(tmp, "wasm32-unknown-unknown", "release", "*.wasm"))
		if len(built) != 1 {
			return fmt.Errorf("function build: cargo in %s made %d .wasm files, want one", dir, len(built))
		}
		data, err := os.ReadFile(built[0])
		if err == nil {
			err = os.WriteFile(outFile, data, 0o644)
		}
		if err != nil {
			return fmt.Errorf("function build: %w", err)
		}
		fmt.Fprintln(out, outFile)
		return nil
	}
	if cmd.Dir == "" {
		cmd.Dir = dir
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("function build: %s in %s: %v\n%s", cmd.Args[0], dir, err, msg)
	}
	fmt.Fprintln(out, outFile)
	return nil
}

// readBuildSpec reads path, a function directory or a function.json, and
// returns the directory and the spec; a directory without function.json is
// named after itself.
func readBuildSpec(path string) (string, buildSpec, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", buildSpec{}, fmt.Errorf("function build: %w", err)
	}
	dir, file := path, filepath.Join(path, "function.json")
	if !fi.IsDir() {
		dir, file = filepath.Dir(path), path
	}
	dir, _ = filepath.Abs(dir)
	spec := buildSpec{ID: filepath.Base(dir)}
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist) && fi.IsDir():
		return dir, spec, nil
	case err != nil:
		return "", spec, fmt.Errorf("function build: %w", err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return "", spec, fmt.Errorf("function build: %s: %w", file, err)
	}
	if spec.ID == "" || strings.ContainsAny(spec.ID, `/\`) {
		return "", spec, fmt.Errorf("function build: %s: id %q is not a file name", file, spec.ID)
	}
	return dir, spec, nil
}

// sources lists the function's source files and their language: c, go or
// rust.
func sources(dir string, spec buildSpec) ([]string, string, error) {
	if spec.Build != "" && filepath.Base(spec.Build) == "Cargo.toml" || fileExists(filepath.Join(dir, "Cargo.toml")) {
		srcs, _ := filepath.Glob(filepath.Join(dir, "src", "*.rs"))
		return append(srcs, filepath.Join(dir, "Cargo.toml")), "rust", nil
	}
	cs, _ := filepath.Glob(filepath.Join(dir, "*.c"))
	gos, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	gos = slices.DeleteFunc(gos, func(f string) bool { return strings.HasSuffix(f, "_test.go") })
	switch {
	case len(cs) > 0 && len(gos) > 0:
		return nil, "", fmt.Errorf("function build: %s has both C and Go sources", dir)
	case len(cs) > 0:
		return cs, "c", nil
	case len(gos) > 0:
		return gos, "go", nil
	}
	return nil, "", fmt.Errorf("function build: %s has no C (*.c), Go (*.go) or Rust (Cargo.toml) sources", dir)
}

// upToDate reports whether out exists and is newer than every source.
func upToDate(out string, srcs []string) bool {
	fi, err := os.Stat(out)
	if err != nil {
		return false
	}
	newest := time.Time{}
	for _, s := range srcs {
		if si, err := os.Stat(s); err == nil && si.ModTime().After(newest) {
			newest = si.ModTime()
		}
	}
	return fi.ModTime().After(newest)
}

// findUp returns the first of dir and its parents that holds rel.
func findUp(dir, rel string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, rel)) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s in %s or above", rel, dir)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
