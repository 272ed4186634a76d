//go:build wasip1

package edgeless

import (
	"time"
	"unsafe"
)

// guest is the module's side of the ABI. A wasm module holds exactly one
// function instance and the host reaches it only through exported
// functions, so this state is necessarily package-level.
var guest struct {
	fn Function
	// allocs keeps every buffer handed out by edgeless_mem_alloc reachable
	// until edgeless_mem_free (or until a host call's reply is taken over),
	// since the Go collector cannot see the host's references. Go's
	// collector does not move objects, so the addresses stay valid.
	allocs map[uintptr][]byte
	// reply is the last reply of handle_call_asm. The host copies it after
	// the export returns and does not free it, so it stays reachable until
	// the next handler is entered.
	reply []byte
}

// Register installs f as the module's function. Call it exactly once, from
// an init function of the main package: the host may call a handler as soon
// as the module is initialised.
func Register(f Function) {
	if f == nil {
		panic("edgeless: Register called with a nil Function")
	}
	if guest.fn != nil {
		panic("edgeless: Register called twice")
	}
	guest.fn = f
}

func function() Function {
	if guest.fn == nil {
		panic("edgeless: no function registered; call edgeless.Register from an init function")
	}
	return guest.fn
}

// bytesAt returns the n bytes of linear memory at p, or nil when n is 0 (the
// ABI's "absent"). The slice aliases host-owned memory.
func bytesAt(p unsafe.Pointer, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

func instanceAt(node, component unsafe.Pointer) InstanceID {
	var id InstanceID
	copy(id.Node[:], unsafe.Slice((*byte)(node), len(id.Node)))
	copy(id.Component[:], unsafe.Slice((*byte)(component), len(id.Component)))
	return id
}

//go:wasmexport edgeless_mem_alloc
func memAlloc(size uint32) unsafe.Pointer {
	// A zero-length slice may share its address with others; one byte keeps
	// every live allocation at a distinct address.
	b := make([]byte, max(size, 1))
	p := unsafe.Pointer(unsafe.SliceData(b))
	if guest.allocs == nil {
		guest.allocs = make(map[uintptr][]byte)
	}
	guest.allocs[uintptr(p)] = b[:size]
	return p
}

//go:wasmexport edgeless_mem_free
func memFree(p unsafe.Pointer, size uint32) {
	delete(guest.allocs, uintptr(p))
}

//go:wasmexport edgeless_mem_clear
func memClear() {
	// Nothing to reset: buffers are tracked and freed individually.
}

//go:wasmexport handle_init_asm
func handleInitAsm(payload unsafe.Pointer, payloadLen uint32, state unsafe.Pointer, stateLen uint32) {
	guest.reply = nil
	function().HandleInit(bytesAt(payload, payloadLen), bytesAt(state, stateLen))
}

//go:wasmexport handle_cast_asm
func handleCastAsm(node, component, payload unsafe.Pointer, payloadLen uint32) {
	guest.reply = nil
	function().HandleCast(instanceAt(node, component), bytesAt(payload, payloadLen))
}

//go:wasmexport handle_call_asm
func handleCallAsm(node, component, payload unsafe.Pointer, payloadLen uint32, outPtr, outLen unsafe.Pointer) int32 {
	guest.reply = nil
	ret, reply := function().HandleCall(instanceAt(node, component), bytesAt(payload, payloadLen))
	switch ret {
	case NoReply:
		return int32(NoReply)
	case Reply:
	default:
		return int32(Err)
	}
	guest.reply = reply
	// Linear memory addresses fit in 32 bits, and wasm is little-endian as
	// the slots require. The slots come from edgeless_mem_alloc, so they are
	// suitably aligned.
	*(*uint32)(outPtr) = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(reply))))
	*(*uint32)(outLen) = uint32(len(reply))
	return int32(Reply)
}

//go:wasmexport handle_stop_asm
func handleStopAsm() {
	guest.reply = nil
	function().HandleStop()
}

//go:wasmimport env cast_raw_asm
func castRawAsm(node, component, payload unsafe.Pointer, payloadLen uint32)

//go:wasmimport env cast_asm
func castAsm(target unsafe.Pointer, targetLen uint32, payload unsafe.Pointer, payloadLen uint32)

//go:wasmimport env call_raw_asm
func callRawAsm(node, component, payload unsafe.Pointer, payloadLen uint32, outPtr, outLen unsafe.Pointer) int32

//go:wasmimport env call_asm
func callAsm(target unsafe.Pointer, targetLen uint32, payload unsafe.Pointer, payloadLen uint32, outPtr, outLen unsafe.Pointer) int32

//go:wasmimport env telemetry_log_asm
func telemetryLogAsm(level int32, target unsafe.Pointer, targetLen uint32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport env slf_asm
func slfAsm(node, component unsafe.Pointer)

//go:wasmimport env delayed_cast_asm
func delayedCastAsm(delayMS int64, target unsafe.Pointer, targetLen uint32, payload unsafe.Pointer, payloadLen uint32)

//go:wasmimport env sync_asm
func syncAsm(data unsafe.Pointer, dataLen uint32)

func strPtr(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func bytesPtr(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

// Cast sends payload asynchronously to the instance mapped to output ("self"
// is the instance itself). An output that is not mapped is ignored.
func Cast(output string, payload []byte) {
	t, tn := strPtr(output)
	p, pn := bytesPtr(payload)
	castAsm(t, tn, p, pn)
}

// CastRaw sends payload asynchronously to an explicit instance.
func CastRaw(target InstanceID, payload []byte) {
	p, pn := bytesPtr(payload)
	castRawAsm(unsafe.Pointer(&target.Node), unsafe.Pointer(&target.Component), p, pn)
}

// Call sends payload to the instance mapped to output and blocks until it
// answers. The reply is set only with Reply and belongs to the caller.
// Calling an output that is not mapped is an error the platform may answer
// by stopping the instance.
func Call(output string, payload []byte) (CallRet, []byte) {
	// Each slot is 8 bytes although the ABI writes 4: the reference host
	// writes the reply length as a 64-bit integer, and the wider slot keeps
	// that from clobbering memory next to it. Only the low 4 bytes are read.
	var slots [2]uint64
	t, tn := strPtr(output)
	p, pn := bytesPtr(payload)
	ret := callAsm(t, tn, p, pn, unsafe.Pointer(&slots[0]), unsafe.Pointer(&slots[1]))
	return takeReply(ret, slots)
}

// CallRaw is Call to an explicit instance.
func CallRaw(target InstanceID, payload []byte) (CallRet, []byte) {
	var slots [2]uint64
	p, pn := bytesPtr(payload)
	ret := callRawAsm(unsafe.Pointer(&target.Node), unsafe.Pointer(&target.Component), p, pn,
		unsafe.Pointer(&slots[0]), unsafe.Pointer(&slots[1]))
	return takeReply(ret, slots)
}

// takeReply hands the reply the host wrote with edgeless_mem_alloc over to
// the caller: it leaves the allocation table, so the collector owns it.
func takeReply(ret int32, slots [2]uint64) (CallRet, []byte) {
	key := uintptr(uint32(slots[0]))
	buf, ok := guest.allocs[key]
	if ok {
		delete(guest.allocs, key)
	}
	switch CallRet(ret) {
	case Reply:
		n := uint32(slots[1])
		if !ok || n > uint32(len(buf)) {
			if n == 0 {
				return Reply, nil
			}
			panic("edgeless: host reply does not match any buffer it allocated")
		}
		return Reply, buf[:n]
	case NoReply:
		return NoReply, nil
	default:
		return Err, nil
	}
}

// DelayedCast casts payload to output after delay, truncated to whole
// milliseconds. It returns at once; the host owns the timer.
func DelayedCast(delay time.Duration, output string, payload []byte) {
	t, tn := strPtr(output)
	p, pn := bytesPtr(payload)
	delayedCastAsm(max(delay.Milliseconds(), 0), t, tn, p, pn)
}

// Slf returns the identity of the calling instance.
func Slf() InstanceID {
	var id InstanceID
	slfAsm(unsafe.Pointer(&id.Node), unsafe.Pointer(&id.Component))
	return id
}

// Sync persists state; the host hands the latest state back to HandleInit
// when the instance is re-created (after a migration or a node failure).
func Sync(state []byte) {
	p, pn := bytesPtr(state)
	syncAsm(p, pn)
}

// Log emits a telemetry log entry at level; target names its source.
func Log(level Level, target, msg string) {
	t, tn := strPtr(target)
	m, mn := strPtr(msg)
	telemetryLogAsm(int32(level), t, tn, m, mn)
}
