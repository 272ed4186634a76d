// Package edgeless is the Go SDK for EDGELESS functions compiled to
// WebAssembly (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared).
//
// A function is a main package that implements [Function] and registers it
// from an init function:
//
//	type double struct{ edgeless.Base }
//
//	func (double) HandleCall(src edgeless.InstanceID, p []byte) (edgeless.CallRet, []byte) {
//		...
//		return edgeless.Reply, out
//	}
//
//	func init() { edgeless.Register(&double{}) }
//
//	func main() {}
//
// The package exports the module ABI (handle_*_asm, edgeless_mem_*) with
// //go:wasmexport and reaches the host through //go:wasmimport functions of
// module "env" ([Cast], [Call], [DelayedCast], [Sync], [Log], ...). The Go
// runtime also imports a few wasi_snapshot_preview1 functions, and the host
// must call the module's _initialize export once before any other export.
//
// Memory: byte slices passed to handlers alias buffers the host frees after
// the handler returns, so a handler copies what it keeps. A reply returned
// by HandleCall is kept alive by the SDK until the host has copied it; the
// handler must not modify it afterwards. Slices passed to host calls are
// copied by the host during the call. Replies returned by [Call] and
// [CallRaw] belong to the caller.
//
// Handlers of one instance never run concurrently and must not wait for
// other goroutines: the host runs the module only while a handler is
// active. Use [DelayedCast] to "self" for timers.
package edgeless
