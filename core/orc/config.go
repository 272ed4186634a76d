package orc

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// Config is an orchestrator's configuration, read from orchestrator.toml.
type Config struct {
	General    General       `toml:"general"`
	Baseline   Baseline      `toml:"baseline"`
	Scheduling Scheduling    `toml:"scheduling"`
	Proxy      ProxySettings `toml:"proxy"`
	TLS        spec.TLS      `toml:"tls"`

	// Credentials, when set, are used instead of the files named by TLS (for
	// an orchestrator started in the process that holds the CA, such as inabox).
	Credentials *wire.Credentials `toml:"-"`
}

// General holds the orchestrator's identity and addresses.
type General struct {
	DomainID                       string    `toml:"domain_id" comment:"name of the orchestration domain"`
	OrchestratorURL                wire.Addr `toml:"orchestrator_url" comment:"address the controller sends orders to"`
	OrchestratorURLAnnounced       wire.Addr `toml:"orchestrator_url_announced" comment:"address announced to the controller; empty = orchestrator_url, with the host name if it binds every interface (0.0.0.0)"`
	NodeRegisterURL                wire.Addr `toml:"node_register_url" comment:"address nodes register at; empty or equal to orchestrator_url = that listener"`
	DomainRegisterURL              wire.Addr `toml:"domain_register_url" comment:"controller address this domain registers with"`
	SubscriptionRefreshIntervalSec float64   `toml:"subscription_refresh_interval_sec" comment:"seconds between registrations with the controller"`
	ReconcileIntervalMS            int       `toml:"reconcile_interval_ms" comment:"how often expired nodes are dropped and missing instances re-created"`
	ScaleInAfterSec                int       `toml:"scale_in_after_sec" comment:"seconds without overloaded invocations or prewarms after which instances added on demand are stopped again; also how long the last instance of a function with min_instances = 0 may stay idle (Serverledge's container expiration)"`
	MetricsURL                     wire.Addr `toml:"metrics_url" comment:"address of the Prometheus /metrics endpoint; empty disables it"`
	Pprof                          bool      `toml:"pprof" comment:"serve /debug/pprof on metrics_url"`
}

// Baseline selects the placement strategy.
type Baseline struct {
	OrchestrationStrategy string `toml:"orchestration_strategy" comment:"Random (weighted by CPUs) or RoundRobin"`
}

// Scheduling selects where invocations of standalone functions run, as
// Serverledge's policies do.
type Scheduling struct {
	Policy     string `toml:"policy" comment:"edge-only (instances on edge nodes; an overloaded one offloads to a neighbour), edge-cloud (also to a cloud node when the edge is saturated or cannot meet an invocation's QoSMaxRespT) or cloud-only (instances on cloud nodes only)"`
	CloudLabel string `toml:"cloud_label" comment:"nodes carrying this label are the cloud; with none, every node is edge"`
	// CloudDomain makes every node of the domain a cloud node, and says so
	// to the controller when the domain registers.
	CloudDomain bool `toml:"cloud_domain" comment:"the whole domain is cloud: the controller gives it new functions only when no edge domain can run them (first, under the controller's cloud-only policy), and, under its edge-cloud policy, the invocations an edge domain cannot serve in time; here, every node is a cloud node, where an invocation with CanDoOffloading and a QoSMaxRespT its instances cannot meet starts one more (up to max_instances)"`
}

// The scheduling policies.
const (
	PolicyEdgeOnly  = spec.PolicyEdgeOnly
	PolicyEdgeCloud = spec.PolicyEdgeCloud
	PolicyCloudOnly = spec.PolicyCloudOnly
)

// ProxySettings selects the proxy that mirrors the orchestrator's state to an
// outside store and reads orchestration intents from it.
type ProxySettings struct {
	ProxyType            string          `toml:"proxy_type" comment:"None or Redis"`
	RedisURL             string          `toml:"redis_url" comment:"Redis (or Valkey) server of the Redis proxy"`
	ProxyGCPeriodSeconds int             `toml:"proxy_gc_period_seconds" comment:"health and performance entries older than this are removed; 0 keeps them"`
	DatasetSettings      DatasetSettings `toml:"dataset_settings"`
}

// DatasetSettings makes the Redis proxy also append what it mirrors to CSV
// files, for offline analysis.
type DatasetSettings struct {
	DatasetPath      string `toml:"dataset_path" comment:"prefix of the CSV files (e.g. \"dataset/\"); empty = no dataset"`
	Append           bool   `toml:"append" comment:"append to existing files instead of truncating them"`
	AdditionalFields string `toml:"additional_fields" comment:"text put first on every CSV row (e.g. an experiment's parameters)"`
	AdditionalHeader string `toml:"additional_header" comment:"header of the additional fields"`
}

// Default returns an orchestrator configuration with EDGELESS's default ports.
func Default() Config {
	return Config{
		General: General{
			DomainID:                       "domain-7000",
			OrchestratorURL:                wire.MustAddr("http://127.0.0.1:7003"),
			NodeRegisterURL:                wire.MustAddr("http://127.0.0.1:7004"),
			DomainRegisterURL:              wire.MustAddr("http://127.0.0.1:7002"),
			SubscriptionRefreshIntervalSec: 2,
			ReconcileIntervalMS:            1000,
			ScaleInAfterSec:                60,
			MetricsURL:                     wire.MustAddr("http://127.0.0.1:7012"),
		},
		Baseline:   Baseline{OrchestrationStrategy: "Random"},
		Scheduling: Scheduling{Policy: PolicyEdgeOnly, CloudLabel: "cloud"},
		TLS:        spec.DefaultTLS(wire.RoleOrchestrator),
		Proxy: ProxySettings{
			ProxyType:            "None",
			RedisURL:             "redis://127.0.0.1:6379",
			ProxyGCPeriodSeconds: 360,
			DatasetSettings:      DatasetSettings{Append: true},
		},
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.General.DomainID == "" {
		bad("general.domain_id", "must not be empty")
	}
	if err := spec.CheckPolicy(c.Scheduling.Policy); err != nil {
		bad("scheduling.policy", "%v", err)
	}
	if c.Scheduling.CloudLabel == "" {
		bad("scheduling.cloud_label", "must not be empty")
	}
	// The addresses were parsed when read; the optional ones may be unset.
	if c.General.OrchestratorURL.IsZero() {
		bad("general.orchestrator_url", "must be set")
	}
	if c.General.DomainRegisterURL.IsZero() {
		bad("general.domain_register_url", "must be set")
	}
	if c.General.SubscriptionRefreshIntervalSec <= 0 {
		bad("general.subscription_refresh_interval_sec", "must be positive, got %v", c.General.SubscriptionRefreshIntervalSec)
	}
	if c.General.ScaleInAfterSec < 1 {
		bad("general.scale_in_after_sec", "must be at least 1, got %d", c.General.ScaleInAfterSec)
	}
	if c.General.ReconcileIntervalMS < 1 {
		bad("general.reconcile_interval_ms", "must be at least 1, got %d", c.General.ReconcileIntervalMS)
	}
	switch c.Baseline.OrchestrationStrategy {
	case "Random", "RoundRobin":
	default:
		bad("baseline.orchestration_strategy", "must be Random or RoundRobin, got %q", c.Baseline.OrchestrationStrategy)
	}
	switch c.Proxy.ProxyType {
	case "None":
	case "Redis":
		if _, err := redis.ParseURL(c.Proxy.RedisURL); err != nil {
			bad("proxy.redis_url", "%v", err)
		}
	default:
		bad("proxy.proxy_type", "must be None or Redis, got %q", c.Proxy.ProxyType)
	}
	if c.Proxy.ProxyGCPeriodSeconds < 0 {
		bad("proxy.proxy_gc_period_seconds", "must not be negative, got %d", c.Proxy.ProxyGCPeriodSeconds)
	}
	if c.Credentials == nil {
		if err := c.TLS.Validate("tls."); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Load reads an orchestrator.toml over the defaults and validates it. It
// accepts EDGELESS's keys that have no effect here (IgnoredKeys) and refuses
// any other unknown key.
func Load(path string) (Config, error) {
	cfg, _, err := LoadWith(path, true)
	return cfg, err
}

// LoadWith reads an orchestrator.toml like Load and returns a warning for
// each key that has no effect; unknown keys are errors when strict, warnings
// otherwise.
func LoadWith(path string, strict bool) (Config, []spec.Warning, error) {
	return spec.LoadValidatedWith(path, Default(), spec.LoadOptions{Strict: strict, Ignored: IgnoredKeys()})
}

// IgnoredKeys returns the keys of EDGELESS's orchestrator.toml that an
// orchestrator accepts but does not act on, each with the reason.
func IgnoredKeys() map[string]string {
	return map[string]string{
		"general.node_register_coap_url": "CoAP (embedded nodes) is not offered",
	}
}

// WriteTemplate writes the commented default orchestrator.toml.
func WriteTemplate(w io.Writer) error {
	cfg := Default()
	return spec.WriteTemplate(w, &cfg)
}

func (c *Config) refreshInterval() time.Duration {
	return time.Duration(c.General.SubscriptionRefreshIntervalSec * float64(time.Second))
}
