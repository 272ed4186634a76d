package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/resources"
)

// startProviders creates the resource providers the configuration names and
// starts those that serve (the http-ingress listener).
func (n *Node) startProviders(ctx context.Context) error {
	r := &n.cfg.Resources
	callTimeout := time.Duration(n.cfg.General.CallTimeoutMS) * time.Millisecond
	maxBody := r.HTTPIngressMaxBodyBytes
	if maxBody == 0 {
		maxBody = 4 << 20
	}
	if id := r.HTTPIngressProvider; id != "" {
		p, err := resources.NewHTTPIngress(resources.HTTPIngressConfig{
			Addr: r.HTTPIngressURL.HostPort(), MaxBodyBytes: maxBody, CallTimeout: callTimeout, Log: n.log,
			AllowCatchAll: r.HTTPIngressAllowCatchAll,
		})
		if err != nil {
			return err
		}
		if err := p.Listen(ctx); err != nil {
			return err
		}
		n.provs[id] = p
	}
	httpCfg := resources.HTTPClientConfig{MaxBodyBytes: maxBody, CallTimeout: callTimeout, Log: n.log}
	if id := r.HTTPEgressProvider; id != "" {
		n.provs[id] = resources.NewHTTPEgress(httpCfg)
	}
	if id := r.HTTPPosterProvider; id != "" {
		n.provs[id] = resources.NewHTTPPoster(httpCfg)
	}
	if id := r.FileLogProvider; id != "" {
		n.provs[id] = resources.FileLog{Dir: r.DataDir, Allowed: r.AllowedDirs}
	}
	if id := r.RedisProvider; id != "" {
		n.provs[id] = resources.NewRedis(n.log)
	}
	if id := r.SqlxProvider; id != "" {
		n.provs[id] = resources.NewSqlx(n.log)
	}
	if id := r.KafkaEgressProvider; id != "" {
		n.provs[id] = resources.NewKafkaEgress(n.log)
	}
	if id := r.FilePusherProvider.Provider; id != "" {
		p, err := resources.NewFilePusher(r.FilePusherProvider.Directory, n.log)
		if err != nil {
			return err
		}
		n.provs[id] = p
	}
	if id := r.MetricsCollectorProvider.Provider; id != "" {
		p, err := resources.NewMetricsCollector(r.MetricsCollectorProvider.RedisURL, n.log)
		if err != nil {
			return err
		}
		n.provs[id] = p
	}
	for _, sp := range r.ServerlessProvider {
		if sp.Provider == "" {
			continue
		}
		p, err := resources.NewServerless(resources.ServerlessConfig{
			ClassType: sp.ClassType, Version: sp.Version, FunctionURL: sp.FunctionURL, HTTP: httpCfg,
		})
		if err != nil {
			return err
		}
		n.provs[sp.Provider] = p
	}
	if r.PrependHostname {
		n.prependHostname()
	}
	return nil
}

// prependHostname renames every provider "<hostname>-<id>", as EDGELESS
// does with resources.prepend_hostname.
func (n *Node) prependHostname() {
	host, err := os.Hostname()
	if err != nil || host == "" {
		n.log.Warn("resources.prepend_hostname: cannot read the hostname; provider ids left as they are", "err", err)
		return
	}
	renamed := make(map[string]resources.Provider, len(n.provs))
	for id, p := range n.provs {
		renamed[host+"-"+id] = p
	}
	n.provs = renamed
}

// closeProviders releases what providers hold (listeners, connections). The
// instances are stopped before.
func (n *Node) closeProviders() {
	for id, p := range n.provs {
		if c, ok := p.(io.Closer); ok {
			if err := c.Close(); err != nil {
				n.log.Warn("cannot close resource provider", "provider", id, "err", err)
			}
		}
	}
}

// HTTPIngressAddr returns the address the node's http-ingress listens on, ""
// when it has none.
func (n *Node) HTTPIngressAddr() string {
	if p, ok := n.provs[n.cfg.Resources.HTTPIngressProvider].(*resources.HTTPIngress); ok {
		return p.Addr()
	}
	return ""
}

// AvailableResource is a provider a node configuration enables, as listed by
// `edgeless node --available-resources`.
type AvailableResource struct {
	Provider string `json:"provider"`
	resources.Spec
}

// AvailableResources returns the providers cfg enables, sorted by class.
func AvailableResources(cfg Config) []AvailableResource {
	r := &cfg.Resources
	var out []AvailableResource
	add := func(id string, p resources.Provider) {
		if id != "" {
			out = append(out, AvailableResource{Provider: id, Spec: p.Spec()})
		}
	}
	add(r.HTTPIngressProvider, &resources.HTTPIngress{})
	add(r.HTTPEgressProvider, &resources.HTTPEgress{})
	add(r.HTTPPosterProvider, &resources.HTTPPoster{})
	add(r.FileLogProvider, resources.FileLog{})
	add(r.RedisProvider, &resources.Redis{})
	add(r.FilePusherProvider.Provider, &resources.FilePusher{})
	add(r.MetricsCollectorProvider.Provider, &resources.MetricsCollector{})
	add(r.SqlxProvider, &resources.Sqlx{})
	add(r.KafkaEgressProvider, &resources.KafkaEgress{})
	for _, sp := range r.ServerlessProvider {
		if p, err := resources.NewServerless(resources.ServerlessConfig{ClassType: sp.ClassType, Version: sp.Version, FunctionURL: sp.FunctionURL}); err == nil {
			add(sp.Provider, p)
		}
	}
	slices.SortFunc(out, func(a, b AvailableResource) int { return strings.Compare(a.ClassType, b.ClassType) })
	return out
}

// WriteAvailableResources writes the providers cfg enables, their outputs and
// configuration keys, as text or as a JSON array.
func WriteAvailableResources(w io.Writer, cfg Config, asJSON bool) error {
	list := AvailableResources(cfg)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	var errs []error
	pr := func(format string, args ...any) {
		_, err := fmt.Fprintf(w, format, args...)
		errs = append(errs, err)
	}
	for k, a := range list {
		if k > 0 {
			pr("\n")
		}
		pr("%s (version %s), provider %s\n  %s\n", a.ClassType, a.Version, a.Provider, a.Description)
		if len(a.Outputs) > 0 {
			pr("  outputs: %s\n", strings.Join(a.Outputs, ", "))
		} else {
			pr("  outputs: none\n")
		}
		keys := make([]string, 0, len(a.Configurations))
		for key := range a.Configurations {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		for _, key := range keys {
			pr("  %-16s %s\n", key, a.Configurations[key])
		}
	}
	return errors.Join(errs...)
}

// LogicalID implements resources.LogicalResolver for the instances of this
// node: the metrics-collector keys averages by logical function.
func (h resourceHost) LogicalID(src core.InstanceID) (core.ID, bool) {
	if src.Node != h.n.id {
		return core.ID{}, false
	}
	inst := h.n.instance(src.Component)
	if inst == nil {
		return core.ID{}, false
	}
	return inst.logical, true
}
