// Command edgeless is the edgeless serverless platform in one binary: the
// controller (con), the orchestrator (orc), the node, all three in one
// process (inabox), and the CLI verbs that drive them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/edgeless-go/edgeless/bench"
	"github.com/edgeless-go/edgeless/core/cli"
	"github.com/edgeless-go/edgeless/core/controller"
	"github.com/edgeless-go/edgeless/core/inabox"
	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/orc"
)

// version is set at link time with -ldflags "-X main.version=…".
var version = ""

const usage = `usage: edgeless <mode|verb> [flags]

modes (each reads a TOML configuration with -c FILE, by default controller.toml, orchestrator.toml,
node.toml or inabox.toml in the working directory when there; -t FILE writes a commented default one;
EDGELESS's keys without effect are warned about, unknown keys too, or refused with --strict-config):
  con       controller: workflow API and admission
  orc       orchestrator: node registry, placement, recovery
  node      runs function instances and resource providers
            (--available-resources [--json] lists the providers and exits)
  inabox    controller, orchestrator and nodes in one process (defaults when no -c; runs EDGELESS's
            controller.toml, orchestrator.toml and node*.toml when found; -t [-n N] [--config-path DIR]
            [--initial-port P] writes them); --allow-native FILE lets its nodes run that native .so

verbs:
  workflow start FILE | stop ID|all | list | inspect ID|all | migrate ID DOMAIN | migrate ID [COMPONENT] NODE
  domain list | inspect ID|all               the orchestration domains
  function create|list|delete|invoke|poll   standalone functions (FaaS)
  function build DIR | push BIN TYPE | get ID | download CODE_ID   build functions; the function repository
  cert init | ca | issue | token             certificates and API tokens (cert -h)
  health [URL]                               exits 0 when URL (default: any mode's /metrics) answers
  bench [flags]                              the benchmark suite (bench -h)
  proxy show … | top nodes [--watch] | intent … | dump …   (the orchestrator's Redis mirror; proxy -h)

flags:
  --version   print the version and exit
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "edgeless", buildVersion())
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "workflow":
		err = cli.Workflow(ctx, args[1:], stdout)
	case "bench":
		err = bench.Run(ctx, args[1:], stdout)
	case "function":
		err = cli.Function(ctx, args[1:], stdout)
	case "proxy":
		err = cli.Proxy(ctx, args[1:], stdout)
	case "cert":
		err = cli.Cert(args[1:], stdout)
	case "health":
		err = cli.Health(args[1:], stdout)
	case "domain":
		err = cli.Domain(ctx, args[1:], stdout)
	case "con", "orc", "node", "inabox":
		err = runMode(ctx, args[0], args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "edgeless: unknown mode or verb %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "edgeless:", err)
		return 1
	}
	return 0
}

// modeFile is the configuration file each mode reads from the working
// directory when no -c is given, as EDGELESS's daemons do.
var modeFile = map[string]string{"con": "controller.toml", "orc": "orchestrator.toml", "node": "node.toml", "inabox": "inabox.toml"}

func runMode(ctx context.Context, mode string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfgPath, tmpl string
	fs.StringVar(&cfgPath, "c", "", "configuration file (default: "+modeFile[mode]+" in the working directory, if there)")
	fs.StringVar(&cfgPath, "config-file", "", "same as -c")
	fs.StringVar(&tmpl, "t", "", "write a commented default configuration to this file and exit")
	fs.StringVar(&tmpl, "template", "", "same as -t")
	strict := fs.Bool("strict-config", false, "refuse unknown configuration keys instead of warning about them")
	showVersion := fs.Bool("version", false, "print the version and exit")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	// Each mode registers only its own flags.
	var (
		nodes, initialPort int
		available, asJSON  bool
		templates, nonLoop bool
		configPath         = "."
		workflows, natives multiFlag
	)
	switch mode {
	case "node":
		fs.BoolVar(&available, "available-resources", false, "list the resource providers of the configuration and exit")
		fs.BoolVar(&asJSON, "json", false, "with --available-resources, print JSON")
		fs.BoolVar(&asJSON, "output-json", false, "same as --json")
	case "inabox":
		fs.IntVar(&nodes, "n", 0, "number of nodes (overrides the configuration)")
		fs.Var(&workflows, "w", "start this workflow file once ready (repeatable)")
		fs.Var(&natives, "allow-native", "enable native functions and allow this .so (repeatable)")
		fs.BoolVar(&templates, "templates", false, "write controller.toml, orchestrator.toml and node.toml (node0.toml … with -n) to --config-path and exit, as edgeless_inabox -t does")
		fs.StringVar(&configPath, "config-path", ".", "the directory of --templates, and of the controller.toml, orchestrator.toml and node*.toml read when there is no inabox.toml")
		fs.IntVar(&initialPort, "initial-port", 7000, "first port of the --templates layout")
		fs.BoolVar(&nonLoop, "b", false, "with --templates, listen on the first non-loopback address instead of 127.0.0.1")
		fs.BoolVar(&nonLoop, "bind-to-nonloopback", false, "same as -b")
	}
	if mode == "inabox" {
		args = edgelessTemplateFlag(args)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", mode, fs.Args())
	}
	if *showVersion {
		fmt.Fprintln(stdout, "edgeless", buildVersion())
		return nil
	}
	if tmpl != "" {
		return writeTemplate(mode, tmpl)
	}
	if templates {
		host := ""
		if nonLoop {
			var err error
			if host, err = nonLoopback(); err != nil {
				return err
			}
		}
		written, err := inabox.WriteFiles(configPath, max(nodes, 1), initialPort, host)
		for _, f := range written {
			fmt.Fprintln(stdout, f)
		}
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	if cfgPath == "" {
		if _, err := os.Stat(modeFile[mode]); err == nil {
			cfgPath = modeFile[mode]
			log.Info("reading the configuration from the working directory", "file", cfgPath)
		}
	}
	switch mode {
	case "con":
		cfg, err := loadMode(log, cfgPath, *strict, controller.Default, controller.LoadWith)
		if err != nil {
			return err
		}
		return controller.Run(ctx, cfg, log)
	case "orc":
		cfg, err := loadMode(log, cfgPath, *strict, orc.Default, orc.LoadWith)
		if err != nil {
			return err
		}
		return orc.Run(ctx, cfg, log)
	case "node":
		cfg, err := loadMode(log, cfgPath, *strict, node.Default, node.LoadWith)
		if err != nil {
			return err
		}
		if available {
			return node.WriteAvailableResources(stdout, cfg, asJSON)
		}
		if l := cfg.Telemetry.LogLevel; l != "" && !flagSet(fs, "log-level") {
			// EDGELESS's log_level names trace, which slog lacks.
			if strings.EqualFold(l, "trace") {
				l = "debug"
			}
			if err := lv.UnmarshalText([]byte(l)); err == nil {
				log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
			}
		}
		return node.Run(ctx, cfg, log)
	}
	var cfg inabox.Config
	var err error
	if cfgPath == "" && inabox.HasFiles(configPath) {
		// EDGELESS's edgeless_inabox runs the files it finds.
		log.Info("reading controller.toml, orchestrator.toml and node*.toml", "dir", configPath)
		cfg, err = loadMode(log, configPath, *strict, inabox.Default, inabox.LoadFiles)
	} else {
		cfg, err = loadMode(log, cfgPath, *strict, inabox.Default, inabox.LoadWith)
	}
	if err != nil {
		return err
	}
	if nodes > 0 {
		cfg.Nodes = nodes
	}
	if err := allowNative(&cfg.Node, natives); err != nil {
		return err
	}
	b, err := inabox.New(cfg, log)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	log.Info("edgeless in a box is ready", "controller", b.ControllerURL(), "nodes", len(b.Nodes), "cli_config", b.CLIConfig())
	cliArgs := []string{"-controller-url", b.ControllerURL(), "-token", b.AdminToken()}
	if p := b.CLIConfig(); p != "" {
		cliArgs = []string{"-c", p}
		// The CLI on this machine finds the box without flags.
		if err := cli.InstallUserConfig(p); err != nil {
			log.Info("the CLI needs -c to reach this box", "cli_config", p, "reason", err)
		}
	}
	for _, w := range workflows {
		if err := cli.Workflow(ctx, append(slices.Clone(cliArgs), "start", w), stdout); err != nil {
			log.Error("cannot start workflow", "file", w, "err", err)
		}
	}
	<-ctx.Done()
	log.Info("shutting down")
	return b.Close()
}

// allowNative enables the native runtime of cfg for the .so files named.
func allowNative(cfg *node.Config, files []string) error {
	for _, f := range files {
		if err := cfg.Native.AllowFile(f); err != nil {
			return fmt.Errorf("--allow-native: %w", err)
		}
	}
	return nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// nonLoopback returns the first non-loopback IPv4 address of the host, as
// edgeless_inabox -b picks it.
func nonLoopback() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("-b: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return ip.IP.String(), nil
		}
	}
	return "", errors.New("-b: the host has no non-loopback IPv4 address")
}

// edgelessTemplateFlag turns EDGELESS's `edgeless_inabox -t`, which takes
// no file, into --templates; -t followed by a file name stays ours.
func edgelessTemplateFlag(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if (a == "-t" || a == "--t") && (i+1 == len(out) || strings.HasPrefix(out[i+1], "-")) {
			out[i] = "--templates"
		}
	}
	return out
}

// loadMode loads the configuration file, or returns the defaults when there
// is none, and logs once each key that has no effect.
func loadMode[C any, W fmt.Stringer](log *slog.Logger, path string, strict bool, def func() C, load func(string, bool) (C, []W, error)) (C, error) {
	if path == "" {
		return def(), nil
	}
	cfg, warns, err := load(path, strict)
	for _, w := range warns {
		log.Warn("configuration key has no effect", "key", w.String())
	}
	return cfg, err
}

func writeTemplate(mode, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	write := map[string]func(io.Writer) error{
		"con": controller.WriteTemplate, "orc": orc.WriteTemplate, "node": node.WriteTemplate, "inabox": inabox.WriteTemplate,
	}[mode]
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "dev-" + s.Value[:min(12, len(s.Value))]
			}
		}
	}
	return "dev"
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
