package telemetry

import (
	"bytes"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{500 * time.Nanosecond, 3 * time.Microsecond, 3 * time.Microsecond, time.Millisecond, 20 * time.Second} {
		h.Observe(d)
	}
	var b bytes.Buffer
	h.write(&b, "x_seconds", `f="a"`)
	out := b.String()
	for _, want := range []string{
		`x_seconds_bucket{f="a",le="1e-06"} 1`,
		`x_seconds_bucket{f="a",le="5e-06"} 3`,
		`x_seconds_bucket{f="a",le="0.001"} 4`,
		`x_seconds_bucket{f="a",le="10"} 4`,
		`x_seconds_bucket{f="a",le="+Inf"} 5`,
		`x_seconds_count{f="a"} 5`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if q := h.Quantile(0.5); q < 2e-6 || q > 5e-6 {
		t.Errorf("median = %v, want within the 2–5 µs bucket", q)
	}
	var empty Histogram
	if !math.IsNaN(empty.Quantile(0.5)) {
		t.Error("quantile of an empty histogram is not NaN")
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := range b.N {
		h.Observe(time.Duration(i%100000) * time.Nanosecond)
	}
}

// TestPromtool checks the exposition with Prometheus's own linter.
func TestPromtool(t *testing.T) {
	r := NewRegistry()
	r.Counter("edgeless_test_events_total", "Events handled.", Labels("function", `we"ird`, "kind", "cast")).Add(3)
	r.Gauge("edgeless_test_instances", "Instances running.", "", func() float64 { return 2 })
	r.Histogram("edgeless_test_execution_seconds", "Handler execution time.", Labels("function", "a")).Observe(time.Millisecond)
	r.Histogram("edgeless_test_execution_seconds", "Handler execution time.", Labels("function", "b")).Observe(time.Second)
	var b bytes.Buffer
	r.WritePrometheus(&b)
	PromtoolCheck(t, b.Bytes())
	r.Unregister("edgeless_test_execution_seconds", Labels("function", "a"))
	b.Reset()
	r.WritePrometheus(&b)
	if strings.Contains(b.String(), `function="a"`) {
		t.Fatalf("unregistered histogram still written:\n%s", b.String())
	}
}

// PromtoolCheck fails t unless `promtool check metrics` accepts text.
func PromtoolCheck(t *testing.T, text []byte) {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- input:\n%s", err, out, text)
	}
}
