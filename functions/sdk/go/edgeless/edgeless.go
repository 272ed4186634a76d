package edgeless

// InstanceID names one function instance: the UUID of the node it runs on
// and the UUID of the instance, as raw bytes in RFC 4122 byte order.
type InstanceID struct {
	Node      [16]byte
	Component [16]byte
}

// CallRet is the outcome of a call, both for [Function.HandleCall] and for
// [Call]. The values are the ones on the wire.
type CallRet int32

// The outcomes of a call.
const (
	// NoReply means the call was handled and there is nothing to answer.
	NoReply CallRet = 0
	// Reply means the call was handled and the reply holds the answer.
	Reply CallRet = 1
	// Err means the call failed, including a call to an unmapped output.
	Err CallRet = 2
)

// Level is the severity of a telemetry log entry.
type Level int32

// The telemetry log levels.
const (
	LevelError Level = 1
	LevelWarn  Level = 2
	LevelInfo  Level = 3
	LevelDebug Level = 4
	LevelTrace Level = 5
)

// Function is implemented by a function author and registered with
// Register. Slices passed to its methods are valid only until the method
// returns.
type Function interface {
	// HandleInit runs once before any other handler. payload is the
	// workflow's init-payload and state the last buffer passed to Sync by
	// this instance or its predecessor; each is nil when absent.
	HandleInit(payload, state []byte)
	// HandleCast handles an asynchronous event from src.
	HandleCast(src InstanceID, payload []byte)
	// HandleCall handles a synchronous request from src. The reply is used
	// only with Reply; the SDK keeps it alive until the host has copied it.
	HandleCall(src InstanceID, payload []byte) (CallRet, []byte)
	// HandleStop runs once when the instance is stopped.
	HandleStop()
}

// Base implements every Function method as a no-op (calls answer NoReply),
// so a function embeds it and overrides only the handlers it needs.
type Base struct{}

// HandleInit does nothing.
func (Base) HandleInit(payload, state []byte) {}

// HandleCast does nothing.
func (Base) HandleCast(src InstanceID, payload []byte) {}

// HandleCall answers NoReply.
func (Base) HandleCall(src InstanceID, payload []byte) (CallRet, []byte) { return NoReply, nil }

// HandleStop does nothing.
func (Base) HandleStop() {}
