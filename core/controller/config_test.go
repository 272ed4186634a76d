package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadAddresses: addresses are parsed when the file is read, in every
// form EDGELESS's files use, and a bad one is refused naming its key and
// value.
func TestLoadAddresses(t *testing.T) {
	load := func(body string) (Config, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "controller.toml")
		if err := os.WriteFile(path, []byte("tokens_path = \"\"\npersistence_filename = \"\"\n"+body+"\n[tls]\nenabled = false\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(path)
	}
	cfg, err := load(`controller_url = "http://127.0.0.1:7001/"` + "\n" + `domain_register_url = "tcp://0.0.0.0:7002"` + "\n" + `metrics_url = ""` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ControllerURL.HostPort() != "127.0.0.1:7001" || cfg.ControllerURL.String() != "http://127.0.0.1:7001/" || cfg.ControllerURL.HTTPS() || cfg.DomainRegisterURL.HostPort() != "0.0.0.0:7002" || !cfg.MetricsURL.IsZero() {
		t.Fatalf("loaded %v %v %v", cfg.ControllerURL, cfg.DomainRegisterURL, cfg.MetricsURL)
	}
	f := func(body string, want ...string) {
		t.Helper()
		_, err := load(body)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: %v, want %q", body, err, w)
			}
		}
	}
	f(`domain_register_url = "http://127.0.0.1"`, "domain_register_url", `"http://127.0.0.1"`, "missing port")
	f(`controller_url = "ftp://127.0.0.1:7001"`, "controller_url", `"ftp://127.0.0.1:7001"`, "want an https:// or http:// URL")
	f(`controller_url = "https://127.0.0.1:7001"`, "controller_url: https needs the controller's certificate")
	f(`controller_url = "http://127.0.0.1:7001/api"`, "controller_url", "want a URL without a path")
	f(`domain_register_url = ""`, "domain_register_url: must be set")
}
