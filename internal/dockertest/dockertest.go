// Package dockertest gives tests the Docker daemon and the images of
// `make images`. Without a daemon a test is skipped, except under CI=true,
// where it fails: CI must run the container tests.
package dockertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// Images are the images the tests run; container/images/build.sh (make
// images) builds them.
var Images = []string{"edgeless-python:latest", "edgeless-double-py:latest", "edgeless-double-go:latest", "edgeless-testfn-py:latest"}

var (
	once sync.Once
	why  error // why the Docker tests cannot run
)

// Need skips t when no Docker daemon answers (fails it when CI=true). The
// first call in a process builds the images that are missing.
func Need(t testing.TB) {
	t.Helper()
	once.Do(func() { why = prepare() })
	if why == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Docker is needed in CI: %v", why)
	}
	t.Skipf("no Docker: %v", why)
}

func prepare() error {
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
	for _, img := range Images {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			return build()
		}
	}
	return nil
}

// build runs the script of `make images`; it takes a minute the first time
// on a machine (the Debian root file system), seconds after.
func build() error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("bash", filepath.Join(root, "container", "images", "build.sh"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("cannot build the images: %v\n%s", err, out)
	}
	return nil
}
