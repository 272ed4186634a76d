package resources

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/redistest"
)

// redisSrv is the package's redis-server, started once by TestMain.
var redisSrv *redistest.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "resources-redis-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisSrv, err = redistest.New(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "the resources tests need redis-server:", err)
		os.Exit(1)
	}
	code := m.Run()
	redisSrv.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeHost records casts, or refuses them with castErr, and answers calls
// with reply.
type fakeHost struct {
	mu      sync.Mutex
	casts   []string
	castErr error
	reply   func(payload []byte) (core.CallRet, []byte, error)
}

func (h *fakeHost) Cast(output string, payload []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.castErr != nil {
		return h.castErr
	}
	h.casts = append(h.casts, output+"="+string(payload))
	return nil
}

func (h *fakeHost) Call(ctx context.Context, output string, payload []byte) (core.CallRet, []byte, error) {
	return h.reply(payload)
}

func (h *fakeHost) Casts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.casts...)
}
