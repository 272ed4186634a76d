package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// TestMain builds the functions that the workflow types deploy, as `make
// test` does, and runs from the repository root, where the types' default
// paths point.
func TestMain(m *testing.M) {
	if err := os.Chdir(".."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := testutil.Functions(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build the functions (run `make deps`):", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestArrivals(t *testing.T) {
	f := func(model string, want [][2]float64) {
		t.Helper()
		a, err := newArrivals(model, 2, 3, 5, "", rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		var got [][2]float64
		for range 10 {
			at, end, ok := a.next()
			if !ok {
				break
			}
			got = append(got, [2]float64{at, end})
		}
		if len(want) > 0 && fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v first", model, got, want)
		}
	}
	inf := math.Inf(1)
	f("incremental", [][2]float64{{0, 3}, {2, 5}, {4, 7}})
	f("incr-and-keep", [][2]float64{{0, inf}, {2, inf}, {4, inf}})
	f("single", [][2]float64{{0, inf}})

	a, _ := newArrivals("incr-and-keep", 2, 3, 5, "", nil)
	n := 0
	for _, _, ok := a.next(); ok; _, _, ok = a.next() {
		n++
	}
	if n != 3 {
		t.Errorf("incr-and-keep with warm-up 5 and interarrival 2 made %d workflows, want 3 (at 0, 2, 4)", n)
	}

	p, _ := newArrivals("poisson", 2, 3, 0, "", rand.New(rand.NewPCG(1, 2)))
	var sum float64
	last := -1.0
	for range 10_000 {
		at, end, _ := p.next()
		if at < last || end < at {
			t.Fatalf("poisson: arrival %v after %v, end %v", at, last, end)
		}
		last = at
	}
	sum = last / 9999
	if sum < 1.9 || sum > 2.1 {
		t.Errorf("poisson: mean interarrival %.3f, want about 2", sum)
	}

	trace := filepath.Join(t.TempDir(), "trace")
	os.WriteFile(trace, []byte("# arrival,end\n0,1.5\n\n2,4\n"), 0o644)
	tr, err := newArrivals("trace", 1, 1, 0, trace, nil)
	if err != nil {
		t.Fatal(err)
	}
	at, end, _ := tr.next()
	at2, end2, _ := tr.next()
	if _, _, ok := tr.next(); ok || at != 0 || end != 1.5 || at2 != 2 || end2 != 4 {
		t.Errorf("trace: got %v-%v, %v-%v", at, end, at2, end2)
	}
	os.WriteFile(trace, []byte("3,4\n1,2\n"), 0o644)
	if _, err := newArrivals("trace", 1, 1, 0, trace, nil); err == nil {
		t.Error("trace with decreasing arrivals accepted")
	}
}

func TestPairMarks(t *testing.T) {
	ms := func(v int64) int64 { return v * 1e6 }
	s := newMarkSink(100)
	a, b := s.workflow("a"), s.workflow("b")
	for _, m := range []struct {
		at  int64
		wf  uint32
		txn string
		end bool
	}{
		{ms(5), a, "1", false}, // before the window
		{ms(6), a, "1", true},
		{ms(10), a, "2", false},
		{ms(13), a, "2", true},
		{ms(11), b, "2", false}, // same id, other workflow
		{ms(20), b, "2", true},
		{ms(12), a, "3", false},   // never ends, long before a stops: lost
		{ms(98), a, "4", false},   // never ends, just before a stops: in flight
		{ms(50), b, "9", true},    // end without a begin
		{ms(30), b, "x-7", false}, // ids that are not plain numbers are ids too
		{ms(37), b, "x-7", true},
		{ms(31), b, "07", false}, // not 7: a never-ending one
		{ms(32), b, "7", false},
		{ms(33), b, "7", true},
	} {
		s.add(m.at, m.wf, m.txn, m.end)
	}
	marks, wfs, _ := s.take()
	p := pairMarks(marks, wfs, ms(10), ms(100), map[string]int64{"a": ms(99)}, 10*time.Millisecond)
	var got []string
	for _, d := range p.done {
		got = append(got, fmt.Sprintf("%s:%v", d.wf, d.latency()))
	}
	if want := []string{"a:3ms", "b:9ms", "b:7ms", "b:1ms"}; !slices.Equal(got, want) {
		t.Errorf("done = %v, want %v", got, want)
	}
	if p.lost != 2 || p.inFlight != 1 || p.orphans != 1 {
		t.Errorf("lost %d, in flight %d, orphans %d; want 2, 1, 1", p.lost, p.inFlight, p.orphans)
	}
}

func TestDistribution(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	r := newDistribution(d)
	if r.p50 != 50*time.Microsecond || r.p90 != 90*time.Microsecond || r.p99 != 99*time.Microsecond ||
		r.max != 100*time.Microsecond || r.min != time.Microsecond {
		t.Errorf("got p50 %v p90 %v p99 %v min %v max %v", r.p50, r.p90, r.p99, r.min, r.max)
	}
	s := summary{requested: 4, started: 3, window: 2 * time.Second, latency: r, lost: 25}
	if s.blocking() != 0.25 || s.loss() != 0.2 || s.throughput() != 50 {
		t.Errorf("blocking %v loss %v throughput %v", s.blocking(), s.loss(), s.throughput())
	}
}

func TestCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.csv")
	write := func(appendTo bool) {
		t.Helper()
		c, err := openCSV(path, appendTo, "a,b", "x,y", 42)
		if err != nil {
			t.Fatal(err)
		}
		c.row(time.Unix(1, 500_000_000), "workflow:request", "wf0", `{"k":"v,w"}`)
		if err := c.close(); err != nil {
			t.Fatal(err)
		}
	}
	write(false)
	write(true)
	data, _ := os.ReadFile(path)
	row := `a,b,42,1.500000,workflow:request,wf0,"{""k"":""v,w""}"` + "\n"
	if want := "x,y,seed,timestamp,metric,target,value\n" + row + row; string(data) != want {
		t.Errorf("got\n%s\nwant\n%s", data, want)
	}
	if _, err := openCSV(path, false, "a", "x,y", 1); err == nil {
		t.Error("mismatched additional fields and header accepted")
	}
}

func TestPlots(t *testing.T) {
	var d []time.Duration
	var done []txn
	for i := range 1000 {
		v := time.Duration(5+i%50) * time.Microsecond
		d = append(d, v)
		done = append(done, txn{begin: int64(i) * 1e6, end: int64(i)*1e6 + int64(v)})
	}
	for _, c := range []*chart{cdfChart("cdf", newDistribution(d).sorted), timeChart("time", done, 0, time.Second)} {
		var b bytes.Buffer
		if err := c.writeSVG(&b); err != nil {
			t.Fatal(err)
		}
		s := b.String()
		if !strings.HasPrefix(s, "<svg") || !strings.HasSuffix(s, "</svg>\n") || strings.Count(s, "<polyline") != len(c.series) ||
			strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
			t.Errorf("%s: bad SVG:\n%s", c.title, s[:min(len(s), 400)])
		}
	}
}

func TestWorkflowTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	f := func(wfType string, names ...string) {
		t.Helper()
		g, tmpl, err := parseWorkflowType(wfType, []string{"6f1c0b3a-0000-4000-8000-000000000001", "6f1c0b3a-0000-4000-8000-000000000002"})
		if err != nil || tmpl != nil {
			t.Fatalf("%s: %v", wfType, err)
		}
		w, err := g.next(rng, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Validate(); err != nil {
			t.Errorf("%s: invalid workflow: %v", wfType, err)
		}
		var got []string
		for _, fn := range w.Functions {
			got = append(got, fn.Name)
		}
		if strings.Join(got, " ") != strings.Join(names, " ") {
			t.Errorf("%s: functions %v, want %v", wfType, got, names)
		}
	}
	dir := t.TempDir()
	params := func(name, json string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(json), 0o644)
		return p
	}
	f("vector-mul-chain;"+params("v.json", `{"min_chain_length":3,"max_chain_length":3,"min_input_size":4,"max_input_size":4,
		"function_wasm_path":"functions/vector_mul/vector_mul.so","window":2,"spread":true}`), "client", "f0", "f1")
	f("matrix-mul-chain", "f0", "f1", "f2", "f3", "f4")
	f("map-reduce;"+params("m.json", `{"min_transaction_interval_ms":10,"max_transaction_interval_ms":10,
		"min_input_size":8,"max_input_size":8,"min_num_stages":1,"max_num_stages":1,"min_fan_out":2,"max_fan_out":2,
		"min_fibonacci":1,"max_fibonacci":1,"min_memory_bytes":0,"max_memory_bytes":0,"functions_path":"functions",
		"redis_url":"redis://127.0.0.1:6379"}`), "trigger", "s0", "p0-0", "p0-1", "s1")
	f("json-spec;"+params("w.json", `{"functions":[{"name":"fn@WF_ID","class_specification":{"id":"noop",
		"function_type":"RUST_WASM","version":"0.1","code":"`+filepath.Join(must(os.Getwd()), "functions/noop/noop.wasm")+`",
		"outputs":[]},"output_mapping":{},"annotations":{}}],"resources":[],"annotations":{}}`), "fn3")

	if _, tmpl, err := parseWorkflowType("map-reduce;template", nil); err != nil || !bytes.Contains(tmpl, []byte(`"min_fan_out": 2`)) {
		t.Errorf("template: %s, %v", tmpl, err)
	}
	for _, bad := range []string{"nope", "single;x", "vector-mul-chain;" + params("b.json", `{"min_chain_lenght":1}`),
		"vector-mul-chain;" + params("s.json", `{"spread":true}`)} {
		if _, _, err := parseWorkflowType(bad, nil); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestValidate(t *testing.T) {
	c := Default()
	c.Duration, c.Nodes, c.LogLevel = 0, 0, "loud"
	err := c.Validate()
	for _, want := range []string{"--duration", "--nodes", "--log-level"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem with %s", err, want)
		}
	}
}

// TestRunInabox runs the whole verb briefly: a vector-mul ring in a cluster
// in this process, with CSV and plots.
func TestRunInabox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dir := t.TempDir()
	params := filepath.Join(dir, "p.json")
	os.WriteFile(params, []byte(`{"min_chain_length":2,"max_chain_length":2,"min_input_size":1,"max_input_size":1,
		"function_wasm_path":"functions/vector_mul/vector_mul.wasm","window":1}`), 0o644)
	var out bytes.Buffer
	err := Run(context.Background(), []string{"--inabox", "--arrival-model", "single", "--warmup", "1", "--duration", "0.5",
		"--wf-type", "vector-mul-chain;" + params, "--output", filepath.Join(dir, "out.csv"), "--plots", filepath.Join(dir, "p"),
		"--log-level", "error"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, &out)
	}
	s := out.String()
	for _, want := range []string{"workflows started               1", "latency p50 (µs)", "plots:"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "out.csv"))
	if !bytes.Contains(csv, []byte(",transaction:latency,wf0,")) || !bytes.Contains(csv, []byte(",workflow:end,wf0,")) {
		t.Errorf("CSV lacks transaction or end rows:\n%.600s", csv)
	}
	for _, p := range []string{"p-cdf.svg", "p-time.svg"} {
		if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.Size() < 500 {
			t.Errorf("plot %s: %v", p, err)
		}
	}
}

// BenchmarkMark measures what a transaction mark costs the function that
// logs it once the node has made the record: the handler's work.
func BenchmarkMark(b *testing.B) {
	sink := newMarkSink(math.MaxInt)
	log := slog.New(&markHandler{next: slog.DiscardHandler, level: slog.LevelWarn, sink: sink}).With("workflow", "w")
	b.ReportAllocs()
	for b.Loop() {
		log.Log(context.Background(), slog.LevelDebug, "12345", "target", targetEnd)
	}
}

// TestBoxTakesNoFixedPort: the in-process cluster of --inabox listens on
// random ports only, so that it starts while another cluster runs with
// EDGELESS's default ports (the orchestrator's metrics used to take 7012).
func TestBoxTakesNoFixedPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	for _, port := range []string{"7004", "7012"} {
		if l, err := net.Listen("tcp", "127.0.0.1:"+port); err == nil {
			t.Cleanup(func() { l.Close() })
		}
	}
	b, err := startBox(context.Background(), 1, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMatrixMulOneSize: every stage of a matrix-mul chain gets the same
// matrix size, else a stage drops the products of the one before and no
// transaction completes; the size still varies between workflows.
func TestMatrixMulOneSize(t *testing.T) {
	g, _, err := parseWorkflowType("matrix-mul-chain", nil)
	if err != nil {
		t.Fatal(err)
	}
	mm := g.(*matrixMul)
	mm.MinChainLength, mm.MaxChainLength, mm.MinMatrixSize, mm.MaxMatrixSize = 8, 8, 1, 1000
	rng := rand.New(rand.NewPCG(7, 7))
	sizes := map[string]bool{}
	for n := range 20 {
		w, err := g.next(rng, n)
		if err != nil {
			t.Fatal(err)
		}
		var size string
		for i, fn := range w.Functions {
			_, rest, ok := strings.Cut(fn.Annotations[spec.KeyInitPayload], "matrix_size=")
			if !ok {
				t.Fatalf("workflow %d, %s: no matrix_size in %q", n, fn.Name, fn.Annotations[spec.KeyInitPayload])
			}
			s, _, _ := strings.Cut(rest, ",")
			if i == 0 {
				size = s
			} else if s != size {
				t.Fatalf("workflow %d: %s has matrix_size %s, f0 has %s", n, fn.Name, s, size)
			}
		}
		sizes[size] = true
	}
	if len(sizes) < 2 {
		t.Errorf("20 workflows drew one size %v from 1..1000", sizes)
	}
}
