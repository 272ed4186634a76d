package sandbox

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime/cgo"
	"strconv"
	"strings"
	"unsafe"

	"github.com/edgeless-go/edgeless/core"
)

var (
	// ErrDead is returned by every method of an instance that has trapped,
	// run out of memory or time, or been closed.
	ErrDead = errors.New("instance is dead")
	// ErrTimeout is matched (errors.Is) by the *Trap of a handler that ran
	// past Config.HandlerTimeout.
	ErrTimeout = errors.New("handler exceeded its time budget")
	// ErrOutOfMemory is matched (errors.Is) by the *Trap of an instance that
	// could not get memory within Config.MaxMemoryBytes.
	ErrOutOfMemory = errors.New("out of memory")
	// ErrReentered is returned when a Host method calls back into the
	// instance whose handler is running.
	ErrReentered = errors.New("instance re-entered from its own host call")
)

// Trap reports that an instance failed: wasm trapped (unreachable, bad
// memory access, stack overflow), the WASI guest exited, the handler ran out
// of time or memory, a host function panicked, or the guest passed a pointer
// outside its memory. The instance is dead afterwards.
type Trap struct {
	// Export is the guest function that was running, e.g. "handle_cast_asm".
	Export string
	// Message is wasmtime's or the host's description.
	Message string
	// Backtrace lists the wasm frames active at the trap, innermost first,
	// when wasmtime knows them.
	Backtrace string
	cause     error
}

// Error returns "wasm trap in <export>: <message>", naming the cause first
// when it is a timeout or running out of memory.
func (t *Trap) Error() string {
	if t.cause != nil {
		return "wasm trap in " + t.Export + ": " + t.cause.Error() + " (" + t.Message + ")"
	}
	return "wasm trap in " + t.Export + ": " + t.Message
}

// Unwrap returns ErrTimeout or ErrOutOfMemory when the trap is one of those,
// and nil otherwise.
func (t *Trap) Unwrap() error { return t.cause }

// Instance is one running function: a wasmtime store holding one instance
// of a Module, and the Host it calls. An Instance is used by one goroutine at
// a time; Host methods run on that goroutine.
type Instance struct {
	rt        *Runtime
	host      Host
	handle    cgo.Handle
	c         *C.edg_inst
	busy      bool  // a handler is running; guards against re-entry from the Host
	maxMemory int64 // this instance's linear-memory limit
	dead      bool
	reply     []byte
}

// Instantiate creates an instance of m that calls h. For WASI modules it
// also runs the reactor's _initialize. m must have been loaded by r.
func (r *Runtime) Instantiate(m *Module, h Host) (*Instance, error) {
	return r.InstantiateLimit(m, h, r.cfg.MaxMemoryBytes)
}

// InstantiateLimit is Instantiate with a linear-memory limit of its own for
// the instance, at most the runtime's MaxMemoryBytes (which a larger or
// non-positive value means).
func (r *Runtime) InstantiateLimit(m *Module, h Host, maxMemory int64) (*Instance, error) {
	if maxMemory <= 0 || maxMemory > r.cfg.MaxMemoryBytes {
		maxMemory = r.cfg.MaxMemoryBytes
	}
	if m.rt != r {
		return nil, errors.New("cannot instantiate module: it was loaded by another runtime")
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errClosed
	}
	r.live++
	r.mu.Unlock()

	i := &Instance{rt: r, host: h, maxMemory: maxMemory}
	i.handle = cgo.NewHandle(i)
	var c *C.edg_inst
	rc := C.edg_instantiate(r.c, m.pre, m.flags, C.int64_t(maxMemory), C.uintptr_t(i.handle), &c)
	i.c = c
	if c == nil {
		i.handle.Delete()
		r.release()
		return nil, errors.New("cannot instantiate module: out of memory")
	}
	if rc != C.EDG_OK {
		export := "instantiate"
		if c.initializing {
			export = "_initialize"
		}
		err := i.fail(export, rc)
		i.Close()
		return nil, fmt.Errorf("cannot instantiate module: %w", err)
	}
	return i, nil
}

// Init runs handle_init_asm with the init payload and the saved state; an
// empty payload or state is passed as None.
func (i *Instance) Init(payload, state []byte) error {
	if err := i.enter(len(payload), len(state)); err != nil {
		return err
	}
	rc := C.edg_invoke(i.c, C.EDG_INIT, bytesPtr(payload), C.size_t(len(payload)), bytesPtr(state), C.size_t(len(state)))
	return i.leave("handle_init_asm", rc)
}

// Cast delivers an asynchronous event from src to handle_cast_asm.
func (i *Instance) Cast(src core.InstanceID, payload []byte) error {
	if err := i.enter(len(payload), 0); err != nil {
		return err
	}
	i.setSource(src)
	rc := C.edg_invoke(i.c, C.EDG_CAST, bytesPtr(payload), C.size_t(len(payload)), nil, 0)
	return i.leave("handle_cast_asm", rc)
}

// Call delivers a call from src to handle_call_asm and returns its answer.
// A return code other than 0, 1 or 2 is core.CallErr. The reply is only set
// for core.CallReply; it is owned by i and valid until the next method call
// on i.
func (i *Instance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	if err := i.enter(len(payload), 0); err != nil {
		return core.CallErr, nil, err
	}
	i.setSource(src)
	rc := C.edg_invoke(i.c, C.EDG_CALL, bytesPtr(payload), C.size_t(len(payload)), nil, 0)
	if err := i.leave("handle_call_asm", rc); err != nil {
		return core.CallErr, nil, err
	}
	switch ret := core.CallRet(i.c.ret); ret {
	case core.CallNoReply:
		return ret, nil, nil
	case core.CallReply:
		i.reply = append(i.reply[:0], unsafe.Slice((*byte)(unsafe.Pointer(i.c.reply)), int(i.c.reply_len))...)
		return ret, i.reply, nil
	}
	return core.CallErr, nil, nil
}

// Stop runs handle_stop_asm. The instance stays usable until Close.
func (i *Instance) Stop() error {
	if err := i.enter(0, 0); err != nil {
		return err
	}
	rc := C.edg_invoke(i.c, C.EDG_STOP, nil, 0, nil, 0)
	return i.leave("handle_stop_asm", rc)
}

// Close frees the instance and its store. It is idempotent; calls after it
// return ErrDead. It must not be called from a Host method of i.
func (i *Instance) Close() {
	if i.c == nil {
		return
	}
	if i.busy {
		// From a Host method: freeing the store under the running handler
		// would crash; as a panic it becomes a trap of the handler instead.
		panic("BUG: sandbox.Instance closed from its own host call")
	}
	C.edg_inst_delete(i.c)
	i.c = nil
	i.dead = true
	i.handle.Delete()
	i.rt.release()
}

func (i *Instance) enter(n1, n2 int) error {
	switch {
	case i.dead:
		return ErrDead
	case i.busy:
		return ErrReentered
	case uint64(n1) > math.MaxUint32 || uint64(n2) > math.MaxUint32:
		return errors.New("cannot pass more than 4 GiB to a wasm32 guest")
	}
	i.busy = true
	return nil
}

func (i *Instance) leave(export string, rc C.int) error {
	if rc == C.EDG_OK {
		rc = i.sendCasts()
	} else if i.c.casts_len > 0 {
		// The casts the handler made before it failed go out, as they
		// would have unqueued; the failure reported stays the handler's.
		cause, msg, n := i.c.cause, i.c.msg, i.c.msg_len
		i.sendCasts()
		i.c.cause, i.c.msg, i.c.msg_len = cause, msg, n
	}
	i.busy = false
	if rc == C.EDG_OK {
		return nil
	}
	return i.fail(export, rc)
}

// setSource puts the event's source where edg_invoke expects it.
func (i *Instance) setSource(src core.InstanceID) {
	*(*[32]byte)(unsafe.Pointer(&i.c.src[0])) = *(*[32]byte)(unsafe.Pointer(&src))
}

// fail turns the failure edg_invoke or edg_instantiate reported into a
// *Trap, and kills the instance: its store is dropped at once so its memory
// goes back to the pool.
func (i *Instance) fail(export string, rc C.int) error {
	c := i.c
	t := &Trap{Export: export}
	switch c.cause {
	case C.EDG_CAUSE_TIMEOUT:
		t.cause = ErrTimeout
	case C.EDG_CAUSE_OOM:
		t.cause = ErrOutOfMemory
	}
	switch {
	case rc == C.EDG_FAIL_HOST:
		t.Message = C.GoStringN(&c.msg[0], C.int(c.msg_len))
	case c.trap != nil:
		var m C.wasm_message_t
		C.wasm_trap_message(c.trap, &m)
		t.Message, t.Backtrace = splitMessage(byteVecString(&m))
		var code C.wasmtime_trap_code_t
		if C.wasmtime_trap_code(c.trap, &code) && code == C.WASMTIME_TRAP_CODE_INTERRUPT {
			t.cause = ErrTimeout
		}
	case c.err != nil:
		var status C.int
		if C.wasmtime_error_exit_status(c.err, &status) {
			t.Message = "exited with status " + strconv.Itoa(int(status))
		} else {
			var m C.wasm_name_t
			C.wasmtime_error_message(c.err, &m)
			t.Message, t.Backtrace = splitMessage(byteVecString(&m))
		}
	default:
		t.Message = "unknown failure"
	}
	// A guest that cannot grow its memory learns it from memory.grow
	// returning -1 and usually traps soon after; wasmtime does not say so,
	// so a trap with memory within a page of the limit is reported as out of
	// memory.
	if t.cause == nil && c.size > 0 && int64(c.size)+65536 > i.maxMemory {
		t.cause = ErrOutOfMemory
		t.Message += " (linear memory at its limit of " + strconv.FormatInt(i.maxMemory, 10) + " bytes)"
	}
	C.edg_clear_failure(c)
	C.edg_inst_kill(c)
	i.dead = true
	return t
}

// splitMessage separates wasmtime's error report ("error while executing
// at wasm backtrace: <frames> Caused by: <reasons> Stack backtrace: <host
// frames>") into the reasons and the wasm frames; the host frames say
// nothing about the guest.
func splitMessage(s string) (msg, backtrace string) {
	s, _, _ = strings.Cut(s, "\n\nStack backtrace:")
	head, causes, ok := strings.Cut(s, "\n\nCaused by:\n")
	if !ok {
		return strings.TrimSpace(s), ""
	}
	var reasons []string
	for _, l := range strings.Split(causes, "\n") {
		l = strings.TrimSpace(l)
		if n, rest, ok := strings.Cut(l, ": "); ok && strings.Trim(n, "0123456789") == "" {
			l = rest // "0: reason" when there are several
		}
		if l = strings.TrimPrefix(l, "wasm trap: "); l != "" {
			reasons = append(reasons, l)
		}
	}
	head = strings.TrimSpace(head)
	_, frames, ok := strings.Cut(head, "wasm backtrace:")
	if !ok {
		// Not a trap but an error with its causes, e.g. from compiling.
		return strings.Join(append([]string{head}, reasons...), ": "), ""
	}
	var fs []string
	for _, l := range strings.Split(frames, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			fs = append(fs, l)
		}
	}
	return strings.Join(reasons, ": "), strings.Join(fs, "\n")
}

// byteVecString returns the text of a wasm_byte_vec_t (dropping the NUL
// wasmtime appends to messages) and deletes the vector.
func byteVecString(v *C.wasm_byte_vec_t) string {
	s := C.GoStringN(v.data, C.int(v.size))
	C.wasm_byte_vec_delete(v)
	return strings.TrimRight(s, "\x00")
}

func bytesPtr(b []byte) *C.uint8_t {
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}
