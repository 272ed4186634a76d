package controller

import (
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// Config is a controller's configuration, read from controller.toml.
type Config struct {
	ControllerURL       APIURL    `toml:"controller_url" comment:"HTTP address of the workflow API used by the CLI"`
	DomainRegisterURL   wire.Addr `toml:"domain_register_url" comment:"address orchestrators register their domains at"`
	PersistenceFilename string    `toml:"persistence_filename" comment:"file where admitted workflows are kept across restarts; empty disables"`
	RequestTimeoutSec   int       `toml:"request_timeout_sec" comment:"how long one request to an orchestrator may take"`
	MaxWorkflowMB       int       `toml:"max_workflow_mb" comment:"largest workflow (JSON with inlined code) the API accepts"`
	BodyBudgetMB        int       `toml:"body_budget_mb" comment:"MB of workflow and function bodies the API decodes at once (each takes several times its size while decoded); more wait, then get 503; 0 = twice max_workflow_mb"`
	AsyncResultTTLSec   int       `toml:"async_result_ttl_sec" comment:"how long the result of an asynchronous invocation is kept for polling"`
	MaxAsyncPending     int       `toml:"max_async_pending" comment:"asynchronous invocations running or kept at once; when full, the oldest finished results are dropped before async_result_ttl_sec, and only running ones refuse more (429)"`
	RedisURL            string    `toml:"redis_url" comment:"Redis where asynchronous results and the progress of Serverledge workflow runs are shared, so that any controller configured with it answers GET /poll/ID and /workflow/resume; empty keeps them on this controller (in persistence_filename.async)"`
	MetricsURL          wire.Addr `toml:"metrics_url" comment:"address of the Prometheus /metrics endpoint; empty disables it"`
	Pprof               bool      `toml:"pprof" comment:"serve /debug/pprof on metrics_url"`
	TokensPath          string    `toml:"tokens_path" comment:"file of API tokens (edgeless cert token adds one); empty turns authentication off: anyone who reaches the API may run code on the nodes"`
	ServerledgeAuth     string    `toml:"serverledge_auth" comment:"who may call Serverledge's API (/create, /invoke/NAME, … at controller_url, plain HTTP or HTTPS) without a token: loopback (clients on 127.0.0.1 and ::1 only), token (nobody), none (anyone: unsafe, anyone who reaches the API may run code on the nodes)"`
	TLS                 spec.TLS  `toml:"tls"`

	// Scheduling decides between edge and cloud domains.
	Scheduling Scheduling `toml:"scheduling"`

	// Credentials and Tokens, when set, are used instead of the files named
	// by TLS and TokensPath (for a controller started in the process that
	// holds the CA, such as inabox).
	Credentials *wire.Credentials `toml:"-"`
	Tokens      []Token           `toml:"-"`
	// InvokeOverNetwork makes direct invocations of nodes that run in this
	// process (inabox) take TLS over loopback, as to any other node, rather
	// than an in-process call: for the tests of that path.
	InvokeOverNetwork bool `toml:"-"`
}

// Scheduling selects how the controller uses the domains that designate
// themselves cloud (orchestrator.toml [scheduling] cloud_domain), as
// Serverledge's policies use its cloud nodes.
type Scheduling struct {
	Policy string `toml:"policy" comment:"edge-only (new functions go to edge domains; cloud domains get those no edge domain can run), edge-cloud (as edge-only, and an invocation with CanDoOffloading that its edge domain cannot serve within its QoSMaxRespT, or answers overloaded, goes to a cloud domain, where a copy of the function is deployed on first need) or cloud-only (new functions go to cloud domains first)"`
}

// Default returns a controller configuration with EDGELESS's default ports.
func Default() Config {
	return Config{
		ControllerURL:       MustAPIURL("https://127.0.0.1:7001"),
		DomainRegisterURL:   wire.MustAddr("http://127.0.0.1:7002"),
		PersistenceFilename: "controller.save",
		RequestTimeoutSec:   60,
		AsyncResultTTLSec:   600,
		MaxAsyncPending:     10000,
		MetricsURL:          wire.MustAddr("http://127.0.0.1:7011"),
		MaxWorkflowMB:       64,
		TokensPath:          "tls/tokens",
		ServerledgeAuth:     ServerledgeAuthLoopback,
		TLS:                 spec.DefaultTLS(wire.RoleController),
		Scheduling:          Scheduling{Policy: spec.PolicyEdgeOnly},
	}
}

// bodyBudget returns the bytes of body_budget_mb, or of twice
// max_workflow_mb when it is 0.
func (c *Config) bodyBudget() int64 {
	if c.BodyBudgetMB == 0 {
		return 2 * int64(c.MaxWorkflowMB) << 20
	}
	return int64(c.BodyBudgetMB) << 20
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.ControllerURL.IsZero() {
		errs = append(errs, errors.New("controller_url: must be set"))
	} else if c.ControllerURL.HTTPS() && !c.TLS.Enabled {
		errs = append(errs, errors.New("controller_url: https needs the controller's certificate: set tls.enabled = true, or use http://"))
	}
	if c.Credentials == nil {
		if err := c.TLS.Validate("tls."); err != nil {
			errs = append(errs, err)
		}
	}
	if c.DomainRegisterURL.IsZero() {
		errs = append(errs, errors.New("domain_register_url: must be set"))
	}
	switch c.ServerledgeAuth {
	case ServerledgeAuthLoopback, ServerledgeAuthToken, ServerledgeAuthNone:
	default:
		errs = append(errs, fmt.Errorf("serverledge_auth: want loopback, token or none, got %q", c.ServerledgeAuth))
	}
	if err := spec.CheckPolicy(c.Scheduling.Policy); err != nil {
		errs = append(errs, fmt.Errorf("scheduling.policy: %w", err))
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("redis_url: %w", err))
		}
	}
	if c.AsyncResultTTLSec < 1 {
		errs = append(errs, fmt.Errorf("async_result_ttl_sec: must be at least 1, got %d", c.AsyncResultTTLSec))
	}
	if c.MaxAsyncPending < 1 {
		errs = append(errs, fmt.Errorf("max_async_pending: must be at least 1, got %d", c.MaxAsyncPending))
	}
	if c.RequestTimeoutSec < 1 {
		errs = append(errs, fmt.Errorf("request_timeout_sec: must be at least 1, got %d", c.RequestTimeoutSec))
	}
	if c.MaxWorkflowMB < 1 {
		errs = append(errs, fmt.Errorf("max_workflow_mb: must be at least 1, got %d", c.MaxWorkflowMB))
	}
	if c.BodyBudgetMB != 0 && c.BodyBudgetMB < c.MaxWorkflowMB {
		errs = append(errs, fmt.Errorf("body_budget_mb: must be 0 or at least max_workflow_mb (%d), got %d", c.MaxWorkflowMB, c.BodyBudgetMB))
	}
	return errors.Join(errs...)
}

// APIURL is the address of the controller's API, an https:// or http://
// URL, parsed once when it is read. The zero APIURL is one not set; its text
// form is the URL as written.
type APIURL struct {
	wire.Addr
	https bool
}

// NewAPIURL parses an https:// or http:// URL with no path; an empty s is
// the zero APIURL.
func NewAPIURL(s string) (APIURL, error) {
	if s == "" {
		return APIURL{}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return APIURL{}, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return APIURL{}, fmt.Errorf("want an https:// or http:// URL, got %q", s)
	}
	if u.Path != "" && u.Path != "/" {
		return APIURL{}, fmt.Errorf("want a URL without a path (the API is at /api/v1), got %q", s)
	}
	a, err := wire.NewAddr(s)
	if err != nil {
		return APIURL{}, err
	}
	return APIURL{Addr: a, https: u.Scheme == "https"}, nil
}

// MustAPIURL is NewAPIURL for URLs written in code; it panics on a bad one.
func MustAPIURL(s string) APIURL {
	u, err := NewAPIURL(s)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return u
}

// HTTPS reports whether the API serves HTTPS.
func (u APIURL) HTTPS() bool { return u.https }

// UnmarshalText parses controller_url; empty text is a URL not set.
func (u *APIURL) UnmarshalText(b []byte) error {
	v, err := NewAPIURL(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// Load reads a controller.toml over the defaults and validates it; unknown
// keys are errors.
func Load(path string) (Config, error) {
	return spec.LoadValidated(path, Default())
}

// LoadWith reads a controller.toml like Load; unknown keys are errors when
// strict, warnings otherwise. Every key of EDGELESS's controller.toml has an
// effect here.
func LoadWith(path string, strict bool) (Config, []spec.Warning, error) {
	return spec.LoadValidatedWith(path, Default(), spec.LoadOptions{Strict: strict})
}

// WriteTemplate writes the commented default controller.toml.
func WriteTemplate(w io.Writer) error {
	cfg := Default()
	return spec.WriteTemplate(w, &cfg)
}
