package resources

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// FilePusher is the file-pusher provider: it reads every regular file of a
// directory once, in lexicographic order of their names, and each instance
// casts them on its output out, one every period, round robin.
type FilePusher struct {
	files [][]byte
}

// NewFilePusher reads the files of dir.
func NewFilePusher(dir string, log *slog.Logger) (*FilePusher, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("cannot read file-pusher directory: %w", err)
	}
	p := &FilePusher{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("cannot read file-pusher file: %w", err)
		}
		p.files = append(p.files, data)
	}
	if log != nil {
		log.Info("file-pusher read its directory", "dir", dir, "files", len(p.files))
	}
	return p, nil
}

// Spec implements Provider.
func (p *FilePusher) Spec() Spec {
	return Spec{
		ClassType:   "file-pusher",
		Version:     "1.0",
		Description: "Casts the content of the files of the node's file-pusher directory (read at node start) on out, one every period, round robin; it handles no events.",
		Outputs:     []string{"out"},
		Configurations: map[string]string{
			"period-ms":     "interval between casts in ms (default 1000)",
			"encode-base64": "true: cast the file content base64-encoded",
		},
	}
}

// Start implements Provider.
func (p *FilePusher) Start(cfg StartConfig) (Instance, error) {
	period := time.Second
	if s := cfg.Configurations["period-ms"]; s != "" {
		ms, err := strconv.Atoi(s)
		if err != nil || ms < 1 {
			return nil, &ConfigError{Class: "file-pusher", Key: "period-ms", Msg: "want a positive integer, got " + strconv.Quote(s)}
		}
		period = time.Duration(ms) * time.Millisecond
	}
	files := p.files
	if isTrue(cfg.Configurations["encode-base64"]) {
		files = slices.Clone(files)
		for k, f := range files {
			files[k] = base64.StdEncoding.AppendEncode(nil, f)
		}
	}
	i := &pusherInstance{stop: make(chan struct{})}
	i.wg.Add(1)
	go i.run(cfg.Host, files, period)
	return i, nil
}

type pusherInstance struct {
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// run casts one file every period until the instance closes. The first cast
// waits one period too, which lets the node map the output first.
func (i *pusherInstance) run(h Host, files [][]byte, period time.Duration) {
	defer i.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for cur := 0; ; cur++ {
		select {
		case <-i.stop:
			return
		case <-t.C:
		}
		if len(files) == 0 {
			h.Cast("out", nil)
			continue
		}
		h.Cast("out", files[cur%len(files)])
	}
}

func (i *pusherInstance) Cast(core.InstanceID, []byte) error { return nil }

func (i *pusherInstance) Call(core.InstanceID, []byte) (core.CallRet, []byte, error) {
	return core.CallNoReply, nil, nil
}

func (i *pusherInstance) Close() error {
	i.once.Do(func() { close(i.stop) })
	i.wg.Wait()
	return nil
}
