package inabox

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

func scrape(t *testing.T, addr string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	return body
}

// promtool fails t unless Prometheus's linter accepts the exposition.
func promtool(t *testing.T, text []byte) {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- input:\n%s", err, out, text)
	}
}

// metricValue returns the value of the first sample matching the pattern.
func metricValue(t *testing.T, text []byte, pattern string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + pattern + ` (\S+)$`).FindSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMetrics runs ping_pong and reads the node's and the controller's
// /metrics: per-instance counters and histograms move, and the output passes
// promtool.
func TestMetrics(t *testing.T) {
	b := startBox(t, 1, func(c *Config) {
		c.Node.Telemetry.MetricsURL = wire.MustAddr("127.0.0.1:0")
		c.Controller.MetricsURL = wire.MustAddr("127.0.0.1:0")
		c.Orchestrator.General.MetricsURL = wire.MustAddr("127.0.0.1:0")
	})
	b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=10") })
	node := b.Nodes[0].MetricsAddr()
	var text []byte
	testutil.Eventually(t, 10*time.Second, "ponger to have handled 5 calls", func() bool {
		text = scrape(t, node)
		return metricValue(t, text, `edgeless_node_events_total\{function="ponger",[^}]*kind="call"\}`) >= 5
	})
	for _, p := range []string{
		`edgeless_node_events_total\{function="pinger",[^}]*kind="cast"\}`,
		`edgeless_node_execution_seconds_count\{function="ponger",[^}]*\}`,
		`edgeless_node_execution_seconds_bucket\{function="ponger",[^}]*le="1e-06"\}`,
		`edgeless_node_execution_seconds_bucket\{function="ponger",[^}]*le="10"\}`,
		`edgeless_node_transfer_seconds_count\{function="pinger",[^}]*\}`,
		`edgeless_node_mailbox_depth\{function="pinger",[^}]*\}`,
		`edgeless_node_instances\{kind="function"\}`,
	} {
		if metricValue(t, text, p) < 0 {
			t.Errorf("no sample matches %s", p)
		}
	}
	if v := metricValue(t, text, `edgeless_node_instances\{kind="function"\}`); v != 2 {
		t.Errorf("instances = %v, want 2", v)
	}
	promtool(t, text)
	con := scrape(t, b.Con.MetricsAddr())
	if v := metricValue(t, con, `edgeless_con_workflows`); v != 1 {
		t.Errorf("edgeless_con_workflows = %v, want 1\n%s", v, con)
	}
	promtool(t, con)
	orc := scrape(t, b.Orc.MetricsAddr())
	if v := metricValue(t, orc, `edgeless_orc_placements_total`); v != 2 {
		t.Errorf("edgeless_orc_placements_total = %v, want 2\n%s", v, orc)
	}
	promtool(t, orc)
}

// TestEBPFMetrics runs a node with its eBPF probes (root, as in CI): the
// node's own context switches and run-queue samples show in /metrics.
func TestEBPFMetrics(t *testing.T) {
	b := startBox(t, 1, func(c *Config) {
		c.Node.Telemetry.MetricsURL = wire.MustAddr("127.0.0.1:0")
		c.Node.Telemetry.EBPF = true
	})
	if b.logs.count("eBPF telemetry unavailable") > 0 {
		t.Fatalf("eBPF probes refused: %s", b.logs)
	}
	b.mustStart("ping_pong/workflow.json", func(w *spec.Workflow) { setInit(w, "pinger", "period=5") })
	var text []byte
	testutil.Eventually(t, 10*time.Second, "context switches and run-queue samples", func() bool {
		text = scrape(t, b.Nodes[0].MetricsAddr())
		return metricValue(t, text, `edgeless_node_ebpf_context_switches_total\{kind="voluntary"\}`) > 0 &&
			metricValue(t, text, `edgeless_node_ebpf_runqueue_latency_seconds_count`) > 0
	})
	promtool(t, text)
}
