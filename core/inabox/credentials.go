package inabox

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/cli"
	"github.com/edgeless-go/edgeless/core/controller"
	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/wire"
)

// makeCredentials gives the box its own CA, certificates and admin token, so
// that a single machine needs no set-up and is still safe by default: the
// parts authenticate each other, and the API wants the token.
func (b *Inabox) makeCredentials() error {
	c := &b.cfg
	if c.Controller.TLS.Enabled || c.Orchestrator.TLS.Enabled || c.Node.TLS.Enabled {
		ca, err := wire.NewCA("edgeless inabox", 10*365*24*time.Hour)
		if err != nil {
			return fmt.Errorf("cannot make the box's CA: %w", err)
		}
		b.ca = ca
	}
	var err error
	if c.Controller.TLS.Enabled {
		c.Controller.Credentials, err = b.ca.Credentials(wire.Identity{Role: wire.RoleController, ID: "controller"}, LocalHosts())
		if err != nil {
			return err
		}
	}
	if c.Orchestrator.TLS.Enabled {
		c.Orchestrator.Credentials, err = b.ca.Credentials(wire.Identity{Role: wire.RoleOrchestrator, ID: c.Orchestrator.General.DomainID}, nil)
		if err != nil {
			return err
		}
	}
	if c.Controller.TokensPath != "" {
		tok, rec := controller.NewToken(controller.RoleAdmin, "inabox-admin")
		b.adminToken = tok
		c.Controller.Tokens = append(c.Controller.Tokens, rec)
		c.Controller.TokensPath = ""
	}
	if c.CredentialsDir == "" {
		return nil
	}
	return b.writeCredentials(c.CredentialsDir)
}

// nodeCredentials gives a node with TLS on a certificate of the box's CA,
// for its node_id or a new one.
func (b *Inabox) nodeCredentials(cfg *node.Config) error {
	if !cfg.TLS.Enabled {
		return nil
	}
	id := cfg.General.NodeID
	if id == "" {
		id = core.NewID().String()
	}
	creds, err := b.ca.Credentials(wire.Identity{Role: wire.RoleNode, ID: id}, nil)
	cfg.Credentials = creds
	return err
}

// LocalHosts are the names a client on this machine may use for it, for the
// subject alternative names of a server certificate.
func LocalHosts() []string {
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return hosts
}

// writeCredentials writes what a client of the box needs into dir: the CA
// certificate, the admin token, a client certificate for raw casts, and a
// cli.toml naming them.
func (b *Inabox) writeCredentials(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot write the box's credentials: %w", err)
	}
	cfg := cli.Config{}
	files := map[string][]byte{}
	if b.ca != nil {
		cert, key, err := b.ca.Issue(wire.Identity{Role: wire.RoleClient, ID: "inabox-admin"}, nil, 10*365*24*time.Hour)
		if err != nil {
			return err
		}
		files["ca.pem"], files["client.pem"], files["client.key"] = b.ca.PEM, cert, key
		cfg.CAPath = filepath.Join(dir, "ca.pem")
		cfg.CertPath, cfg.KeyPath = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	}
	if b.adminToken != "" {
		files["admin.token"] = []byte(b.adminToken + "\n")
		cfg.TokenPath = filepath.Join(dir, "admin.token")
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("cannot write the box's credentials: %w", err)
		}
	}
	b.cliConfig = cfg
	b.cliConfigPath = filepath.Join(dir, "cli.toml")
	return nil
}

// writeCLIConfig writes the cli.toml of the box, once the API's address is
// known.
func (b *Inabox) writeCLIConfig() error {
	if b.cliConfigPath == "" {
		return nil
	}
	b.cliConfig.ControllerURL = b.ControllerURL()
	if err := cli.WriteConfig(b.cliConfigPath, &b.cliConfig); err != nil {
		return fmt.Errorf("cannot write the box's cli.toml: %w", err)
	}
	return nil
}

// CLIConfig returns the path of the cli.toml the box wrote, or "".
func (b *Inabox) CLIConfig() string { return b.cliConfigPath }

// AdminToken returns the box's admin API token, or "" when the API
// authenticates nobody.
func (b *Inabox) AdminToken() string { return b.adminToken }

// CA returns the box's certificate authority, or nil when nothing in the box
// uses TLS.
func (b *Inabox) CA() *wire.CA { return b.ca }
