package ebpf

import (
	"io"
	"strconv"
)

// Metric families written by Register.
const (
	mRunQueue    = "edgeless_node_ebpf_runqueue_latency_seconds"
	mSwitches    = "edgeless_node_ebpf_context_switches_total"
	mCPU         = "edgeless_node_ebpf_cpu_seconds_total"
	mRetransmits = "edgeless_node_ebpf_tcp_retransmits_total"
	mBytes       = "edgeless_node_ebpf_tcp_bytes_total"
)

// firstBound is the first run-queue bucket written as its own le bound: the
// buckets below 1 µs are merged into it, finer than any scrape needs.
const firstBound = 9

// MetricsSink is where Register adds the probes' metrics. A
// *metrics.Set of github.com/VictoriaMetrics/metrics is one.
type MetricsSink interface {
	RegisterMetricsWriter(writeMetrics func(w io.Writer))
}

// Register adds the probes' metrics to sink: the run-queue histogram as a
// Prometheus histogram with the kernel's log2 bounds, and counters of context
// switches, CPU seconds, TCP retransmits and bytes. Each scrape reads the
// kernel counters once, so all values of a scrape are from the same instant.
// After Close the probes write nothing. Register once per sink.
func (p *Probes) Register(sink MetricsSink) {
	sink.RegisterMetricsWriter(p.writeMetrics)
}

func (p *Probes) writeMetrics(w io.Writer) {
	s, ok := p.snapshot()
	if !ok {
		return
	}
	var b []byte
	b = family(b, mRunQueue, "histogram", "Time the node's threads waited on a CPU run queue before running.")
	var cum uint64
	for k, n := range s.RunQueue[:RunQueueSlots-1] {
		cum += n
		if k < firstBound {
			continue
		}
		b = append(b, mRunQueue+`_bucket{le="`...)
		b = strconv.AppendFloat(b, RunQueueBound(k).Seconds(), 'g', -1, 64)
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	b = sample(b, mRunQueue+`_bucket{le="+Inf"}`, s.RunQueueSamples)
	b = append(b, mRunQueue+"_sum "...)
	b = strconv.AppendFloat(b, s.RunQueueSum.Seconds(), 'g', -1, 64)
	b = append(b, '\n')
	b = sample(b, mRunQueue+"_count", s.RunQueueSamples)

	b = family(b, mSwitches, "counter", "Context switches of the node's threads, voluntary (sleeping) or involuntary (still runnable).")
	b = sample(b, mSwitches+`{kind="voluntary"}`, s.VoluntarySwitches)
	b = sample(b, mSwitches+`{kind="involuntary"}`, s.InvoluntarySwitches)

	b = family(b, mCPU, "counter", "CPU time of the node's threads, counted when a thread leaves its CPU.")
	b = append(b, mCPU+" "...)
	b = strconv.AppendFloat(b, s.CPU.Seconds(), 'g', -1, 64)
	b = append(b, '\n')

	b = family(b, mRetransmits, "counter", "Retransmitted TCP segments of connections on the dataplane port.")
	b = sample(b, mRetransmits, s.TCPRetransmits)

	b = family(b, mBytes, "counter", "TCP payload bytes the node received (in) and sent (out) on the dataplane port.")
	b = sample(b, mBytes+`{direction="in"}`, s.TCPBytesIn)
	b = sample(b, mBytes+`{direction="out"}`, s.TCPBytesOut)
	w.Write(b)
}

func family(b []byte, name, typ, help string) []byte {
	b = append(b, "# HELP "+name+" "+help+"\n"...)
	return append(b, "# TYPE "+name+" "+typ+"\n"...)
}

func sample(b []byte, name string, v uint64) []byte {
	b = append(b, name...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}
