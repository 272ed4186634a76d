package inabox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/controller"
	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/orc"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// HasFiles reports whether dir holds the files of EDGELESS-in-a-box: a
// controller.toml, an orchestrator.toml and at least one node*.toml.
func HasFiles(dir string) bool {
	nodes, _ := filepath.Glob(filepath.Join(dir, "node*.toml"))
	return fileExists(filepath.Join(dir, "controller.toml")) && fileExists(filepath.Join(dir, "orchestrator.toml")) && len(nodes) > 0
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// LoadFiles reads EDGELESS-in-a-box's files from dir, as `edgeless_inabox`
// finds them in its working directory: controller.toml, orchestrator.toml
// and every node*.toml, each used as it is (the parts find each other
// through the addresses in the files). It returns the warnings of each
// file's keys that have no effect; unknown keys are errors when strict.
func LoadFiles(dir string, strict bool) (Config, []spec.Warning, error) {
	var cfg Config
	var warns []spec.Warning
	var errs []error
	add := func(w []spec.Warning, err error) {
		warns = append(warns, w...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	var w []spec.Warning
	var err error
	cfg.Controller, w, err = controller.LoadWith(filepath.Join(dir, "controller.toml"), strict)
	add(w, err)
	cfg.Orchestrator, w, err = orc.LoadWith(filepath.Join(dir, "orchestrator.toml"), strict)
	add(w, err)
	files, _ := filepath.Glob(filepath.Join(dir, "node*.toml"))
	sort.Strings(files)
	for _, f := range files {
		var n node.Config
		n, w, err = node.LoadWith(f, strict)
		add(w, err)
		cfg.NodeConfigs = append(cfg.NodeConfigs, n)
	}
	if len(files) == 0 {
		errs = append(errs, fmt.Errorf("no node*.toml in %s", dir))
	}
	cfg.Nodes = len(cfg.NodeConfigs)
	cfg.Node = node.Default()
	cfg.CredentialsDir = filepath.Join(dir, "tls")
	return cfg, warns, errors.Join(errs...)
}

// WriteFiles writes what `edgeless_inabox -t` writes: controller.toml,
// orchestrator.toml and node.toml (node0.toml … with more than one node) in
// dir, each a commented template of ours, with the ports laid out as
// EDGELESS lays them out from initialPort (7000): the controller on
// initialPort+1 and +2 (7001, 7002), then in sequence the orchestrator, its
// node registration, for each node its dataplane, metrics and http-ingress,
// and last the controller's and the orchestrator's metrics. Existing files are
// left alone, as EDGELESS leaves them; it returns the names written.
func WriteFiles(dir string, nodes, initialPort int, host string) ([]string, error) {
	if nodes < 1 {
		nodes = 1
	}
	if initialPort < 1 || initialPort+8+3*nodes > 65535 {
		return nil, fmt.Errorf("initial port %d: want 1–%d for %d node(s)", initialPort, 65535-8-3*nodes, nodes)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	url := func(p int) string { return "http://" + host + ":" + strconv.Itoa(p) }
	// Every address below differs from this one by its port only.
	if _, err := wire.NewAddr(url(initialPort)); err != nil {
		return nil, fmt.Errorf("host %q: %w", host, err)
	}
	next := initialPort
	port := func() wire.Addr {
		p := next
		next++
		if next == initialPort+1 { // the controller's two ports
			next += 2
		}
		return wire.MustAddr(url(p))
	}
	o := orc.Default()
	o.General.DomainID = "domain-" + strconv.Itoa(initialPort)
	o.General.OrchestratorURL = port()
	o.General.NodeRegisterURL = port()
	c := controller.Default()
	c.ControllerURL, c.DomainRegisterURL = controller.MustAPIURL(url(initialPort+1)), wire.MustAddr(url(initialPort+2))
	o.General.DomainRegisterURL = c.DomainRegisterURL
	files := map[string]any{"controller.toml": &c, "orchestrator.toml": &o}
	for k := range nodes {
		n := node.Default()
		n.General.NodeID = core.NewID().String()
		n.General.InvocationURL = port()
		n.General.NodeRegisterURL = o.General.NodeRegisterURL
		n.Telemetry.MetricsURL = port()
		n.Resources.HTTPIngressURL = port()
		n.Native.Enabled = true
		n.State.Dir = "function_state"
		r := &n.Resources
		for _, id := range []*string{&r.HTTPIngressProvider, &r.HTTPEgressProvider, &r.HTTPPosterProvider, &r.FileLogProvider, &r.RedisProvider, &r.SqlxProvider} {
			*id = providerID(*id, k)
		}
		name := "node.toml"
		if nodes > 1 {
			name = "node" + strconv.Itoa(k) + ".toml"
		}
		files[name] = &n
	}
	c.MetricsURL = port()
	o.General.MetricsURL = port()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var written []string
	for _, name := range names {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return written, err
		}
		if err := spec.WriteTemplate(f, files[name]); err != nil {
			f.Close()
			return written, fmt.Errorf("cannot write %s: %w", p, err)
		}
		if err := f.Close(); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return slices.Clip(written), nil
}
