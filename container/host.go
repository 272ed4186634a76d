package container

import (
	"github.com/edgeless-go/edgeless/core"
)

// Host is what an instance needs from its node: the host calls of the
// function ABI, as in sandbox.Host and native.Host, so one node type serves
// every runtime.
//
// Byte slices passed to Host methods are valid only during the call. Host
// methods are called while the instance's handler (Init, Cast or Call)
// runs, on a gRPC goroutine while the handler's goroutine waits for the
// container, never concurrently with each other or with that goroutine: a
// mutex hands the instance over and back, so everything either side wrote
// before is visible to the other, as if one goroutine ran both.
type Host interface {
	// Cast sends payload to the instance mapped to output ("self" for the
	// instance itself).
	Cast(output, payload []byte)
	// CastRaw sends payload to an explicit instance.
	CastRaw(target core.InstanceID, payload []byte)
	// Call sends payload to the instance mapped to output and waits for its
	// answer; the reply stays valid until the next Host call.
	Call(output, payload []byte) (core.CallRet, []byte)
	// CallRaw is Call with an explicit target.
	CallRaw(target core.InstanceID, payload []byte) (core.CallRet, []byte)
	// DelayedCast casts payload to output after delayMS milliseconds.
	DelayedCast(delayMS int64, output, payload []byte)
	// Sync persists the function's serialized state.
	Sync(state []byte)
	// TelemetryLog records a log line; level is 1 (error) to 5 (trace).
	TelemetryLog(level int32, target, msg []byte)
	// Self returns the instance's own address.
	Self() core.InstanceID
}
