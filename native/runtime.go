package native

/*
#cgo CFLAGS: -O2 -Wall
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// Config configures a Runtime.
type Config struct {
	// Dir is where the runtime creates its private directory of library
	// copies; "" means os.TempDir(). The file system must allow executable
	// mappings (not be mounted noexec).
	Dir string
}

var errClosed = errors.New("native runtime is closed")

// Runtime loads native functions into the process. Its methods are safe for
// concurrent use.
type Runtime struct {
	log *slog.Logger
	dir string // private (0700): instances' copies of their library pass through it

	mu     sync.Mutex
	closed bool
	live   int // open instances
}

// New creates a runtime and its private directory, which Close removes.
func New(cfg Config, log *slog.Logger) (*Runtime, error) {
	if log == nil {
		log = slog.Default()
	}
	dir, err := os.MkdirTemp(cfg.Dir, "edgeless-native-")
	if err != nil {
		return nil, fmt.Errorf("cannot create native runtime: %w", err)
	}
	return &Runtime{log: log, dir: dir}, nil
}

// Close removes the runtime's directory. All instances must have been
// closed first; otherwise Close fails and changes nothing. It is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	if r.live > 0 {
		return fmt.Errorf("cannot close native runtime: %d instances are still open", r.live)
	}
	r.closed = true
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("cannot close native runtime: %w", err)
	}
	return nil
}

// acquire counts a new instance, unless the runtime is closed.
func (r *Runtime) acquire() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.live++
	return nil
}

func (r *Runtime) release() {
	r.mu.Lock()
	r.live--
	r.mu.Unlock()
}
