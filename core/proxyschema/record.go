package proxyschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/edgeless-go/edgeless/core"
)

// Capabilities is a node:capabilities value, EDGELESS's NodeCapabilities.
type Capabilities struct {
	NumCPUs      int      `json:"num_cpus"`
	ModelNameCPU string   `json:"model_name_cpu"`
	ClockFreqCPU float64  `json:"clock_freq_cpu"`
	NumCores     int      `json:"num_cores"`
	MemSize      int      `json:"mem_size"`
	Labels       []string `json:"labels"`
	IsTEERunning bool     `json:"is_tee_running"`
	HasTPM       bool     `json:"has_tpm"`
	Runtimes     []string `json:"runtimes"`
	DiskTotSpace int      `json:"disk_tot_space"`
	NumGPUs      int      `json:"num_gpus"`
	ModelNameGPU string   `json:"model_name_gpu"`
	MemSizeGPU   int      `json:"mem_size_gpu"`
}

// Encode returns the JSON value of c; absent lists are written empty, as
// EDGELESS does.
func (c Capabilities) Encode() string {
	c.Labels, c.Runtimes = nonNil(c.Labels), nonNil(c.Runtimes)
	return encode(c)
}

// DecodeCapabilities reads a node:capabilities value.
func DecodeCapabilities(s string) (Capabilities, error) {
	var c Capabilities
	return c, decode("capabilities", s, &c)
}

// Health is a node:health member, EDGELESS's NodeHealthStatus, followed by
// our eBPF figures, which EDGELESS ignores. Its fields are those of
// wire.NodeHealth, in the same order, so that the orchestrator converts one
// into the other and the compiler holds the two together.
type Health struct {
	MemFree         int64   `json:"mem_free"`
	MemUsed         int64   `json:"mem_used"`
	MemAvailable    int64   `json:"mem_available"`
	ProcCPUUsage    float64 `json:"proc_cpu_usage"` // percent of one CPU
	ProcMemory      int64   `json:"proc_memory"`
	ProcVMemory     int64   `json:"proc_vmemory"`
	LoadAvg1        int64   `json:"load_avg_1"`
	LoadAvg5        int64   `json:"load_avg_5"`
	LoadAvg15       int64   `json:"load_avg_15"`
	TotRxBytes      int64   `json:"tot_rx_bytes"`
	TotRxPkts       int64   `json:"tot_rx_pkts"`
	TotRxErrs       int64   `json:"tot_rx_errs"`
	TotTxBytes      int64   `json:"tot_tx_bytes"`
	TotTxPkts       int64   `json:"tot_tx_pkts"`
	TotTxErrs       int64   `json:"tot_tx_errs"`
	DiskFreeSpace   int64   `json:"disk_free_space"`
	DiskTotReads    int64   `json:"disk_tot_reads"`
	DiskTotWrites   int64   `json:"disk_tot_writes"`
	GPULoadPerc     int64   `json:"gpu_load_perc"`
	GPUTempCels     int64   `json:"gpu_temp_cels"` // thousandths of a degree
	ActivePower     int64   `json:"active_power"`  // mW
	RunQueueP99US   float64 `json:"runq_p99_us"`
	ContextSwitches int64   `json:"context_switches"`
	TCPRetransmits  int64   `json:"tcp_retransmits"`
}

// Encode returns the JSON member of h, with the CPU use rounded, since
// EDGELESS reads it as an integer.
func (h Health) Encode() string {
	h.ProcCPUUsage = math.Round(h.ProcCPUUsage)
	return encode(h)
}

// DecodeHealth reads a node:health member. Older EDGELESS values have no
// active_power: it reads as -1, unknown.
func DecodeHealth(s string) (Health, error) {
	h := Health{ActivePower: -1}
	return h, decode("health", s, &h)
}

// Provider is a provider value: a resource class offered by a node.
type Provider struct {
	ClassType string   `json:"class_type"`
	NodeID    string   `json:"node_id"`
	Outputs   []string `json:"outputs"`
}

// Encode returns the JSON value of p.
func (p Provider) Encode() string {
	p.Outputs = nonNil(p.Outputs)
	return encode(p)
}

// DecodeProvider reads a provider value.
func DecodeProvider(s string) (Provider, error) {
	var p Provider
	return p, decode("provider", s, &p)
}

// Spawn is EDGELESS's SpawnFunctionRequest with the code stripped: the spec
// of a function instance.
type Spawn struct {
	Code struct {
		ID      string   `json:"function_class_id"`
		Type    string   `json:"function_class_type"`
		Version string   `json:"function_class_version"`
		Code    []int    `json:"function_class_code"`
		Outputs []string `json:"function_class_outputs"`
	} `json:"code"`
	Annotations        map[string]string `json:"annotations"`
	StateSpecification struct {
		StateID     string `json:"state_id"`
		StatePolicy string `json:"state_policy"`
	} `json:"state_specification"`
	WorkflowID string `json:"workflow_id"`
}

// Resource is EDGELESS's ResourceInstanceSpecification.
type Resource struct {
	ClassType     string            `json:"class_type"`
	Configuration map[string]string `json:"configuration"`
	WorkflowID    string            `json:"workflow_id"`
}

// Instance is an instance value, EDGELESS's ActiveInstance: a function's
// spec and its instances ({"Function":[spec,[ids]]}) or a resource's spec
// and its instance ({"Resource":[spec,id]}). Exactly one of Function and
// Resource is set.
type Instance struct {
	Function *Spawn
	Resource *Resource
	Placed   []core.InstanceID
	// Spec is the spec as read, with any field a newer EDGELESS adds; it is
	// set by DecodeInstance and ignored by Encode.
	Spec json.RawMessage
}

// Workflow returns the id of the workflow the instance belongs to.
func (in Instance) Workflow() string {
	if in.Function != nil {
		return in.Function.WorkflowID
	}
	if in.Resource != nil {
		return in.Resource.WorkflowID
	}
	return ""
}

// Encode returns the JSON value of in; lists and maps absent from the spec
// are written empty. A resource has one instance.
func (in Instance) Encode() string {
	if in.Function != nil {
		s := *in.Function
		s.Code.Code, s.Code.Outputs, s.Annotations = []int{}, nonNil(s.Code.Outputs), nonNilMap(s.Annotations)
		ids := make([]string, len(in.Placed))
		for i, p := range in.Placed {
			ids[i] = FormatInstanceID(p)
		}
		return encode(map[string][2]any{"Function": {s, ids}})
	}
	if in.Resource == nil || len(in.Placed) != 1 {
		panic("BUG: an instance value needs a function, or a resource with one instance")
	}
	r := *in.Resource
	r.Configuration = nonNilMap(r.Configuration)
	return encode(map[string][2]any{"Resource": {r, FormatInstanceID(in.Placed[0])}})
}

// DecodeInstance reads an instance value.
func DecodeInstance(s string) (Instance, error) {
	var variant map[string][2]json.RawMessage
	if err := decode("instance", s, &variant); err != nil {
		return Instance{}, err
	}
	if len(variant) != 1 {
		return Instance{}, fmt.Errorf("cannot decode instance %q: want one of Function and Resource", s)
	}
	var in Instance
	var ids []string
	for kind, pair := range variant {
		in.Spec = pair[0]
		switch kind {
		case "Function":
			in.Function = &Spawn{}
			if err := errors.Join(json.Unmarshal(pair[0], in.Function), json.Unmarshal(pair[1], &ids)); err != nil {
				return Instance{}, fmt.Errorf("cannot decode function instance %q: %w", s, err)
			}
		case "Resource":
			in.Resource = &Resource{}
			var id string
			if err := errors.Join(json.Unmarshal(pair[0], in.Resource), json.Unmarshal(pair[1], &id)); err != nil {
				return Instance{}, fmt.Errorf("cannot decode resource instance %q: %w", s, err)
			}
			ids = []string{id}
		default:
			return Instance{}, fmt.Errorf("cannot decode instance %q: unknown kind %q", s, kind)
		}
	}
	for _, id := range ids {
		p, err := ParseInstanceID(id)
		if err != nil {
			return Instance{}, fmt.Errorf("cannot decode instance: %w", err)
		}
		in.Placed = append(in.Placed, p)
	}
	return in, nil
}
