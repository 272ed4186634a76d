// Package cli implements the user's verbs: `edgeless workflow …`. It talks
// to a controller's HTTP API only.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// Config is the CLI's configuration, read from cli.toml.
type Config struct {
	ControllerURL      string             `toml:"controller_url" comment:"URL of the controller's API"`
	CAPath             string             `toml:"ca_path" comment:"PEM certificate of the cluster's CA, which signed the controller's certificate; empty trusts the system's CAs"`
	Token              string             `toml:"token" comment:"API token (prefer token_path, or the EDGELESS_TOKEN environment variable)"`
	TokenPath          string             `toml:"token_path" comment:"file holding the API token"`
	CertPath           string             `toml:"cert_path" comment:"client certificate for raw casts to a node's dataplane (function invoke cast)"`
	KeyPath            string             `toml:"key_path" comment:"private key of cert_path"`
	FunctionRepository FunctionRepository `toml:"function_repository" comment:"where function push, get and download keep function code"`
}

// FunctionRepository is EDGELESS's [function_repository] of cli.toml. Here
// the repository is a directory (url = "file:///path" or a plain path), one
// sub-directory per function; an http(s) URL is refused.
type FunctionRepository struct {
	URL    string `toml:"url" comment:"the repository's directory: a path or file:///path"`
	APIKey string `toml:"api_key" comment:"unused for a directory; kept so that EDGELESS's cli.toml loads"`
}

// Default returns the CLI defaults.
func Default() Config { return Config{ControllerURL: "https://127.0.0.1:7001"} }

// Environment variables that override the configuration file.
const (
	EnvControllerURL = "EDGELESS_CONTROLLER_URL"
	EnvToken         = "EDGELESS_TOKEN"
	EnvCA            = "EDGELESS_CA"
)

// DefaultConfigFile is read from the working directory when no -c is given,
// as EDGELESS's CLI does.
const DefaultConfigFile = "cli.toml"

// isGlobalFlag reports whether name is a flag of every verb group, accepted
// anywhere on the line (before or after the verb); each takes a value.
func isGlobalFlag(name string) bool {
	switch name {
	case "c", "config-file", "t", "template", "controller-url", "token", "ca":
		return true
	}
	return false
}

// splitGlobal moves the global flags (and their values) of args first, so
// that `workflow start -controller-url URL f.json` reads like `workflow
// -controller-url URL start f.json`. Everything after "--" stays in place.
func splitGlobal(args []string) []string {
	var global, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !isGlobalFlag(name) {
			rest = append(rest, a)
			continue
		}
		global = append(global, a)
		if !hasValue && i+1 < len(args) {
			i++
			global = append(global, args[i])
		}
	}
	return append(global, rest...)
}

// setup parses the flags every verb group shares (-c, -t, -controller-url,
// anywhere on the line) and returns a client for the controller, the
// configuration and the remaining arguments. With -t it writes the template
// and returns a nil client.
func setup(group, usage string, args []string) (*client, []string, error) {
	c, _, rest, err := setupConfig(group, usage, args)
	return c, rest, err
}

func setupConfig(group, usage string, args []string) (*client, Config, []string, error) {
	fs := flag.NewFlagSet(group, flag.ContinueOnError)
	var cfgPath, tmpl string
	fs.StringVar(&cfgPath, "c", "", "CLI configuration file (default: "+DefaultConfigFile+" in the working directory, if there)")
	fs.StringVar(&cfgPath, "config-file", "", "same as -c")
	fs.StringVar(&tmpl, "t", "", "write a default cli.toml to this file and exit")
	fs.StringVar(&tmpl, "template", "", "same as -t")
	url := fs.String("controller-url", "", "controller API URL (overrides "+EnvControllerURL+" and -c)")
	token := fs.String("token", "", "API token (overrides "+EnvToken+" and -c)")
	ca := fs.String("ca", "", "CA certificate of the controller (overrides "+EnvCA+" and -c)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: edgeless "+group+" [flags] "+usage)
		fs.PrintDefaults()
	}
	cfg := Default()
	if err := fs.Parse(splitGlobal(args)); err != nil {
		return nil, cfg, nil, err
	}
	if tmpl != "" {
		return nil, cfg, nil, writeTemplate(tmpl)
	}
	// Without -c: cli.toml in the working directory, as EDGELESS's CLI
	// reads it, else the one `edgeless inabox` or `cert init` installed.
	for _, p := range []string{DefaultConfigFile, UserConfigPath()} {
		if cfgPath != "" || p == "" {
			break
		}
		if _, err := os.Stat(p); err == nil {
			cfgPath = p
		}
	}
	if cfgPath != "" {
		if err := spec.LoadConfig(cfgPath, &cfg); err != nil {
			return nil, cfg, nil, err
		}
	}
	override := func(dst *string, env, flag string) {
		if v := os.Getenv(env); v != "" {
			*dst = v
		}
		if flag != "" {
			*dst = flag
		}
	}
	override(&cfg.ControllerURL, EnvControllerURL, *url)
	override(&cfg.Token, EnvToken, *token)
	override(&cfg.CAPath, EnvCA, *ca)
	if fs.NArg() == 0 {
		fs.Usage()
		return nil, cfg, nil, fmt.Errorf("%s: missing verb", group)
	}
	return newClient(cfg), cfg, fs.Args(), nil
}

// Workflow runs `edgeless workflow <verb> [flags] args…`, writing results to out.
func Workflow(ctx context.Context, args []string, out io.Writer) error {
	c, rest, err := setup("workflow", "start FILE | stop ID|all | list | inspect ID|all | migrate ID [COMPONENT] NODE[,NODE…] | migrate ID DOMAIN", args)
	if c == nil {
		return err
	}
	verb, rest := rest[0], rest[1:]
	need := func(n int, what string) error {
		if len(rest) != n {
			return fmt.Errorf("workflow %s: want %s", verb, what)
		}
		return nil
	}
	switch verb {
	case "start":
		if err := need(1, "one workflow file"); err != nil {
			return err
		}
		return c.start(ctx, rest[0], out)
	case "stop":
		if err := need(1, "a workflow id or all"); err != nil {
			return err
		}
		return c.stop(ctx, rest[0], out)
	case "list":
		if err := need(0, "no arguments"); err != nil {
			return err
		}
		return c.list(ctx, out)
	case "inspect":
		if err := need(1, "a workflow id or all"); err != nil {
			return err
		}
		if rest[0] != "all" {
			return c.inspect(ctx, rest[0], out)
		}
		var list spec.WorkflowList
		if err := c.do(ctx, http.MethodGet, "/api/v1/workflows", nil, &list); err != nil {
			return err
		}
		for _, w := range list.Workflows {
			if err := c.inspect(ctx, w.ID, out); err != nil {
				return err
			}
		}
		return nil
	case "migrate":
		if len(rest) != 2 && len(rest) != 3 {
			return fmt.Errorf("workflow migrate: want ID [COMPONENT] NODE[,NODE…] or ID DOMAIN")
		}
		req := spec.MigrateRequest{}
		if len(rest) == 3 {
			req.Component = rest[1]
		}
		// Nodes are UUIDs and domains are names (EDGELESS's migrate ID
		// DOMAIN), so the last argument says which one is meant.
		if target := rest[len(rest)-1]; isIDList(target) {
			req.Nodes = strings.Split(target, ",")
		} else {
			req.Domain = target
		}
		return c.migrate(ctx, rest[0], req, out)
	case "migrate-component":
		if err := need(3, "ID DOMAIN COMPONENT"); err != nil {
			return err
		}
		return c.migrate(ctx, rest[0], spec.MigrateRequest{Domain: rest[1], Component: rest[2]}, out)
	}
	return fmt.Errorf("workflow: unknown verb %q (want start, stop, list, inspect, migrate or migrate-component)", verb)
}

// isIDList reports whether s is a comma-separated list of UUIDs.
func isIDList(s string) bool {
	for part := range strings.SplitSeq(s, ",") {
		if _, err := core.ParseID(part); err != nil {
			return false
		}
	}
	return true
}

func (c *client) migrate(ctx context.Context, id string, req spec.MigrateRequest, out io.Writer) error {
	body, _ := json.Marshal(&req)
	if err := c.do(ctx, http.MethodPost, "/api/v1/workflows/"+id+"/migrate", body, nil); err != nil {
		return fmt.Errorf("cannot migrate: %w", err)
	}
	if req.Domain != "" {
		fmt.Fprintf(out, "Workflow %s migrated to domain %s\n", id, req.Domain)
		return nil
	}
	fmt.Fprintf(out, "Workflow %s migrated\n", id)
	return nil
}

// Domain runs `edgeless domain list | inspect ID|all`: the orchestration
// domains registered with the controller, in EDGELESS's format.
func Domain(ctx context.Context, args []string, out io.Writer) error {
	c, rest, err := setup("domain", "list | inspect ID|all", args)
	if c == nil {
		return err
	}
	verb, rest := rest[0], rest[1:]
	var list spec.DomainList
	switch {
	case verb == "list" && len(rest) == 0:
	case verb == "inspect" && len(rest) == 1:
	default:
		return fmt.Errorf("domain: want list, or inspect ID|all")
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/domains", nil, &list); err != nil {
		return err
	}
	found := false
	for _, d := range list.Domains {
		if verb == "list" {
			fmt.Fprintf(out, "domain %s (%d nodes)\n", d.ID, d.Nodes)
			continue
		}
		if rest[0] != "all" && rest[0] != d.ID {
			continue
		}
		found = true
		fmt.Fprintf(out, "domain %s\n  nodes %d\n  ready %v\n  runtimes %s\n  resource classes %s\n",
			d.ID, d.Nodes, d.Ready, strings.Join(d.Runtimes, ", "), strings.Join(d.Resources, ", "))
	}
	if verb == "inspect" && !found && rest[0] != "all" {
		return fmt.Errorf("domain inspect: no domain %q", rest[0])
	}
	return nil
}

func writeTemplate(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cfg := Default()
	if err := spec.WriteTemplate(f, &cfg); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type client struct {
	base  string
	http  *http.Client
	token string
	cfg   Config
	err   error // why requests cannot be made (an unreadable token file); nil when they can
}

// do sends a request and decodes a JSON reply into v; API errors come back as
// their message.
func (c *client) do(ctx context.Context, method, path string, body []byte, v any) error {
	if c.err != nil {
		return c.err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the controller at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("cannot read the controller's reply: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e spec.ErrorReply
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("controller answered %s", resp.Status)
	}
	switch v := v.(type) {
	case nil:
		return nil
	case *rawReply:
		*v = data
		return nil
	}
	return json.Unmarshal(data, v)
}

// raw sends a request and returns the body of a successful reply as it is.
func (c *client) raw(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var reply rawReply
	err := c.do(ctx, method, path, body, &reply)
	return reply, err
}

// rawReply takes a reply body unparsed.
type rawReply []byte

func (c *client) start(ctx context.Context, file string, out io.Writer) error {
	w, err := spec.LoadWorkflow(file)
	if err != nil {
		return err
	}
	for _, f := range w.Ignored {
		fmt.Fprintf(os.Stderr, "warning: %s: unknown field %q ignored\n", file, f)
	}
	body, err := json.Marshal(w)
	if err != nil {
		return err
	}
	var reply spec.StartReply
	if err := c.do(ctx, http.MethodPost, "/api/v1/workflows", body, &reply); err != nil {
		return fmt.Errorf("cannot start %s: %w", file, err)
	}
	fmt.Fprintln(out, reply.WorkflowID)
	return nil
}

func (c *client) stop(ctx context.Context, id string, out io.Writer) error {
	ids := []string{id}
	if id == "all" {
		var list spec.WorkflowList
		if err := c.do(ctx, http.MethodGet, "/api/v1/workflows", nil, &list); err != nil {
			return err
		}
		ids = ids[:0]
		for _, w := range list.Workflows {
			ids = append(ids, w.ID)
		}
	}
	var errs []error
	for _, id := range ids {
		if err := c.do(ctx, http.MethodDelete, "/api/v1/workflows/"+id, nil, nil); err != nil {
			errs = append(errs, fmt.Errorf("cannot stop workflow %s: %w", id, err))
			continue
		}
		fmt.Fprintf(out, "Workflow %s stopped\n", id)
	}
	return errors.Join(errs...)
}

func (c *client) list(ctx context.Context, out io.Writer) error {
	var list spec.WorkflowList
	if err := c.do(ctx, http.MethodGet, "/api/v1/workflows", nil, &list); err != nil {
		return err
	}
	for _, w := range list.Workflows {
		fmt.Fprintln(out, w.ID)
	}
	return nil
}

func (c *client) inspect(ctx context.Context, id string, out io.Writer) error {
	var wi spec.WorkflowInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/workflows/"+id, nil, &wi); err != nil {
		return err
	}
	fmt.Fprintf(out, "workflow %s (domain %s, started %s)\n", wi.ID, wi.Domain, wi.Started)
	where := map[string]spec.ComponentInfo{}
	for _, ci := range wi.Components {
		where[ci.Name] = ci
	}
	instances := func(name string) {
		ci := where[name]
		fmt.Fprintf(out, "  logical id %s\n", ci.LogicalID)
		if len(ci.Instances) == 0 {
			fmt.Fprintln(out, "  (no instance running)")
		}
		for _, i := range ci.Instances {
			fmt.Fprintf(out, "  instance %s on node %s\n", i.Instance, i.Node)
		}
	}
	w := wi.Workflow
	if w == nil {
		return nil
	}
	for _, f := range w.Functions {
		cs := f.ClassSpecification
		fmt.Fprintf(out, "* function %s\n  run-time %s class %s version %s\n", f.Name, cs.FunctionType, cs.ID, cs.Version)
		printMap(out, "OUT", f.OutputMapping)
		printMap(out, "F_ANN", f.Annotations)
		instances(f.Name)
	}
	for _, r := range w.Resources {
		fmt.Fprintf(out, "* resource %s\n  class %s\n", r.Name, r.ClassType)
		printMap(out, "OUT", r.OutputMapping)
		printMap(out, "CONF", r.Configurations)
		instances(r.Name)
	}
	printMap(out, "W_ANN", w.Annotations)
	// EDGELESS's domain mapping: where each component was deployed.
	fmt.Fprintln(out, "* mapping")
	for _, ci := range wi.Components {
		fmt.Fprintf(out, "  MAP %s -> %s [logical ID %s]\n", ci.Name, wi.Domain, ci.LogicalID)
	}
	return nil
}

func printMap(out io.Writer, tag string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "  %s %s -> %s\n", tag, k, m[k])
	}
}
