package inabox

import (
	"testing"
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
		take := func(who, port string) {
			t.Helper()
			if port == "" {
				return
			}
			if other, dup := owner[port]; dup {
				t.Errorf("%d nodes: %s and %s both listen on port %s", nodes, who, other, port)
			}
			owner[port] = who
		}
		take("controller api", cfg.Controller.ControllerURL.Port())
		take("controller domains", cfg.Controller.DomainRegisterURL.Port())
		take("controller metrics", cfg.Controller.MetricsURL.Port())
		take("orchestrator", cfg.Orchestrator.General.OrchestratorURL.Port())
		take("orchestrator node registration", cfg.Orchestrator.General.NodeRegisterURL.Port())
		take("orchestrator metrics", cfg.Orchestrator.General.MetricsURL.Port())
		for k := range nodes {
			n, err := b.nodeConfig(k, "127.0.0.1:7003")
			if err != nil {
				t.Fatal(err)
			}
			take("node dataplane "+string(rune('0'+k)), n.General.InvocationURL.Port())
			take("node metrics "+string(rune('0'+k)), n.Telemetry.MetricsURL.Port())
			take("node http-ingress "+string(rune('0'+k)), n.Resources.HTTPIngressURL.Port())
		}
	}
	f(1)
	f(3)
	f(9)
}
