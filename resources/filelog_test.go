package resources

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

func TestFileLog(t *testing.T) {
	f := func(conf map[string]string, payloads []string, check func(lines []string) string) {
		t.Helper()
		dir := t.TempDir()
		name := filepath.Join(dir, "out.log")
		conf["filename"] = "out.log"
		inst, err := FileLog{Dir: dir}.Start(StartConfig{Configurations: conf})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		src := core.InstanceID{Node: core.NewID(), Component: core.NewID()}
		for _, p := range payloads {
			if err := inst.Cast(src, []byte(p)); err != nil {
				t.Fatalf("Cast: %v", err)
			}
		}
		ret, reply, err := inst.Call(src, []byte("called"))
		if err != nil || ret != core.CallReply || len(reply) != 0 {
			t.Fatalf("Call = %v, %q, %v; want reply with empty payload", ret, reply, err)
		}
		if err := inst.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if msg := check(lines); msg != "" {
			t.Fatalf("%s; file:\n%s", msg, data)
		}
	}
	f(map[string]string{}, []string{"a", "b\x00c"}, func(lines []string) string {
		if len(lines) != 3 || lines[0] != "a" || lines[1] != "b\x00c" || lines[2] != "called" {
			return "want lines a, b\\x00c, called"
		}
		return ""
	})
	f(map[string]string{"add-timestamp": "true"}, []string{"x"}, func(lines []string) string {
		ts, rest, _ := strings.Cut(lines[0], " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || rest != "x" {
			return "want an RFC 3339 timestamp before x"
		}
		return ""
	})
	f(map[string]string{"add-source-id": "TRUE"}, []string{"y"}, func(lines []string) string {
		id, rest, _ := strings.Cut(lines[0], " ")
		if len(id) != 73 || rest != "y" {
			return "want node/component id before y"
		}
		return ""
	})
}

func TestFileLogMissingFilename(t *testing.T) {
	_, err := FileLog{}.Start(StartConfig{Configurations: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), `"filename": missing`) {
		t.Fatalf("err = %v, want missing filename", err)
	}
}

// TestFileLogConfined: a workflow's file-log stays in the node's data
// directory, or in a directory the operator allows: absolute paths, ".."
// and symbolic links out of it are refused before anything is written.
func TestFileLogConfined(t *testing.T) {
	dir, allowed, outside := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	p := FileLog{Dir: dir, Allowed: []string{allowed}}
	f := func(name, want string) {
		t.Helper()
		inst, err := p.Start(StartConfig{Configurations: map[string]string{"filename": name}})
		if want == "" {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			inst.Close()
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: err = %v, want %q", name, err, want)
		}
	}
	f("ok.log", "")
	f(filepath.Join(allowed, "ok.log"), "")
	f(filepath.Join(outside, "x.log"), "outside the node's data directory")
	f("/etc/cron.d/x", "outside the node's data directory")
	f("../x.log", "outside the node's data directory")
	f(filepath.Join(allowed, "..", "x.log"), "outside the node's data directory")
	f("link/x.log", "cannot open file-log")
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("files written outside: %v", entries)
	}
}
