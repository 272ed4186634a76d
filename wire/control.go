package wire

import (
	"log/slog"

	"github.com/edgeless-go/edgeless/core"
)

// Control-plane method names. Each is served by the mode named in its prefix.
const (
	MethodNodeStartFunction = "node.StartFunction"
	MethodNodeStartResource = "node.StartResource"
	MethodNodeStop          = "node.Stop"
	MethodNodePatch         = "node.Patch"
	MethodNodePeers         = "node.UpdatePeers"
	MethodNodeReset         = "node.Reset"
	MethodNodeInvoke        = "node.Invoke"
	MethodNodePing          = "node.Ping" // answered at once: the orchestrator's liveness probe

	MethodOrcUpdateNode    = "orc.UpdateNode"
	MethodOrcSyncStates    = "orc.SyncStates"
	MethodOrcStartFunction = "orc.StartFunction"
	MethodOrcStartResource = "orc.StartResource"
	MethodOrcStop          = "orc.Stop"
	MethodOrcPatch         = "orc.Patch"
	MethodOrcPlacement     = "orc.Placement"
	MethodOrcCordon        = "orc.Cordon"
	MethodOrcMigrate       = "orc.Migrate"
	MethodOrcNodes         = "orc.Nodes"
	MethodOrcInvoke        = "orc.Invoke"
	MethodOrcPrewarm       = "orc.Prewarm"

	MethodConUpdateDomain = "con.UpdateDomain"
)

// Empty is the body of requests and responses that carry nothing.
type Empty struct{}

// FunctionSpec describes a logical function as the controller hands it to an
// orchestrator: everything needed to create instances of it anywhere.
type FunctionSpec struct {
	Logical      core.ID           `msgpack:"logical"`
	Workflow     core.ID           `msgpack:"workflow"`
	Name         string            `msgpack:"name"`
	ClassID      string            `msgpack:"class_id"`
	FunctionType string            `msgpack:"function_type"`
	Version      string            `msgpack:"version"`
	Code         []byte            `msgpack:"code"`
	CodeHash     [32]byte          `msgpack:"code_hash"` // SHA-256 of Code, computed once at admission
	Annotations  map[string]string `msgpack:"annotations"`
}

// ResourceSpec describes a logical resource.
type ResourceSpec struct {
	Logical        core.ID           `msgpack:"logical"`
	Workflow       core.ID           `msgpack:"workflow"`
	Name           string            `msgpack:"name"`
	ClassType      string            `msgpack:"class_type"`
	Configurations map[string]string `msgpack:"configurations"`
}

// StartFunction asks a node to create one instance of a function. The
// orchestrator chooses the instance id so that it can repatch before the node
// answers.
type StartFunction struct {
	Component core.ID      `msgpack:"component"`
	Spec      FunctionSpec `msgpack:"spec"`
	// State, when set, is the newest state the orchestrator holds for the
	// function: the node prefers it to its own store, which may be stale or
	// empty (state kept on each node's disk, with no shared Redis).
	State *SyncedState `msgpack:"state,omitempty"`
}

// SyncedState is a function's state as an instance last synced it. Seq
// orders the states of one logical function across its instances: a state
// never replaces one with a higher or equal Seq.
type SyncedState struct {
	Logical core.ID `msgpack:"logical"`
	Seq     uint64  `msgpack:"seq"`
	Data    []byte  `msgpack:"data"`
}

// SyncStates pushes states from a node to its orchestrator, which keeps the
// newest of each function for instances re-created on other nodes.
type SyncStates struct {
	Node   core.ID       `msgpack:"node"`
	States []SyncedState `msgpack:"states"`
}

// StartResource asks a node to create one instance of a resource on the given provider.
type StartResource struct {
	Component core.ID      `msgpack:"component"`
	Provider  string       `msgpack:"provider"`
	Spec      ResourceSpec `msgpack:"spec"`
}

// StopComponent asks to stop a component: a physical instance on a node, or a
// logical function or resource (all its instances) at an orchestrator.
type StopComponent struct {
	ID core.ID `msgpack:"id"`
}

// PatchNode replaces the output mapping of a physical instance on a node.
// Several targets for one channel mean several instances to balance across.
type PatchNode struct {
	Component core.ID                      `msgpack:"component"`
	Outputs   map[string][]core.InstanceID `msgpack:"outputs"`
	// Version orders the patches of one component: a node keeps the
	// mapping of the highest. 0 is unversioned and always applies.
	Version uint64 `msgpack:"version,omitempty"`
}

// PatchLogical replaces the output mapping of a logical component at an
// orchestrator: channel → logical target.
type PatchLogical struct {
	Logical core.ID            `msgpack:"logical"`
	Outputs map[string]core.ID `msgpack:"outputs"`
}

// Peer is a node of the domain and the address of its dataplane.
type Peer struct {
	Node core.ID `msgpack:"node"`
	Addr string  `msgpack:"addr"`
}

// UpdatePeers adds and removes dataplane peers of a node. With Replace, Add
// is the whole list: the node forgets every other peer, and keeps its
// connections to those whose address did not change.
type UpdatePeers struct {
	Add     []Peer    `msgpack:"add"`
	Del     []core.ID `msgpack:"del"`
	Replace bool      `msgpack:"replace,omitempty"`
}

// Provider is a resource provider a node offers.
type Provider struct {
	ID        string   `msgpack:"id"`
	ClassType string   `msgpack:"class_type"`
	Outputs   []string `msgpack:"outputs"`
}

// Capabilities are what a node (or, aggregated, a domain) can run.
type Capabilities struct {
	NumCPUs      int      `msgpack:"num_cpus" json:"num_cpus"`
	NumCores     int      `msgpack:"num_cores" json:"num_cores"`
	ClockFreqMHz float64  `msgpack:"clock_freq_cpu" json:"clock_freq_cpu"`
	MemSizeMiB   int      `msgpack:"mem_size" json:"mem_size"`
	Labels       []string `msgpack:"labels" json:"labels"`
	Runtimes     []string `msgpack:"runtimes" json:"runtimes"`
	TEE          bool     `msgpack:"is_tee_running" json:"is_tee_running"`
	TPM          bool     `msgpack:"has_tpm" json:"has_tpm"`
	// MemBudgetMiB is the memory a node lets its function instances reserve
	// together, 0 when it reports no budget (an older node). MemFreeMiB is
	// the part not reserved when the node registered: a function whose need
	// (its memory_mb annotation, else the runtime's per-instance limit)
	// exceeds it would be refused there.
	MemBudgetMiB int `msgpack:"mem_budget" json:"mem_budget"`
	MemFreeMiB   int `msgpack:"mem_free" json:"mem_free"`
}

// InstanceExit reports a physical instance that ended on its own (a trap, a
// timeout, a failed start), so that the orchestrator can re-create it.
type InstanceExit struct {
	Component core.ID `msgpack:"component"`
	Reason    string  `msgpack:"reason"`
}

// UpdateNode is a node's periodic registration and keep-alive. A new Nonce
// tells the orchestrator that the node restarted and lost its instances.
type UpdateNode struct {
	Node         core.ID        `msgpack:"node"`
	Addr         string         `msgpack:"addr"`
	Nonce        uint64         `msgpack:"nonce"`
	RefreshMS    int64          `msgpack:"refresh_ms"`
	Capabilities Capabilities   `msgpack:"capabilities"`
	Providers    []Provider     `msgpack:"providers"`
	Exits        []InstanceExit `msgpack:"exits"`
	Health       NodeHealth     `msgpack:"health"`
	Samples      []Sample       `msgpack:"samples"` // since the last update, when performance_samples is on
	Logs         []LogEntry     `msgpack:"logs"`    // telemetry_log entries since the last update, likewise
	// Leaving says the node is shutting down, its instances stopped (their
	// state synced): the orchestrator re-creates them elsewhere at once
	// instead of waiting for the node's deadline.
	Leaving bool `msgpack:"leaving"`
}

// NodeHealth is a node's health as EDGELESS's NodeHealthStatus, with its
// quirks fixed (tx bytes and packets in their own fields, disk free space
// free). Memory is in KiB, load averages ×100, -1 where unknown.
type NodeHealth struct {
	MemFree       int64   `msgpack:"mem_free" json:"mem_free"`
	MemUsed       int64   `msgpack:"mem_used" json:"mem_used"`
	MemAvailable  int64   `msgpack:"mem_available" json:"mem_available"`
	ProcCPUUsage  float64 `msgpack:"proc_cpu_usage" json:"proc_cpu_usage"` // percent of one CPU
	ProcMemory    int64   `msgpack:"proc_memory" json:"proc_memory"`
	ProcVMemory   int64   `msgpack:"proc_vmemory" json:"proc_vmemory"`
	LoadAvg1      int64   `msgpack:"load_avg_1" json:"load_avg_1"`
	LoadAvg5      int64   `msgpack:"load_avg_5" json:"load_avg_5"`
	LoadAvg15     int64   `msgpack:"load_avg_15" json:"load_avg_15"`
	TotRxBytes    int64   `msgpack:"tot_rx_bytes" json:"tot_rx_bytes"`
	TotRxPkts     int64   `msgpack:"tot_rx_pkts" json:"tot_rx_pkts"`
	TotRxErrs     int64   `msgpack:"tot_rx_errs" json:"tot_rx_errs"`
	TotTxBytes    int64   `msgpack:"tot_tx_bytes" json:"tot_tx_bytes"`
	TotTxPkts     int64   `msgpack:"tot_tx_pkts" json:"tot_tx_pkts"`
	TotTxErrs     int64   `msgpack:"tot_tx_errs" json:"tot_tx_errs"`
	DiskFreeSpace int64   `msgpack:"disk_free_space" json:"disk_free_space"` // bytes
	DiskTotReads  int64   `msgpack:"disk_tot_reads" json:"disk_tot_reads"`   // bytes
	DiskTotWrites int64   `msgpack:"disk_tot_writes" json:"disk_tot_writes"` // bytes
	GPULoadPerc   int64   `msgpack:"gpu_load_perc" json:"gpu_load_perc"`
	GPUTempCels   int64   `msgpack:"gpu_temp_cels" json:"gpu_temp_cels"`
	ActivePower   int64   `msgpack:"active_power" json:"active_power"` // mW
	// From the node's eBPF probes when they run (zero otherwise).
	RunQueueP99US   float64 `msgpack:"runq_p99_us" json:"runq_p99_us"`
	ContextSwitches int64   `msgpack:"context_switches" json:"context_switches"`
	TCPRetransmits  int64   `msgpack:"tcp_retransmits" json:"tcp_retransmits"`
}

// Sample is one performance sample of a physical instance: Metric is
// function_instantiate_time, function_init_time, function_execution_time,
// function_stop_time or function_transfer_time; Seconds its value.
type Sample struct {
	Instance  core.ID `msgpack:"instance"`
	Metric    string  `msgpack:"metric"`
	Timestamp float64 `msgpack:"ts"` // Unix seconds
	Seconds   float64 `msgpack:"s"`
}

// LogEntry is one telemetry_log call of a physical instance.
type LogEntry struct {
	Instance  core.ID `msgpack:"instance"`
	Timestamp float64 `msgpack:"ts"`
	Target    string  `msgpack:"target"`
	Message   string  `msgpack:"msg"`
}

// UpdateNodeResponse tells a node whether it was (re)admitted; a reset node
// has had its instances stopped.
type UpdateNodeResponse struct {
	Reset bool `msgpack:"reset"`
}

// Placement asks where the instances of logical components run.
type Placement struct {
	Logical []core.ID `msgpack:"logical"`
}

// PlacementResponse maps each logical id to its physical instances.
type PlacementResponse struct {
	Instances map[core.ID][]core.InstanceID `msgpack:"instances"`
}

// StartResponse lists the physical instances created for a logical component.
type StartResponse struct {
	Instances []core.InstanceID `msgpack:"instances"`
}

// Cordon marks a node as getting no new instances, or clears the mark.
type Cordon struct {
	Node     core.ID `msgpack:"node"`
	Cordoned bool    `msgpack:"cordoned"`
}

// Migrate moves every instance of a logical component to the first of Nodes
// that can host it; the instances are stopped (handle_stop, last sync) before
// the new ones start, so state carries over.
type Migrate struct {
	Logical core.ID   `msgpack:"logical"`
	Nodes   []core.ID `msgpack:"nodes"`
}

// NodeStatus is one node as its orchestrator sees it.
type NodeStatus struct {
	Node         core.ID      `msgpack:"node" json:"node"`
	Addr         string       `msgpack:"addr" json:"addr"`
	Cordoned     bool         `msgpack:"cordoned" json:"cordoned"`
	Capabilities Capabilities `msgpack:"capabilities" json:"capabilities"`
	Providers    []Provider   `msgpack:"providers" json:"providers"`
	Instances    int          `msgpack:"instances" json:"instances"`
}

// NodeList answers MethodOrcNodes.
type NodeList struct {
	Nodes []NodeStatus `msgpack:"nodes" json:"nodes"`
}

// Invoke calls a function with a payload from outside the dataplane (the
// controller's invocation API): at an orchestrator, Logical names the
// function; at a node, Component names the instance.
type Invoke struct {
	Logical   core.ID `msgpack:"logical"`
	Component core.ID `msgpack:"component"`
	Payload   []byte  `msgpack:"payload"`
	// Queue asks the node to queue the invocation even past its offloading
	// threshold (up to the mailbox's bound): there is nowhere else to go.
	Queue bool `msgpack:"queue"`
	// MaxRespNS is the response time the caller asks for (0: none), and
	// CanOffload lets the orchestrator's edge-cloud policy send the
	// invocation to a cloud node to meet it.
	MaxRespNS  int64 `msgpack:"max_resp_ns"`
	CanOffload bool  `msgpack:"can_offload"`
	// Urgent puts the call ahead of the instance's queue (Serverledge's
	// high-performance QoS class).
	Urgent bool `msgpack:"urgent"`
	// Escalate says the controller can serve the invocation in a cloud
	// domain: rather than queue it past MaxRespNS, or queue it when every
	// instance refuses it, the orchestrator answers Overloaded at once.
	Escalate bool `msgpack:"escalate"`
}

// InvokeResponse is a function's answer to an Invoke. Overloaded says the
// node refused the invocation because the instance's queue (or the node's
// CPU) passed its offloading threshold, or its mailbox is full; Failure says
// why the instance failed while handling it.
type InvokeResponse struct {
	Result     core.CallRet `msgpack:"result"`
	Reply      []byte       `msgpack:"reply"`
	Overloaded bool         `msgpack:"overloaded"`
	Queued     int          `msgpack:"queued"` // the instance's queue when it refused
	Failure    string       `msgpack:"failure"`
	Node       core.ID      `msgpack:"node"`
	Offloaded  bool         `msgpack:"offloaded"` // served by another instance than the first choice
	Cloud      bool         `msgpack:"cloud"`     // offloaded to a cloud node
	// Cold says the orchestrator started the serving instance for this
	// invocation (none could take it, or the function had scaled to zero);
	// InitNS is how long that start took.
	Cold   bool  `msgpack:"cold"`
	InitNS int64 `msgpack:"init_ns"`
	// RunNS is the time from the node's receipt of the invocation to the
	// reply, queueing included; OffloadNS the time the orchestrator spent on
	// instances that refused it before one took it.
	RunNS     int64 `msgpack:"run_ns"`
	OffloadNS int64 `msgpack:"offload_ns"`
}

// Prewarm asks an orchestrator to have at least Instances instances of a
// function running (bounded by its max_instances), so that the next
// invocations find them warm.
type Prewarm struct {
	Logical   core.ID `msgpack:"logical"`
	Instances int     `msgpack:"instances"`
}

// PrewarmResponse says how many instances the Prewarm started and how many
// run now.
type PrewarmResponse struct {
	Started   int `msgpack:"started"`
	Instances int `msgpack:"instances"`
}

// UpdateDomain is an orchestrator's periodic registration with its controller.
type UpdateDomain struct {
	Domain    string `msgpack:"domain"`
	Addr      string `msgpack:"addr"`
	Nonce     uint64 `msgpack:"nonce"`
	RefreshMS int64  `msgpack:"refresh_ms"`
	// Nodes counts the nodes that can take instances: those that joined
	// and are meshed in (their peers know them). Capabilities and
	// ResourceTypes cover every registered node.
	Nodes         int          `msgpack:"nodes"`
	Capabilities  Capabilities `msgpack:"capabilities"`
	ResourceTypes []string     `msgpack:"resource_types"`
	// Cloud says the domain is designated cloud: the controller keeps it
	// for what edge domains cannot do.
	Cloud bool `msgpack:"cloud"`
}

// UpdateDomainResponse tells an orchestrator that the controller does not know
// it (new or restarted) and that it should drop what it runs.
type UpdateDomainResponse struct {
	Reset bool `msgpack:"reset"`
}

// MaxControlFrame bounds control-plane frames, which carry function code:
// large enough for a Go wasip1 module of tens of MiB.
const MaxControlFrame = 64 << 20

// ControlOptions are the options of a control-plane client: frames up to
// MaxControlFrame, which carry function code, and room to queue two of them,
// so that a large function is never refused as if the peer were slow.
func ControlOptions(log *slog.Logger) ClientOptions {
	return ClientOptions{MaxFrame: MaxControlFrame, MaxPending: 2 * MaxControlFrame, Log: log}
}
