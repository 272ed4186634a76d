package cli

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/controller"
	"github.com/edgeless-go/edgeless/wire"
)

const certUsage = `usage: edgeless cert <verb> [flags]

  init   [-dir tls] [-domain ID] [-node-id UUID] [-nodes 1] [-host H]…   a CA and every certificate one machine
         needs, an admin API token and a cli.toml: then edgeless con, orc and node start with their defaults.
         The domain and the first node's id default to those of orchestrator.toml and node.toml in the
         working directory (EDGELESS's files), else domain-7000 and a new UUID
  ca     [-dir tls]                                          a new CA (ca.pem, ca.key)
  issue  [-dir tls] -role controller|orchestrator|node|client -id ID [-host H]… [-out NAME]
         a certificate signed by DIR's CA (NAME.pem, NAME.key; NAME defaults to the role)
  token  [-tokens tls/tokens] -role admin|deployer|invoker -name NAME
         a new API token: its hash goes into the tokens file, the token is printed once`

// userConfigMark starts every cli.toml that edgeless installs in the user's
// configuration directory: such a file may be replaced, any other is the
// user's own.
const userConfigMark = "# written by edgeless: it is replaced by the next `edgeless inabox` or `edgeless cert init`\n"

// Cert runs `edgeless cert <verb>`: certificates and tokens.
func Cert(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(certUsage)
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("cert "+verb, flag.ContinueOnError)
	dir := fs.String("dir", "tls", "directory of the CA and the files written")
	domain := fs.String("domain", "", "init: the orchestrator's domain_id (default: orchestrator.toml's, else domain-7000)")
	nodeID := fs.String("node-id", "", "init: the first node's node_id (default: node.toml's, else a new UUID)")
	nodes := fs.Int("nodes", 1, "init: node certificates to make (node.pem, then node-2.pem …)")
	role := fs.String("role", "", "issue: controller, orchestrator, node or client; token: admin, deployer or invoker")
	id := fs.String("id", "", "issue: the id the certificate names (node_id, domain_id, a name)")
	name := fs.String("name", "", "token: who holds the token")
	outName := fs.String("out", "", "issue: base name of the files (default: the role)")
	tokens := fs.String("tokens", "tls/tokens", "token: the controller's tokens file")
	var hosts pairs
	fs.Var(&hosts, "host", "host name or IP address clients use to reach the server (repeatable)")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), certUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cert %s: unexpected arguments %q", verb, fs.Args())
	}
	switch verb {
	case "init":
		return certInit(*dir, cmp.Or(*domain, fileValue("orchestrator.toml", "domain_id"), "domain-7000"),
			cmp.Or(*nodeID, fileValue("node.toml", "node_id")), *nodes, hosts, out)
	case "ca":
		_, err := newCA(*dir, out)
		return err
	case "issue":
		ca, err := wire.LoadCA(filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca.key"))
		if err != nil {
			return err
		}
		base := *outName
		if base == "" {
			base = *role
		}
		return issue(ca, *dir, base, wire.Identity{Role: *role, ID: *id}, hosts, out)
	case "token":
		r, err := controller.ParseRole(*role)
		if err != nil {
			return fmt.Errorf("cert token: %w", err)
		}
		if *name == "" || strings.ContainsAny(*name, " \t\n") {
			return errors.New("cert token: -name must be one word naming who holds the token")
		}
		tok, err := addToken(*tokens, r, *name)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, tok)
		return nil
	}
	return fmt.Errorf("cert: unknown verb %q\n%s", verb, certUsage)
}

func newCA(dir string, out io.Writer) (*wire.CA, error) {
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); err == nil {
		return nil, fmt.Errorf("cert: %s already holds a CA (ca.key); remove it to start over", dir)
	}
	ca, err := wire.NewCA("edgeless cluster CA", 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := writeFiles(dir, map[string][]byte{"ca.pem": ca.PEM, "ca.key": key}); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "wrote %s (give it to every component) and %s (keep it offline)\n", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"))
	return ca, nil
}

func issue(ca *wire.CA, dir, base string, id wire.Identity, hosts []string, out io.Writer) error {
	if id.Role == wire.RoleNode {
		if _, err := core.ParseID(id.ID); err != nil {
			return fmt.Errorf("cert issue: a node's id is its node_id, a UUID: %w", err)
		}
	}
	cert, key, err := ca.Issue(id, hosts, 2*365*24*time.Hour)
	if err != nil {
		return fmt.Errorf("cert issue: %w", err)
	}
	if err := writeFiles(dir, map[string][]byte{base + ".pem": cert, base + ".key": key}); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s and %s for %s\n", filepath.Join(dir, base+".pem"), filepath.Join(dir, base+".key"), id)
	return nil
}

// certInit makes everything a one-machine cluster needs, under the names the
// modes' defaults read.
func certInit(dir, domain, nodeID string, nodes int, hosts []string, out io.Writer) error {
	ca, err := newCA(dir, out)
	if err != nil {
		return err
	}
	local := []string{"127.0.0.1", "::1", "localhost"}
	if h, err := os.Hostname(); err == nil {
		local = append(local, h)
	}
	local = append(local, hosts...)
	if err := issue(ca, dir, wire.RoleController, wire.Identity{Role: wire.RoleController, ID: "controller"}, local, out); err != nil {
		return err
	}
	if err := issue(ca, dir, wire.RoleOrchestrator, wire.Identity{Role: wire.RoleOrchestrator, ID: domain}, nil, out); err != nil {
		return err
	}
	for k := range max(nodes, 1) {
		base, id := "node", nodeID
		if k > 0 || id == "" {
			id = core.NewID().String()
		}
		if k > 0 {
			base = fmt.Sprintf("node-%d", k+1)
		}
		if err := issue(ca, dir, base, wire.Identity{Role: wire.RoleNode, ID: id}, nil, out); err != nil {
			return err
		}
	}
	if err := issue(ca, dir, "client", wire.Identity{Role: wire.RoleClient, ID: "admin"}, nil, out); err != nil {
		return err
	}
	tok, err := addToken(filepath.Join(dir, "tokens"), controller.RoleAdmin, "admin")
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := writeFiles(dir, map[string][]byte{"admin.token": []byte(tok + "\n")}); err != nil {
		return err
	}
	cfg := Config{
		ControllerURL: "https://127.0.0.1:7001",
		CAPath:        filepath.Join(abs, "ca.pem"),
		TokenPath:     filepath.Join(abs, "admin.token"),
		CertPath:      filepath.Join(abs, "client.pem"),
		KeyPath:       filepath.Join(abs, "client.key"),
	}
	path := filepath.Join(dir, "cli.toml")
	if err := WriteConfig(path, &cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (an admin token) and %s\n", filepath.Join(dir, "admin.token"), path)
	if err := InstallUserConfig(path); err != nil {
		fmt.Fprintf(out, "the CLI will not find it by itself (%v): use -c %s\n", err, path)
	}
	return nil
}

// fileValue returns the value of key in the [general] table of the TOML
// file name in the working directory, or "".
func fileValue(name, key string) string {
	var f struct {
		General map[string]any `toml:"general"`
	}
	if _, err := toml.DecodeFile(name, &f); err != nil {
		return ""
	}
	v, _ := f.General[key].(string)
	return v
}

// InstallUserConfig copies the cli.toml at path to UserConfigPath, where the
// CLI looks when given no -c, unless the user has a cli.toml of their own
// there.
func InstallUserConfig(path string) error {
	dst := UserConfigPath()
	if dst == "" {
		return errors.New("no user configuration directory")
	}
	if old, err := os.ReadFile(dst); err == nil && !bytes.HasPrefix(old, []byte(userConfigMark)) {
		return fmt.Errorf("%s is the user's own", dst)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return os.WriteFile(dst, append([]byte(userConfigMark), data...), 0o600)
}

// addToken appends a new token of role to the tokens file and returns it.
func addToken(path string, role controller.Role, name string) (string, error) {
	tok, rec := controller.NewToken(role, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("cannot add a token: %w", err)
	}
	if _, err := f.WriteString(rec.Line()); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot add a token: %w", err)
	}
	return tok, f.Close()
}

// writeFiles writes files into dir, readable by their owner only: keys and
// tokens are secrets, and certificates do no harm kept so.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
