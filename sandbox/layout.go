package sandbox

/*
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	// wasmtime-go brings the wasmtime static library the shim links against;
	// its wrapper types pin the sizes below.
	wasmtime "github.com/bytecodealliance/wasmtime-go/v39"
)

// wt.h declares wasmtime's structs itself. wasmtime-go wraps the same C
// structs in Func, Memory and Instance; if an upgrade changes their sizes,
// this stops compiling (a constant index out of range, or an overflow when
// negative). layout_test.go checks every field and constant.
func _() {
	_ = [1]struct{}{}[unsafe.Sizeof(wasmtime.Func{})-C.sizeof_wasmtime_func_t]
	_ = [1]struct{}{}[unsafe.Sizeof(wasmtime.Memory{})-C.sizeof_wasmtime_memory_t]
	_ = [1]struct{}{}[unsafe.Sizeof(wasmtime.Instance{})-C.sizeof_wasmtime_instance_t]
}
