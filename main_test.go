package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edgeless-go/edgeless/core/controller"
	"github.com/edgeless-go/edgeless/core/inabox"
	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/orc"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// bin is the edgeless binary, built once by TestMain.
var bin string

// TestMain builds the binary and the example functions that the tests run
// as separate processes.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgeless-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// inabox and cert init install a cli.toml in the user's configuration
	// directory: the processes of the tests use one of their own.
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	bin, err = testutil.Binary(dir)
	if err == nil {
		_, err = testutil.Functions()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestVersionAndTemplates(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"node", "--version"}, {"orc", "--version"}, {"con", "--version"}, {"inabox", "--version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || !strings.HasPrefix(string(out), "edgeless ") {
			t.Fatalf("%v = %q, %v", args, out, err)
		}
	}
	dir := t.TempDir()
	f := func(mode string, load func(string) error) {
		t.Helper()
		file := filepath.Join(dir, mode+".toml")
		if out, err := exec.Command(bin, mode, "-t", file).CombinedOutput(); err != nil {
			t.Fatalf("%s -t: %v\n%s", mode, err, out)
		}
		data, _ := os.ReadFile(file)
		if !bytes.Contains(data, []byte("# ")) {
			t.Fatalf("%s template has no comments:\n%s", mode, data)
		}
		if err := load(file); err != nil {
			t.Fatalf("%s template does not load back: %v", mode, err)
		}
	}
	f("con", func(p string) error { _, err := controller.Load(p); return err })
	f("orc", func(p string) error { _, err := orc.Load(p); return err })
	f("node", func(p string) error { _, err := node.Load(p); return err })
	f("inabox", func(p string) error { _, err := inabox.Load(p); return err })

	cmd := exec.Command(bin, "node", "-c", filepath.Join(dir, "missing.toml"))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "missing.toml") {
		t.Fatalf("node with a missing config: %v, %q; want an error naming the file", err, out)
	}
}

// TestSignalStopsCleanly runs `edgeless inabox` with ping_pong and sends it
// SIGINT: the pinger gets handle_stop, everything closes, the exit code is 0.
func TestSignalStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	cfg := `nodes = 1
[controller]
controller_url = "http://127.0.0.1:0"
domain_register_url = "127.0.0.1:0"
metrics_url = "127.0.0.1:0"
[orchestrator.general]
orchestrator_url = "127.0.0.1:0"
metrics_url = "127.0.0.1:0"
[node.general]
invocation_url = "127.0.0.1:0"
[node.telemetry]
metrics_url = "127.0.0.1:0"
[node.resources]
http_ingress_url = "127.0.0.1:0"
`
	if err := os.WriteFile(filepath.Join(dir, "inabox.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	wf := `{"functions":[
 {"name":"ponger","class_specification":{"id":"pong","function_type":"RUST_WASM","version":"0.1","code":"` + abs("functions/pong/pong.wasm") + `","outputs":["ping"]},"output_mapping":{"ping":"pinger"},"annotations":{}},
 {"name":"pinger","class_specification":{"id":"ping","function_type":"RUST_WASM","version":"0.1","code":"` + abs("functions/ping/ping.wasm") + `","outputs":["ponger"]},"output_mapping":{"ponger":"ponger"},"annotations":{"init-payload":"period=20"}}],
 "resources":[],"annotations":{}}`
	if err := os.WriteFile(filepath.Join(dir, "wf.json"), []byte(wf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "inabox", "-c", "inabox.toml", "-w", "wf.json")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	signalled := false
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				err := cmd.Wait()
				if err != nil {
					t.Fatalf("edgeless inabox exited with %v after SIGINT\n%s", err, log.String())
				}
				if !signalled || !strings.Contains(log.String(), "stopped at") {
					t.Fatalf("no handle_stop before exit (signalled %v)\n%s", signalled, log.String())
				}
				return
			}
			log.WriteString(l + "\n")
			if !signalled && strings.Contains(l, "PING-3 -> PONG") {
				cmd.Process.Signal(syscall.SIGINT)
				signalled = true
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("timed out; signalled %v\n%s", signalled, log.String())
		}
	}
}

// TestDefaultsFitTogether: modes started with their defaults find each other.
func TestDefaultsFitTogether(t *testing.T) {
	c, o, n := controller.Default(), orc.Default(), node.Default()
	if o.General.DomainRegisterURL != c.DomainRegisterURL {
		t.Errorf("orchestrator registers at %s, controller listens at %s", o.General.DomainRegisterURL, c.DomainRegisterURL)
	}
	if n.General.NodeRegisterURL != o.General.NodeRegisterURL {
		t.Errorf("node registers at %s, orchestrator listens for nodes at %s", n.General.NodeRegisterURL, o.General.NodeRegisterURL)
	}
	ports := map[string]string{}
	for name, url := range map[string]string{
		"controller api": c.ControllerURL.HostPort(), "controller domains": c.DomainRegisterURL.HostPort(), "controller metrics": c.MetricsURL.HostPort(),
		"orchestrator": o.General.OrchestratorURL.HostPort(), "orchestrator node registration": o.General.NodeRegisterURL.HostPort(),
		"orchestrator metrics": o.General.MetricsURL.HostPort(), "node dataplane": n.General.InvocationURL.HostPort(),
		"node metrics": n.Telemetry.MetricsURL.HostPort(), "http-ingress": n.Resources.HTTPIngressURL.HostPort(),
	} {
		if other, dup := ports[url]; dup {
			t.Errorf("%s and %s both default to %s", name, other, url)
		}
		ports[url] = name
	}
}

var update = flag.Bool("update", false, "rewrite docs/config.md from the configuration structs")

// TestConfigDoc keeps docs/config.md, the configuration reference, equal to
// the templates that -t writes (generated from the configuration structs).
// After changing a configuration, run: go test -run TestConfigDoc -update .
func TestConfigDoc(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\nEvery mode reads a TOML file (`-c FILE`); `edgeless <mode> -t FILE` writes the commented defaults\nbelow, generated from the same structs the modes read. Without `-c`, a mode reads its file\n(`controller.toml`, `orchestrator.toml`, `node.toml`, `inabox.toml`; `cli.toml` for the CLI) from the working\ndirectory when there is one. EDGELESS's keys that have no effect here are accepted with a warning naming the key\nand why (`docs/edgeless-compat.md`); unknown keys are warned about too, or refused with `--strict-config`. `edgeless workflow -t FILE`\nwrites the CLI's `cli.toml`.\n")
	for _, m := range []struct {
		title string
		write func(io.Writer) error
	}{
		{"controller.toml (`edgeless con`)", controller.WriteTemplate},
		{"orchestrator.toml (`edgeless orc`)", orc.WriteTemplate},
		{"node.toml (`edgeless node`)", node.WriteTemplate},
		{"inabox.toml (`edgeless inabox`)", inabox.WriteTemplate},
	} {
		var tmpl bytes.Buffer
		if err := m.write(&tmpl); err != nil {
			t.Fatal(err)
		}
		// The node template carries a fresh random node_id; show a fixed one.
		text := regexp.MustCompile(`node_id = "[0-9a-f-]{36}"`).ReplaceAllString(tmpl.String(), `node_id = "00000000-0000-0000-0000-000000000000"`)
		fmt.Fprintf(&b, "\n## %s\n\n```toml\n%s```\n", m.title, text)
	}
	if *update {
		if err := os.WriteFile("docs/config.md", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile("docs/config.md")
	if err != nil || !bytes.Equal(have, b.Bytes()) {
		t.Fatalf("docs/config.md is not what the configuration structs give; run: go test -run TestConfigDoc -update .")
	}
}

// TestCompatDoc keeps docs/edgeless-compat.md true: every key of EDGELESS's
// templates (testdata/edgeless) has a row, "warned" exactly when the mode
// ignores it; every key a mode warns about has a "warned" row; every
// resource class a node offers has a "same" or "extended" row, and every
// class it names as not offered a "not offered" one.
func TestCompatDoc(t *testing.T) {
	data, err := os.ReadFile("docs/edgeless-compat.md")
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{} // name in the first cell → status
	cell := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		for _, m := range cell.FindAllStringSubmatch(cells[1], -1) {
			status[m[1]] = strings.TrimSpace(cells[2])
		}
	}
	row := func(key string) (string, string) {
		for k := key; k != ""; {
			if s, ok := status[k]; ok {
				return k, s
			}
			i := strings.LastIndex(k, ".")
			if i < 0 {
				break
			}
			k = k[:i]
		}
		return "", ""
	}
	ignored := map[string]map[string]string{"node.toml": node.IgnoredKeys(), "orchestrator.toml": orc.IgnoredKeys(),
		"controller.toml": {}, "cli.toml": {}}
	for file, keys := range ignored {
		var doc map[string]any
		if _, err := toml.DecodeFile(filepath.Join("testdata/edgeless", file), &doc); err != nil {
			t.Fatal(err)
		}
		for _, key := range flatten("", doc) {
			k, st := row(key)
			if k == "" {
				t.Errorf("%s: no row for %s", file, key)
				continue
			}
			_, warned := keys[k]
			if warned != (st == "warned") {
				t.Errorf("%s: %s is %q in the doc, but the mode ignores it: %v", file, key, st, warned)
			}
		}
		for k := range keys {
			if status[k] != "warned" {
				t.Errorf("%s: %s is warned about, but its row says %q", file, k, status[k])
			}
		}
	}
	all := node.Default()
	all.Resources.FilePusherProvider.Provider = "fp"
	all.Resources.MetricsCollectorProvider.Provider = "mc"
	all.Resources.KafkaEgressProvider = "ke"
	for _, a := range node.AvailableResources(all) {
		if st := status[a.ClassType]; st != "same" && st != "extended" {
			t.Errorf("class %s is offered, but its row says %q", a.ClassType, st)
		}
	}
	for _, class := range []string{"dda", "ollama", "portal", "scd30-sensor", "epaper-display"} {
		if spec.NotOffered(class) == "" || status[class] != "not offered" {
			t.Errorf("class %s: row %q, NotOffered %q", class, status[class], spec.NotOffered(class))
		}
	}
}

// flatten lists the dotted keys of a decoded TOML document; arrays of tables
// contribute their tables' keys.
func flatten(prefix string, doc map[string]any) []string {
	var out []string
	for k, v := range doc {
		key := prefix + k
		switch v := v.(type) {
		case map[string]any:
			out = append(out, flatten(key+".", v)...)
		case []map[string]any:
			for _, t := range v {
				out = append(out, flatten(key+".", t)...)
			}
		default:
			out = append(out, key)
		}
	}
	return out
}
