package bench

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/inabox"
	"github.com/edgeless-go/edgeless/core/spec"
)

// scenarios lists the --scenario names, for help and errors.
const scenarios = "invoke, rate, cold, chain, payload, failover, instances, nodes, workflows"

// ScenarioConfig holds the parameters of the fixed scenarios (--scenario),
// which run against a cluster in this process and print one table row per
// measured point.
type ScenarioConfig struct {
	Name     string
	Function string  // code of the invoked function (invoke, rate, cold)
	Clients  string  // closed-loop callers per point (invoke); the largest is the open loop's worker pool
	Rates    string  // requests/s per point (rate)
	Lengths  string  // chain lengths (chain)
	Sizes    string  // payload sizes in bytes (payload)
	Window   int     // transactions in flight when loaded (chain, payload)
	Reps     int     // repetitions of each cold-start kind (cold)
	Point    float64 // measured seconds per point
	Warm     float64 // warm-up seconds per point
	Runtime  string  // wasm or so, for the rings (chain, payload)
	Counts   string  // sizes of the scale scenarios (instances, nodes, workflows); "" = each one's default
}

// maxCount bounds the sizes of the scale scenarios.
const maxCount = 100_000

func defaultScenario() ScenarioConfig {
	return ScenarioConfig{Function: "functions/noop/noop.wasm", Clients: "1,2,4,8,16,32", Rates: "500,1000,2000,4000,8000",
		Lengths: "1,2,4,8,16,32", Sizes: "16,256,4096,65536,1048576,16777216", Window: 64, Reps: 5, Point: 2, Warm: 0.5,
		Runtime: "wasm"}
}

func (s *ScenarioConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.Name, "scenario", s.Name, "run a fixed scenario in a cluster in this process instead of an arrival model: "+scenarios)
	fs.StringVar(&s.Function, "function", s.Function, "scenarios invoke, rate, cold: code of the function (.wasm, or .so for native)")
	fs.StringVar(&s.Clients, "clients", s.Clients, "scenario invoke: comma-separated numbers of closed-loop callers; rate: the largest is the worker pool")
	fs.StringVar(&s.Rates, "rates", s.Rates, "scenario rate: comma-separated request rates (per second)")
	fs.StringVar(&s.Lengths, "lengths", s.Lengths, "scenario chain: comma-separated chain lengths (functions in the ring, 1..64)")
	fs.StringVar(&s.Sizes, "sizes", s.Sizes, "scenario payload: comma-separated payload sizes in bytes (16..33554432)")
	fs.IntVar(&s.Window, "window", s.Window, "scenarios chain, payload: transactions in flight when loaded (payload: at most 64 MB in flight)")
	fs.IntVar(&s.Reps, "reps", s.Reps, "scenario cold: repetitions of each kind of start")
	fs.Float64Var(&s.Point, "point", s.Point, "scenarios: measured seconds per point")
	fs.Float64Var(&s.Warm, "point-warmup", s.Warm, "scenarios: warm-up seconds per point")
	fs.StringVar(&s.Runtime, "runtime", s.Runtime, "scenarios chain, payload: wasm or so (native)")
	fs.StringVar(&s.Counts, "counts", s.Counts, "scenarios instances, nodes, workflows: comma-separated sizes (default 100,1000,10000; 10,100,1000; 1000,10000)")
}

func ints(name, s string, lo, hi int) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < lo || v > hi {
			return nil, fmt.Errorf("--%s: %q: want integers in %d..%d", name, f, lo, hi)
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *ScenarioConfig) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !strings.Contains(", "+scenarios+",", ", "+s.Name+",") {
		bad("--scenario %q: want one of %s", s.Name, scenarios)
	}
	for _, l := range []struct {
		name, v string
		lo, hi  int
	}{{"clients", s.Clients, 1, 256}, {"rates", s.Rates, 1, 1_000_000}, {"lengths", s.Lengths, 1, 64},
		{"sizes", s.Sizes, 16, 32 << 20}} {
		if _, err := ints(l.name, l.v, l.lo, l.hi); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Counts != "" {
		if _, err := ints("counts", s.Counts, 1, maxCount); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Window < 1 || s.Window > 4096 {
		bad("--window must be in 1..4096, got %d", s.Window)
	}
	if s.Reps < 1 || s.Reps > 100 {
		bad("--reps must be in 1..100, got %d", s.Reps)
	}
	if s.Point <= 0 || s.Point > 600 || s.Warm < 0 || s.Warm > 600 {
		bad("--point must be in (0, 600] and --point-warmup in [0, 600] seconds")
	}
	if s.Runtime != "wasm" && s.Runtime != "so" {
		bad("--runtime %q: want wasm or so", s.Runtime)
	}
	return errors.Join(errs...)
}

// scenarioRun is the state of one scenario run.
type scenarioRun struct {
	cfg  Config
	sc   ScenarioConfig
	out  io.Writer
	csv  *csvOut
	sink *markSink
	log  *slog.Logger
	dir  string
}

func runScenario(ctx context.Context, cfg Config, sc ScenarioConfig, stdout io.Writer) (err error) {
	var lv slog.Level
	lv.UnmarshalText([]byte(cfg.LogLevel))
	dir, err := os.MkdirTemp("", "edgeless-bench-")
	if err != nil {
		return fmt.Errorf("cannot create the cluster's directory: %w", err)
	}
	defer os.RemoveAll(dir)
	r := &scenarioRun{cfg: cfg, sc: sc, out: stdout, sink: newMarkSink(cfg.MaxTransactions), dir: dir}
	r.log = slog.New(&markHandler{next: slog.NewTextHandler(os.Stderr, nil), level: lv, sink: r.sink})
	if cfg.Output != "" {
		if r.csv, err = openCSV(cfg.Output, cfg.Append, cfg.AdditionalFields, cfg.AdditionalHeader, cfg.Seed); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, r.csv.close()) }()
	}
	stopProfile, err := startProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopProfile()) }()
	switch sc.Name {
	case "cold", "failover":
		fmt.Fprintf(stdout, "edgeless bench --scenario %s: %d repetitions\n", sc.Name, sc.Reps)
	case "instances", "nodes", "workflows":
		fmt.Fprintf(stdout, "edgeless bench --scenario %s: sizes %s; rings %gs per point after %gs of warm-up\n",
			sc.Name, cmp.Or(sc.Counts, "default"), sc.Point, sc.Warm)
	default:
		fmt.Fprintf(stdout, "edgeless bench --scenario %s: %gs per point after %gs of warm-up\n", sc.Name, sc.Point, sc.Warm)
	}
	run := map[string]func(context.Context) error{"invoke": r.invoke, "rate": r.rate, "cold": r.cold, "chain": r.chain,
		"payload": r.payload, "failover": r.failover, "instances": r.instances, "nodes": r.nodes, "workflows": r.workflows}
	return run[sc.Name](ctx)
}

// box starts a cluster of n nodes whose modules are cached in cache; opts
// change its configuration.
func (r *scenarioRun) box(ctx context.Context, n int, cache string, opts ...func(*inabox.Config)) (*inabox.Inabox, error) {
	dir, err := os.MkdirTemp(r.dir, "box-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the cluster's directory: %w", err)
	}
	return startBoxCache(ctx, n, dir, cache, r.log, opts...)
}

// point prints and records one measured point: the label, then the named
// values.
func (r *scenarioRun) point(label string, kv ...any) {
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s", label)
	for i := 0; i+1 < len(kv); i += 2 {
		name := kv[i].(string)
		var v string
		switch x := kv[i+1].(type) {
		case time.Duration:
			v = strconv.FormatFloat(float64(x)/1e3, 'f', 1, 64)
			name += "_us"
		case float64:
			v = strconv.FormatFloat(x, 'f', 1, 64)
		default:
			v = fmt.Sprint(x)
		}
		fmt.Fprintf(&b, " %s=%s", name, v)
		if r.csv != nil {
			r.csv.row(time.Now(), "scenario:"+r.sc.Name+":"+name, label, v)
		}
	}
	fmt.Fprintln(r.out, b.String())
}

func (r *scenarioRun) plot(suffix string, c *chart) error {
	if r.cfg.Plots == "" {
		return nil
	}
	if dir := filepath.Dir(r.cfg.Plots); dir != "" {
		os.MkdirAll(dir, 0o755)
	}
	path := r.cfg.Plots + "-" + suffix + ".svg"
	if err := writeChart(path, c); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "plot: %s\n", path)
	return nil
}

// invoke is the closed-loop noop invocation: N callers through the
// controller's HTTP API.
func (r *scenarioRun) invoke(ctx context.Context) error {
	clients, _ := ints("clients", r.sc.Clients, 1, 256)
	b, err := r.box(ctx, 1, "")
	if err != nil {
		return err
	}
	defer b.Close()
	if err := newController(boxAPI(b)).createFunction(ctx, "bench", r.sc.Function); err != nil {
		return err
	}
	most := clients[len(clients)-1]
	iv := newInvoker(boxAPI(b), "bench", most)
	defer iv.close()
	p50 := series{name: "p50", color: "#1f77b4"}
	p99 := series{name: "p99", color: "#d62728"}
	for _, c := range clients {
		tput, d := r.loadPoint(ctx, "clients="+strconv.Itoa(c), iv, c)
		p50.x, p50.y = append(p50.x, tput), append(p50.y, float64(d.p50)/1e3)
		p99.x, p99.y = append(p99.x, tput), append(p99.y, float64(d.p99)/1e3)
	}
	// Asynchronous: invoke, then poll until done, one caller.
	var async []time.Duration
	polls := 0
	for end := time.Now().Add(seconds(r.sc.Point)); time.Now().Before(end) && len(async) < r.cfg.MaxTransactions; {
		t0 := time.Now()
		n, err := iv.asyncRoundTrip(ctx)
		if err != nil {
			return err
		}
		async, polls = append(async, time.Since(t0)), polls+n
	}
	a := newDistribution(async)
	r.point("async+poll clients=1", "n", a.n, "polls_per_invocation", float64(polls)/float64(max(a.n, 1)),
		"p50", a.p50, "p90", a.p90, "p99", a.p99, "max", a.max)
	// The reference: http-ingress → a WASM function on the node → reply,
	// in the same cluster and run, with as many callers as the last point.
	w, err := spec.LoadWorkflow("examples/http_ingress/workflow.json")
	if err != nil {
		return fmt.Errorf("cannot load the http-ingress reference (run from the repository root after make functions): %w", err)
	}
	if _, err := newController(boxAPI(b)).start(ctx, w); err != nil {
		return err
	}
	ing := newIngressInvoker(b.Nodes[0].HTTPIngressAddr(), w.Resources[0].Configurations["host"], most)
	defer ing.close()
	if err := ready(ctx, ing); err != nil {
		return err
	}
	// The same invocation through Serverledge's API, plain HTTP as the
	// ingress is.
	sl := newServerledgeInvoker(boxAPI(b), "bench", most)
	defer sl.close()
	// Other work on the machine moves them by as much as their difference:
	// alternate them, and take the median of the rounds' ratios.
	ratios, slRatios := make([]float64, compareRounds), make([]float64, compareRounds)
	for k := range ratios {
		n := " clients=" + strconv.Itoa(most) + " round=" + strconv.Itoa(k+1)
		inv, _ := r.loadPoint(ctx, "invoke"+n, iv, most)
		slv, _ := r.loadPoint(ctx, "serverledge"+n, sl, most)
		ref, _ := r.loadPoint(ctx, "http-ingress"+n, ing, most)
		ratios[k], slRatios[k] = inv/ref, slv/ref
	}
	for _, x := range []struct {
		label  string
		ratios []float64
	}{{"invoke/http-ingress", ratios}, {"serverledge/http-ingress", slRatios}} {
		slices.Sort(x.ratios)
		r.point(x.label, "clients", most, "throughput_pct_median", 100*x.ratios[compareRounds/2],
			"min_pct", 100*x.ratios[0], "max_pct", 100*x.ratios[compareRounds-1])
	}
	return r.plot("invoke", &chart{title: "sync invoke, closed loop, " + r.sc.Clients + " callers",
		xLabel: "throughput (invocations/s)", yLabel: "latency (µs, log scale)", logY: true, series: []series{p50, p99}})
}

// compareRounds is how many times the invoke scenario alternates its
// largest point with the http-ingress reference.
const compareRounds = 3

// loadPoint measures one closed-loop point of c callers of iv, prints it
// under label and returns its throughput and latencies.
func (r *scenarioRun) loadPoint(ctx context.Context, label string, iv *invoker, c int) (float64, distribution) {
	res := closedLoop(ctx, iv, c, seconds(r.sc.Warm), seconds(r.sc.Point), r.cfg.MaxTransactions)
	d := newDistribution(res.lat)
	tput := float64(d.n) / res.elapsed.Seconds()
	r.point(label, "n", d.n, "errors", res.errs, "req_per_s", tput, "p50", d.p50, "p90", d.p90, "p99", d.p99, "max", d.max,
		"cpu_per_req", res.cpu/time.Duration(max(d.n, 1)))
	if res.firstErr != nil {
		fmt.Fprintf(r.out, "  first error: %v\n", res.firstErr)
	}
	return tput, d
}

// ready polls iv until it answers 50 times in a row, for at most 10 s: a
// workflow just started may answer before all of it is wired.
func ready(ctx context.Context, iv *invoker) error {
	deadline := time.Now().Add(10 * time.Second)
	for ok := 0; ok < 50; {
		err := iv.invoke(ctx)
		switch {
		case err == nil:
			ok++
		case time.Now().After(deadline):
			return err
		default:
			ok = 0
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// rate is the open loop at constant rates.
func (r *scenarioRun) rate(ctx context.Context) error {
	clients, _ := ints("clients", r.sc.Clients, 1, 256)
	rates, _ := ints("rates", r.sc.Rates, 1, 1_000_000)
	workers := clients[len(clients)-1]
	b, err := r.box(ctx, 1, "")
	if err != nil {
		return err
	}
	defer b.Close()
	if err := newController(boxAPI(b)).createFunction(ctx, "bench", r.sc.Function); err != nil {
		return err
	}
	iv := newInvoker(boxAPI(b), "bench", workers)
	defer iv.close()
	closedLoop(ctx, iv, workers, 0, seconds(r.sc.Warm), r.cfg.MaxTransactions)
	p50 := series{name: "p50", color: "#1f77b4"}
	p99 := series{name: "p99", color: "#d62728"}
	for _, rt := range rates {
		if float64(rt)*r.sc.Point > float64(r.cfg.MaxTransactions) {
			return fmt.Errorf("bench: rate %d/s for %gs exceeds --max-transactions", rt, r.sc.Point)
		}
		res := openLoop(ctx, iv, workers, float64(rt), seconds(r.sc.Point), 5*time.Second)
		d, lag, svc := newDistribution(res.lat), newDistribution(res.lag), newDistribution(res.svc)
		r.point("rate="+strconv.Itoa(rt), "n", d.n, "errors", res.errs, "unsent", res.unsent,
			"done_per_s", float64(d.n)/res.elapsed.Seconds(), "p50", d.p50, "p90", d.p90, "p99", d.p99, "p999", d.p999,
			"max", d.max, "send_lag_p50", lag.p50, "send_lag_p99", lag.p99, "from_send_p50", svc.p50, "from_send_p99", svc.p99)
		if res.firstErr != nil {
			fmt.Fprintf(r.out, "  first error: %v\n", res.firstErr)
		}
		p50.x, p50.y = append(p50.x, float64(rt)), append(p50.y, float64(d.p50)/1e3)
		p99.x, p99.y = append(p99.x, float64(rt)), append(p99.y, float64(d.p99)/1e3)
	}
	return r.plot("rate", &chart{title: fmt.Sprintf("sync invoke, open loop, %d workers", workers),
		xLabel: "offered rate (invocations/s)", yLabel: "latency from intended send (µs, log scale)", logY: true,
		series: []series{p50, p99}})
}

// cold times creating a function and its first invocation with the module
// compiled (empty cache), loaded from the on-disk cache (a new cluster on
// the same cache directory), taken from the in-memory cache (the same
// cluster, function deleted and created again), and a warm invocation.
func (r *scenarioRun) cold(ctx context.Context) error {
	type kind struct {
		name          string
		create, first []time.Duration
	}
	compile, disk, mem := &kind{name: "compile"}, &kind{name: "disk-cache"}, &kind{name: "memory-cache"}
	var warm []time.Duration
	one := func(con *controller, iv *invoker, k *kind, name string) error {
		t0 := time.Now()
		if err := con.createFunction(ctx, name, r.sc.Function); err != nil {
			return err
		}
		t1 := time.Now()
		if err := iv.invoke(ctx); err != nil {
			return fmt.Errorf("cannot invoke %q: %w", name, err)
		}
		k.create, k.first = append(k.create, t1.Sub(t0)), append(k.first, time.Since(t1))
		return nil
	}
	for rep := range r.sc.Reps {
		cache := filepath.Join(r.dir, "cache-"+strconv.Itoa(rep))
		for _, k := range []*kind{compile, disk} {
			b, err := r.box(ctx, 1, cache)
			if err != nil {
				return err
			}
			con := newController(boxAPI(b))
			iv := newInvoker(boxAPI(b), "cold", 1)
			err = one(con, iv, k, "cold")
			if err == nil && k == disk {
				if err = con.deleteFunction(ctx, "cold"); err == nil {
					err = one(con, iv, mem, "cold")
				}
				for range 100 {
					if err != nil {
						break
					}
					t0 := time.Now()
					err = iv.invoke(ctx)
					warm = append(warm, time.Since(t0))
				}
			}
			iv.close()
			if cerr := b.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	for _, k := range []*kind{compile, disk, mem} {
		c, f := newDistribution(k.create), newDistribution(k.first)
		r.point(k.name, "n", c.n, "create_p50", c.p50, "create_max", c.max, "first_invoke_p50", f.p50, "first_invoke_max", f.max)
	}
	w := newDistribution(warm)
	r.point("warm", "n", w.n, "invoke_p50", w.p50, "invoke_p99", w.p99)
	return nil
}

// payloadRing returns a ring client → f0 → … → client of length
// bench_payload functions carrying size-byte payloads with window
// transactions in flight, the client's watchdog ticking every timeoutMS;
// stage i may run on the nodes (comma-separated ids) that place(i) returns.
func (r *scenarioRun) payloadRing(length, size, window, timeoutMS int, place func(i int) string) (*spec.Workflow, error) {
	code, err := classOf("bench_payload", "functions/bench_payload/bench_payload."+r.sc.Runtime, []string{"out"})
	if err != nil {
		return nil, err
	}
	w := newWorkflow()
	name := func(i int) string {
		if i%length == 0 {
			return "client"
		}
		return "f" + strconv.Itoa(i-1)
	}
	for i := range length {
		ann := map[string]string{spec.KeyNodeIDMatchAny: place(i), spec.KeyInitPayload: fmt.Sprintf(
			"is_client=%t,size=%d,window=%d,timeout_ms=%d,start_ms=50", i == 0, size, window, timeoutMS)}
		w.Functions = append(w.Functions, spec.Function{Name: name(i), ClassSpecification: code,
			OutputMapping: map[string]string{"out": name(i + 1)}, Annotations: ann})
	}
	return w, nil
}

// errNoTransaction means that a ring never completed a transaction: its
// events were dropped on the way.
var errNoTransaction = errors.New("no transaction completed in 10 s: events dropped on the way")

// ring starts a bench_payload ring of length functions carrying size-byte
// payloads with window transactions in flight, on node nodes[0] only or
// spread over nodes, and measures it for the point's duration.
func (r *scenarioRun) ring(ctx context.Context, con *controller, nodes []string, spread bool, length, size, window int) (distribution, float64, error) {
	w, err := r.payloadRing(length, size, window, 1000, func(i int) string {
		if spread {
			return nodes[i%len(nodes)]
		}
		return nodes[0]
	})
	if err != nil {
		return distribution{}, 0, err
	}
	r.sink.reset()
	id, err := con.start(ctx, w)
	if err != nil {
		return distribution{}, 0, fmt.Errorf("cannot start a ring of %d: %w", length, err)
	}
	defer con.stop(context.WithoutCancel(ctx), id)
	// The ring runs once its client's first transactions come back.
	if err := r.waitEnds(ctx, window+1); err != nil {
		return distribution{}, 0, err
	}
	if err := core.Sleep(ctx, seconds(r.sc.Warm)); err != nil {
		return distribution{}, 0, err
	}
	from := time.Now()
	stopAt := from.Add(seconds(r.sc.Point))
	for time.Now().Before(stopAt) && r.sink.count() < r.cfg.MaxTransactions {
		if err := core.Sleep(ctx, 5*time.Millisecond); err != nil {
			return distribution{}, 0, err
		}
	}
	to := time.Now()
	marks, wfs, _ := r.sink.take()
	p := pairMarks(marks, wfs, from.UnixNano(), to.UnixNano(), nil, time.Hour)
	lat := make([]time.Duration, len(p.done))
	for i, t := range p.done {
		lat[i] = t.latency()
	}
	return newDistribution(lat), float64(len(p.done)) / to.Sub(from).Seconds(), nil
}

// chain measures rings of every length, on one node and spread over two,
// with one transaction in flight (idle) and --window (loaded).
func (r *scenarioRun) chain(ctx context.Context) error {
	lengths, _ := ints("lengths", r.sc.Lengths, 1, 64)
	b, err := r.box(ctx, 2, "")
	if err != nil {
		return err
	}
	defer b.Close()
	con := newController(boxAPI(b))
	nodes := []string{b.Nodes[0].ID().String(), b.Nodes[1].ID().String()}
	var plots []series
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"}
	for _, place := range []string{"local", "cross-node"} {
		for _, window := range []int{1, r.sc.Window} {
			load := "idle"
			if window > 1 {
				load = "loaded"
			}
			s := series{name: place + " " + load + " (p50 per hop)", color: colors[len(plots)]}
			for _, l := range lengths {
				if l == 1 && place != "local" {
					continue // a ring of one is a self-loop: always local
				}
				d, tps, err := r.ring(ctx, con, nodes, place != "local", l, 16, window)
				if errors.Is(err, errNoTransaction) {
					r.point(fmt.Sprintf("%s/%s/len=%d", place, load, l), "failed", err.Error())
					continue
				}
				if err != nil {
					return err
				}
				hops := float64(l)
				r.point(fmt.Sprintf("%s/%s/len=%d", place, load, l), "txn", d.n, "hop_p50", time.Duration(float64(d.p50)/hops),
					"txn_p50", d.p50, "txn_p99", d.p99, "hops_per_s", tps*hops)
				s.x, s.y = append(s.x, hops), append(s.y, float64(d.p50)/hops/1e3)
			}
			plots = append(plots, s)
		}
	}
	return r.plot("chain", &chart{title: "chain of bench_payload (16 B), " + r.sc.Runtime, xLabel: "chain length (log scale)",
		yLabel: "p50 latency per hop (µs, log scale)", logX: true, logY: true, series: plots})
}

// payload measures a ring of two functions (two hops per transaction) at
// every payload size, on one node and over two.
func (r *scenarioRun) payload(ctx context.Context) error {
	sizes, _ := ints("sizes", r.sc.Sizes, 16, 32<<20)
	b, err := r.box(ctx, 2, "")
	if err != nil {
		return err
	}
	defer b.Close()
	con := newController(boxAPI(b))
	nodes := []string{b.Nodes[0].ID().String(), b.Nodes[1].ID().String()}
	var plots []series
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"}
	for _, place := range []string{"local", "cross-node"} {
		for _, loaded := range []bool{false, true} {
			load := "idle"
			if loaded {
				load = "loaded"
			}
			s := series{name: place + " " + load, color: colors[len(plots)]}
			for _, size := range sizes {
				window := 1
				if loaded {
					window = max(1, min(r.sc.Window, (64<<20)/size))
				}
				d, tps, err := r.ring(ctx, con, nodes, place != "local", 2, size, window)
				if errors.Is(err, errNoTransaction) {
					r.point(fmt.Sprintf("%s/%s/size=%d", place, load, size), "window", window, "failed", err.Error())
					continue
				}
				if err != nil {
					return err
				}
				mbps := tps * 2 * float64(size) / 1e6
				r.point(fmt.Sprintf("%s/%s/size=%d", place, load, size), "window", window, "txn", d.n,
					"txn_p50", d.p50, "txn_p99", d.p99, "MB_per_s", mbps)
				s.x, s.y = append(s.x, float64(size)), append(s.y, math.Max(mbps, 1e-3))
			}
			plots = append(plots, s)
		}
	}
	return r.plot("payload", &chart{title: "two-function ring, " + r.sc.Runtime, xLabel: "payload (bytes, log scale)",
		yLabel: "MB/s moved between functions (log scale)", logX: true, logY: true, series: plots})
}

// failover measures how long a workflow stays broken when a node leaves: a
// two-function ring with its client pinned to the first of three nodes and
// its relay allowed on the two others; the node running the relay is
// closed, and the time is taken from the start of its Close to the first
// transaction completed through the relay re-created on the remaining node.
// The client's watchdog restarts transactions every 5 ms, which bounds the
// error of the measurement.
func (r *scenarioRun) failover(ctx context.Context) error {
	var closing, recover []time.Duration
	for range r.sc.Reps {
		c, rec, err := r.failoverOnce(ctx)
		if err != nil {
			return err
		}
		closing, recover = append(closing, c), append(recover, rec)
	}
	c, rec := newDistribution(closing), newDistribution(recover)
	r.point("node-close", "n", rec.n, "close_p50", c.p50, "recovered_p50", rec.p50, "recovered_min", rec.min, "recovered_max", rec.max)
	return nil
}

func (r *scenarioRun) failoverOnce(ctx context.Context) (closing, recovered time.Duration, err error) {
	b, err := r.box(ctx, 3, "")
	if err != nil {
		return 0, 0, err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	con := newController(boxAPI(b))
	ids := make([]string, len(b.Nodes))
	for i, n := range b.Nodes {
		ids[i] = n.ID().String()
	}
	w, err := r.payloadRing(2, 16, 1, 5, func(i int) string {
		if i == 0 {
			return ids[0]
		}
		return ids[1] + "," + ids[2]
	})
	if err != nil {
		return 0, 0, err
	}
	r.sink.reset()
	id, err := con.start(ctx, w)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot start the failover ring: %w", err)
	}
	if err := r.waitEnds(ctx, 100); err != nil {
		return 0, 0, err
	}
	wi, err := con.inspect(ctx, id)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot inspect the failover ring: %w", err)
	}
	victim := -1
	for _, c := range wi.Components {
		if c.Name == "f0" && len(c.Instances) > 0 {
			for k := 1; k < len(ids); k++ {
				if c.Instances[0].Node == ids[k] {
					victim = k
				}
			}
		}
	}
	if victim < 0 {
		return 0, 0, errors.New("cannot find the node running the relay")
	}
	t0 := time.Now()
	if err := b.Nodes[victim].Close(); err != nil {
		return 0, 0, fmt.Errorf("cannot close node %s: %w", ids[victim], err)
	}
	t1 := time.Now()
	r.sink.reset()
	if err := r.waitEnds(ctx, 1); err != nil {
		return 0, 0, err
	}
	marks, _, _ := r.sink.take()
	first := int64(math.MaxInt64)
	for _, m := range marks {
		if m.end && m.at > t1.UnixNano() && m.at < first {
			first = m.at
		}
	}
	if err := con.stop(ctx, id); err != nil {
		return 0, 0, err
	}
	return t1.Sub(t0), time.Duration(first - t0.UnixNano()), nil
}

// waitEnds polls until n transactions ended, for at most 10 s.
func (r *scenarioRun) waitEnds(ctx context.Context, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for r.sink.endCount() < n {
		if time.Now().After(deadline) {
			return errNoTransaction
		}
		if err := core.Sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
