package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// onces holds, per key, the result of a build run by Once.
var onces sync.Map // key → *onceResult

type onceResult struct {
	once sync.Once
	v    any
	err  error
}

// Once runs build the first time key is asked for in this test binary and
// hands its result, error included, to every caller. Callers of one key
// must ask for the same T. It is safe for concurrent use.
func Once[T any](key string, build func() (T, error)) (T, error) {
	e, _ := onces.LoadOrStore(key, &onceResult{})
	r := e.(*onceResult)
	r.once.Do(func() { r.v, r.err = build() })
	v, _ := r.v.(T)
	return v, r.err
}

// Root returns the module's root directory: the nearest one holding go.mod
// at or above the working directory, which is a test's package directory.
func Root() (string, error) {
	return Once("root", func() (string, error) {
		dir, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", errors.New("no go.mod above the working directory")
			}
			dir = parent
		}
	})
}

// Run runs the command args in dir once per test binary for the same dir
// and args; its error carries the command's output.
func Run(dir string, args ...string) error {
	_, err := Once("run "+dir+"\x00"+strings.Join(args, "\x00"), func() (struct{}, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return struct{}{}, fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return struct{}{}, nil
	})
	return err
}

// Functions builds the example functions with their Makefile (make -s -C
// functions [targets], as `make test` does), once per test binary, and
// returns the functions directory. Make rebuilds only what is out of date.
func Functions(targets ...string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "functions")
	return dir, Run(root, append([]string{"make", "-s", "-C", dir}, targets...)...)
}

// Function returns the bytes of functions/<name>/<name>.<ext> (ext "wasm"
// or "so"), building the functions first; it fails tb if it cannot.
func Function(tb testing.TB, name, ext string) []byte {
	tb.Helper()
	dir, err := Functions()
	if err != nil {
		tb.Fatalf("cannot build the functions (functions/install-deps.sh installs what they need): %v", err)
	}
	code, err := os.ReadFile(filepath.Join(dir, name, name+"."+ext))
	if err != nil {
		tb.Fatal(err)
	}
	return code
}

// Binary builds the edgeless binary to dir/edgeless, once per test binary,
// and returns its path.
func Binary(dir string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "edgeless")
	return bin, Run(root, "go", "build", "-o", bin, ".")
}
