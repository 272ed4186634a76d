package container

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// The images the tests run; `make images` builds them.
var testImages = []string{"edgeless-python:latest", "edgeless-double-py:latest", "edgeless-double-go:latest", "edgeless-testfn-py:latest"}

var (
	dockerOnce sync.Once
	dockerErr  error // why the Docker tests cannot run
)

// needDocker skips the test when no Docker daemon answers, unless CI=true,
// where that fails it. Once per process it builds the images that are
// missing.
func needDocker(t testing.TB) {
	t.Helper()
	dockerOnce.Do(func() { dockerErr = prepareDocker() })
	if dockerErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Docker is needed in CI: %v", dockerErr)
	}
	t.Skipf("no Docker: %v", dockerErr)
}

func prepareDocker() error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		return err
	}
	for _, img := range testImages {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			return buildImages()
		}
	}
	return nil
}

// buildImages runs the build script of `make images`.
func buildImages() error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	cmd := exec.Command("bash", filepath.Join(root, "container", "images", "build.sh"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("cannot build the images: %v\n%s", err, out)
	}
	return nil
}

// testLogger writes to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newRuntime starts a runtime for the test and closes it at its end.
func newRuntime(t testing.TB, mutate func(*Config)) *Runtime {
	t.Helper()
	needDocker(t)
	cfg := Config{NodeID: randomID(), HandlerTimeout: 3 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func writeTar(t *testing.T, w io.Writer, files map[string]string) {
	t.Helper()
	tw := tar.NewWriter(w)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}
