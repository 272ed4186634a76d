package native

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/edgeless-go/edgeless/core"
)

var (
	// ErrDead is returned by every method of an instance whose host call
	// panicked, or that has been closed.
	ErrDead = errors.New("instance is dead")
	// ErrReentered is returned when a Host method calls back into the
	// instance whose handler is running.
	ErrReentered = errors.New("instance re-entered from its own host call")
)

// setSource copies an InstanceID into the 32 bytes of edg_ninst.src as
// node id then component id; the two assertions below keep core.InstanceID
// exactly those 32 bytes, so the copy is one move.
var (
	_ [unsafe.Sizeof(core.InstanceID{}) - 32]byte
	_ [32 - unsafe.Sizeof(core.InstanceID{})]byte
	_ [unsafe.Offsetof(core.InstanceID{}.Component) - 16]byte
)

// Instance is one running native function: its own copy of the library,
// mapped into the process, and the Host it calls. An Instance is used by one
// goroutine at a time; Host methods run on that goroutine, inside the
// handler.
type Instance struct {
	rt      *Runtime
	host    Host
	handle  cgo.Handle
	c       *C.edg_ninst
	cp      C.uintptr_t // c, as the trampolines take it
	lib     uintptr     // dlopen handle; 0 once closed
	busy    bool        // a handler is running; guards against re-entry from the Host
	dead    bool
	failure error  // why a host call failed during the running handler
	refused uint32 // host calls refused so far, as last reported
	reply   []byte
}

// Instantiate loads a private copy of m's library, checks its symbols and
// ABI version, and hands it the host table with the new instance's context
// (edgeless_native_init). The copy is written to a new file in the
// runtime's directory and removed as soon as it is mapped. m must have been
// loaded by r.
func (r *Runtime) Instantiate(m *Module, h Host) (*Instance, error) {
	if m.rt != r {
		return nil, errors.New("cannot instantiate native function: it was loaded by another runtime")
	}
	if err := r.acquire(); err != nil {
		return nil, fmt.Errorf("cannot instantiate native function: %w", err)
	}
	i := &Instance{rt: r, host: h}
	i.handle = cgo.NewHandle(i)
	i.c = C.edg_ninst_new(C.uintptr_t(i.handle))
	i.cp = C.uintptr_t(uintptr(unsafe.Pointer(i.c)))
	if i.c == nil {
		i.handle.Delete()
		r.release()
		return nil, errors.New("cannot instantiate native function: out of memory")
	}
	if err := i.open(m.code); err != nil {
		i.Close()
		return nil, fmt.Errorf("cannot instantiate native function: %w", err)
	}
	return i, nil
}

// open writes code to a file of its own, loads it and binds it. A distinct
// file per instance is what gives each instance its own copy: the dynamic
// linker shares a library between dlopen calls only when the path, or the
// file's device and inode, match one already loaded. Removing the file right
// after dlopen is safe because the mapping keeps the inode alive, so no
// other instance's file can get the same inode while this one is loaded, and
// it leaves nothing on disk if the node crashes.
func (i *Instance) open(code []byte) error {
	f, err := os.CreateTemp(i.rt.dir, "fn-*.so")
	if err != nil {
		return fmt.Errorf("cannot write the library: %w", err)
	}
	path := f.Name()
	defer os.Remove(path)
	_, err = f.Write(code)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write the library: %w", err)
	}

	// dlerror is per thread: keep dlopen, dlsym and their errors on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return fmt.Errorf("cannot load the library: %w", err)
	}
	i.lib = lib
	var addrs [len(functionSymbols)]uintptr
	var missing []string
	for k, name := range functionSymbols {
		if addrs[k], err = purego.Dlsym(lib, name); err != nil {
			missing = append(missing, name)
		}
	}
	version, err := purego.Dlsym(lib, symVersion)
	if err != nil {
		missing = append([]string{symVersion}, missing...)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing symbols %s", ErrABI, strings.Join(missing, ", "))
	}
	if err := checkVersion(uint32(C.edg_read_u32(C.uintptr_t(version)))); err != nil {
		return err
	}
	C.edg_ninst_resolve(i.c, C.uintptr_t(addrs[0]), C.uintptr_t(addrs[1]), C.uintptr_t(addrs[2]),
		C.uintptr_t(addrs[3]), C.uintptr_t(addrs[4]))
	if rc := C.edg_bind(i.cp); rc != 0 {
		return fmt.Errorf("%w: %s refused the node's host table (returned %d)", ErrABI, symBind, int32(rc))
	}
	return nil
}

// Init runs edgeless_native_handle_init with the init payload and the saved
// state; an empty payload or state is passed as NULL.
func (i *Instance) Init(payload, state []byte) error {
	if err := i.enter(); err != nil {
		return err
	}
	C.edg_init(i.cp, bytesPtr(payload), C.size_t(len(payload)), bytesPtr(state), C.size_t(len(state)))
	return i.leave(symInit)
}

// Cast delivers an asynchronous event from src to
// edgeless_native_handle_cast. payload is only read during the call.
func (i *Instance) Cast(src core.InstanceID, payload []byte) error {
	if err := i.enter(); err != nil {
		return err
	}
	*(*[32]byte)(unsafe.Pointer(&i.c.src[0])) = *(*[32]byte)(unsafe.Pointer(&src))
	C.edg_cast(i.cp, bytesPtr(payload), C.size_t(len(payload)))
	return i.leave(symCast)
}

// Call delivers a call from src to edgeless_native_handle_call and returns
// its answer. A return code other than 0, 1 or 2 is core.CallErr. The reply
// is only set for core.CallReply; it is owned by i and valid until the next
// method call on i.
func (i *Instance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	if err := i.enter(); err != nil {
		return core.CallErr, nil, err
	}
	*(*[32]byte)(unsafe.Pointer(&i.c.src[0])) = *(*[32]byte)(unsafe.Pointer(&src))
	C.edg_call(i.cp, bytesPtr(payload), C.size_t(len(payload)))
	if err := i.leave(symCall); err != nil {
		return core.CallErr, nil, err
	}
	switch ret := core.CallRet(i.c.ret); ret {
	case core.CallNoReply:
		return ret, nil, nil
	case core.CallReply:
		i.reply = append(i.reply[:0], cBytes(unsafe.Pointer(i.c.out), i.c.out_len)...)
		return ret, i.reply, nil
	}
	return core.CallErr, nil, nil
}

// Stop runs edgeless_native_handle_stop. The instance stays usable until
// Close.
func (i *Instance) Stop() error {
	if err := i.enter(); err != nil {
		return err
	}
	C.edg_stop(i.cp)
	return i.leave(symStop)
}

// Close unloads the instance's library. It is idempotent; calls after it
// return ErrDead. It must not be called from a Host method of i.
func (i *Instance) Close() {
	if i.c == nil {
		return
	}
	if i.busy {
		panic("BUG: native.Instance closed from its own host call")
	}
	if i.lib != 0 {
		runtime.LockOSThread()
		if err := purego.Dlclose(i.lib); err != nil {
			i.rt.log.Warn("cannot unload native function", "err", err)
		}
		runtime.UnlockOSThread()
		i.lib = 0
	}
	C.edg_ninst_free(i.c)
	i.c = nil
	i.dead = true
	i.handle.Delete()
	i.rt.release()
}

func (i *Instance) enter() error {
	switch {
	case i.dead:
		return ErrDead
	case i.busy:
		return ErrReentered
	}
	i.busy = true
	return nil
}

// leave ends a handler: it reports host calls the function made from the
// wrong thread, and fails the instance if a host call panicked.
func (i *Instance) leave(handler string) error {
	i.busy = false
	if n := atomic.LoadUint32((*uint32)(unsafe.Pointer(&i.c.refused))); n != i.refused {
		i.refused = n
		i.rt.log.Warn("native function made host calls outside its handler's thread; they were refused",
			"handler", handler, "refused_total", n)
	}
	if i.failure == nil {
		return nil
	}
	i.dead = true
	return fmt.Errorf("native function failed in %s: %w", handler, i.failure)
}

func bytesPtr(b []byte) *C.uint8_t {
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

// cBytes returns the n bytes of C memory at p, capped so appends cannot
// reach past them, or nil when there are none.
func cBytes(p unsafe.Pointer, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), int(n))[:n:n]
}
