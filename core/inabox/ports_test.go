package inabox

import (
	"net"
	"net/url"
	"testing"

	"github.com/edgeless-go/edgeless/wire"
)

// TestNodePortsDistinct: with the template's fixed ports, every listener of
// a box of several nodes gets its own port (the nodes' metrics used to share
// one, and node 1's dataplane took node 0's metrics port).
func TestNodePortsDistinct(t *testing.T) {
	f := func(nodes int) {
		t.Helper()
		cfg := Default()
		cfg.Nodes = nodes
		b, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.ports = newPortSet(&b.cfg)
		owner := map[string]string{}
		take := func(who, u string) {
			t.Helper()
			if u == "" {
				return
			}
			addr, err := wire.ParseAddr(u)
			if err != nil {
				t.Fatalf("%s: %v", who, err)
			}
			_, port, _ := net.SplitHostPort(addr)
			if other, dup := owner[port]; dup {
				t.Errorf("%d nodes: %s and %s both listen on port %s", nodes, who, other, port)
			}
			owner[port] = who
		}
		api, _ := url.Parse(cfg.Controller.ControllerURL)
		take("controller api", api.Host)
		take("controller domains", cfg.Controller.DomainRegisterURL)
		take("controller metrics", cfg.Controller.MetricsURL)
		take("orchestrator", cfg.Orchestrator.General.OrchestratorURL)
		take("orchestrator node registration", cfg.Orchestrator.General.NodeRegisterURL)
		take("orchestrator metrics", cfg.Orchestrator.General.MetricsURL)
		for k := range nodes {
			n, err := b.nodeConfig(k, "127.0.0.1:7003")
			if err != nil {
				t.Fatal(err)
			}
			take("node dataplane "+string(rune('0'+k)), n.General.InvocationURL)
			take("node metrics "+string(rune('0'+k)), n.Telemetry.MetricsURL)
			take("node http-ingress "+string(rune('0'+k)), n.Resources.HTTPIngressURL)
		}
	}
	f(1)
	f(3)
	f(9)
}
