// Package wire is the transport between edgeless processes: length-prefixed
// msgpack frames over TCP, carrying dataplane events and control requests on
// the same connection.
//
// A frame is a 4-byte big-endian length N followed by N bytes of msgpack: an
// array whose first element is the frame kind.
//
//	event    (kind 1..5, = core.EventKind) [kind, target, source, corr, created, payload]
//	request  (kind 16)                     [16, id, method, body]
//	response (kind 17)                     [17, id, err, body]
//
// Event ids are 32-byte bin (node then component), corr is an unsigned and
// created a signed integer (Unix nanoseconds), payload is bin. Request and
// response bodies are bin holding the msgpack encoding of the method's
// request or response value; err is a str, empty on success.
//
// Events are encoded and decoded by hand (AppendEvent, DecodeEvent): they
// cost a few tens of nanoseconds and allocate nothing, and a decoded payload
// aliases the frame. Control bodies use msgpack/v5's reflection, which is
// fine off the hot path.
//
// A Server (gnet event loops) hands events to a Handler on the loop that read
// them and runs requests through a Mux on their own goroutines. A Client
// (Go's net package) is one connection to a peer that batches outbound
// frames into single writes and redials after failures. A malformed frame
// closes only the connection that sent it.
package wire
