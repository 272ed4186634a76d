package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestOnce(t *testing.T) {
	var runs atomic.Int32
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = Once("TestOnce", func() (int, error) { return int(runs.Add(1)) * 7, nil })
		}()
	}
	wg.Wait()
	for i, v := range got {
		if v != 7 {
			t.Fatalf("caller %d got %d, want 7", i, v)
		}
	}
	if runs.Load() != 1 {
		t.Fatalf("built %d times, want once", runs.Load())
	}
	boom := errors.New("boom")
	for range 2 {
		if _, err := Once("TestOnce failing", func() (string, error) { runs.Add(1); return "", boom }); err != boom {
			t.Fatalf("err %v, want the build's error", err)
		}
	}
	if runs.Load() != 2 {
		t.Fatalf("a failed build ran %d times, want once", runs.Load()-1)
	}
}

func TestRootAndRun(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if wd, _ := os.Getwd(); wd != filepath.Join(root, "internal", "testutil") {
		t.Fatalf("root %q is not two levels above the package directory %q", root, wd)
	}
	mark := filepath.Join(t.TempDir(), "runs")
	for range 2 {
		if err := Run(root, "sh", "-c", "echo x >> "+mark); err != nil {
			t.Fatal(err)
		}
	}
	if data, _ := os.ReadFile(mark); string(data) != "x\n" {
		t.Fatalf("the command ran %d times, want once", strings.Count(string(data), "x"))
	}
	if err := Run(root, "sh", "-c", "echo oops; exit 3"); err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("failing command: %v, want its status and output", err)
	}
}
