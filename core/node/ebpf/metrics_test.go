//go:build linux

package ebpf

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

func TestMetrics(t *testing.T) {
	ln, port := listen(t)
	p := startProbes(t, port)
	set := metrics.NewSet()
	p.Register(set)

	const n = 64 << 10
	sendOver(t, ln, n)
	stop := make(chan struct{})
	wg := burn(stop)
	testutil.Eventually(t, 10*time.Second, "run-queue samples", func() bool { return p.Snapshot().RunQueueSamples > 0 })
	close(stop)
	wg.Wait()

	var b bytes.Buffer
	set.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE edgeless_node_ebpf_runqueue_latency_seconds histogram\n",
		`edgeless_node_ebpf_runqueue_latency_seconds_bucket{le="1.024e-06"} `,
		`edgeless_node_ebpf_runqueue_latency_seconds_bucket{le="+Inf"} `,
		"edgeless_node_ebpf_runqueue_latency_seconds_sum ",
		"edgeless_node_ebpf_runqueue_latency_seconds_count ",
		`edgeless_node_ebpf_context_switches_total{kind="voluntary"} `,
		`edgeless_node_ebpf_context_switches_total{kind="involuntary"} `,
		"edgeless_node_ebpf_cpu_seconds_total ",
		"edgeless_node_ebpf_tcp_retransmits_total 0\n",
		`edgeless_node_ebpf_tcp_bytes_total{direction="in"} 65536` + "\n",
		`edgeless_node_ebpf_tcp_bytes_total{direction="out"} 65536` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: format not checked")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if res, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, res, out)
	}
}

func TestRunQueueQuantile(t *testing.T) {
	f := func(name string, buckets map[int]uint64, q, want float64) {
		t.Helper()
		var s Stats
		for k, n := range buckets {
			s.RunQueue[k] = n
		}
		if got := s.RunQueueQuantile(q); got != want {
			t.Errorf("%s: quantile %v = %v µs, want %v", name, q, got, want)
		}
	}
	f("empty", nil, 0.5, 0)
	// Bucket 10 is [1024, 2048) ns: its median is 1536 ns.
	f("one bucket", map[int]uint64{10: 4}, 0.5, 1.536)
	f("two buckets, low half", map[int]uint64{10: 1, 20: 1}, 0.5, 2.048)
	// The 0.75 rank falls in the middle of bucket 20, [2^20, 2^21) ns.
	f("two buckets, high half", map[int]uint64{10: 1, 20: 1}, 0.75, float64(3<<19)/1e3)
	f("first bucket", map[int]uint64{0: 2}, 1, 0.002)
	f("last bucket", map[int]uint64{RunQueueSlots - 1: 1}, 1, float64(time.Duration(1)<<RunQueueSlots)/1e3)
}
