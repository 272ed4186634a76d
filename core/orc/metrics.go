package orc

import (
	"github.com/edgeless-go/edgeless/core/telemetry"
)

func (o *Orc) registerMetrics() {
	o.placements = o.reg.Counter("edgeless_orc_placements_total", "Instances the orchestrator placed and started.", "")
	o.failures = o.reg.Counter("edgeless_orc_failures_handled_total", "Instances lost to a node failure or an instance exit and re-created.", "")
	o.offloaded = o.reg.Counter("edgeless_orc_invocations_offloaded_total", "Invocations served by another instance than the first choice, which was overloaded.", "")
	o.scaledOut = o.reg.Counter("edgeless_orc_scale_outs_total", "Instances started because every instance of a function was overloaded.", "")
	o.scaledIn = o.reg.Counter("edgeless_orc_scale_ins_total", "Instances added by scale-out stopped again once their function was no longer overloaded.", "")
	o.reg.Gauge("edgeless_orc_nodes", "Nodes registered in the domain.", "", func() float64 {
		o.mu.Lock()
		defer o.mu.Unlock()
		return float64(len(o.nodes))
	})
	for _, kind := range []string{"function", "resource"} {
		o.reg.Gauge("edgeless_orc_components", "Logical components of the domain.", telemetry.Labels("kind", kind), func() float64 {
			o.mu.Lock()
			defer o.mu.Unlock()
			n := 0
			for _, c := range o.comps {
				if (c.fn != nil) == (kind == "function") {
					n++
				}
			}
			return float64(n)
		})
	}
}

// startMetrics serves /metrics when metrics_url is set.
func (o *Orc) startMetrics() error {
	u := o.cfg.General.MetricsURL
	if u.IsZero() {
		return nil
	}
	o.metricsSrv = telemetry.NewServer(o.reg, o.cfg.General.Pprof, o.log)
	return o.metricsSrv.Start(u.HostPort())
}

// MetricsAddr returns the address of the orchestrator's /metrics endpoint, or "".
func (o *Orc) MetricsAddr() string {
	if o.metricsSrv == nil {
		return ""
	}
	return o.metricsSrv.Addr()
}
