package controller

import (
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// Config is a controller's configuration, read from controller.toml.
type Config struct {
	ControllerURL       string `toml:"controller_url" comment:"HTTP address of the workflow API used by the CLI"`
	DomainRegisterURL   string `toml:"domain_register_url" comment:"address orchestrators register their domains at"`
	PersistenceFilename string `toml:"persistence_filename" comment:"file where admitted workflows are kept across restarts; empty disables"`
	RequestTimeoutSec   int    `toml:"request_timeout_sec" comment:"how long one request to an orchestrator may take"`
	MaxWorkflowMB       int    `toml:"max_workflow_mb" comment:"largest workflow (JSON with inlined code) the API accepts"`
	AsyncResultTTLSec   int    `toml:"async_result_ttl_sec" comment:"how long the result of an asynchronous invocation is kept for polling"`
	MaxAsyncPending     int    `toml:"max_async_pending" comment:"asynchronous invocations running or kept at once; more are refused (429)"`
	MetricsURL          string `toml:"metrics_url" comment:"address of the Prometheus /metrics endpoint; empty disables it"`
	Pprof               bool   `toml:"pprof" comment:"serve /debug/pprof on metrics_url"`
}

// Default returns a controller configuration with EDGELESS's default ports.
func Default() Config {
	return Config{
		ControllerURL:       "http://127.0.0.1:7001",
		DomainRegisterURL:   "http://127.0.0.1:7002",
		PersistenceFilename: "controller.save",
		RequestTimeoutSec:   60,
		AsyncResultTTLSec:   600,
		MaxAsyncPending:     10000,
		MetricsURL:          "http://127.0.0.1:7011",
		MaxWorkflowMB:       64,
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if _, err := httpAddr(c.ControllerURL); err != nil {
		errs = append(errs, fmt.Errorf("controller_url: %w", err))
	}
	if _, err := wire.ParseAddr(c.DomainRegisterURL); err != nil {
		errs = append(errs, fmt.Errorf("domain_register_url: %w", err))
	}
	if c.MetricsURL != "" {
		if _, err := wire.ParseAddr(c.MetricsURL); err != nil {
			errs = append(errs, fmt.Errorf("metrics_url: %w", err))
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
	return errors.Join(errs...)
}

// httpAddr returns the host:port of an http:// URL.
func httpAddr(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("want an http:// URL, got %q", s)
	}
	return wire.ParseAddr(u.Host)
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
