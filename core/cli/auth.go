package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// UserConfigPath is where the CLI looks for its configuration when no -c is
// given: edgeless/cli.toml in the user's configuration directory
// ($XDG_CONFIG_HOME, or ~/.config). `edgeless inabox` writes one there.
func UserConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "edgeless", "cli.toml")
}

// WriteConfig writes cfg as a cli.toml, readable by its owner only since it
// may hold a token.
func WriteConfig(path string, cfg *Config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := spec.WriteTemplate(&b, cfg); err != nil {
		return err
	}
	return core.WriteFileAtomic(path, b.Bytes()) // 0600: the file holds a token
}

// newClient returns a client of the controller at cfg.ControllerURL with the
// token and CA the configuration names. A token or CA file that cannot be
// read fails the client's requests, not verbs that need no controller.
func newClient(cfg Config) *client {
	c := &client{base: strings.TrimSuffix(cfg.ControllerURL, "/"), token: cfg.Token, cfg: cfg}
	if c.token == "" && cfg.TokenPath != "" {
		data, err := os.ReadFile(cfg.TokenPath)
		if err != nil {
			c.err = fmt.Errorf("cannot read the API token: %w", err)
		}
		c.token = strings.TrimSpace(string(data))
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAPath != "" {
		pem, err := os.ReadFile(cfg.CAPath)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			c.err = fmt.Errorf("cannot read the CA certificate: %w", err)
		case !pool.AppendCertsFromPEM(pem):
			c.err = errors.New("cannot use the CA certificate " + cfg.CAPath + ": no PEM certificate in it")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.http = &http.Client{Timeout: 5 * time.Minute, Transport: transport}
	return c
}
