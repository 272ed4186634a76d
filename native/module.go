package native

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

var (
	// ErrFormat is matched (errors.Is) by the error of Runtime.Load for
	// code that is not an ELF shared object this node can load: not ELF at
	// all, malformed, an executable, or built for another architecture.
	ErrFormat = errors.New("not a shared object for this node")
	// ErrABI is matched (errors.Is) by the error of Runtime.Load or
	// Runtime.Instantiate for a shared object that lacks a symbol of the
	// native ABI, exports one of the wrong kind, or was built for another
	// version of it.
	ErrABI = errors.New("does not follow the EDGELESS native ABI")
)

// ABIVersion is the version of the native ABI (native/edgeless_native.h)
// this package implements; a function's edgeless_native_abi_version must
// equal it.
const ABIVersion = 1

// Symbols of the native ABI.
const (
	symVersion = "edgeless_native_abi_version"
	symBind    = "edgeless_native_init"
	symInit    = "edgeless_native_handle_init"
	symCast    = "edgeless_native_handle_cast"
	symCall    = "edgeless_native_handle_call"
	symStop    = "edgeless_native_handle_stop"
)

// functionSymbols are the ABI's functions, in the order edg_ninst_resolve
// takes them.
var functionSymbols = [...]string{symBind, symInit, symCast, symCall, symStop}

// Module is the code of a native function, checked against the ABI, ready
// to be instantiated any number of times. Each instance loads its own copy.
type Module struct {
	rt   *Runtime
	code []byte
}

// Load checks that code is an ELF shared object for this node's
// architecture exporting every symbol of the native ABI at the right
// version, without running any of it. It keeps a copy of code.
func (r *Runtime) Load(code []byte) (*Module, error) {
	if err := checkELF(code); err != nil {
		return nil, fmt.Errorf("cannot load native function: %w", err)
	}
	return &Module{rt: r, code: bytes.Clone(code)}, nil
}

// elfTarget is what an ELF file must declare to run on this node.
type elfTarget struct {
	machine elf.Machine
	class   elf.Class
	data    elf.Data
}

// nodeTarget returns the ELF target of the running process, or false on an
// architecture native functions are not supported on.
func nodeTarget() (elfTarget, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return elfTarget{elf.EM_X86_64, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	case "arm64":
		return elfTarget{elf.EM_AARCH64, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	case "riscv64":
		return elfTarget{elf.EM_RISCV, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	case "loong64":
		return elfTarget{elf.EM_LOONGARCH, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	case "ppc64le":
		return elfTarget{elf.EM_PPC64, elf.ELFCLASS64, elf.ELFDATA2LSB}, true
	case "s390x":
		return elfTarget{elf.EM_S390, elf.ELFCLASS64, elf.ELFDATA2MSB}, true
	case "386":
		return elfTarget{elf.EM_386, elf.ELFCLASS32, elf.ELFDATA2LSB}, true
	case "arm":
		return elfTarget{elf.EM_ARM, elf.ELFCLASS32, elf.ELFDATA2LSB}, true
	}
	return elfTarget{}, false
}

// checkELF reports, naming the problem, why code cannot be loaded.
func checkELF(code []byte) error {
	if !bytes.HasPrefix(code, []byte(elf.ELFMAG)) {
		head := code[:min(len(code), 4)]
		switch {
		case len(code) == 0:
			return fmt.Errorf("%w: the code is empty", ErrFormat)
		case bytes.HasPrefix(code, []byte("\x00asm")):
			return fmt.Errorf("%w: not an ELF file but a WebAssembly module (use function type RUST_WASM)", ErrFormat)
		}
		return fmt.Errorf("%w: not an ELF file (starts with % x, want 7f 45 4c 46)", ErrFormat, head)
	}
	want, ok := nodeTarget()
	if !ok {
		return fmt.Errorf("%w: native functions are not supported on %s/%s", ErrFormat, runtime.GOOS, runtime.GOARCH)
	}
	f, err := elf.NewFile(bytes.NewReader(code))
	if err != nil {
		return fmt.Errorf("%w: malformed ELF file: %v", ErrFormat, err)
	}
	switch {
	case f.Machine != want.machine || f.Class != want.class || f.Data != want.data:
		return fmt.Errorf("%w: ELF file built for %s (%s, %s), this node runs %s/%s and needs %s (%s, %s)",
			ErrFormat, f.Machine, f.Class, f.Data, runtime.GOOS, runtime.GOARCH, want.machine, want.class, want.data)
	case f.Type != elf.ET_DYN:
		return fmt.Errorf("%w: ELF file of type %s, want a shared object (ET_DYN, built with -shared -fPIC)", ErrFormat, f.Type)
	}
	return checkSymbols(f)
}

// checkSymbols checks the dynamic symbol table against the ABI, reporting
// every missing or mistyped symbol at once, then reads the ABI version.
func checkSymbols(f *elf.File) error {
	syms, err := f.DynamicSymbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("%w: cannot read the dynamic symbol table: %v", ErrFormat, err)
	}
	exported := map[string]elf.Symbol{}
	for _, s := range syms {
		b := elf.ST_BIND(s.Info)
		if s.Section != elf.SHN_UNDEF && (b == elf.STB_GLOBAL || b == elf.STB_WEAK) {
			exported[s.Name] = s
		}
	}
	var missing, wrong []string
	for _, name := range functionSymbols {
		s, ok := exported[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case elf.ST_TYPE(s.Info) != elf.STT_FUNC:
			wrong = append(wrong, name+" is not a function")
		}
	}
	version, ok := exported[symVersion]
	switch {
	case !ok:
		missing = append([]string{symVersion}, missing...)
	case elf.ST_TYPE(version.Info) != elf.STT_OBJECT || version.Size != 4:
		wrong = append(wrong, symVersion+" is not a 4-byte object")
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing symbols "+strings.Join(missing, ", "))
	}
	problems = append(problems, wrong...)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrABI, strings.Join(problems, "; "))
	}
	v, err := readU32(f, version)
	if err != nil {
		return fmt.Errorf("%w: cannot read %s: %v", ErrFormat, symVersion, err)
	}
	return checkVersion(v)
}

func checkVersion(v uint32) error {
	if v != ABIVersion {
		return fmt.Errorf("%w: built for native ABI version %d (%s), this node supports version %d",
			ErrABI, v, symVersion, ABIVersion)
	}
	return nil
}

// readU32 reads the initial value of a 4-byte data symbol from its section.
func readU32(f *elf.File, s elf.Symbol) (uint32, error) {
	if int(s.Section) >= len(f.Sections) {
		return 0, fmt.Errorf("section index %d out of range", s.Section)
	}
	sec := f.Sections[s.Section]
	if sec.Type == elf.SHT_NOBITS {
		return 0, nil // .bss: zero-initialised
	}
	if s.Value < sec.Addr || s.Value+4 > sec.Addr+sec.Size {
		return 0, fmt.Errorf("address %#x outside its section %s", s.Value, sec.Name)
	}
	var b [4]byte
	if _, err := sec.ReadAt(b[:], int64(s.Value-sec.Addr)); err != nil {
		return 0, err
	}
	if f.Data == elf.ELFDATA2MSB {
		return binary.BigEndian.Uint32(b[:]), nil
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}
