package sandbox

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime/cgo"
	"runtime/debug"
	"strconv"
	"unsafe"

	"github.com/edgeless-go/edgeless/core"
)

// Host is what an instance needs from its node: the functions a guest
// imports from module "env".
//
// Byte slices passed to Host methods alias guest memory and are valid only
// during the call: the Host copies what it keeps, and must not return a
// slice of them (guest memory may move while a reply is placed in it).
// Host methods are called on the goroutine running the handler. A panic in a
// Host method becomes a trap of the instance.
type Host interface {
	// Cast sends payload to the instance mapped to the output channel named
	// output ("self" for the instance itself).
	Cast(output, payload []byte)
	// CastRaw sends payload to an explicit instance.
	CastRaw(target core.InstanceID, payload []byte)
	// Call sends payload to the instance mapped to output and waits for its
	// answer. The reply is owned by the Host and must stay valid until the
	// next Host call. An output that is not mapped is the Host's decision;
	// it may answer core.CallErr.
	Call(output, payload []byte) (core.CallRet, []byte)
	// CallRaw is Call with an explicit target.
	CallRaw(target core.InstanceID, payload []byte) (core.CallRet, []byte)
	// DelayedCast casts payload to output after delayMS milliseconds.
	DelayedCast(delayMS int64, output, payload []byte)
	// Sync persists the function's serialized state.
	Sync(state []byte)
	// TelemetryLog records a log line of the function; level is 1 (error)
	// to 5 (trace) as in EDGELESS.
	TelemetryLog(level int32, target, msg []byte)
	// Self returns the instance's own address.
	Self() core.InstanceID
}

// Host imports, numbered as shim.c's trampoline passes them to edgHostCall.
const (
	impCastRaw      = C.EDG_IMP_CAST_RAW
	impCast         = C.EDG_IMP_CAST
	impCallRaw      = C.EDG_IMP_CALL_RAW
	impCall         = C.EDG_IMP_CALL
	impTelemetryLog = C.EDG_IMP_TELEMETRY_LOG
	impSelf         = C.EDG_IMP_SELF
	impDelayedCast  = C.EDG_IMP_DELAYED_CAST
	impSync         = C.EDG_IMP_SYNC
	numImports      = C.EDG_NIMP
)

// signature spells a function type, one letter per value: i = i32, I = i64,
// f = f32, F = f64, ? = anything else.
type signature struct{ params, results string }

func (s signature) String() string {
	f := func(sig string) string {
		b := make([]byte, 0, 8*len(sig))
		for k := 0; k < len(sig); k++ {
			if k > 0 {
				b = append(b, ", "...)
			}
			switch sig[k] {
			case 'i':
				b = append(b, "i32"...)
			case 'I':
				b = append(b, "i64"...)
			case 'f':
				b = append(b, "f32"...)
			case 'F':
				b = append(b, "f64"...)
			default:
				b = append(b, "other"...)
			}
		}
		return string(b)
	}
	return "(" + f(s.params) + ") -> (" + f(s.results) + ")"
}

// hostImports is the EDGELESS host API as wasm functions in module "env".
var hostImports = [numImports]struct {
	name string
	sig  signature
}{
	impCastRaw:      {"cast_raw_asm", signature{"iiii", ""}},
	impCast:         {"cast_asm", signature{"iiii", ""}},
	impCallRaw:      {"call_raw_asm", signature{"iiiiii", "i"}},
	impCall:         {"call_asm", signature{"iiiiii", "i"}},
	impTelemetryLog: {"telemetry_log_asm", signature{"iiiii", ""}},
	impSelf:         {"slf_asm", signature{"ii", ""}},
	impDelayedCast:  {"delayed_cast_asm", signature{"Iiiii", ""}},
	impSync:         {"sync_asm", signature{"ii", ""}},
}

// rawVal is wasmtime_val_raw_t: 16 bytes holding one wasm value, stored
// little-endian on every platform.
type rawVal [16]byte

func (v *rawVal) u32() uint32 { return binary.LittleEndian.Uint32(v[:4]) }
func (v *rawVal) i64() int64  { return int64(binary.LittleEndian.Uint64(v[:8])) }

func (v *rawVal) setI32(x int32) {
	*v = rawVal{}
	binary.LittleEndian.PutUint32(v[:4], uint32(x))
}

// edgHostCall is where every host import of every instance arrives, through
// shim.c's trampoline, except the casts it queues. It finds the instance
// through the handle stored in the store's data.
//
//export edgHostCall
func edgHostCall(c *C.edg_inst, fn C.int, args *C.wasmtime_val_raw_t, n C.size_t) (rc C.int) {
	i := cgo.Handle(c.handle).Value().(*Instance)
	// The casts queued before this import happened before it.
	if rc := i.sendCasts(); rc != C.EDG_OK {
		return rc
	}
	defer func() {
		if r := recover(); r != nil {
			rc = i.hostPanic(int(fn), r)
		}
	}()
	return i.hostCall(int(fn), unsafe.Slice((*rawVal)(unsafe.Pointer(args)), int(n)))
}

// sendCasts hands the casts the trampoline queued (edg_inst.casts) to the
// host, in the order the guest made them. A host panic fails the import or
// handler that sends them, as it would have failed the cast itself; the
// casts after the one that panicked are dropped, as the guest would not
// have made them.
func (i *Instance) sendCasts() (rc C.int) {
	n := int(i.c.casts_len)
	if n == 0 {
		return C.EDG_OK
	}
	// Emptied first: the host cannot queue more (the instance is busy), and
	// after a panic none must go out twice.
	i.c.casts_len = 0
	q := unsafe.Slice((*byte)(unsafe.Pointer(i.c.casts)), n)
	fn := impCast
	defer func() {
		if r := recover(); r != nil {
			rc = i.hostPanic(fn, r)
		}
	}()
	for len(q) > 0 {
		fn = int(binary.NativeEndian.Uint32(q))
		tlen := int(binary.NativeEndian.Uint32(q[4:]))
		plen := int(binary.NativeEndian.Uint32(q[8:]))
		q = q[12:]
		target, payload := q[:tlen:tlen], q[tlen:tlen+plen:tlen+plen]
		if plen == 0 {
			payload = nil // as the unqueued path passes an empty buffer
		}
		q = q[tlen+plen:]
		if fn == impCastRaw {
			i.host.CastRaw(instanceID(target[:16], target[16:]), payload)
		} else {
			i.host.Cast(target, payload)
		}
	}
	return C.EDG_OK
}

func (i *Instance) hostCall(fn int, a []rawVal) C.int {
	h := i.host
	switch fn {
	case impCast:
		out, ok1 := i.guest(a[0].u32(), a[1].u32())
		payload, ok2 := i.guest(a[2].u32(), a[3].u32())
		if !ok1 || !ok2 {
			return i.outOfBounds(fn, a)
		}
		h.Cast(out, payload)
	case impCastRaw:
		node, ok1 := i.guest(a[0].u32(), 16)
		comp, ok2 := i.guest(a[1].u32(), 16)
		payload, ok3 := i.guest(a[2].u32(), a[3].u32())
		if !ok1 || !ok2 || !ok3 {
			return i.outOfBounds(fn, a)
		}
		h.CastRaw(instanceID(node, comp), payload)
	case impCall, impCallRaw:
		payload, ok1 := i.guest(a[2].u32(), a[3].u32())
		_, ok2 := i.guest(a[4].u32(), 4)
		_, ok3 := i.guest(a[5].u32(), 4)
		if !ok1 || !ok2 || !ok3 {
			return i.outOfBounds(fn, a)
		}
		var ret core.CallRet
		var reply []byte
		if fn == impCall {
			out, ok := i.guest(a[0].u32(), a[1].u32())
			if !ok {
				return i.outOfBounds(fn, a)
			}
			ret, reply = h.Call(out, payload)
		} else {
			node, ok1 := i.guest(a[0].u32(), 16)
			comp, ok2 := i.guest(a[1].u32(), 16)
			if !ok1 || !ok2 {
				return i.outOfBounds(fn, a)
			}
			ret, reply = h.CallRaw(instanceID(node, comp), payload)
		}
		return i.giveReply(fn, a, ret, reply)
	case impTelemetryLog:
		target, ok1 := i.guest(a[1].u32(), a[2].u32())
		msg, ok2 := i.guest(a[3].u32(), a[4].u32())
		if !ok1 || !ok2 {
			return i.outOfBounds(fn, a)
		}
		h.TelemetryLog(int32(a[0].u32()), target, msg)
	case impSelf:
		node, ok1 := i.guest(a[0].u32(), 16)
		comp, ok2 := i.guest(a[1].u32(), 16)
		if !ok1 || !ok2 {
			return i.outOfBounds(fn, a)
		}
		id := h.Self()
		copy(node, id.Node[:])
		copy(comp, id.Component[:])
	case impDelayedCast:
		out, ok1 := i.guest(a[1].u32(), a[2].u32())
		payload, ok2 := i.guest(a[3].u32(), a[4].u32())
		if !ok1 || !ok2 {
			return i.outOfBounds(fn, a)
		}
		h.DelayedCast(a[0].i64(), out, payload)
	case impSync:
		state, ok := i.guest(a[0].u32(), a[1].u32())
		if !ok {
			return i.outOfBounds(fn, a)
		}
		h.Sync(state)
	default:
		panic("BUG: unknown host import " + fmt.Sprint(fn))
	}
	return C.EDG_OK
}

// giveReply answers a guest's call: the code in the result, and for a reply
// the bytes in a buffer from the guest's allocator, whose address and length
// go into the guest's two 4-byte slots. The guest owns and frees the buffer.
func (i *Instance) giveReply(fn int, a []rawVal, ret core.CallRet, reply []byte) C.int {
	if ret != core.CallNoReply && ret != core.CallReply {
		ret = core.CallErr
	}
	if ret == core.CallReply {
		if uint64(len(reply)) > math.MaxUint32 {
			return i.hostFail(C.EDG_CAUSE_FAULT, hostImports[fn].name+": reply longer than 4 GiB")
		}
		if rc := C.edg_guest_alloc(i.c, C.uint32_t(len(reply))); rc != C.EDG_OK {
			return rc
		}
		ptr := uint32(i.c.alloc_ptr)
		dst, _ := i.guest(ptr, uint32(len(reply))) // checked by edg_guest_alloc
		copy(dst, reply)
		// The slots were checked before the host call and memory only grows.
		ps, _ := i.guest(a[4].u32(), 4)
		ls, _ := i.guest(a[5].u32(), 4)
		binary.LittleEndian.PutUint32(ps, ptr)
		binary.LittleEndian.PutUint32(ls, uint32(len(reply)))
	}
	a[0].setI32(int32(ret))
	return C.EDG_OK
}

// guest returns the n bytes of guest memory at ptr, or false if they are not
// all inside it. The slice is capped so appends cannot reach past it.
func (i *Instance) guest(ptr, n uint32) ([]byte, bool) {
	if uint64(ptr)+uint64(n) > uint64(i.c.size) {
		return nil, false
	}
	if n == 0 {
		return nil, true
	}
	b := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(i.c.base), ptr)), n)
	return b[:n:n], true
}

func instanceID(node, comp []byte) core.InstanceID {
	var id core.InstanceID
	copy(id.Node[:], node)
	copy(id.Component[:], comp)
	return id
}

// outOfBounds fails import fn because one of its pointer arguments, with its
// length, does not lie in guest memory. The message lists all arguments.
func (i *Instance) outOfBounds(fn int, a []rawVal) C.int {
	msg := hostImports[fn].name + "("
	for k := range a {
		if k > 0 {
			msg += ", "
		}
		if hostImports[fn].sig.params[k] == 'I' {
			msg += strconv.FormatInt(a[k].i64(), 10)
		} else {
			msg += strconv.FormatUint(uint64(a[k].u32()), 10)
		}
	}
	msg += "): guest pointer out of bounds of " + strconv.FormatUint(uint64(i.c.size), 10) + "-byte memory"
	return i.hostFail(C.EDG_CAUSE_FAULT, msg)
}

func (i *Instance) hostPanic(fn int, r any) C.int {
	name := "host import"
	if fn >= 0 && fn < numImports {
		name = hostImports[fn].name
	}
	i.rt.log.Error("host function panicked", "import", name, "panic", r, "stack", string(debug.Stack()))
	return i.hostFail(C.EDG_CAUSE_PANIC, fmt.Sprintf("%s: host panic: %v", name, r))
}

// hostFail records why the running import fails; the trampoline turns it
// into a trap carrying msg.
func (i *Instance) hostFail(cause C.int, msg string) C.int {
	n := copy(unsafe.Slice((*byte)(unsafe.Pointer(&i.c.msg[0])), C.EDG_MSG_CAP-1), msg)
	i.c.msg_len = C.size_t(n)
	i.c.cause = cause
	return C.EDG_FAIL_HOST
}
