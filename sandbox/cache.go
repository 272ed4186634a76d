package sandbox

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/edgeless-go/edgeless/core"
)

// moduleEntry is a module in the memory cache, or one being loaded: ready is
// closed when mod or err is set.
type moduleEntry struct {
	ready chan struct{}
	mod   *Module
	err   error
}

// Load returns the module for code, compiled for this runtime and checked
// against the ABI (an error matching ErrABI names what is missing or not
// provided). Modules are cached by the SHA-256 of code: first in memory,
// then as a serialized artefact in Config.CacheDir, and only compiled when
// neither has it. Concurrent loads of the same code compile it once. code is
// not retained.
func (r *Runtime) Load(code []byte) (*Module, error) {
	return r.LoadHashed(code, sha256.Sum256(code))
}

// LoadHashed is Load for a caller that already knows the SHA-256 of code,
// e.g. because the control plane computed it once when the workflow was
// admitted: hashing a 2 MB module costs about as much as loading it from the
// disk cache. The caller vouches for sum; a wrong one would make the cache
// return another module.
func (r *Runtime) LoadHashed(code []byte, sum [32]byte) (*Module, error) {
	key := sum
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errClosed
	}
	if e, ok := r.modules[key]; ok {
		r.mu.Unlock()
		<-e.ready
		if e.err == nil {
			r.memoryHits.Add(1)
		}
		return e.mod, e.err
	}
	e := &moduleEntry{ready: make(chan struct{})}
	r.modules[key] = e
	r.loading.Add(1)
	r.mu.Unlock()
	defer r.loading.Done()

	e.mod, e.err = r.load(key, code)
	if e.err != nil {
		e.err = fmt.Errorf("cannot load wasm module %x: %w", key[:6], e.err)
		r.mu.Lock()
		delete(r.modules, key) // a later Load tries again rather than repeat an I/O error
		r.mu.Unlock()
	}
	close(e.ready)
	return e.mod, e.err
}

func (r *Runtime) load(key [32]byte, code []byte) (*Module, error) {
	var path string
	if r.cfg.CacheDir != "" {
		path = filepath.Join(r.cfg.CacheDir, hex.EncodeToString(key[:])+".cwasm")
		if _, err := os.Stat(path); err == nil {
			c, err := r.deserialize(path)
			if err == nil {
				r.diskHits.Add(1)
				return r.newModule(c)
			}
			// Typically an artefact from another wasmtime version or engine
			// configuration: replace it.
			r.log.Warn("cannot use cached wasm module, compiling it again", "path", path, "err", err)
		}
	}
	var c *C.wasmtime_module_t
	if cerr := C.wasmtime_module_new(r.c.engine, bytesPtr(code), C.size_t(len(code)), &c); cerr != nil {
		return nil, fmt.Errorf("cannot compile: %w", wasmError(cerr))
	}
	r.compiles.Add(1)
	m, err := r.newModule(c)
	if err != nil {
		return nil, err
	}
	if path != "" {
		if err := writeArtefact(path, c); err != nil {
			r.log.Warn("cannot cache compiled wasm module", "path", path, "err", err)
		}
	}
	return m, nil
}

// deserialize maps a serialized module from path. wasmtime checks that it
// was made by the same version and engine configuration, but otherwise
// trusts it: it is native code. A file that is not even an ELF object is
// refused here, because wasmtime faults on some of those instead of
// returning an error.
func (r *Runtime) deserialize(path string) (*C.wasmtime_module_t, error) {
	if err := checkELF(path); err != nil {
		return nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var c *C.wasmtime_module_t
	if cerr := C.wasmtime_module_deserialize_file(r.c.engine, cpath, &c); cerr != nil {
		return nil, wasmError(cerr)
	}
	return c, nil
}

func checkELF(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [64]byte // an ELF64 header
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:4]) != "\x7fELF" {
		return errors.New("not a compiled module")
	}
	return nil
}

// writeArtefact serializes c to path atomically: readers see the old file,
// no file, or the whole new one.
func writeArtefact(path string, c *C.wasmtime_module_t) error {
	var v C.wasm_byte_vec_t
	if cerr := C.wasmtime_module_serialize(c, &v); cerr != nil {
		return wasmError(cerr)
	}
	defer C.wasm_byte_vec_delete(&v)
	// data aliases v, which lives until the deferred delete, after the write.
	data := unsafe.Slice((*byte)(unsafe.Pointer(v.data)), int(v.size))
	return core.WriteFileAtomic(path, data)
}
