// Package container runs functions in Docker containers: EDGELESS's
// CONTAINER functions, whose image serves the GuestAPIFunction gRPC service
// and calls back into the node's GuestAPIHost (package guestapi), and
// Serverledge-style language runtimes (python310, custom images), whose
// handler runs in pooled containers of a runtime image.
//
// A Runtime owns one Docker client and one GuestAPIHost server for the
// node. It labels every container it creates with the node's id, its
// process and host, so that containers left by a node that died are removed
// when a node on the same host starts (Start). Images are never pulled:
// they must be present on the Docker host.
//
// Host calls arrive on gRPC goroutines and run there while the handler's
// goroutine waits for the container, never at the same time as it: a Host
// sees them as it sees a WASM function's. One made while no handler runs
// is refused.
package container
