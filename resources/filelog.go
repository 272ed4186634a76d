package resources

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// FileLog is the file-log provider: every event it receives becomes one line
// appended to a file. Files live in Dir, or in one of the Allowed absolute
// directories: a workflow cannot write anywhere else with the node's
// privileges, whether by an absolute path, "..", or a symbolic link.
type FileLog struct {
	Dir     string   // relative file names are resolved in it
	Allowed []string // absolute directories that absolute file names may name
}

// Spec implements Provider.
func (FileLog) Spec() Spec {
	return Spec{
		ClassType:   "file-log",
		Version:     "1.1",
		Description: "Appends the payload of every cast or call as a line to a file; a call replies with an empty payload.",
		Outputs:     []string{},
		Configurations: map[string]string{
			"filename":      "path of the file to append to (required)",
			"add-timestamp": "true: prefix each line with the RFC 3339 time",
			"add-source-id": "true: prefix each line with the sender's instance id",
		},
	}
}

// Start implements Provider.
func (p FileLog) Start(cfg StartConfig) (Instance, error) {
	name := cfg.Configurations["filename"]
	if name == "" {
		return nil, &ConfigError{Class: "file-log", Key: "filename", Msg: "missing"}
	}
	f, err := openConfined(p.Dir, p.Allowed, name, os.O_CREATE|os.O_WRONLY|os.O_APPEND)
	if err != nil {
		return nil, err
	}
	return &fileLog{
		f:         f,
		timestamp: isTrue(cfg.Configurations["add-timestamp"]),
		sourceID:  isTrue(cfg.Configurations["add-source-id"]),
	}, nil
}

type fileLog struct {
	mu        sync.Mutex
	f         *os.File
	timestamp bool
	sourceID  bool
	line      []byte
}

func (l *fileLog) Cast(src core.InstanceID, payload []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.line[:0]
	if l.timestamp {
		b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, ' ')
	}
	if l.sourceID {
		b = append(b, src.String()...)
		b = append(b, ' ')
	}
	b = append(b, payload...)
	b = append(b, '\n')
	l.line = b
	n, err := l.f.Write(b)
	if err != nil {
		// A line written in part (a full disk) is cut off again, so that the
		// file holds whole lines only; the caller hears of the failure.
		if fi, serr := l.f.Stat(); n > 0 && serr == nil {
			_ = l.f.Truncate(fi.Size() - int64(n))
		}
		return fmt.Errorf("cannot append to %s: %w", l.f.Name(), err)
	}
	return nil
}

func (l *fileLog) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	if err := l.Cast(src, payload); err != nil {
		return core.CallErr, nil, err
	}
	return core.CallReply, nil, nil
}

func (l *fileLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

func isTrue(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }

// openConfined opens name inside dir (name relative) or inside one of the
// allowed directories (name absolute), through os.Root so that symbolic
// links cannot lead out either.
func openConfined(dir string, allowed []string, name string, flag int) (*os.File, error) {
	root, rel := dir, name
	if filepath.IsAbs(name) {
		root = ""
		for _, a := range allowed {
			if r, err := filepath.Rel(a, name); err == nil && filepath.IsLocal(r) {
				root, rel = a, r
				break
			}
		}
	}
	if root == "" || !filepath.IsLocal(rel) {
		return nil, &ConfigError{Class: "file-log", Key: "filename", Msg: strconv.Quote(name) +
			" is outside the node's data directory: use a relative path without \"..\", or ask the operator to list its directory in resources.allowed_dirs"}
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("cannot open file-log %q: %w", name, err)
	}
	defer r.Close()
	f, err := r.OpenFile(rel, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open file-log %q: %w", name, err)
	}
	return f, nil
}
