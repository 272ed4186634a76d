package sandbox

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// ErrABI is matched (errors.Is) by the error of Runtime.Load for a module
// that lacks an export the EDGELESS ABI requires, exports one with the wrong
// type, or imports something the host does not provide.
var ErrABI = errors.New("module does not follow the EDGELESS WASM ABI")

// Module is a compiled wasm module checked against the ABI and linked
// against the host functions, ready to be instantiated many times. It
// belongs to the Runtime that loaded it and lives as long as that Runtime.
type Module struct {
	rt    *Runtime
	c     *C.wasmtime_module_t
	pre   *C.wasmtime_instance_pre_t
	flags C.int // EDG_INST_*
}

const wasiModule = "wasi_snapshot_preview1"

// exportSigs are the types of the functions the shim calls without type
// checks, indexed like edg_export_names.
var exportSigs = [C.EDG_NFN]signature{
	C.EDG_FN_ALLOC: {"i", "i"},
	C.EDG_FN_FREE:  {"ii", ""},
	C.EDG_FN_CLEAR: {"", ""},
	C.EDG_FN_CAST:  {"iiii", ""},
	C.EDG_FN_CALL:  {"iiiiii", "i"},
	C.EDG_FN_INIT:  {"iiii", ""},
	C.EDG_FN_STOP:  {"", ""},
}

// newModule checks c against the ABI and links it. It takes ownership of c,
// deleting it on failure.
func (r *Runtime) newModule(c *C.wasmtime_module_t) (*Module, error) {
	flags, err := checkABI(c)
	if err != nil {
		C.wasmtime_module_delete(c)
		return nil, err
	}
	m := &Module{rt: r, c: c, flags: flags}
	if cerr := C.wasmtime_linker_instantiate_pre(r.c.linker, c, &m.pre); cerr != nil {
		C.wasmtime_module_delete(c)
		return nil, fmt.Errorf("%w: %w", ErrABI, wasmError(cerr))
	}
	return m, nil
}

func (m *Module) free() {
	C.wasmtime_instance_pre_delete(m.pre)
	C.wasmtime_module_delete(m.c)
}

// externKind is wasm_externkind_t.
type externKind byte

const (
	externFunc externKind = iota
	externGlobal
	externTable
	externMemory
)

// moduleItem is one import or export as edg_module_describe lists it.
type moduleItem struct {
	export       bool
	module, name string // module is empty for exports
	kind         externKind
	sig          signature // functions only
}

// checkABI reports every way c departs from the ABI at once, and returns
// the EDG_INST_* flags instances of c need.
func checkABI(c *C.wasmtime_module_t) (C.int, error) {
	items, err := describe(c)
	if err != nil {
		return 0, err
	}
	var flags C.int
	var problems, missing []string
	exports := make(map[string]moduleItem)
	for _, it := range items {
		if it.export {
			exports[it.name] = it
			continue
		}
		switch it.module {
		case "env":
			k := importIndex(it.name)
			switch {
			case k < 0:
				problems = append(problems, fmt.Sprintf("imports env.%s, which the host does not provide", it.name))
			case it.kind != externFunc || it.sig != hostImports[k].sig:
				problems = append(problems, fmt.Sprintf("imports env.%s as %s, but the host provides %s", it.name, describeItem(it), hostImports[k].sig))
			}
		case wasiModule:
			flags |= C.EDG_INST_WASI // the linker checks the names
		default:
			problems = append(problems, fmt.Sprintf("imports %s.%s, which the host does not provide", it.module, it.name))
		}
	}
	if it, ok := exports["memory"]; !ok {
		missing = append(missing, "memory")
	} else if it.kind != externMemory {
		problems = append(problems, "exports memory as "+describeItem(it)+", not as a memory")
	}
	for k, want := range exportSigs {
		name := C.GoString(C.edg_export_names[k])
		it, ok := exports[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case it.kind != externFunc || it.sig != want:
			problems = append(problems, fmt.Sprintf("exports %s as %s, want %s", name, describeItem(it), want))
		}
	}
	if it, ok := exports["_initialize"]; ok {
		if it.kind != externFunc || it.sig != (signature{}) {
			problems = append(problems, "exports _initialize as "+describeItem(it)+", want () -> ()")
		} else {
			flags |= C.EDG_INST_INITIALIZE
		}
	}
	if len(missing) > 0 {
		problems = append([]string{"missing export(s) " + strings.Join(missing, ", ")}, problems...)
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("%w: %s", ErrABI, strings.Join(problems, "; "))
	}
	return flags, nil
}

func importIndex(name string) int {
	for k := range hostImports {
		if hostImports[k].name == name {
			return k
		}
	}
	return -1
}

func describeItem(it moduleItem) string {
	switch it.kind {
	case externFunc:
		return "function " + it.sig.String()
	case externGlobal:
		return "a global"
	case externTable:
		return "a table"
	case externMemory:
		return "a memory"
	}
	return "an unknown kind"
}

// describe lists c's imports and exports (see edg_module_describe).
func describe(c *C.wasmtime_module_t) ([]moduleItem, error) {
	var n C.size_t
	p := C.edg_module_describe(c, &n)
	if p == nil {
		return nil, errors.New("cannot list module imports and exports: out of memory")
	}
	defer C.free(unsafe.Pointer(p))
	d := decoder{b: unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))}
	var items []moduleItem
	for len(d.b) > 0 && d.err == nil {
		var it moduleItem
		it.export = d.byte() == 'e'
		if !it.export {
			it.module = d.name()
		}
		it.name = d.name()
		it.kind = externKind(d.byte())
		if it.kind == externFunc {
			it.sig = signature{d.valtypes(), d.valtypes()}
		}
		items = append(items, it)
	}
	if d.err != nil {
		return nil, d.err
	}
	return items, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n > len(d.b) {
		d.err = errors.New("BUG: truncated module description")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u32() int {
	if v := d.take(4); v != nil {
		return int(binary.LittleEndian.Uint32(v))
	}
	return 0
}

func (d *decoder) name() string { return string(d.take(d.u32())) }

// valtypes reads a list of value kinds as signature letters.
func (d *decoder) valtypes() string {
	kinds := d.take(d.u32())
	s := make([]byte, len(kinds))
	for k, v := range kinds {
		switch v {
		case C.WASM_I32:
			s[k] = 'i'
		case C.WASM_I64:
			s[k] = 'I'
		case C.WASM_F32:
			s[k] = 'f'
		case C.WASM_F64:
			s[k] = 'F'
		default:
			s[k] = '?'
		}
	}
	return string(s)
}
