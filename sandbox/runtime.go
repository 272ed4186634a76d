package sandbox

/*
#cgo CFLAGS: -O2 -Wall
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxMemoryBytes = 128 << 20
	DefaultHandlerTimeout = 10 * time.Second
	DefaultMaxInstances   = 1000
)

// Config configures a Runtime.
type Config struct {
	// CacheDir holds compiled modules as <sha256 of the wasm>.cwasm; "" keeps
	// them in memory only. Files in it are loaded as native code: only this
	// process may write there.
	CacheDir string
	// MaxMemoryBytes limits each instance's linear memory
	// (DefaultMaxMemoryBytes if 0).
	MaxMemoryBytes int64
	// HandlerTimeout is the time one handler may run in wasm, not counting
	// time spent in Host methods (DefaultHandlerTimeout if 0). It is enforced
	// with epoch interruption, so a handler stops between HandlerTimeout and
	// HandlerTimeout plus an eighth.
	HandlerTimeout time.Duration
	// MaxInstances is how many instances may be alive at once; their memory
	// is reserved up front by wasmtime's pooling allocator
	// (DefaultMaxInstances if 0).
	MaxInstances int
	// InheritStdio lets WASI guests write to the process's stdout and
	// stderr; otherwise their output is discarded.
	InheritStdio bool
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.MaxMemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxMemoryBytes %d is negative", c.MaxMemoryBytes))
	}
	if c.HandlerTimeout < 0 {
		errs = append(errs, fmt.Errorf("HandlerTimeout %v is negative", c.HandlerTimeout))
	}
	if c.MaxInstances < 0 || c.MaxInstances > 1<<20 {
		errs = append(errs, fmt.Errorf("MaxInstances %d is not in [0, %d]", c.MaxInstances, 1<<20))
	}
	if c.MaxMemoryBytes == 0 {
		c.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	if c.MaxInstances == 0 {
		c.MaxInstances = DefaultMaxInstances
	}
	return errors.Join(errs...)
}

var errClosed = errors.New("runtime is closed")

// Runtime is a wasmtime engine with the host functions linked, a cache of
// compiled modules, and the clock that stops handlers running too long. Its
// methods are safe for concurrent use.
type Runtime struct {
	cfg  Config
	log  *slog.Logger
	c    *C.edg_rt
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	live    int // open instances
	modules map[[32]byte]*moduleEntry
	loading sync.WaitGroup

	memoryHits atomic.Uint64
	diskHits   atomic.Uint64
	compiles   atomic.Uint64
}

// New creates a runtime and starts its epoch ticker, a goroutine owned by
// the runtime and stopped by Close.
func New(cfg Config, log *slog.Logger) (*Runtime, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("cannot create wasm runtime: %w", err)
	}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create wasm runtime: %w", err)
		}
	}
	// An eighth of the budget per tick keeps the overshoot small; the bounds
	// keep the ticker cheap on an idle node and precise enough for short
	// budgets.
	tick := min(max(cfg.HandlerTimeout/8, time.Millisecond), time.Second)
	budget := uint64((cfg.HandlerTimeout+tick-1)/tick) + 1

	var cerr *C.wasmtime_error_t
	c := C.edg_rt_new(C.uint32_t(cfg.MaxInstances), C.int64_t(cfg.MaxMemoryBytes), C.uint64_t(budget), C.bool(cfg.InheritStdio), &cerr)
	if c == nil {
		return nil, fmt.Errorf("cannot create wasm runtime: %w", wasmError(cerr))
	}
	for k, imp := range hostImports {
		name := C.CString(imp.name)
		params, results := C.CString(imp.sig.params), C.CString(imp.sig.results)
		cerr := C.edg_rt_define(c, C.int(k), name, C.size_t(len(imp.name)), params, results)
		C.free(unsafe.Pointer(name))
		C.free(unsafe.Pointer(params))
		C.free(unsafe.Pointer(results))
		if cerr != nil {
			C.edg_rt_delete(c)
			return nil, fmt.Errorf("cannot define host function %s: %w", imp.name, wasmError(cerr))
		}
	}
	r := &Runtime{
		cfg:     cfg,
		log:     log,
		c:       c,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		modules: make(map[[32]byte]*moduleEntry),
	}
	go r.tick(tick)
	return r, nil
}

// tick advances the engine's epoch, the clock handler deadlines are set in.
func (r *Runtime) tick(d time.Duration) {
	defer close(r.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			C.edg_rt_tick(r.c)
		}
	}
}

// Close stops the ticker and frees the engine and every loaded module. All
// instances must have been closed first; otherwise Close fails and changes
// nothing. It is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	if r.live > 0 {
		n := r.live
		r.mu.Unlock()
		return fmt.Errorf("cannot close wasm runtime: %d instances are still open", n)
	}
	r.closed = true
	r.mu.Unlock()
	r.loading.Wait()
	close(r.stop)
	<-r.done
	for _, e := range r.modules {
		if e.mod != nil {
			e.mod.free()
		}
	}
	r.modules = nil
	C.edg_rt_delete(r.c)
	return nil
}

func (r *Runtime) release() {
	r.mu.Lock()
	r.live--
	r.mu.Unlock()
}

// CacheStats counts how Runtime.Load found its modules.
type CacheStats struct {
	MemoryHits uint64 // already loaded by this runtime
	DiskHits   uint64 // deserialized from CacheDir
	Compiles   uint64 // compiled from wasm
}

// CacheStats returns the counts since New.
func (r *Runtime) CacheStats() CacheStats {
	return CacheStats{
		MemoryHits: r.memoryHits.Load(),
		DiskHits:   r.diskHits.Load(),
		Compiles:   r.compiles.Load(),
	}
}

// wasmError converts and deletes a wasmtime error.
func wasmError(e *C.wasmtime_error_t) error {
	if e == nil {
		return errors.New("unknown wasmtime error")
	}
	var m C.wasm_name_t
	C.wasmtime_error_message(e, &m)
	C.wasmtime_error_delete(e)
	msg, _ := splitMessage(byteVecString(&m))
	return errors.New(msg)
}
