package bench

import (
	"cmp"
	"container/heap"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/inabox"
	"github.com/edgeless-go/edgeless/core/spec"
)

// Config is the configuration of one benchmark run, from the command line.
// Times are in seconds, as in EDGELESS.
type Config struct {
	ControllerURL     string
	Token             string
	CAPath            string
	Inabox            bool
	Nodes             int
	ArrivalModel      string
	Warmup            float64
	Duration          float64
	Lifetime          float64
	Interarrival      float64
	WorkloadTrace     string
	Seed              uint64
	WfType            string
	KeepWorkflows     bool
	Output            string
	Append            bool
	AdditionalFields  string
	AdditionalHeader  string
	Plots             string
	RedisURL          string
	NodeIDs           string
	Progress          float64
	LossGrace         float64
	MaxWorkflows      int
	MaxTransactions   int
	NoTransactionRows bool
	CPUProfile        string
	LogLevel          string
}

// Default returns EDGELESS's defaults, with a vector-mul chain as the
// workflow type.
func Default() Config {
	return Config{
		ControllerURL: "https://127.0.0.1:7001", Nodes: 1, ArrivalModel: "poisson", Duration: 30, Lifetime: 5,
		Interarrival: 5, Seed: 42, WfType: "vector-mul-chain", Progress: 5, LossGrace: 1,
		MaxWorkflows: 10_000, MaxTransactions: 10_000_000, LogLevel: "warn",
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	const day = 86400
	if c.Duration <= 0 || c.Duration > day {
		bad("--duration must be in (0, %d] seconds, got %v", day, c.Duration)
	}
	if c.Warmup < 0 || c.Warmup > day {
		bad("--warmup must be in [0, %d] seconds, got %v", day, c.Warmup)
	}
	if c.Lifetime <= 0 {
		bad("--lifetime must be positive, got %v", c.Lifetime)
	}
	if c.Interarrival <= 0 {
		bad("--interarrival must be positive, got %v", c.Interarrival)
	}
	if c.Nodes < 1 || c.Nodes > 16 {
		bad("--nodes must be in 1..16, got %d", c.Nodes)
	}
	if c.MaxWorkflows < 1 || c.MaxWorkflows > 1_000_000 {
		bad("--max-workflows must be in 1..1000000, got %d", c.MaxWorkflows)
	}
	if c.MaxTransactions < 1 || c.MaxTransactions > 100_000_000 {
		bad("--max-transactions must be in 1..100000000, got %d", c.MaxTransactions)
	}
	if c.Progress < 0 || c.LossGrace < 0 {
		bad("--progress and --loss-grace must not be negative")
	}
	if c.Inabox && c.RedisURL != "" {
		bad("--redis-url is for a remote cluster; with --inabox the marks are taken in process")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("--log-level: %v", err)
	}
	return errors.Join(errs...)
}

func (c *Config) flags(fs *flag.FlagSet) {
	str := func(p *string, usage string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, *p, usage)
		}
	}
	num := func(p *float64, usage string, names ...string) {
		for _, n := range names {
			fs.Float64Var(p, n, *p, usage)
		}
	}
	str(&c.ControllerURL, "URL of the controller's API", "controller-url", "c")
	str(&c.Token, "API token of the remote controller (default $EDGELESS_TOKEN)", "token")
	str(&c.CAPath, "CA certificate of the remote controller", "ca")
	fs.BoolVar(&c.Inabox, "inabox", c.Inabox, "run against a cluster started in this process on loopback")
	fs.IntVar(&c.Nodes, "nodes", c.Nodes, "with --inabox: number of nodes")
	str(&c.ArrivalModel, "arrival model: "+arrivalModels, "arrival-model")
	num(&c.Warmup, "warm-up in s: transactions that begin earlier are not measured; incr-and-keep adds workflows until then", "warmup")
	num(&c.Duration, "measured duration in s, after the warm-up", "duration", "d")
	num(&c.Lifetime, "mean lifetime of a workflow in s", "lifetime", "l")
	num(&c.Interarrival, "mean time between workflow arrivals in s", "interarrival", "i")
	str(&c.WorkloadTrace, "trace arrival model: file of lines arrival,end_time (s)", "workload-trace")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the random draws")
	fs.Uint64Var(&c.Seed, "s", c.Seed, "seed of the random draws")
	str(&c.WfType, "workflow type: "+workflowTypes+"; NAME;template prints a parameter template", "wf-type", "w")
	fs.BoolVar(&c.KeepWorkflows, "keep-workflows", c.KeepWorkflows, "leave the workflows running at the end")
	fs.BoolVar(&c.KeepWorkflows, "k", c.KeepWorkflows, "leave the workflows running at the end")
	str(&c.Output, "CSV file to write (EDGELESS's columns)", "output")
	fs.BoolVar(&c.Append, "append", c.Append, "append to --output instead of truncating it")
	str(&c.AdditionalFields, "comma-separated values put first on every CSV row", "additional-fields")
	str(&c.AdditionalHeader, "comma-separated column names of --additional-fields", "additional-header")
	str(&c.Plots, "write PREFIX-cdf.svg and PREFIX-time.svg (latency CDF, latency over time)", "plots")
	str(&c.RedisURL, "remote cluster: read the transaction marks from the orchestrator's Redis proxy", "redis-url")
	str(&c.NodeIDs, "comma-separated node ids that spread chains alternate over (remote cluster)", "node-ids")
	num(&c.Progress, "print a progress line every this many seconds on runs longer than that (0: never)", "progress")
	num(&c.LossGrace, "a transaction never ended counts as lost if it began this many s before its workflow stopped", "loss-grace")
	fs.IntVar(&c.MaxWorkflows, "max-workflows", c.MaxWorkflows, "stop starting workflows after this many")
	fs.IntVar(&c.MaxTransactions, "max-transactions", c.MaxTransactions, "keep at most this many marks (two per transaction)")
	fs.BoolVar(&c.NoTransactionRows, "no-transaction-rows", c.NoTransactionRows, "leave the per-transaction latency rows out of the CSV")
	str(&c.CPUProfile, "write a CPU profile of this process (with --inabox: the whole cluster); --scenario nodes also writes PATH-orc-join-N.pprof and PATH-orc-keepalive-N.pprof, of the orchestrator", "cpuprofile")
	str(&c.LogLevel, "log level of the cluster with --inabox (debug, info, warn, error)", "log-level")
}

// Run runs `edgeless bench [flags]`, printing the summary to stdout.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := Default()
	sc := defaultScenario()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg.flags(fs)
	sc.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: edgeless bench [flags]\n       edgeless bench --scenario NAME [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if sc.Name != "" {
		if err := sc.validate(); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		return runScenario(ctx, cfg, sc, stdout)
	}
	if strings.HasSuffix(cfg.WfType, ";template") {
		_, tmpl, err := parseWorkflowType(cfg.WfType, nil)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", tmpl)
		return err
	}
	return run(ctx, cfg, stdout)
}

// event is a workflow arrival (id == "") or departure in the run's queue.
type event struct {
	at  time.Time
	end time.Time // arrival: when the workflow leaves
	id  string    // departure: the workflow to stop
}

type eventQueue []event

func (q eventQueue) Len() int           { return len(q) }
func (q eventQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q eventQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)        { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// runner holds the state of one run.
type runner struct {
	cfg     Config
	out     io.Writer
	con     *controller
	gen     generator
	sink    *markSink
	csv     *csvOut
	rng     *rand.Rand
	active  map[string]string // running workflow id -> name (wf<n>)
	names   map[string]string // every started workflow id -> name
	stops   map[string]int64  // workflow id -> when it was stopped (Unix ns)
	insts   map[string]string // physical instance id -> workflow id, for --redis-url
	deploy  []time.Duration
	pulled  int // arrivals taken from the model
	req     int
	started int
}

func run(ctx context.Context, cfg Config, stdout io.Writer) (err error) {
	var lv slog.Level
	lv.UnmarshalText([]byte(cfg.LogLevel))
	r := &runner{cfg: cfg, out: stdout, sink: newMarkSink(cfg.MaxTransactions),
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), active: map[string]string{}, names: map[string]string{},
		stops: map[string]int64{}, insts: map[string]string{}}
	a := api{url: cfg.ControllerURL, token: cmp.Or(cfg.Token, os.Getenv("EDGELESS_TOKEN"))}
	if cfg.CAPath != "" {
		pem, err := os.ReadFile(cfg.CAPath)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		a.ca = x509.NewCertPool()
		if !a.ca.AppendCertsFromPEM(pem) {
			return fmt.Errorf("bench: no PEM certificate in %s", cfg.CAPath)
		}
	}
	var nodes []string
	if cfg.NodeIDs != "" {
		nodes = strings.Split(cfg.NodeIDs, ",")
	}
	if cfg.Inabox {
		dir, err := os.MkdirTemp("", "edgeless-bench-")
		if err != nil {
			return fmt.Errorf("cannot create the cluster's directory: %w", err)
		}
		defer os.RemoveAll(dir)
		log := slog.New(&markHandler{next: slog.NewTextHandler(os.Stderr, nil), level: lv, sink: r.sink})
		box, err := startBox(ctx, cfg.Nodes, dir, log)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, box.Close()) }()
		a = boxAPI(box)
		nodes = nodes[:0]
		for _, n := range box.Nodes {
			nodes = append(nodes, n.ID().String())
		}
	}
	r.con = newController(a)
	if r.gen, _, err = parseWorkflowType(cfg.WfType, nodes); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if cfg.Output != "" {
		if r.csv, err = openCSV(cfg.Output, cfg.Append, cfg.AdditionalFields, cfg.AdditionalHeader, cfg.Seed); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, r.csv.close()) }()
	}
	arr, err := newArrivals(cfg.ArrivalModel, cfg.Interarrival, cfg.Lifetime, cfg.Warmup, cfg.WorkloadTrace, r.rng)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	t0 := time.Now()
	measureFrom := t0.Add(seconds(cfg.Warmup))
	end := measureFrom.Add(seconds(cfg.Duration))
	fmt.Fprintf(stdout, "edgeless bench: %s, %s arrivals, warm-up %gs, duration %gs, seed %d, controller %s\n",
		cfg.WfType, cfg.ArrivalModel, cfg.Warmup, cfg.Duration, cfg.Seed, a.url)
	// The profile covers the load only, not the cluster's start nor the
	// pairing of the marks afterwards.
	stopProfile, err := startProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	err = r.loop(ctx, arr, t0, end)
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if cfg.RedisURL != "" {
		// The proxy mirrors what nodes report on their next update: give
		// the last marks time to arrive.
		if err := core.Sleep(ctx, 3*time.Second); err != nil {
			return err
		}
		if err := readRedisMarks(ctx, cfg.RedisURL, r.insts, r.sink); err != nil {
			return err
		}
	}
	return r.report(measureFrom, end)
}

// startProfile starts a CPU profile into path ("" = none) and returns the
// function that stops it.
func startProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cannot create the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot start the CPU profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// loop runs the discrete-event loop until end: it sleeps until the next
// arrival or departure and starts or stops a workflow, then stops what is
// left (unless --keep-workflows).
func (r *runner) loop(ctx context.Context, arr arrivals, t0, end time.Time) error {
	q := &eventQueue{}
	pull := func() {
		if r.pulled >= r.cfg.MaxWorkflows {
			return
		}
		at, leave, ok := arr.next()
		if !ok {
			return
		}
		r.pulled++
		e := event{at: t0.Add(seconds(at)), end: end.Add(time.Hour)}
		if !math.IsInf(leave, 1) {
			e.end = t0.Add(seconds(leave))
		}
		if e.at.Before(end) {
			heap.Push(q, e)
		}
	}
	pull()
	var progress <-chan time.Time
	if p := seconds(r.cfg.Progress); p > 0 && end.Sub(t0) > p {
		t := time.NewTicker(p)
		defer t.Stop()
		progress = t.C
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for q.Len() > 0 {
		e := (*q)[0]
		timer.Reset(time.Until(e.at))
	wait:
		for {
			select {
			case <-ctx.Done():
				r.stopAll(context.WithoutCancel(ctx))
				return ctx.Err()
			case now := <-progress:
				fmt.Fprintf(r.out, "progress %6.1fs of %.1fs: %d workflows active, %d of %d started, %d marks\n",
					now.Sub(t0).Seconds(), end.Sub(t0).Seconds(), len(r.active), r.started, r.req, r.sink.count())
			case <-timer.C:
				break wait
			}
		}
		heap.Pop(q)
		if e.id != "" {
			r.stopOne(ctx, e.id)
			continue
		}
		r.startOne(ctx, e, end, q)
		pull()
	}
	if err := core.Sleep(ctx, time.Until(end)); err != nil {
		r.stopAll(context.WithoutCancel(ctx))
		return err
	}
	if !r.cfg.KeepWorkflows {
		r.stopAll(ctx)
	}
	return nil
}

func (r *runner) startOne(ctx context.Context, e event, end time.Time, q *eventQueue) {
	name := "wf" + strconv.Itoa(r.req)
	w, err := r.gen.next(r.rng, r.req)
	r.req++
	if err != nil {
		r.row("workflow:response", name, "error: "+err.Error())
		return
	}
	if w == nil { // workflow type none
		r.started++
		return
	}
	r.row("workflow:request", name, requestJSON(w))
	began := time.Now()
	id, err := r.con.start(ctx, w)
	took := time.Since(began)
	if err != nil {
		r.row("workflow:response", name, "error: "+err.Error())
		return
	}
	r.started++
	r.deploy = append(r.deploy, took)
	r.active[id] = name
	r.names[id] = name
	r.row("workflow:response", name, id)
	r.row("workflow:start_time", name, strconv.FormatFloat(took.Seconds(), 'f', 6, 64))
	if r.cfg.RedisURL != "" {
		if wi, err := r.con.inspect(ctx, id); err == nil {
			for _, c := range wi.Components {
				for _, i := range c.Instances {
					r.insts[i.Instance] = id
				}
			}
		}
	}
	if e.end.Before(end) {
		heap.Push(q, event{at: e.end, id: id})
	}
}

func (r *runner) stopOne(ctx context.Context, id string) {
	name := r.active[id]
	delete(r.active, id)
	r.stops[id] = time.Now().UnixNano()
	if err := r.con.stop(ctx, id); err != nil {
		r.row("workflow:end", name, "error: "+err.Error())
		return
	}
	r.row("workflow:end", name, id)
}

func (r *runner) stopAll(ctx context.Context) {
	for id := range r.active {
		r.stopOne(ctx, id)
	}
}

func (r *runner) row(metric, target, value string) {
	if r.csv != nil {
		r.csv.row(time.Now(), metric, target, value)
	}
}

// requestJSON is the workflow request as logged: without the code.
func requestJSON(w *spec.Workflow) string {
	c := *w
	c.Functions = make([]spec.Function, len(w.Functions))
	for i, f := range w.Functions {
		f.ClassSpecification.Binary = nil
		c.Functions[i] = f
	}
	data, _ := json.Marshal(&c)
	return string(data)
}

// report pairs the marks, prints the summary and writes the CSV rows and
// plots.
func (r *runner) report(from, to time.Time) error {
	marks, wfs, dropped := r.sink.take()
	p := pairMarks(marks, wfs, from.UnixNano(), to.UnixNano(), r.stops, seconds(r.cfg.LossGrace))
	lat := make([]time.Duration, len(p.done))
	for i, t := range p.done {
		lat[i] = t.latency()
	}
	s := summary{requested: r.req, started: r.started, window: to.Sub(from), latency: newDistribution(lat),
		deploy: newDistribution(r.deploy), lost: p.lost, inFlight: p.inFlight, orphans: p.orphans, dropped: dropped}
	fmt.Fprintln(r.out, "summary:")
	s.writeTable(r.out)
	if r.csv != nil {
		if !r.cfg.NoTransactionRows {
			for _, t := range p.done {
				r.csv.row(time.Unix(0, t.end), "transaction:latency", r.names[t.wf],
					strconv.FormatFloat(t.latency().Seconds(), 'f', 9, 64))
			}
		}
		for _, row := range s.rows() {
			r.row("summary", row[0], row[1])
		}
	}
	if r.cfg.Plots != "" && s.latency.n > 0 {
		if dir := filepath.Dir(r.cfg.Plots); dir != "" {
			os.MkdirAll(dir, 0o755)
		}
		title := fmt.Sprintf("%s, %d transactions", r.cfg.WfType, s.latency.n)
		if err := writeChart(r.cfg.Plots+"-cdf.svg", cdfChart(title, s.latency.sorted)); err != nil {
			return err
		}
		if err := writeChart(r.cfg.Plots+"-time.svg", timeChart(title, p.done, from.UnixNano(), s.window)); err != nil {
			return err
		}
		fmt.Fprintf(r.out, "plots: %s-cdf.svg, %s-time.svg\n", r.cfg.Plots, r.cfg.Plots)
	}
	return nil
}

// startBox starts a cluster in this process on random loopback ports, with
// its state and module cache under dir; opts change its configuration.
func startBox(ctx context.Context, nodes int, dir string, log *slog.Logger, opts ...func(*inabox.Config)) (*inabox.Inabox, error) {
	return startBoxCache(ctx, nodes, dir, "", log, opts...)
}

// allowBuiltNative lets the box run the native functions built in
// functions/ (the native runtime is off by default and pinned by hash): the
// benchmarks deploy those and nothing else.
func allowBuiltNative(cfg *inabox.Config) error {
	files, err := filepath.Glob(filepath.Join("functions", "*", "*.so"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := cfg.Node.Native.AllowFile(f); err != nil {
			return err
		}
	}
	return nil
}

// startBoxCache is startBox with the module cache in cache ("" = under dir),
// which may be shared by clusters started one after the other.
func startBoxCache(ctx context.Context, nodes int, dir, cache string, log *slog.Logger, opts ...func(*inabox.Config)) (*inabox.Inabox, error) {
	if cache == "" {
		cache = filepath.Join(dir, "cache")
	}
	cfg := inabox.Default()
	cfg.Nodes = nodes
	cfg.CredentialsDir = ""
	if err := allowBuiltNative(&cfg); err != nil {
		return nil, err
	}
	cfg.Ephemeral(true)
	// Faster subscription refreshes wire the outputs of a new workflow
	// sooner, as in the end-to-end tests.
	cfg.Orchestrator.General.SubscriptionRefreshIntervalSec = 0.2
	cfg.Node.General.SubscriptionRefreshIntervalSec = 0.2
	cfg.Node.WASM.CacheDir = cache
	cfg.Node.State.Dir = filepath.Join(dir, "state")
	// No spare container started with each node: its start would take CPU
	// from what is measured.
	cfg.Node.Container.SpareContainers = 0
	for _, o := range opts {
		o(&cfg)
	}
	b, err := inabox.New(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("cannot configure the in-process cluster: %w", err)
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("cannot start the in-process cluster: %w", err)
	}
	return b, nil
}
