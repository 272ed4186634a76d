package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// The controller's HTTP API (/api/v1/…) exchanges these JSON documents.

// StartReply answers POST /api/v1/workflows.
type StartReply struct {
	WorkflowID string `json:"workflow_id"`
}

// ErrorReply is the body of every API error.
type ErrorReply struct {
	Error string `json:"error"`
}

// WorkflowList answers GET /api/v1/workflows.
type WorkflowList struct {
	Workflows []WorkflowInfo `json:"workflows"`
}

// WorkflowInfo is a started workflow: what was asked for and where each of
// its components runs.
type WorkflowInfo struct {
	ID         string          `json:"id"`
	Domain     string          `json:"domain"`
	Started    string          `json:"started"` // RFC 3339
	Components []ComponentInfo `json:"components"`
	Workflow   *Workflow       `json:"workflow,omitempty"` // the request, without code, in inspect replies
}

// ComponentInfo is one function or resource of a started workflow.
type ComponentInfo struct {
	Name      string         `json:"name"`
	Kind      string         `json:"kind"` // "function" or "resource"
	LogicalID string         `json:"logical_id"`
	Instances []InstanceInfo `json:"instances"`
}

// InstanceInfo is one physical instance.
type InstanceInfo struct {
	Node     string `json:"node"`
	Instance string `json:"instance"`
}

// DomainList answers GET /api/v1/domains.
type DomainList struct {
	Domains []DomainInfo `json:"domains"`
}

// DomainInfo is an orchestration domain registered with the controller.
type DomainInfo struct {
	ID        string   `json:"id"`
	Nodes     int      `json:"nodes"`
	Ready     bool     `json:"ready"`
	Runtimes  []string `json:"runtimes"`
	Resources []string `json:"resource_classes"`
	// Cloud says the domain's orchestrator designates it as cloud
	// (orchestrator.toml [scheduling] cloud_domain).
	Cloud bool `json:"cloud"`
}

// AnnotationFunction marks the workflow of a standalone function (created
// with POST /api/v1/functions): a workflow of that one function, the
// annotation's value being its name.
const AnnotationFunction = "edgeless.function"

// FunctionCreate is the body of POST /api/v1/functions.
type FunctionCreate struct {
	Name        string            `json:"name"`
	Runtime     string            `json:"runtime"` // wasm, native, python310 or custom (annotations handler, custom_image)
	Code        []byte            `json:"code"`    // the .wasm or .so; python310's source file or tar archive
	MemoryMB    int               `json:"memory_mb,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ErrUnknownRuntime reports a function created for a runtime edgeless does
// not run.
var ErrUnknownRuntime = errors.New("unknown runtime")

// Standalone functions start with one instance and may grow to this many
// when invocations overload them, unless their annotations say otherwise.
const defaultMaxInstances = "4"

// Workflow returns the one-function workflow that runs f.
func (f *FunctionCreate) Workflow() (*Workflow, error) {
	var errs []error
	if f.Name == "" || strings.ContainsFunc(f.Name, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r))
	}) {
		errs = append(errs, fmt.Errorf("function name %q: want letters, digits, '-', '_' or '.'", f.Name))
	}
	ftype := map[string]string{"wasm": FunctionTypeWASM, "native": "RUST_NATIVE",
		FunctionTypePython310: FunctionTypePython310, FunctionTypeCustom: FunctionTypeCustom}[f.Runtime]
	if ftype == "" {
		errs = append(errs, fmt.Errorf("function %q: runtime %q: %w: want wasm, native, python310 or custom", f.Name, f.Runtime, ErrUnknownRuntime))
	}
	if len(f.Code) == 0 {
		errs = append(errs, fmt.Errorf("function %q: no code", f.Name))
	}
	if f.MemoryMB < 0 {
		errs = append(errs, fmt.Errorf("function %q: memory %d MB is negative", f.Name, f.MemoryMB))
	}
	ann := map[string]string{KeyMinInstances: "1", KeyMaxInstances: defaultMaxInstances}
	for k, v := range f.Annotations {
		ann[k] = v
	}
	if f.MemoryMB > 0 {
		ann[KeyMemoryMB] = strconv.Itoa(f.MemoryMB)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w := &Workflow{
		Functions: []Function{{
			Name:               f.Name,
			ClassSpecification: ClassSpec{ID: f.Name, FunctionType: ftype, Version: "1", Binary: f.Code, Outputs: []string{}},
			OutputMapping:      map[string]string{},
			Annotations:        ann,
		}},
		Resources:   []Resource{},
		Annotations: map[string]string{AnnotationFunction: f.Name},
		File:        "function " + f.Name,
	}
	return w, w.Validate()
}

// FunctionList answers GET /api/v1/functions.
type FunctionList struct {
	Functions []FunctionInfo `json:"functions"`
}

// FunctionInfo is one standalone function.
type FunctionInfo struct {
	Name        string            `json:"name"`
	Runtime     string            `json:"runtime"`
	WorkflowID  string            `json:"workflow_id"`
	Annotations map[string]string `json:"annotations"`
}

// InvokeRequest is the body of POST /api/v1/invoke/NAME. Params reach the
// function as a JSON object.
type InvokeRequest struct {
	Params map[string]any `json:"params"`
	Async  bool           `json:"async"`
	// The QoS fields of Serverledge's invocation (ServerledgeInvocation),
	// with the same meaning.
	QoSClass        int64   `json:"qos_class"`
	QoSMaxRespT     float64 `json:"qos_max_resp_t"` // seconds; 0 or less: none
	CanDoOffloading bool    `json:"can_do_offloading"`
}

// InvokeAccepted answers an asynchronous invocation (202).
type InvokeAccepted struct {
	RequestID string `json:"request_id"`
}

// PollReply answers GET /api/v1/poll/ID: Status is pending, done (Result
// holds the reply) or error.
type PollReply struct {
	Status string `json:"status"`
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

// MigrateRequest is the body of POST /api/v1/workflows/{id}/migrate: move a
// component of the workflow (all of them when Component is empty) to the
// first of Nodes that can host it.
type MigrateRequest struct {
	Component string   `json:"component"`
	Nodes     []string `json:"nodes"`
	// Domain, instead of Nodes, moves the whole workflow to that
	// orchestration domain (EDGELESS's workflow migrate ID DOMAIN).
	Domain string `json:"domain,omitempty"`
}

// PrewarmRequest is the body of POST /api/v1/functions/NAME/prewarm.
type PrewarmRequest struct {
	Instances int `json:"instances"`
}

// PrewarmReply says how many instances a prewarm started and how many run.
type PrewarmReply struct {
	Started   int `json:"started"`
	Instances int `json:"instances"`
}

// CompositionCreate is the body of POST /api/v1/compositions.
type CompositionCreate struct {
	Name string `json:"name"`
	Composition
}

// Composition runs standalone functions as one of three documents says: an
// ASL state machine whose Tasks name functions, a DAG, or a workflow as
// Serverledge imports it (a task graph).
type Composition struct {
	StateMachine *StateMachine `json:"asl,omitempty"`
	DAG          *DAG          `json:"dag,omitempty"`
	Graph        *TaskGraph    `json:"graph,omitempty"`
}

// Validate checks that exactly one document is given and that it is valid.
func (c *Composition) Validate() error {
	n := 0
	for _, given := range []bool{c.StateMachine != nil, c.DAG != nil, c.Graph != nil} {
		if given {
			n++
		}
	}
	switch {
	case n != 1:
		return errors.New("a composition needs one document: \"asl\" (Amazon States Language), \"dag\" or \"graph\" (Serverledge's task graph)")
	case c.StateMachine != nil:
		return c.StateMachine.Validate()
	case c.Graph != nil:
		return c.Graph.Validate()
	}
	return c.DAG.Validate()
}

// CompositionReply answers an invocation of a composition: its final
// result, or why it failed, and a report per function invocation.
type CompositionReply struct {
	Success      bool                `json:"success"`
	Result       any                 `json:"result"`
	Error        string              `json:"error,omitempty"`
	ResponseTime float64             `json:"response_time"` // seconds
	Reports      []CompositionReport `json:"reports"`
}

// CompositionReport is Serverledge's report of one function invocation of a
// composition, with the state that made it.
type CompositionReport struct {
	State    string
	Function string
	ServerledgeResponse
}
