package node

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/node/ebpf"
	"github.com/edgeless-go/edgeless/core/telemetry"
	"github.com/edgeless-go/edgeless/wire"
)

// Metric families of a node. Labels are per instance or per peer, never per
// event.
const (
	mEvents    = "edgeless_node_events_total"
	mErrors    = "edgeless_node_errors_total"
	mExec      = "edgeless_node_execution_seconds"
	mTransfer  = "edgeless_node_transfer_seconds"
	mMailbox   = "edgeless_node_mailbox_depth"
	mInstances = "edgeless_node_instances"
	mDropped   = "edgeless_node_dropped_events_total"
	mPeerOut   = "edgeless_dataplane_frames_out_total"
	mPeerBytes = "edgeless_dataplane_bytes_out_total"
	mPeerLost  = "edgeless_dataplane_lost_frames_total"
	mPeerConn  = "edgeless_dataplane_connects_total"
	mInFrames  = "edgeless_dataplane_frames_in_total"
	mInBytes   = "edgeless_dataplane_bytes_in_total"
	mMalformed = "edgeless_dataplane_malformed_frames_total"
)

// instanceMetrics are one instance's metrics, updated by its goroutine.
type instanceMetrics struct {
	labels      string
	casts       *metrics.Counter
	calls       *metrics.Counter
	errors      *metrics.Counter
	exec, xfer  *telemetry.Histogram
	samples     *samples // nil unless performance_samples is on
	kind, class string
}

func (n *Node) newInstanceMetrics(inst *instance, kind, class string) *instanceMetrics {
	l := telemetry.Labels("function", inst.name, "instance", inst.id.Component.String(), "type", class)
	m := &instanceMetrics{
		labels: l,
		casts:  n.reg.Counter(mEvents, "Events handled by an instance.", l+`,kind="cast"`),
		calls:  n.reg.Counter(mEvents, "Events handled by an instance.", l+`,kind="call"`),
		errors: n.reg.Counter(mErrors, "Handler failures (traps, timeouts, errors) of an instance.", l),
		exec:   n.reg.Histogram(mExec, "Time an instance's handler took per event.", l),
		xfer:   n.reg.Histogram(mTransfer, "Time from an event's creation (sender's clock) to its handling.", l),
		kind:   kind,
		class:  class,
	}
	if n.cfg.Telemetry.PerformanceSamples {
		m.samples = n.samples
	}
	n.reg.Gauge(mMailbox, "Events queued for an instance.", l, func() float64 { return float64(inst.mailbox.len()) })
	return m
}

func (n *Node) dropInstanceMetrics(m *instanceMetrics) {
	for _, name := range []string{mEvents} {
		n.reg.Unregister(name, m.labels+`,kind="cast"`)
		n.reg.Unregister(name, m.labels+`,kind="call"`)
	}
	for _, name := range []string{mErrors, mExec, mTransfer, mMailbox} {
		n.reg.Unregister(name, m.labels)
	}
}

// observe records one handled event. Instance goroutine only: it owns the
// histograms.
func (m *instanceMetrics) observe(inst *instance, e *core.Event, start, end time.Time, failed bool) {
	if e.Kind == core.KindCast {
		m.casts.Inc()
	} else {
		m.calls.Inc()
	}
	if failed {
		m.errors.Inc()
	}
	exec := end.Sub(start)
	m.exec.ObserveOwned(exec)
	var xfer time.Duration
	if e.Created > 0 {
		xfer = time.Duration(start.UnixNano() - e.Created)
		if xfer >= 0 {
			m.xfer.ObserveOwned(xfer)
		}
	}
	if m.samples != nil {
		m.samples.add(inst.id.Component, "function_execution_time", end, exec)
		if xfer >= 0 {
			m.samples.add(inst.id.Component, "function_transfer_time", end, xfer)
		}
	}
}

// samples buffers performance samples and telemetry logs between two
// registrations. It is bounded: past maxSamples new ones are dropped, since
// the orchestrator, not the node, is where history is kept.
type samples struct {
	mu      sync.Mutex
	list    []wire.Sample
	logs    []wire.LogEntry
	dropped uint64
}

const maxSamples = 100_000

func (s *samples) add(inst core.ID, metric string, at time.Time, d time.Duration) {
	s.mu.Lock()
	if len(s.list) < maxSamples {
		s.list = append(s.list, wire.Sample{Instance: inst, Metric: metric, Timestamp: unixSeconds(at), Seconds: d.Seconds()})
	} else {
		s.dropped++
	}
	s.mu.Unlock()
}

func (s *samples) log(inst core.ID, at time.Time, target, msg string) {
	s.mu.Lock()
	if len(s.logs) < maxSamples {
		s.logs = append(s.logs, wire.LogEntry{Instance: inst, Timestamp: unixSeconds(at), Target: target, Message: msg})
	} else {
		s.dropped++
	}
	s.mu.Unlock()
}

// take returns and clears what was buffered.
func (s *samples) take() ([]wire.Sample, []wire.LogEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, g := s.list, s.logs
	s.list, s.logs = nil, nil
	return l, g
}

// putBack returns samples that could not be sent, within the bound.
func (s *samples) putBack(l []wire.Sample, g []wire.LogEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.list)+len(l) <= maxSamples {
		s.list = append(l, s.list...)
	}
	if len(s.logs)+len(g) <= maxSamples {
		s.logs = append(g, s.logs...)
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// registerNodeMetrics registers the node-wide metrics.
func (n *Node) registerNodeMetrics() {
	n.dropped = n.reg.Counter(mDropped, "Events dropped: unmapped output, full mailbox, unreachable peer.", "")
	n.foreign = n.reg.Counter("edgeless_node_foreign_events_total", "Events from the network addressed to another node, refused rather than relayed.", "")
	n.offloaded = n.reg.Counter("edgeless_node_invocations_offloaded_total", "Invocations refused as overloaded, for the orchestrator to send elsewhere.", "")
	for _, kind := range []string{"function", "resource"} {
		n.reg.Gauge(mInstances, "Instances running on the node.", telemetry.Labels("kind", kind), func() float64 {
			c := 0
			for _, inst := range n.running() {
				if inst.metrics.kind == kind {
					c++
				}
			}
			return float64(c)
		})
	}
	stat := func(f func(wire.ServerStats) uint64) func() float64 {
		return func() float64 {
			if n.server == nil {
				return 0
			}
			return float64(f(n.server.Stats()))
		}
	}
	n.reg.CounterFunc(mInFrames, "Frames received on the node's listener.", "", stat(func(s wire.ServerStats) uint64 { return s.FramesIn }))
	n.reg.CounterFunc(mInBytes, "Bytes received on the node's listener.", "", stat(func(s wire.ServerStats) uint64 { return s.BytesIn }))
	n.reg.CounterFunc(mMalformed, "Malformed frames received; each closed its connection.", "", stat(func(s wire.ServerStats) uint64 { return s.Malformed }))
}

// registerPeerMetrics exposes one dataplane peer connection's counters.
func (n *Node) registerPeerMetrics(peer core.ID, c *wire.Client) {
	l := telemetry.Labels("peer", peer.String())
	n.reg.CounterFunc(mPeerOut, "Frames sent to a peer node.", l, func() float64 { return float64(c.Stats().FramesOut) })
	n.reg.CounterFunc(mPeerBytes, "Bytes sent to a peer node.", l, func() float64 { return float64(c.Stats().BytesOut) })
	n.reg.CounterFunc(mPeerLost, "Frames to a peer lost with a broken connection.", l, func() float64 { return float64(c.Stats().Lost) })
	n.reg.CounterFunc(mPeerConn, "Connections made to a peer node, reconnects included.", l, func() float64 { return float64(c.Stats().Connects) })
}

func (n *Node) dropPeerMetrics(peer core.ID) {
	l := telemetry.Labels("peer", peer.String())
	for _, m := range []string{mPeerOut, mPeerBytes, mPeerLost, mPeerConn} {
		n.reg.Unregister(m, l)
	}
}

// startProbes starts the eBPF probes when configured; when the kernel or the
// privileges refuse, the node says so once and runs without them.
func (n *Node) startProbes() {
	if !n.cfg.Telemetry.EBPF {
		return
	}
	_, port, _ := net.SplitHostPort(n.server.Addr())
	p, _ := strconv.Atoi(port)
	probes, err := ebpf.Start(ebpf.Config{Enabled: true, DataplanePort: p}, n.log)
	if err != nil {
		n.log.Warn("eBPF telemetry unavailable; running without it", "err", err)
		return
	}
	n.probes = probes
	probes.Register(n.reg)
}
