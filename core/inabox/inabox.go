// Package inabox runs a controller, an orchestrator and one or more nodes in
// one process, talking to each other over their real interfaces on loopback:
// the quickest way to try edgeless, and the harness of end-to-end tests.
package inabox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core/cli"
	"github.com/edgeless-go/edgeless/core/controller"
	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/orc"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// Config holds the configuration of each part. The nodes share Node, except
// that node k listens on the invocation, metrics and http-ingress ports plus
// k, moved on past any port another listener of the box takes, and names its
// providers with the suffix -k+1 ("file-log-1" becomes
// "file-log-<k+1>"). Nodes whose invocation port is 0 serve http-ingress on
// a random port as well.
type Config struct {
	Nodes          int               `toml:"nodes" comment:"how many nodes to run"`
	CredentialsDir string            `toml:"credentials_dir" comment:"where the box writes its CA certificate, an admin token, a client certificate and a cli.toml for the CLI; empty keeps them in memory"`
	Controller     controller.Config `toml:"controller"`
	Orchestrator   orc.Config        `toml:"orchestrator"`
	Node           node.Config       `toml:"node"`
	// NodeConfigs, when set, are the nodes' own configurations, used as
	// they are (EDGELESS's node*.toml files, LoadFiles); Nodes and Node are
	// then ignored.
	NodeConfigs []node.Config `toml:"-"`
}

// Default returns the EDGELESS-in-a-box defaults: one node, ports from 7001.
func Default() Config {
	c := Config{Nodes: 1, CredentialsDir: "tls", Controller: controller.Default(), Orchestrator: orc.Default(), Node: node.Default()}
	// Everything in the box lives and dies with the process, so there is
	// nothing for the controller to re-adopt after a restart.
	c.Controller.PersistenceFilename = ""
	// In one process the nodes register at orchestrator_url; a second
	// listener would only take one more port.
	c.Orchestrator.General.NodeRegisterURL = wire.Addr{}
	return c
}

// Ephemeral puts every listener of c on a random loopback port and turns
// the /metrics endpoints off, so that several boxes (tests, benchmarks) run
// side by side; https selects the scheme of the controller's API.
func (c *Config) Ephemeral(https bool) {
	api, loopback := "http://127.0.0.1:0", wire.MustAddr("127.0.0.1:0")
	if https {
		api = "https://127.0.0.1:0"
	}
	c.Controller.ControllerURL = controller.MustAPIURL(api)
	c.Controller.DomainRegisterURL = loopback
	c.Controller.MetricsURL = wire.Addr{}
	c.Orchestrator.General.OrchestratorURL = loopback
	c.Orchestrator.General.NodeRegisterURL = wire.Addr{}
	c.Orchestrator.General.MetricsURL = wire.Addr{}
	c.Node.General.InvocationURL = loopback
	c.Node.Resources.HTTPIngressURL = loopback
	c.Node.Telemetry.MetricsURL = wire.Addr{}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Nodes < 1 {
		errs = append(errs, fmt.Errorf("nodes: must be at least 1, got %d", c.Nodes))
	}
	if err := c.Controller.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("controller: %w", err))
	}
	if err := c.Orchestrator.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("orchestrator: %w", err))
	}
	if err := c.Node.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	for k := range c.NodeConfigs {
		if err := c.NodeConfigs[k].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// Load reads an inabox TOML file over the defaults and validates it. It
// accepts EDGELESS's keys that have no effect here and refuses any other
// unknown key.
func Load(path string) (Config, error) {
	cfg, _, err := LoadWith(path, true)
	return cfg, err
}

// LoadWith reads an inabox TOML file like Load and returns a warning for
// each key that has no effect; unknown keys are errors when strict, warnings
// otherwise.
func LoadWith(path string, strict bool) (Config, []spec.Warning, error) {
	ignored := map[string]string{}
	for prefix, keys := range map[string]map[string]string{"orchestrator.": orc.IgnoredKeys(), "node.": node.IgnoredKeys()} {
		for k, why := range keys {
			ignored[prefix+k] = why
		}
	}
	return spec.LoadValidatedWith(path, Default(), spec.LoadOptions{Strict: strict, Ignored: ignored})
}

// WriteTemplate writes the commented default configuration.
func WriteTemplate(w io.Writer) error {
	cfg := Default()
	return spec.WriteTemplate(w, &cfg)
}

// Inabox is a controller, an orchestrator and nodes in one process.
type Inabox struct {
	cfg   Config
	ports portSet // fixed ports taken, for the ports of nodes after the first
	log   *slog.Logger
	Con   *controller.Con
	Orc   *orc.Orc
	Nodes []*node.Node

	ca            *wire.CA // nil when nothing in the box uses TLS
	adminToken    string   // "" when the API authenticates nobody
	cliConfig     cli.Config
	cliConfigPath string // "" when credentials stay in memory
}

// New validates cfg; it opens no sockets.
func New(cfg Config, log *slog.Logger) (*Inabox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Inabox{cfg: cfg, log: log}, nil
}

// Start starts the controller, then the orchestrator pointed at it, then the
// nodes pointed at the orchestrator, and returns once the controller sees
// every node, so that a workflow can be started at once.
func (b *Inabox) Start(ctx context.Context) error {
	if err := b.makeCredentials(); err != nil {
		return err
	}
	c, err := controller.New(b.cfg.Controller, b.log)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	b.Con = c
	if err := b.writeCLIConfig(); err != nil {
		b.Close()
		return err
	}
	ocfg := b.cfg.Orchestrator
	ocfg.General.DomainRegisterURL, err = wire.NewAddr(c.DomainAddr())
	var o *orc.Orc
	if err == nil {
		o, err = orc.New(ocfg, b.log)
	}
	if err == nil {
		err = o.Start(ctx)
	}
	if err != nil {
		b.Close()
		return err
	}
	b.Orc = o
	b.ports = newPortSet(&b.cfg)
	nodes := b.cfg.Nodes
	if len(b.cfg.NodeConfigs) > 0 {
		nodes = len(b.cfg.NodeConfigs)
	}
	for k := range nodes {
		ncfg, err := b.nodeConfig(k, o.NodeRegisterAddr())
		if len(b.cfg.NodeConfigs) > 0 {
			ncfg, err = b.cfg.NodeConfigs[k], nil
		}
		if err == nil {
			err = b.nodeCredentials(&ncfg)
		}
		ncfg.SameProcess = true
		if err != nil {
			b.Close()
			return err
		}
		n, err := node.New(ncfg, b.log)
		if err == nil {
			err = n.Start(ctx)
		}
		if err != nil {
			b.Close()
			return fmt.Errorf("node %d: %w", k, err)
		}
		b.Nodes = append(b.Nodes, n)
	}
	return b.waitNodes(ctx, nodes)
}

// nodeConfig returns node k's configuration, registering at orcAddr.
func (b *Inabox) nodeConfig(k int, orcAddr string) (node.Config, error) {
	ncfg := b.cfg.Node
	var err error
	if ncfg.General.NodeRegisterURL, err = wire.NewAddr(orcAddr); err != nil {
		return ncfg, err
	}
	if k > 0 {
		ncfg.General.NodeID = "" // each node its own
	}
	// Nodes on random dataplane ports serve http-ingress on a random port
	// too, so that several boxes (tests) can run side by side.
	random := ncfg.General.InvocationURL.Port() == "0"
	if random && ncfg.Resources.HTTPIngressProvider != "" {
		host, _, _ := net.SplitHostPort(ncfg.Resources.HTTPIngressURL.HostPort())
		if ncfg.Resources.HTTPIngressURL, err = wire.NewAddr(net.JoinHostPort(host, "0")); err != nil {
			return ncfg, err
		}
	}
	if k == 0 {
		return ncfg, nil
	}
	ncfg.General.InvocationURLAnnounced = wire.Addr{}
	r := &ncfg.Resources
	shift := []*wire.Addr{&ncfg.General.InvocationURL, &ncfg.Telemetry.MetricsURL}
	if r.HTTPIngressProvider != "" && !random {
		shift = append(shift, &r.HTTPIngressURL)
	}
	for _, u := range shift {
		if u.IsZero() {
			continue
		}
		if *u, err = b.ports.shift(*u, k); err != nil {
			return ncfg, err
		}
	}
	ids := []*string{&r.HTTPIngressProvider, &r.HTTPEgressProvider, &r.HTTPPosterProvider, &r.FileLogProvider,
		&r.RedisProvider, &r.SqlxProvider, &r.KafkaEgressProvider, &r.FilePusherProvider.Provider, &r.MetricsCollectorProvider.Provider}
	r.ServerlessProvider = slices.Clone(r.ServerlessProvider) // node 0 keeps its names
	for i := range r.ServerlessProvider {
		ids = append(ids, &r.ServerlessProvider[i].Provider)
	}
	for _, id := range ids {
		if *id != "" {
			*id = providerID(*id, k)
		}
	}
	return ncfg, nil
}

// portSet holds the fixed ports the box's listeners take, so that the ports
// of nodes after the first, derived from the first node's, clash with none.
type portSet map[int]bool

// newPortSet collects the fixed ports of cfg's controller, orchestrator and
// first node.
func newPortSet(cfg *Config) portSet {
	ps := portSet{}
	for _, u := range []wire.Addr{cfg.Controller.DomainRegisterURL, cfg.Controller.MetricsURL,
		cfg.Orchestrator.General.OrchestratorURL, cfg.Orchestrator.General.NodeRegisterURL, cfg.Orchestrator.General.MetricsURL,
		cfg.Node.General.InvocationURL, cfg.Node.Telemetry.MetricsURL, cfg.Node.Resources.HTTPIngressURL} {
		ps.add(u.Port())
	}
	ps.add(cfg.Controller.ControllerURL.Port())
	return ps
}

func (ps portSet) add(port string) {
	if p, _ := strconv.Atoi(port); p != 0 {
		ps[p] = true
	}
}

// shift returns u with the port plus k, or the next port after it that no
// other listener of the box takes, and reserves it; port 0 stays 0.
func (ps portSet) shift(u wire.Addr, k int) (wire.Addr, error) {
	host, port, _ := net.SplitHostPort(u.HostPort())
	p, _ := strconv.Atoi(port)
	if p == 0 {
		return u, nil
	}
	p += k
	for ps[p] {
		p++
	}
	if p > 65535 {
		return wire.Addr{}, fmt.Errorf("no free port after %s for node %d", u.HostPort(), k)
	}
	ps[p] = true
	return wire.NewAddr(net.JoinHostPort(host, strconv.Itoa(p)))
}

// providerID names node k's provider after node 0's: "file-log-1" becomes
// "file-log-<k+1>", any other name gets the suffix "-<k+1>".
func providerID(id string, k int) string {
	if base, ok := strings.CutSuffix(id, "-1"); ok {
		return base + "-" + strconv.Itoa(k+1)
	}
	return id + "-" + strconv.Itoa(k+1)
}

// waitNodes polls until the controller has heard of n nodes.
func (b *Inabox) waitNodes(ctx context.Context, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for b.Con.Nodes() < n {
		if time.Now().After(deadline) {
			b.Close()
			return fmt.Errorf("the controller saw %d of %d nodes after 10s", b.Con.Nodes(), n)
		}
		select {
		case <-ctx.Done():
			b.Close()
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// ControllerURL returns the URL of the controller's HTTP API.
func (b *Inabox) ControllerURL() string { return b.Con.URL() }

// Close stops the orchestrator, the nodes (instances get handle_stop) and
// the controller. It is idempotent.
func (b *Inabox) Close() error {
	var errs []error
	// The orchestrator goes first: it would otherwise re-create the
	// instances of each node leaving on the nodes still to close.
	if b.Orc != nil {
		errs = append(errs, b.Orc.Close())
	}
	for _, n := range b.Nodes {
		errs = append(errs, n.Close())
	}
	if b.Con != nil {
		errs = append(errs, b.Con.Close())
	}
	return errors.Join(errs...)
}

// RestartController closes the controller and starts a new one with the
// same configuration and credentials on the same addresses, as a restarted
// controller process: with persistence_filename set, it recovers the
// workflows from it once the orchestrator registers again. On failure the
// box has no controller.
func (b *Inabox) RestartController(ctx context.Context) error {
	cfg := b.cfg.Controller
	cfg.ControllerURL = controller.MustAPIURL(b.Con.URL())
	cfg.DomainRegisterURL = wire.MustAddr(b.Con.DomainAddr())
	err := b.Con.Close()
	b.Con = nil
	if err != nil {
		return fmt.Errorf("cannot stop the controller: %w", err)
	}
	c, err := controller.New(cfg, b.log)
	if err == nil {
		err = c.Start(ctx)
	}
	if err != nil {
		return fmt.Errorf("cannot restart the controller: %w", err)
	}
	b.Con = c
	return nil
}

// Run starts everything and serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	b, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	log.Info("edgeless in a box is ready", "controller", b.ControllerURL(), "nodes", len(b.Nodes))
	<-ctx.Done()
	return b.Close()
}
