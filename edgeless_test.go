package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// edgelessFiles copies EDGELESS's configuration files (testdata/edgeless, as
// its -t templates write them) into dir, with each of its fixed ports
// 7001–7008 replaced by a free one so that tests can run side by side; keys,
// tables and every other value stay as they are. It returns the controller
// API URL.
func edgelessFiles(t *testing.T, dir string) string {
	t.Helper()
	ports := map[string]string{}
	for p := 7001; p <= 7008; p++ {
		ports[fmt.Sprint(p)] = fmt.Sprint(freePort(t))
	}
	re := regexp.MustCompile(`127\.0\.0\.1:(700[1-8])\b`)
	for _, name := range []string{"controller.toml", "orchestrator.toml", "node.toml", "cli.toml"} {
		data, err := os.ReadFile(filepath.Join("testdata/edgeless", name))
		if err != nil {
			t.Fatal(err)
		}
		data = re.ReplaceAllFunc(data, func(m []byte) []byte { return []byte("127.0.0.1:" + ports[string(m[len(m)-4:])]) })
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return "http://127.0.0.1:" + ports["7001"]
}

// TestEdgelessConfigFiles runs the controller, the orchestrator and a node
// from EDGELESS's own configuration files, found in the working directory
// without -c as EDGELESS's daemons find them; the CLI reads EDGELESS's
// cli.toml the same way. They find each other, run a workflow, and each key
// that has no effect here is warned about once, naming it; keys that turn a
// feature off are not.
func TestEdgelessConfigFiles(t *testing.T) {
	c := emptyCluster(t)
	c.api = edgelessFiles(t, c.dir)
	// The one step EDGELESS's files need here: certificates for the ids
	// they name (cert init reads them from node.toml and orchestrator.toml)
	// and the admin token for the CLI.
	c.run("cert", "init")
	c.http = c.client()
	c.start("con", "con")
	c.start("orc", "orc")
	node := c.start("node", "node")
	c.waitNodes(1)

	wf, _ := filepath.Abs("examples/noop/workflow.json")
	var id string
	cli := exec.Command(bin, "workflow", "start", wf)
	cli.Dir = c.dir
	cli.Env = append(os.Environ(), "EDGELESS_TOKEN="+c.token())
	out, err := cli.CombinedOutput()
	if id = strings.TrimSpace(string(out)); err != nil {
		t.Fatalf("workflow start with EDGELESS's cli.toml: %v\n%s", err, out)
	}
	testutil.Eventually(t, 10*time.Second, "the noop instance on the node of node.toml", func() bool {
		wi := c.inspect(id)
		return len(wi.Components) == 1 && len(wi.Components[0].Instances) == 1 &&
			wi.Components[0].Instances[0].Node == "bec1d62c-5212-4a27-b4aa-f57ed6a14ea2"
	})

	warned := func(p *proc, key string) int {
		return strings.Count(p.String(), `key="`+key+`: `) + strings.Count(p.String(), `key="node.toml: `+key+`: `)
	}
	for _, key := range []string{"general.agent_url", "general.agent_url_announced", "general.invocation_url_coap",
		"power_info", "resources.dda_provider",
		"user_node_capabilities.model_name_cpu", "user_node_capabilities.disk_tot_space"} {
		if n := warned(node, key); n != 1 {
			t.Errorf("node warned %d times about %s, want once:\n%s", n, key, node)
		}
	}
	for _, key := range []string{"telemetry.log_level", "resources.kafka_egress_provider", "resources.ollama_provider",
		"resources.serverless_provider", "user_node_capabilities.num_gpus", "user_node_capabilities.model_name_gpu",
		"resources.prepend_hostname", "general.node_id", "container_runtime"} {
		if n := warned(node, key); n != 0 {
			t.Errorf("node warned %d times about %s, which is off or honoured:\n%s", n, key, node)
		}
	}
	if n := strings.Count(c.procs["orc"].String(), "general.node_register_coap_url: CoAP"); n != 1 {
		t.Errorf("orchestrator warned %d times about general.node_register_coap_url, want once:\n%s", n, c.procs["orc"])
	}
	if s := c.procs["con"].String(); strings.Contains(s, "no effect") {
		t.Errorf("controller warned about EDGELESS's controller.toml:\n%s", s)
	}
}

// TestStrictConfig: --strict-config refuses a key that is neither ours nor
// EDGELESS's, and still accepts EDGELESS's.
func TestStrictConfig(t *testing.T) {
	dir := t.TempDir()
	edgelessFiles(t, dir)
	f, _ := os.OpenFile(filepath.Join(dir, "node.toml"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n[misspelt]\nnode_idd = 1\n")
	f.Close()
	cmd := exec.Command(bin, "node", "--strict-config", "--available-resources")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "misspelt: unknown key") || strings.Contains(string(out), "agent_url: unknown") {
		t.Fatalf("strict: %v\n%s\nwant only misspelt refused", err, out)
	}
	cmd = exec.Command(bin, "node", "--config-file", "node.toml", "--available-resources", "--output-json")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `misspelt: unknown key, ignored`) || !strings.Contains(string(out), `"class_type"`) {
		t.Fatalf("lenient: %v\n%s\nwant a warning and the providers as JSON", err, out)
	}
}

// freeRange returns a port p such that p … p+n-1 are free now.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		p := freePort(t)
		if p+n > 65535 {
			continue
		}
		ok := true
		var ls []net.Listener
		for q := p; q < p+n && ok; q++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				continue
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no range of free ports")
	return 0
}

// TestEdgelessInabox: `inabox -t -n 2 --initial-port P --config-path DIR`
// writes EDGELESS-in-a-box's files, and `inabox` in DIR, with no flag, runs
// the controller, the orchestrator and both nodes from them.
func TestEdgelessInabox(t *testing.T) {
	c := emptyCluster(t)
	base := freeRange(t, 12)
	out, err := exec.Command(bin, "inabox", "-t", "-n", "2", "--initial-port", fmt.Sprint(base), "--config-path", c.dir).CombinedOutput()
	if err != nil {
		t.Fatalf("inabox -t: %v\n%s", err, out)
	}
	for _, f := range []string{"controller.toml", "orchestrator.toml", "node0.toml", "node1.toml"} {
		if !strings.Contains(string(out), filepath.Join(c.dir, f)) {
			t.Fatalf("inabox -t wrote:\n%s\nwant %s", out, f)
		}
	}
	c.api = fmt.Sprintf("http://127.0.0.1:%d", base+1)
	box := c.start("inabox", "inabox")
	testutil.Eventually(t, 20*time.Second, "the box with two nodes", func() bool {
		return strings.Contains(box.String(), `msg="edgeless in a box is ready"`) && strings.Contains(box.String(), "nodes=2")
	})
	wf, _ := filepath.Abs("examples/noop/workflow.json")
	if out, err := c.cli("start", wf); err != nil {
		t.Fatalf("workflow start: %v\n%s", err, out)
	}
}

// TestEdgelessFilesInabox: `inabox` in a directory of EDGELESS's
// controller.toml, orchestrator.toml and node.toml runs the three parts in
// one process from them, warning once per ignored key.
func TestEdgelessFilesInabox(t *testing.T) {
	c := emptyCluster(t)
	c.api = edgelessFiles(t, c.dir)
	os.Remove(filepath.Join(c.dir, "cli.toml"))
	box := c.start("inabox", "inabox")
	testutil.Eventually(t, 20*time.Second, "the box from EDGELESS's files", func() bool {
		return strings.Contains(box.String(), `msg="edgeless in a box is ready"`)
	})
	for _, key := range []string{"general.agent_url:", "general.node_register_coap_url:"} {
		if n := strings.Count(box.String(), key); n != 1 {
			t.Errorf("%s warned %d times, want once:\n%s", key, n, box)
		}
	}
	wf, _ := filepath.Abs("examples/noop/workflow.json")
	if out, err := c.cli("start", wf); err != nil {
		t.Fatalf("workflow start: %v\n%s", err, out)
	}
}

// TestExamplesOffered: every workflow under examples/ loads with its code,
// and every resource class it uses is offered by a node with all providers
// enabled (the serverless example's class "double" as node.toml declares it).
func TestExamplesOffered(t *testing.T) {
	all := node.Default()
	all.Resources.FilePusherProvider.Provider = "fp"
	all.Resources.MetricsCollectorProvider.Provider = "mc"
	all.Resources.KafkaEgressProvider = "ke"
	all.Resources.ServerlessProvider = []node.Serverless{{ClassType: "double", FunctionURL: "http://127.0.0.1:5000/", Provider: "double-1"}}
	offered := map[string]bool{}
	for _, a := range node.AvailableResources(all) {
		offered[a.ClassType] = true
	}
	files, _ := filepath.Glob("examples/*/workflow*.json")
	if len(files) < 15 {
		t.Fatalf("found %d example workflows", len(files))
	}
	for _, f := range files {
		w, err := spec.LoadWorkflow(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, r := range w.Resources {
			if !offered[r.ClassType] {
				t.Errorf("%s: resource class %s is not offered", f, r.ClassType)
			}
		}
	}
}
