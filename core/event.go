package core

// EventKind tells what an Event carries.
type EventKind uint8

// Event kinds. A Call is answered by exactly one of CallReply, CallNoReply or
// CallErr carrying the call's correlation id.
const (
	KindCast        EventKind = 1
	KindCall        EventKind = 2
	KindCallReply   EventKind = 3
	KindCallNoReply EventKind = 4
	KindCallErr     EventKind = 5
)

// Valid reports whether k is one of the defined kinds.
func (k EventKind) Valid() bool { return k >= KindCast && k <= KindCallErr }

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case KindCast:
		return "cast"
	case KindCall:
		return "call"
	case KindCallReply:
		return "call-reply"
	case KindCallNoReply:
		return "call-noreply"
	case KindCallErr:
		return "call-err"
	}
	return "invalid"
}

// Event is one asynchronous message between instances.
//
// Payload is bytes (not necessarily UTF-8). Who owns it depends on where the
// event is: functions that take an *Event document whether Payload may be
// retained after they return.
type Event struct {
	Kind    EventKind
	Target  InstanceID
	Source  InstanceID
	Corr    uint64 // correlation id joining a call to its reply; 0 for casts
	Created int64  // sender's wall clock, Unix ns: when the sending handler began, or the event was made outside one
	Payload []byte
}

// CallRet is a function's answer to a call, numbered as in the EDGELESS ABI.
type CallRet int32

// Call results.
const (
	CallNoReply CallRet = 0
	CallReply   CallRet = 1
	CallErr     CallRet = 2
)

// ReplyKind maps a call result to the event kind that carries it back.
func (r CallRet) ReplyKind() EventKind {
	switch r {
	case CallReply:
		return KindCallReply
	case CallNoReply:
		return KindCallNoReply
	}
	return KindCallErr
}
