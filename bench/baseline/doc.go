// Package baseline holds the dataplanes that edgeless's own is measured
// against, each moving the same event (kind, target and source instance ids,
// correlation id, timestamp, 64-byte payload) over loopback in this process:
//
//   - a raw gnet echo of a frame of the size of edgeless's event frame: the
//     floor of any gnet-based dataplane;
//   - a gRPC unary Handle(Event) call with the event in protobuf wire format,
//     the shape of EDGELESS's own dataplane;
//   - a plain net.Conn dataplane with msgpack's reflection codec;
//   - NATS request/reply through a nats-server embedded in the process, the
//     broker of wasmCloud's lattice: every event crosses the broker, so a
//     round trip is four loopback hops.
//
// It is a module of its own so that gRPC and NATS stay out of edgeless's go.mod. Run
// it with `make bench` or `cd bench/baseline && go test -bench .`; each
// benchmark has an rtt variant (one event in flight: ns/op is the round
// trip, p50-µs and p99-µs its percentiles) and a oneway variant (events
// pipelined to a counting handler: events/s).
package baseline
