package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Function types understood by edgeless. The set lives in CanonicalFunctionType
// alone, so that adding a runtime is a change in one place.
const (
	// FunctionTypeWASM is a WebAssembly module using the EDGELESS guest ABI.
	FunctionTypeWASM = "RUST_WASM"
	// FunctionTypeNative is an ELF shared object implementing the native C
	// ABI (docs/abi.md), run inside the node's process. The name is the one
	// of EDGELESS's native runner.
	FunctionTypeNative = "RUST_NATIVE"
	// FunctionTypeContainer is EDGELESS's container function: an image
	// serving GuestAPIFunction, named by code "container:IMAGE:TAG".
	FunctionTypeContainer = "CONTAINER"
	// FunctionTypePython310 is Serverledge's Python runtime: the code (a
	// source file or a tar archive) runs the annotation "handler"
	// (module.function) in pooled containers.
	FunctionTypePython310 = "python310"
	// FunctionTypeCustom is Serverledge's custom runtime: as python310, in
	// the image the annotation "custom_image" names.
	FunctionTypeCustom = "custom"
)

// CanonicalFunctionType returns the canonical name of a known function type
// and true, or "" and false when t is not known. "WASM" is accepted as an
// alias of "RUST_WASM" and "NATIVE" of "RUST_NATIVE"; the comparison is
// case-sensitive, as in EDGELESS.
func CanonicalFunctionType(t string) (string, bool) {
	switch t {
	case FunctionTypeWASM, "WASM":
		return FunctionTypeWASM, true
	case FunctionTypeNative, "NATIVE":
		return FunctionTypeNative, true
	case FunctionTypeContainer, FunctionTypePython310, FunctionTypeCustom:
		return t, true
	}
	return "", false
}

// IsKnownFunctionType reports whether t names a function type edgeless can run.
func IsKnownFunctionType(t string) bool {
	_, ok := CanonicalFunctionType(t)
	return ok
}

// knownFunctionTypes lists the accepted spellings for error messages.
const knownFunctionTypes = "RUST_WASM, WASM, RUST_NATIVE, NATIVE, CONTAINER, python310, custom"

// Workflow is an EDGELESS workflow: functions and resources wired together by
// their output mappings. The JSON form is EDGELESS's SpawnWorkflowRequest.
//
// ParseWorkflow fills the maps and Outputs even when the file leaves them out,
// so a parsed workflow never has nil maps; a Workflow built in code may.
type Workflow struct {
	Functions []Function `json:"functions"`
	Resources []Resource `json:"resources"`
	// Annotations apply to the whole workflow. EDGELESS ignores them, and so
	// does edgeless for now; they are kept so a workflow survives a round trip.
	Annotations map[string]string `json:"annotations"`

	// File is the file the workflow was read from, used to name it in errors.
	File string `json:"-"`
	// Ignored lists the unknown top-level fields ParseWorkflow skipped, for
	// a warning.
	Ignored []string `json:"-"`
}

// Function is one logical function of a workflow.
type Function struct {
	// Name is unique within the workflow; output mappings refer to it.
	Name               string    `json:"name"`
	ClassSpecification ClassSpec `json:"class_specification"`
	// OutputMapping maps a channel the function casts or calls on (the
	// "output" in cast("output", ...)) to the name of a function or resource of
	// the same workflow. Events on unmapped channels are dropped.
	OutputMapping map[string]string `json:"output_mapping"`
	// Annotations carry the deployment requirements (see ParseRequirements)
	// and "init-payload", the string handed to the function's init handler.
	Annotations map[string]string `json:"annotations"`
}

// KeyInitPayload is the function annotation whose value is passed to the
// function's init handler.
const KeyInitPayload = "init-payload"

// Annotations of the language runtimes (python310, custom), named as in
// Serverledge.
const (
	// KeyHandler names the function a language runtime calls:
	// module.function.
	KeyHandler = "handler"
	// KeyCustomImage names the image of a custom function.
	KeyCustomImage = "custom_image"
)

// ClassSpec describes a function's code: EDGELESS's FunctionClassSpecification.
type ClassSpec struct {
	ID           string `json:"id"`
	FunctionType string `json:"function_type"`
	Version      string `json:"version"`
	// Code is the path of the code file relative to the workflow file's
	// directory; LoadWorkflow reads it into Binary.
	Code string `json:"code,omitempty"`
	// Binary is the function's code. In JSON it is read either as EDGELESS
	// writes it, an array of byte values, or as a base64 string, and it is
	// always written as base64.
	Binary []byte `json:"binary,omitempty"`
	// Outputs declares the channels the function uses. It is informational:
	// EDGELESS does not enforce it and neither does edgeless.
	Outputs []string `json:"outputs"`
}

// Resource is one logical resource (an adapter to the outside world, such as
// an HTTP ingress or a file log) of a workflow.
type Resource struct {
	Name          string            `json:"name"`
	ClassType     string            `json:"class_type"`
	OutputMapping map[string]string `json:"output_mapping"`
	// Configurations holds the provider's settings and, as for function
	// annotations, optional deployment requirements.
	Configurations map[string]string `json:"configurations"`
}

// LoadWorkflow reads and validates the workflow file at path. For every
// function with a code path and no inline binary, it reads the code file,
// resolved relative to the workflow file's directory, into Binary.
//
// All validation problems are reported together; code files are read only
// once the workflow is valid.
func LoadWorkflow(path string) (*Workflow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read workflow %s: %w", path, err)
	}
	w, err := ParseWorkflow(path, data)
	if err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	var errs []error
	for i := range w.Functions {
		cs := &w.Functions[i].ClassSpecification
		if cs.Code == "" || len(cs.Binary) > 0 {
			continue
		}
		if cs.FunctionType == FunctionTypeContainer {
			// The code names an image on the node, as EDGELESS sends it.
			cs.Binary = []byte(cs.Code)
			continue
		}
		code := cs.Code
		if !filepath.IsAbs(code) {
			code = filepath.Join(dir, code)
		}
		b, err := readRegular(code)
		if err != nil {
			reason := err
			if pe, ok := errors.AsType[*fs.PathError](err); ok {
				reason = pe.Err // the path is in the message already
			}
			errs = append(errs, &Error{
				File: path,
				Path: indexPath("functions", i) + ".class_specification.code",
				Msg:  fmt.Sprintf("cannot read code file %s: %v", code, reason),
				Err:  err,
			})
			continue
		}
		cs.Binary = b
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return w, nil
}

// errNotRegular reports a code path that names a directory, device or other
// non-regular file.
var errNotRegular = errors.New("not a regular file")

func readRegular(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotRegular
	}
	return os.ReadFile(path)
}

// Validate checks the workflow as a whole and reports every problem at once,
// as *Error values joined with errors.Join:
//   - every function and resource has a non-empty name, unique across both;
//   - output mappings have non-empty channels and targets, and every target is
//     a function or resource of this workflow ("self" needs no mapping: the
//     runtime resolves it);
//   - every function has a known function type and either code or a binary;
//   - every resource has a class type;
//   - deployment requirements in function annotations and resource
//     configurations parse (see ParseRequirements).
//
// Duplicate names are rejected although EDGELESS accepts them, because a
// mapping to a duplicated name would be ambiguous.
func (w *Workflow) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &Error{File: w.File, Path: path, Msg: fmt.Sprintf(format, args...)})
	}

	names := make(map[string]string, len(w.Functions)+len(w.Resources)) // name -> path of first use
	checkName := func(path, name string) {
		if name == "" {
			bad(path, "empty name")
			return
		}
		if first, dup := names[name]; dup {
			bad(path, "duplicate name %q (also at %s)", name, first)
			return
		}
		names[name] = path
	}
	for i := range w.Functions {
		checkName(indexPath("functions", i)+".name", w.Functions[i].Name)
	}
	for i := range w.Resources {
		checkName(indexPath("resources", i)+".name", w.Resources[i].Name)
	}

	checkMapping := func(path string, m map[string]string) {
		for _, ch := range slices.Sorted(maps.Keys(m)) {
			target := m[ch]
			p := joinPath(path, ch)
			switch {
			case ch == "":
				bad(p, "empty channel name (mapped to %q)", target)
			case target == "":
				bad(p, "empty target")
			case names[target] == "" && target == "self":
				bad(p, `unknown target "self": the function's own instance is reached as "self" without a mapping`)
			case names[target] == "":
				bad(p, "unknown target %q: not a function or resource of this workflow", target)
			}
		}
	}
	checkRequirements := func(path string, m map[string]string) {
		for _, e := range requirementErrors(m) {
			e.File = w.File
			e.Path = joinPath(path, e.Path)
			errs = append(errs, e)
		}
	}

	for i := range w.Functions {
		f := &w.Functions[i]
		p := indexPath("functions", i)
		cs := &f.ClassSpecification
		if !IsKnownFunctionType(cs.FunctionType) {
			bad(p+".class_specification.function_type", "unknown function type %q (known: %s)", cs.FunctionType, knownFunctionTypes)
		}
		if cs.Code == "" && len(cs.Binary) == 0 {
			bad(p+".class_specification", "neither code nor binary given")
		}
		switch cs.FunctionType {
		case FunctionTypeCustom:
			if f.Annotations[KeyCustomImage] == "" {
				bad(p+".annotations", "a custom function needs %q (the image)", KeyCustomImage)
			}
			fallthrough
		case FunctionTypePython310:
			if f.Annotations[KeyHandler] == "" {
				bad(p+".annotations", "a %s function needs %q (module.function)", cs.FunctionType, KeyHandler)
			}
		}
		checkMapping(p+".output_mapping", f.OutputMapping)
		checkRequirements(p+".annotations", f.Annotations)
	}
	for i := range w.Resources {
		r := &w.Resources[i]
		p := indexPath("resources", i)
		if r.ClassType == "" {
			bad(p+".class_type", "empty class type")
		}
		checkMapping(p+".output_mapping", r.OutputMapping)
		checkRequirements(p+".configurations", r.Configurations)
	}
	return errors.Join(errs...)
}
