package node

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// Config is a node's configuration, read from node.toml.
type Config struct {
	General      General          `toml:"general"`
	WASM         WASMRuntime      `toml:"wasm_runtime"`
	Native       NativeRuntime    `toml:"native_runtime"`
	Container    ContainerRuntime `toml:"container_runtime"`
	State        State            `toml:"state"`
	Telemetry    Telemetry        `toml:"telemetry"`
	Offload      Offload          `toml:"offload"`
	Resources    Resources        `toml:"resources"`
	Capabilities Capabilities     `toml:"user_node_capabilities"`
	TLS          spec.TLS         `toml:"tls"`

	// Credentials, when set, are used instead of the files named by TLS (for
	// nodes started in the process that holds the CA, such as inabox).
	Credentials *wire.Credentials `toml:"-"`
	// SameProcess says the orchestrator runs in this process (inabox): the
	// node cannot be cut off from it, so it holds no lease and never fences.
	SameProcess bool `toml:"-"`
}

// General holds the node's identity, addresses and limits.
type General struct {
	NodeID                         string    `toml:"node_id" comment:"UUID of this node; empty picks a random one at every start"`
	InvocationURL                  wire.Addr `toml:"invocation_url" comment:"address the dataplane and the node agent listen on"`
	InvocationURLAnnounced         wire.Addr `toml:"invocation_url_announced" comment:"address other nodes and the orchestrator dial; empty = invocation_url, with the host name if it binds every interface (0.0.0.0)"`
	NodeRegisterURL                wire.Addr `toml:"node_register_url" comment:"orchestrator address this node registers with"`
	SubscriptionRefreshIntervalSec float64   `toml:"subscription_refresh_interval_sec" comment:"seconds between registrations; the orchestrator drops the node after twice this"`
	MailboxSize                    int       `toml:"mailbox_size" comment:"events queued per instance before casts are dropped and calls refused"`
	CallTimeoutMS                  int       `toml:"call_timeout_ms" comment:"how long a call() waits for its reply before returning an error"`
	MaxFrameBytes                  int       `toml:"max_frame_bytes" comment:"largest frame accepted or sent: events, and control requests carrying function code"`
	MemoryBudgetMB                 int       `toml:"memory_budget_mb" comment:"MiB the function instances of this node may reserve together: each its memory_mb annotation, else its runtime's limit (wasm_runtime.max_memory_mb, container_runtime.max_memory_mb; native code and resources reserve none unless annotated); a start past it is refused; 0 = three quarters of the machine's memory"`
}

// WASMRuntime configures the wasmtime runtime.
type WASMRuntime struct {
	Enabled          bool   `toml:"enabled" comment:"offer the RUST_WASM function type"`
	CacheDir         string `toml:"cache_dir" comment:"directory of compiled modules, reused across restarts; empty = memory only"`
	MaxMemoryMB      int    `toml:"max_memory_mb" comment:"linear memory limit of one instance"`
	HandlerTimeoutMS int    `toml:"handler_timeout_ms" comment:"CPU budget of one handler invocation; past it the instance is stopped. A call from a resource or a FaaS invocation may run on its caller's thread when this is at most call_timeout_ms"`
	MaxInstances     int    `toml:"max_instances" comment:"WASM instances alive at once; each reserves address space for max_memory_mb"`
}

// NativeRuntime configures native functions: shared objects loaded into the
// node's process.
type NativeRuntime struct {
	Enabled bool   `toml:"enabled" comment:"offer the RUST_NATIVE function type: code runs inside the node's process, without isolation"`
	Dir     string `toml:"dir" comment:"where a function's .so is written before it is loaded (not mounted noexec); empty = the system's temporary directory"`
	// The allowlist pins native code: with the node's own privileges, a .so
	// can do anything, so the operator names each one by its hash.
	AllowedSHA256 []string `toml:"allowed_sha256" comment:"SHA-256 (hex) of every .so this node may load (sha256sum FILE); others are refused"`
}

// Allow enables the native runtime and adds code's SHA-256 to the allowlist.
func (r *NativeRuntime) Allow(code []byte) {
	sum := sha256.Sum256(code)
	r.Enabled = true
	r.AllowedSHA256 = append(r.AllowedSHA256, hex.EncodeToString(sum[:]))
}

// AllowFile is Allow for the .so file at path.
func (r *NativeRuntime) AllowFile(path string) error {
	code, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot allow native code: %w", err)
	}
	r.Allow(code)
	return nil
}

// ContainerRuntime configures functions in Docker containers: EDGELESS's
// CONTAINER functions and the python310 and custom language runtimes.
type ContainerRuntime struct {
	Enabled           bool    `toml:"enabled" comment:"offer the CONTAINER, python310 and custom function types when a Docker daemon answers"`
	DockerHost        string  `toml:"docker_host" comment:"Docker daemon address (unix:///var/run/docker.sock, tcp://...); empty = DOCKER_HOST or the default socket"`
	Network           string  `toml:"network" comment:"Docker network the containers join"`
	GuestAPIHostURL   string  `toml:"guest_api_host_url" comment:"address containers call the node's GuestAPIHost at, http://ADDR:PORT; empty = the network's gateway, a free port"`
	HandlerTimeoutMS  int     `toml:"handler_timeout_ms" comment:"longest a container may take to handle one event; past it the container counts as hung and is replaced"`
	StartTimeoutMS    int     `toml:"start_timeout_ms" comment:"longest a container may take from its creation to its first reply"`
	IdleExpirationSec float64 `toml:"idle_expiration_sec" comment:"how long a warm container of a python310 or custom function stays unused before it is removed"`
	Prewarm           int     `toml:"prewarm" comment:"warm containers a python310 or custom function starts with (at least 1)"`
	SpareContainers   int     `toml:"spare_containers" comment:"started containers kept ready per image of a CONTAINER function, so that its next instance skips Docker's create and start"`
	MaxMemoryMB       int     `toml:"max_memory_mb" comment:"memory limit of a container whose function sets no memory_mb; 0 = none"`
	CPUs              float64 `toml:"cpus" comment:"CPU limit, in cores, of a container whose function sets no cpus; 0 = none"`
	Python310Image    string  `toml:"python310_image" comment:"image of the python310 runtime (make images builds it)"`
}

func (c *ContainerRuntime) validate(bad func(key, format string, args ...any)) {
	if c.HandlerTimeoutMS < 1 {
		bad("container_runtime.handler_timeout_ms", "must be at least 1, got %d", c.HandlerTimeoutMS)
	}
	if c.StartTimeoutMS < 1 {
		bad("container_runtime.start_timeout_ms", "must be at least 1, got %d", c.StartTimeoutMS)
	}
	if c.IdleExpirationSec <= 0 {
		bad("container_runtime.idle_expiration_sec", "must be positive, got %v", c.IdleExpirationSec)
	}
	if c.Prewarm < 0 || c.SpareContainers < 0 || c.MaxMemoryMB < 0 || c.CPUs < 0 {
		bad("container_runtime", "prewarm, spare_containers, max_memory_mb and cpus must not be negative")
	}
	if c.GuestAPIHostURL != "" {
		if _, err := wire.ParseAddr(c.GuestAPIHostURL); err != nil {
			bad("container_runtime.guest_api_host_url", "%v", err)
		}
	}
}

// Offload configures how the node sheds invocations (the controller's
// /api/v1/invoke) it cannot serve promptly: it refuses them, and the
// orchestrator sends them to another instance of the function, starting one
// on another node when max_instances allows.
type Offload struct {
	Enabled        bool    `toml:"enabled" comment:"refuse invocations to an overloaded instance so that they go elsewhere"`
	QueueThreshold int     `toml:"queue_threshold" comment:"queued events at which an instance counts as overloaded"`
	CPUThreshold   float64 `toml:"cpu_threshold" comment:"node process CPU use, percent of all CPUs, past which every instance counts as overloaded; 0 = ignore CPU"`
}

// Telemetry configures what the node reports about itself.
type Telemetry struct {
	MetricsURL         wire.Addr `toml:"metrics_url" comment:"address of the Prometheus /metrics endpoint; empty disables it"`
	PerformanceSamples bool      `toml:"performance_samples" comment:"send per-event execution and transfer times and telemetry logs to the orchestrator"`
	Pprof              bool      `toml:"pprof" comment:"serve /debug/pprof on metrics_url"`
	EBPF               bool      `toml:"ebpf" comment:"measure run-queue latency, context switches and dataplane TCP with eBPF (needs root or CAP_BPF)"`
	LogLevel           string    `toml:"log_level" comment:"error, warn, info, debug or trace (as debug); empty = --log-level, which also wins when given"`
}

// State configures where function state saved with sync() is kept.
type State struct {
	Dir      string `toml:"dir" comment:"directory of function state, one file per logical function"`
	RedisURL string `toml:"redis_url" comment:"keep function state in this Redis instead (redis://host:port/db), shared by every node of the domain"`
}

// Resources names the resource providers this node offers; an empty name
// disables a provider. Provider ids must be unique in the domain.
type Resources struct {
	DataDir                  string           `toml:"data_dir" comment:"directory that file-log paths are relative to; they may not leave it"`
	AllowedDirs              []string         `toml:"allowed_dirs" comment:"further absolute directories that workflows may name in file-log paths"`
	PrependHostname          bool             `toml:"prepend_hostname" comment:"prefix every provider id with \"<hostname>-\", so that one node.toml serves many hosts"`
	HTTPIngressURL           wire.Addr        `toml:"http_ingress_url" comment:"address the http-ingress provider listens on"`
	HTTPIngressMaxBodyBytes  int64            `toml:"http_ingress_max_body_bytes" comment:"largest HTTP body http-ingress accepts (larger: 413) and http-egress reads; 0 = 4 MiB"`
	HTTPIngressProvider      string           `toml:"http_ingress_provider" comment:"provider id of the http-ingress resource"`
	HTTPIngressAllowCatchAll bool             `toml:"http_ingress_allow_catch_all" comment:"let one workflow's http-ingress take the requests of every host (an empty or \"*\" host)"`
	HTTPEgressProvider       string           `toml:"http_egress_provider" comment:"provider id of the http-egress resource"`
	HTTPPosterProvider       string           `toml:"http_poster_provider" comment:"provider id of the http-poster resource"`
	FileLogProvider          string           `toml:"file_log_provider" comment:"provider id of the file-log resource"`
	RedisProvider            string           `toml:"redis_provider" comment:"provider id of the redis resource"`
	SqlxProvider             string           `toml:"sqlx_provider" comment:"provider id of the sqlx resource (SQLite)"`
	KafkaEgressProvider      string           `toml:"kafka_egress_provider" comment:"provider id of the kafka-egress resource"`
	FilePusherProvider       FilePusher       `toml:"file_pusher_provider"`
	MetricsCollectorProvider MetricsCollector `toml:"metrics_collector_provider"`
	ServerlessProvider       []Serverless     `toml:"serverless_provider" comment:"resource classes served by external OpenFaaS-style functions, one table each"`
}

// Serverless configures one serverless provider: a resource class whose
// casts are POSTed to an external function.
type Serverless struct {
	ClassType   string `toml:"class_type" comment:"the resource class workflows name, e.g. \"double\""`
	Version     string `toml:"version" comment:"version advertised for the class"`
	FunctionURL string `toml:"function_url" comment:"URL of the function, called with POST"`
	Provider    string `toml:"provider" comment:"provider id; empty disables this entry"`
}

// FilePusher configures the file-pusher provider.
type FilePusher struct {
	Directory string `toml:"directory" comment:"directory whose files the file-pusher casts"`
	Provider  string `toml:"provider" comment:"provider id of the file-pusher resource; empty disables it"`
}

// MetricsCollector configures the metrics-collector provider.
type MetricsCollector struct {
	CollectorType string `toml:"collector_type" comment:"where samples go: Redis"`
	RedisURL      string `toml:"redis_url" comment:"Redis the metrics-collector writes to"`
	Provider      string `toml:"provider" comment:"provider id of the metrics-collector resource; empty disables it"`
}

func (r *Resources) validate(bad func(key, format string, args ...any)) {
	if r.HTTPIngressProvider != "" {
		if r.HTTPIngressURL.IsZero() {
			bad("resources.http_ingress_url", "must be set when http_ingress_provider is")
		}
	}
	if r.HTTPIngressMaxBodyBytes < 0 {
		bad("resources.http_ingress_max_body_bytes", "must not be negative, got %d", r.HTTPIngressMaxBodyBytes)
	}
	if r.FilePusherProvider.Provider != "" && r.FilePusherProvider.Directory == "" {
		bad("resources.file_pusher_provider.directory", "must be set when the provider is enabled")
	}
	if m := r.MetricsCollectorProvider; m.Provider != "" {
		if !strings.EqualFold(m.CollectorType, "Redis") {
			bad("resources.metrics_collector_provider.collector_type", "only Redis is supported, got %q", m.CollectorType)
		}
		if !strings.HasPrefix(m.RedisURL, "redis://") && !strings.HasPrefix(m.RedisURL, "rediss://") && !strings.HasPrefix(m.RedisURL, "unix://") {
			bad("resources.metrics_collector_provider.redis_url", "want redis://host:port, got %q", core.Redact(m.RedisURL))
		}
	}
	if r.DataDir == "" {
		bad("resources.data_dir", "must not be empty")
	}
	for _, d := range r.AllowedDirs {
		if !filepath.IsAbs(d) {
			bad("resources.allowed_dirs", "%q is not an absolute directory", d)
		}
	}
	all := []string{r.HTTPIngressProvider, r.HTTPEgressProvider, r.HTTPPosterProvider, r.FileLogProvider,
		r.RedisProvider, r.SqlxProvider, r.KafkaEgressProvider, r.FilePusherProvider.Provider, r.MetricsCollectorProvider.Provider}
	for k, sp := range r.ServerlessProvider {
		if sp.Provider == "" {
			continue
		}
		all = append(all, sp.Provider)
		key := fmt.Sprintf("resources.serverless_provider[%d]", k)
		if sp.ClassType == "" {
			bad(key+".class_type", "must be set when provider is")
		}
		if u, err := url.Parse(sp.FunctionURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key+".function_url", "want an http or https URL, got %q", sp.FunctionURL)
		}
	}
	ids := map[string]bool{}
	for _, id := range all {
		if id != "" && ids[id] {
			bad("resources", "provider id %q is used twice", id)
		}
		ids[id] = true
	}
}

// Capabilities override or extend what the node advertises.
type Capabilities struct {
	NumCPUs      int      `toml:"num_cpus" comment:"logical CPUs advertised (weighs Random placement); 0 = detected"`
	NumCores     int      `toml:"num_cores" comment:"physical cores advertised; 0 = detected"`
	ClockFreqCPU float64  `toml:"clock_freq_cpu" comment:"CPU clock in MHz advertised; 0 = not advertised"`
	MemSize      int      `toml:"mem_size" comment:"memory in MiB advertised; 0 = not advertised"`
	Labels       []string `toml:"labels" comment:"labels matched by the label_match_all annotation; hostname=<host> is always added"`
	TEE          bool     `toml:"is_tee_running" comment:"the node runs in a trusted execution environment"`
	TPM          bool     `toml:"has_tpm" comment:"the node has a TPM"`
}

// Default returns a node configuration with EDGELESS's default ports.
func Default() Config {
	return Config{
		General: General{
			InvocationURL:                  wire.MustAddr("http://127.0.0.1:7006"),
			NodeRegisterURL:                wire.MustAddr("http://127.0.0.1:7004"),
			SubscriptionRefreshIntervalSec: 2,
			MailboxSize:                    1024,
			CallTimeoutMS:                  5000,
			MaxFrameBytes:                  wire.MaxControlFrame,
		},
		WASM: WASMRuntime{
			Enabled:          true,
			CacheDir:         "edgeless-cache",
			MaxMemoryMB:      64,
			HandlerTimeoutMS: 5000,
			MaxInstances:     256,
		},
		Container: ContainerRuntime{
			Enabled:           true,
			Network:           "bridge",
			HandlerTimeoutMS:  5000,
			StartTimeoutMS:    30000,
			IdleExpirationSec: 300,
			Prewarm:           1,
			SpareContainers:   1,
			Python310Image:    "edgeless-python:latest",
		},
		State:     State{Dir: "function_state"},
		TLS:       spec.DefaultTLS(wire.RoleNode),
		Telemetry: Telemetry{MetricsURL: wire.MustAddr("http://127.0.0.1:7007")},
		Offload:   Offload{QueueThreshold: 8, CPUThreshold: 90},
		Resources: Resources{
			DataDir:                 ".",
			HTTPIngressURL:          wire.MustAddr("http://127.0.0.1:7008"),
			HTTPIngressMaxBodyBytes: 4 << 20,
			HTTPIngressProvider:     "http-ingress-1",
			HTTPEgressProvider:      "http-egress-1",
			HTTPPosterProvider:      "http-poster-1",
			FileLogProvider:         "file-log-1",
			RedisProvider:           "redis-1",
			SqlxProvider:            "sqlx-1",
			MetricsCollectorProvider: MetricsCollector{
				CollectorType: "Redis",
				RedisURL:      "redis://127.0.0.1:6379",
			},
		},
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.General.NodeID != "" {
		if _, err := core.ParseID(c.General.NodeID); err != nil {
			bad("general.node_id", "%v", err)
		}
	}
	// The addresses were parsed when read; the optional ones may be unset.
	if c.General.InvocationURL.IsZero() {
		bad("general.invocation_url", "must be set")
	}
	if c.General.NodeRegisterURL.IsZero() {
		bad("general.node_register_url", "must be set")
	}
	if c.General.SubscriptionRefreshIntervalSec <= 0 {
		bad("general.subscription_refresh_interval_sec", "must be positive, got %v", c.General.SubscriptionRefreshIntervalSec)
	}
	if c.General.MailboxSize < 1 {
		bad("general.mailbox_size", "must be at least 1, got %d", c.General.MailboxSize)
	}
	if c.General.CallTimeoutMS < 1 {
		bad("general.call_timeout_ms", "must be at least 1, got %d", c.General.CallTimeoutMS)
	}
	if c.General.MemoryBudgetMB < 0 {
		bad("general.memory_budget_mb", "must not be negative, got %d", c.General.MemoryBudgetMB)
	}
	if c.General.MaxFrameBytes < 1024 {
		bad("general.max_frame_bytes", "must be at least 1024, got %d", c.General.MaxFrameBytes)
	}
	if k := c.Capabilities; k.NumCPUs < 0 || k.NumCores < 0 || k.ClockFreqCPU < 0 || k.MemSize < 0 {
		bad("user_node_capabilities", "num_cpus, num_cores, clock_freq_cpu and mem_size must not be negative")
	}
	switch strings.ToLower(c.Telemetry.LogLevel) {
	case "", "error", "warn", "info", "debug", "trace":
	default:
		bad("telemetry.log_level", "want error, warn, info, debug or trace, got %q", c.Telemetry.LogLevel)
	}
	if c.Offload.QueueThreshold < 1 {
		bad("offload.queue_threshold", "must be at least 1, got %d", c.Offload.QueueThreshold)
	}
	if c.Offload.CPUThreshold < 0 || c.Offload.CPUThreshold > 100 {
		bad("offload.cpu_threshold", "must be within 0–100, got %v", c.Offload.CPUThreshold)
	}
	if c.WASM.MaxMemoryMB < 1 {
		bad("wasm_runtime.max_memory_mb", "must be at least 1, got %d", c.WASM.MaxMemoryMB)
	}
	if c.WASM.HandlerTimeoutMS < 1 {
		bad("wasm_runtime.handler_timeout_ms", "must be at least 1, got %d", c.WASM.HandlerTimeoutMS)
	}
	if c.WASM.MaxInstances < 1 {
		bad("wasm_runtime.max_instances", "must be at least 1, got %d", c.WASM.MaxInstances)
	}
	if c.State.RedisURL != "" {
		if _, err := redis.ParseURL(c.State.RedisURL); err != nil {
			bad("state.redis_url", "%v", err)
		}
	}
	if c.State.Dir == "" && c.State.RedisURL == "" {
		bad("state.dir", "must not be empty when state.redis_url is not set")
	}
	if c.Native.Enabled {
		for _, h := range c.Native.AllowedSHA256 {
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				bad("native_runtime.allowed_sha256", "%q is not a SHA-256 in hex", h)
			}
		}
	}
	c.Resources.validate(bad)
	c.Container.validate(bad)
	if c.Credentials == nil {
		if err := c.TLS.Validate("tls."); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Load reads a node.toml over the defaults and validates it. It accepts
// EDGELESS's keys that have no effect here (IgnoredKeys) and refuses any
// other unknown key.
func Load(path string) (Config, error) {
	cfg, _, err := LoadWith(path, true)
	return cfg, err
}

// LoadWith reads a node.toml like Load and returns a warning for each key
// that has no effect; unknown keys are errors when strict, warnings
// otherwise.
func LoadWith(path string, strict bool) (Config, []spec.Warning, error) {
	return spec.LoadValidatedWith(path, Default(), spec.LoadOptions{Strict: strict, Ignored: IgnoredKeys()})
}

// IgnoredKeys returns the keys of EDGELESS's node.toml that a node accepts
// but does not act on, each with the reason.
func IgnoredKeys() map[string]string {
	const agent = "the node agent shares the invocation_url listener here"
	const caps = "not advertised: placement here does not use it"
	return map[string]string{
		"general.agent_url":                     agent,
		"general.agent_url_announced":           agent,
		"general.invocation_url_coap":           "CoAP (embedded nodes) is not offered",
		"general.invocation_url_announced_coap": "CoAP (embedded nodes) is not offered",
		"power_info":                            "power readings from a PDU are not offered",
		"resources.dda_provider":                "the dda resource class is not offered",
		"resources.ollama_provider":             "the ollama resource class is not offered",
		"user_node_capabilities.model_name_cpu": caps,
		"user_node_capabilities.disk_tot_space": caps,
		"user_node_capabilities.num_gpus":       caps,
		"user_node_capabilities.model_name_gpu": caps,
		"user_node_capabilities.mem_size_gpu":   caps,
	}
}

// WriteTemplate writes the commented default node.toml.
func WriteTemplate(w io.Writer) error {
	cfg := Default()
	cfg.General.NodeID = core.NewID().String()
	return spec.WriteTemplate(w, &cfg)
}

func (c *Config) refreshInterval() time.Duration {
	return time.Duration(c.General.SubscriptionRefreshIntervalSec * float64(time.Second))
}
