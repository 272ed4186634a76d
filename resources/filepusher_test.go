package resources

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

func TestFilePusher(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"b.txt": "second", "a.txt": "first"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := NewFilePusher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := func(conf map[string]string, want []string) {
		t.Helper()
		h := &fakeHost{}
		inst, err := p.Start(StartConfig{Configurations: conf, Host: h})
		if err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyDetail(t, 5*time.Second, fmt.Sprintf("%d casts", len(want)),
			func() bool { return len(h.Casts()) >= len(want) }, func() string { return fmt.Sprintf("casts %q", h.Casts()) })
		inst.Close()
		got := h.Casts()
		if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
			t.Fatalf("casts %q, want %q first", got, want)
		}
	}
	f(map[string]string{"period-ms": "5"}, []string{"out=first", "out=second", "out=first"})
	f(map[string]string{"period-ms": "5", "encode-base64": "true"}, []string{"out=Zmlyc3Q=", "out=c2Vjb25k"})
	if _, err := p.Start(StartConfig{Configurations: map[string]string{"period-ms": "0"}}); err == nil {
		t.Fatal("period-ms 0 accepted")
	}
	if _, err := NewFilePusher(filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("missing directory accepted")
	}
}
