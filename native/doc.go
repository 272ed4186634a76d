// Package native runs EDGELESS functions compiled to native shared objects
// (ELF .so files) inside the node's process, implementing the C ABI of
// edgeless_native.h (docs/abi.md, "Native functions").
//
// Runtime.Load checks code without running it: an ELF shared object for
// this architecture, exporting every symbol of the ABI at the supported
// version. Runtime.Instantiate writes the code to a new file in a private
// directory, loads it with dlopen (purego, so the node has no link-time
// dependency on any function), removes the file, and hands the library the
// host's table of host calls with a context identifying the instance.
// Because every instance loads its own file, the dynamic linker maps a
// separate copy of the library for each: the statics of one instance are
// not those of another. Instance.Init, Cast, Call and Stop run the
// function's handlers, one at a time.
//
// Events cross from Go into the function in one cgo call to a C trampoline
// that calls the resolved symbol; host calls come back through a table of C
// functions forwarding to Go functions exported with cgo, registered once
// for the process. Neither direction allocates on the Go heap. A cgo call
// is several times cheaper than a purego call here, and cgo is in the
// binary anyway for wasmtime, so purego is used only to load libraries.
//
// Native functions are not isolated. The code runs in the node's address
// space with its privileges: a crash, an abort or a stray write in a
// function takes the whole node down with every instance on it, and a
// handler that never returns blocks its instance for good (it cannot be
// interrupted, so stopping it hangs). What the package does contain is its
// own side: a panicking Host method never unwinds through C (it becomes an
// error of the handler and the instance is dead afterwards), host calls from
// threads other than the handler's are refused, and the ABI is checked
// before any of the function's code runs. Operators should run native
// functions only from trusted sources, on nodes dedicated to them, keep the
// runtime disabled elsewhere, and use WASM for anything untrusted.
package native
