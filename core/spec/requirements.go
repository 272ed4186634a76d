package spec

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/edgeless-go/edgeless/core"
)

// Deployment requirement keys, read from function annotations and resource
// configurations with the names EDGELESS uses.
const (
	KeyMaxInstances = "max_instances"
	KeyMinInstances = "min_instances"
	// KeyMemoryMB sets an instance's memory limit in MiB, below the node's.
	KeyMemoryMB = "memory_mb"
	// KeyCPUs limits a container function's CPU, in cores (0.5: half of one).
	KeyCPUs             = "cpus"
	KeyNodeIDMatchAny   = "node_id_match_any"
	KeyLabelMatchAll    = "label_match_all"
	KeyResourceMatchAll = "resource_match_all"
	KeyTEE              = "tee"
	KeyTPM              = "tpm"
)

// Requirements constrain where a function or resource instance may be placed.
// The zero value places anywhere.
type Requirements struct {
	// MaxInstances caps the instances of one logical function; 0 means no
	// limit. Unless MinInstances says otherwise, the orchestrator starts that
	// many, spread over distinct nodes.
	MaxInstances int
	// MinInstances is how many instances the orchestrator starts and keeps;
	// more are started on demand (overloaded invocations) up to MaxInstances.
	MinInstances int
	// ScaleToZero is min_instances = 0: no instance is started ahead, the
	// first invocation starts one (a cold start), and an instance idle for
	// the orchestrator's scale_in_after_sec is stopped.
	ScaleToZero bool
	// MemoryMB limits each instance's memory, when below the node's limit.
	MemoryMB int
	// CPUs limits each instance's CPU, in cores, where the runtime can.
	CPUs float64
	// NodeIDMatchAny, when not empty, lists the only nodes allowed.
	NodeIDMatchAny []core.ID
	// LabelMatchAll lists labels the node must all carry.
	LabelMatchAll []string
	// ResourceMatchAll lists resource provider ids the node must all host.
	ResourceMatchAll []string
	// TEE requires a node running in a trusted execution environment.
	TEE bool
	// TPM requires a node with a trusted platform module.
	TPM bool
}

// NodeInfo is what placement knows about a candidate node.
type NodeInfo struct {
	ID        core.ID
	Labels    []string // user labels plus "hostname=<host>"
	Providers []string // ids of the resource providers the node hosts
	Runtimes  []string // function types the node can run
	TEE       bool
	TPM       bool
}

// ParseRequirements reads the deployment requirements from a function's
// annotations or a resource's configurations; other keys are ignored.
//
// List values are comma-separated, with spaces around items and empty items
// ignored. tee and tpm take "required" or "not-required" (any case; empty is
// not-required). Unlike EDGELESS, which logs and ignores a bad value, every bad
// value is an error: a requirement silently dropped would place an instance
// where its owner said it must not run. The error joins one *Error per bad
// key, with the key as Path.
func ParseRequirements(m map[string]string) (Requirements, error) {
	r, errs := parseRequirements(m)
	if len(errs) == 0 {
		return r, nil
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return r, errors.Join(all...)
}

// requirementErrors returns the problems ParseRequirements would report, for
// Validate to place under the right path.
func requirementErrors(m map[string]string) []*Error {
	_, errs := parseRequirements(m)
	return errs
}

func parseRequirements(m map[string]string) (Requirements, []*Error) {
	var r Requirements
	var errs []*Error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Path: key, Msg: fmt.Sprintf("bad value %q: ", m[key]) + fmt.Sprintf(format, args...)})
	}
	// Sorted so that errors come in a stable order.
	for _, key := range slices.Sorted(maps.Keys(m)) {
		v := m[key]
		switch key {
		case KeyMaxInstances:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				bad(key, "want an integer >= 0 (0 = unlimited)")
				continue
			}
			r.MaxInstances = n
		case KeyMemoryMB:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				bad(key, "want an integer >= 1 (MiB)")
				continue
			}
			r.MemoryMB = n
		case KeyCPUs:
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || !(f > 0 && f <= 1024) {
				bad(key, "want a number of cores > 0")
				continue
			}
			r.CPUs = f
		case KeyMinInstances:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				bad(key, "want an integer >= 0 (0 = scale to zero when idle)")
				continue
			}
			r.MinInstances, r.ScaleToZero = n, n == 0
		case KeyNodeIDMatchAny:
			for _, s := range splitList(v) {
				id, err := core.ParseID(s)
				if err != nil {
					bad(key, "%q is not a node UUID", s)
					continue
				}
				r.NodeIDMatchAny = append(r.NodeIDMatchAny, id)
			}
		case KeyLabelMatchAll:
			r.LabelMatchAll = splitList(v)
		case KeyResourceMatchAll:
			r.ResourceMatchAll = splitList(v)
		case KeyTEE, KeyTPM:
			req, ok := parseRequired(v)
			if !ok {
				bad(key, `want "required" or "not-required"`)
				continue
			}
			if key == KeyTEE {
				r.TEE = req
			} else {
				r.TPM = req
			}
		}
	}
	if r.MaxInstances > 0 && r.MinInstances > r.MaxInstances {
		errs = append(errs, &Error{Path: KeyMinInstances, Msg: fmt.Sprintf("min_instances %d exceeds max_instances %d", r.MinInstances, r.MaxInstances)})
	}
	return r, errs
}

func parseRequired(v string) (required, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "required":
		return true, true
	case "not-required", "":
		return false, true
	}
	return false, false
}

// splitList splits a comma-separated list, trimming spaces and dropping empty
// items; it returns nil for an empty list.
func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Matches reports whether node n satisfies r: n is one of NodeIDMatchAny (if
// set), carries every label of LabelMatchAll, hosts every provider of
// ResourceMatchAll, and has a TEE and a TPM where required.
//
// Matches does not look at the runtime, which depends on the function rather
// than its requirements: placing a function needs Matches(n) &&
// n.HasRuntime(functionType); placing a resource needs Matches alone.
func (r Requirements) Matches(n NodeInfo) bool {
	if len(r.NodeIDMatchAny) > 0 && !slices.Contains(r.NodeIDMatchAny, n.ID) {
		return false
	}
	for _, l := range r.LabelMatchAll {
		if !slices.Contains(n.Labels, l) {
			return false
		}
	}
	for _, p := range r.ResourceMatchAll {
		if !slices.Contains(n.Providers, p) {
			return false
		}
	}
	return (!r.TEE || n.TEE) && (!r.TPM || n.TPM)
}

// HasRuntime reports whether the node can run functions of functionType.
// Aliases are resolved on both sides, so a node announcing "RUST_WASM" runs a
// function of type "WASM".
func (n NodeInfo) HasRuntime(functionType string) bool {
	want, ok := CanonicalFunctionType(functionType)
	if !ok {
		want = functionType
	}
	for _, rt := range n.Runtimes {
		if c, ok := CanonicalFunctionType(rt); ok {
			rt = c
		}
		if rt == want {
			return true
		}
	}
	return false
}
