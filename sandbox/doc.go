// Package sandbox runs EDGELESS functions compiled to WebAssembly in
// wasmtime, implementing the EDGELESS WASM ABI (docs/abi.md).
//
// A Runtime owns one wasmtime engine. Runtime.Load compiles a module, or
// finds it in the memory or on-disk cache, and checks that it exports what
// the ABI requires; Runtime.Instantiate creates an Instance of it with its
// own store and memory, connected to a Host (the node) for the functions the
// guest imports. Instance.Init, Cast, Call and Stop run the guest's
// handlers, one at a time.
//
// Events cross from Go into wasm in one cgo call each: the C shim resets the
// guest arena, allocates and fills the arguments, calls the handler and frees
// the arguments, all through wasmtime's unchecked call path. Host imports
// come back through one C trampoline and one exported Go function. Neither
// direction allocates on the Go heap.
//
// Each instance fails alone: a trap, running out of memory, running past
// Config.HandlerTimeout, a panicking Host method or a guest pointer outside
// guest memory makes the handler return a *Trap, and the instance is dead
// afterwards (ErrDead). Other instances of the same Runtime are unaffected.
package sandbox
