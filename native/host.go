package native

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"runtime/debug"
	"unsafe"

	"github.com/edgeless-go/edgeless/core"
)

// Host is what an instance needs from its node: the host calls of the
// native ABI. It has the methods of sandbox.Host, so one node type serves
// both runtimes.
//
// Byte slices passed to Host methods alias the function's memory and are
// valid only during the call: the Host copies what it keeps. Host methods
// are called on the goroutine running the handler. A panic in a Host method
// is recovered: the host call returns (a call with core.CallErr), and the
// handler's method returns an error once the function's handler is back,
// after which the instance is dead.
type Host interface {
	// Cast sends payload to the instance mapped to the output channel named
	// output ("self" for the instance itself).
	Cast(output, payload []byte)
	// CastRaw sends payload to an explicit instance.
	CastRaw(target core.InstanceID, payload []byte)
	// Call sends payload to the instance mapped to output and waits for its
	// answer. The reply is owned by the Host and must stay valid until the
	// next Host call.
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

// Host calls, named for messages.
const (
	hcCast         = "cast"
	hcCastRaw      = "cast_raw"
	hcCall         = "call"
	hcCallRaw      = "call_raw"
	hcDelayedCast  = "delayed_cast"
	hcSelf         = "slf"
	hcSync         = "sync"
	hcTelemetryLog = "telemetry_log"
)

// The functions below are the Go ends of the host table in shim.c, which
// only forwards calls made by the thread running a handler of the instance.
// Each recovers a panic of the Host so that it never unwinds through the
// function's C frames.

//export edgNativeCast
func edgNativeCast(c *C.edg_ninst, out *C.char, outLen C.size_t, p *C.uint8_t, n C.size_t) {
	i := instanceOf(c)
	defer i.recoverHost(hcCast)
	i.host.Cast(cBytes(unsafe.Pointer(out), outLen), cBytes(unsafe.Pointer(p), n))
}

//export edgNativeCastRaw
func edgNativeCastRaw(c *C.edg_ninst, node, comp *C.uint8_t, p *C.uint8_t, n C.size_t) {
	i := instanceOf(c)
	defer i.recoverHost(hcCastRaw)
	i.host.CastRaw(instanceID(node, comp), cBytes(unsafe.Pointer(p), n))
}

//export edgNativeCall
func edgNativeCall(c *C.edg_ninst, out *C.char, outLen C.size_t, p *C.uint8_t, n C.size_t, replyLen *C.size_t) (rc C.int32_t) {
	i := instanceOf(c)
	defer i.recoverCall(hcCall, &rc)
	ret, reply := i.host.Call(cBytes(unsafe.Pointer(out), outLen), cBytes(unsafe.Pointer(p), n))
	return i.giveReply(ret, reply, replyLen)
}

//export edgNativeCallRaw
func edgNativeCallRaw(c *C.edg_ninst, node, comp *C.uint8_t, p *C.uint8_t, n C.size_t, replyLen *C.size_t) (rc C.int32_t) {
	i := instanceOf(c)
	defer i.recoverCall(hcCallRaw, &rc)
	ret, reply := i.host.CallRaw(instanceID(node, comp), cBytes(unsafe.Pointer(p), n))
	return i.giveReply(ret, reply, replyLen)
}

//export edgNativeDelayedCast
func edgNativeDelayedCast(c *C.edg_ninst, ms C.int64_t, out *C.char, outLen C.size_t, p *C.uint8_t, n C.size_t) {
	i := instanceOf(c)
	defer i.recoverHost(hcDelayedCast)
	i.host.DelayedCast(int64(ms), cBytes(unsafe.Pointer(out), outLen), cBytes(unsafe.Pointer(p), n))
}

//export edgNativeSelf
func edgNativeSelf(c *C.edg_ninst, node, comp *C.uint8_t) {
	i := instanceOf(c)
	defer i.recoverHost(hcSelf)
	id := i.host.Self()
	copy(cBytes(unsafe.Pointer(node), 16), id.Node[:])
	copy(cBytes(unsafe.Pointer(comp), 16), id.Component[:])
}

//export edgNativeSync
func edgNativeSync(c *C.edg_ninst, p *C.uint8_t, n C.size_t) {
	i := instanceOf(c)
	defer i.recoverHost(hcSync)
	i.host.Sync(cBytes(unsafe.Pointer(p), n))
}

//export edgNativeLog
func edgNativeLog(c *C.edg_ninst, level C.int32_t, target *C.char, targetLen C.size_t, msg *C.char, msgLen C.size_t) {
	i := instanceOf(c)
	defer i.recoverHost(hcTelemetryLog)
	i.host.TelemetryLog(int32(level), cBytes(unsafe.Pointer(target), targetLen), cBytes(unsafe.Pointer(msg), msgLen))
}

func instanceOf(c *C.edg_ninst) *Instance {
	return cgo.Handle(c.handle).Value().(*Instance)
}

func instanceID(node, comp *C.uint8_t) core.InstanceID {
	var id core.InstanceID
	copy(id.Node[:], cBytes(unsafe.Pointer(node), 16))
	copy(id.Component[:], cBytes(unsafe.Pointer(comp), 16))
	return id
}

// giveReply places the answer to a host call where shim.c hands it to the
// function: the bytes in the instance's C buffer, their length in
// *replyLen.
func (i *Instance) giveReply(ret core.CallRet, reply []byte, replyLen *C.size_t) C.int32_t {
	switch ret {
	case core.CallNoReply:
		return C.EDGELESS_NATIVE_NO_REPLY
	case core.CallReply:
	default:
		return C.EDGELESS_NATIVE_ERR
	}
	if n := len(reply); n > 0 {
		if C.size_t(n) > i.c.reply_cap && C.edg_reserve(i.c, C.size_t(n)) != 0 {
			i.rt.log.Error("cannot allocate the reply of a host call; answering Err", "bytes", n)
			return C.EDGELESS_NATIVE_ERR
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(i.c.reply)), n), reply)
	}
	*replyLen = C.size_t(len(reply))
	return C.EDGELESS_NATIVE_REPLY
}

// recoverHost, deferred by a host call, turns a panic of the Host into a
// failure of the running handler.
func (i *Instance) recoverHost(name string) {
	if r := recover(); r != nil {
		i.hostPanic(name, r)
	}
}

// recoverCall is recoverHost for calls, which then answer Err.
func (i *Instance) recoverCall(name string, rc *C.int32_t) {
	if r := recover(); r != nil {
		i.hostPanic(name, r)
		*rc = C.EDGELESS_NATIVE_ERR
	}
}

func (i *Instance) hostPanic(name string, r any) {
	i.rt.log.Error("host function panicked", "call", name, "panic", r, "stack", string(debug.Stack()))
	if i.failure == nil {
		i.failure = fmt.Errorf("host call %s panicked: %v", name, r)
	}
}
