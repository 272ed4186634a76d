package spec

// Serverledge's API, as its CLI and clients speak it: the controller serves
// these shapes at /create, /invoke/NAME, /poll/ID, /delete, /function,
// /status and /prewarm. Field names are Serverledge's, without JSON tags, as
// it marshals them.

import "fmt"

// Serverledge's scheduling policies, the values of [scheduling] policy in
// orchestrator.toml (between a domain's edge and cloud nodes) and in
// controller.toml (between edge and cloud domains).
const (
	PolicyEdgeOnly  = "edge-only"
	PolicyEdgeCloud = "edge-cloud"
	PolicyCloudOnly = "cloud-only"
)

// CheckPolicy returns an error unless p names a scheduling policy.
func CheckPolicy(p string) error {
	switch p {
	case PolicyEdgeOnly, PolicyEdgeCloud, PolicyCloudOnly:
		return nil
	}
	return fmt.Errorf("want %s, %s or %s, got %q", PolicyEdgeOnly, PolicyEdgeCloud, PolicyCloudOnly, p)
}

// ServerledgeFunction is the body of POST /create.
type ServerledgeFunction struct {
	Name            string
	Runtime         string  // wasm, native; python310 and custom with the container runtime
	MemoryMB        int64   // an instance's memory limit
	CPUDemand       float64 // 1.0 = a core; accepted, not enforced
	Handler         string  // python310, custom: "module.function"
	TarFunctionCode string  // base64 of a tar archive holding the code
	CustomImage     string  // custom: the image
	// Signature is Serverledge's declaration of a function's inputs and
	// outputs; serverledge-cli sends null. It is accepted and not checked:
	// edgeless functions take and return JSON as they please.
	Signature any
}

// ServerledgeInvocation is the body of POST /invoke/NAME.
type ServerledgeInvocation struct {
	Params          map[string]any
	QoSClass        int64   // 0 low, 1 high performance, 2 high availability
	QoSMaxRespT     float64 // seconds; 0 or less: none
	CanDoOffloading bool
	Async           bool
	ReturnOutput    bool
}

// ServerledgeReport is what Serverledge calls an execution report. Times are
// in seconds.
type ServerledgeReport struct {
	Result         string
	ResponseTime   float64 // from the request's arrival to its reply
	IsWarmStart    bool    // an instance was running when it came
	InitTime       float64 // starting the instance, for a cold start
	OffloadLatency float64 // spent on instances that refused it before one took it
	Duration       float64 // at the serving node: queueing and the handler
	SchedAction    string  // "" served where first tried, "O" offloaded to a neighbour, "OC" to the cloud
	Output         string  // the function's standard output; edgeless functions log through telemetry instead
}

// ServerledgeResponse answers a synchronous invocation, and a poll once the
// asynchronous one is done.
type ServerledgeResponse struct {
	Success bool
	ServerledgeReport
}

// ServerledgeAsync answers an asynchronous invocation.
type ServerledgeAsync struct {
	ReqId string //nolint:revive // Serverledge's name
}

// ServerledgePrewarm is the body of POST /prewarm.
type ServerledgePrewarm struct {
	Function       string
	Instances      int64
	ForceImagePull bool // accepted; code is shipped with the function, there is no image to pull for wasm and native
}

// ServerledgeStatus answers GET /status: the cluster's capacity as the
// controller knows it.
type ServerledgeStatus struct {
	Url                     string         //nolint:revive // Serverledge's name: where this API answers
	AvailableWarmContainers map[string]int // function → running instances
	AvailableMemMB          int64          // of the controller's host
	AvailableCPUs           float64        // cores of the registered nodes
	UsedMemMB               int64          // of the controller's host
	LoadAvg                 []float64      // of the controller's host: 1, 5 and 15 minutes
	// Coordinates is the node's network coordinate in Serverledge (Vivaldi,
	// used to pick a near neighbour); the controller has none and reports
	// the origin.
	Coordinates ServerledgeCoordinate
}

// ServerledgeCoordinate is a Vivaldi network coordinate as Serverledge
// marshals it.
type ServerledgeCoordinate struct {
	Vec        []float64
	Error      float64
	Adjustment float64
	Height     float64
}

// ServerledgeWorkflowCreate is the body of POST /workflow/create (and, with
// Name alone, of /workflow/delete).
type ServerledgeWorkflowCreate struct {
	Name   string
	ASLSrc string // base64 of an ASL document
}

// ServerledgeQoS is what a workflow invocation asks of each of its
// functions: a QoS class and a maximum response time in seconds.
type ServerledgeQoS struct {
	Class    int64
	MaxRespT float64
}

// ServerledgeWorkflowInvocation is the body of POST /workflow/invoke/NAME.
type ServerledgeWorkflowInvocation struct {
	Params          map[string]any
	QoS             ServerledgeQoS
	CanDoOffloading bool
	Async           bool
}

// ServerledgeWorkflowResume is the body of POST /workflow/resume/NAME: it
// continues the run ReqId from where it stopped, running only the tasks of
// Plan.ToExecute (all of them when it is empty).
type ServerledgeWorkflowResume struct {
	ReqId string //nolint:revive // Serverledge's name
	ServerledgeWorkflowInvocation
	Plan ServerledgePlan
}

// ServerledgePlan names the tasks a resumed run may execute.
type ServerledgePlan struct {
	ToExecute []string
}

// ServerledgeWorkflowResponse answers a workflow invocation: the final
// result and a report per state that invoked a function.
type ServerledgeWorkflowResponse struct {
	Success      bool
	Result       any
	Reports      map[string]ServerledgeReport
	ResponseTime float64
}
