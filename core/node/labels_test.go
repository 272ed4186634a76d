package node

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestHostnameLabel: every node advertises hostname=<host>, as EDGELESS's
// do, so that label_match_all can pin a function to a host; a configured
// hostname= label wins.
func TestHostnameLabel(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	if got := nodeLabels([]string{"os=linux"}); !slices.Equal(got, []string{"os=linux", "hostname=" + host}) {
		t.Fatalf("labels = %q", got)
	}
	if got := nodeLabels([]string{"hostname=edge-1"}); !slices.Equal(got, []string{"hostname=edge-1"}) {
		t.Fatalf("labels = %q, want the configured hostname only", got)
	}
	cfg := Default()
	cfg.TLS.Enabled = false // capabilities only: no listener
	cfg.Capabilities.NumCPUs, cfg.Capabilities.NumCores, cfg.Capabilities.ClockFreqCPU = 8, 4, 3504
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := n.capabilities()
	if c.NumCPUs != 8 || c.NumCores != 4 || c.ClockFreqMHz != 3504 || !slices.Contains(c.Labels, "hostname="+host) {
		t.Fatalf("capabilities = %+v, want the configured overrides and the hostname label", c)
	}
}

func TestServerlessConfig(t *testing.T) {
	cfg := Default()
	cfg.Resources.ServerlessProvider = []Serverless{
		{}, // EDGELESS's template writes an empty entry: disabled
		{ClassType: "double", FunctionURL: "localhost:5000", Provider: "double-1"},
		{FunctionURL: "http://127.0.0.1:5000/", Provider: "triple-1"},
	}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `serverless_provider[1].function_url: want an http or https URL, got "localhost:5000"`) ||
		!strings.Contains(err.Error(), "serverless_provider[2].class_type: must be set") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestLogLevelConfig(t *testing.T) {
	cfg := Default()
	for _, l := range []string{"", "info", "DEBUG", "trace"} {
		cfg.Telemetry.LogLevel = l
		if err := cfg.Validate(); err != nil {
			t.Errorf("log_level %q: %v", l, err)
		}
	}
	cfg.Telemetry.LogLevel = "loud"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `telemetry.log_level: want error, warn, info, debug or trace, got "loud"`) {
		t.Fatalf("Validate = %v", err)
	}
}
