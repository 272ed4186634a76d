package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// nodes registers --counts (default 10, 100, 1k) lightweight nodes with an
// orchestrator running as its own process (this binary's orc mode), so
// that its CPU time is its own: each node is a control connection sending
// wire.UpdateNode every refreshNodes, as a node does, and all of them
// answer the orchestrator's calls on one shared listener. Measured at each
// size: the orchestrator's CPU per refresh interval and RSS, and placement
// latency, the orchestrator's StartFunction called as the controller does.
func (r *scenarioRun) nodes(ctx context.Context) error {
	counts := r.counts("10,100,1000")
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find this binary, to run the orchestrator: %w", err)
	}
	domains := &domainStub{}
	con, err := serveStub(ctx, r.log, func(m *wire.Mux) {
		wire.Method(m, wire.MethodConUpdateDomain, domains.update)
	})
	if err != nil {
		return err
	}
	defer con.Close()
	empty := func(context.Context, *wire.Empty) (*wire.Empty, error) { return &wire.Empty{}, nil }
	var peerPushes atomic.Int64
	nodeSrv, err := serveStub(ctx, r.log, func(m *wire.Mux) {
		wire.Method(m, wire.MethodNodeStartFunction, func(context.Context, *wire.StartFunction) (*wire.Empty, error) { return &wire.Empty{}, nil })
		wire.Method(m, wire.MethodNodeStop, func(context.Context, *wire.StopComponent) (*wire.Empty, error) { return &wire.Empty{}, nil })
		wire.Method(m, wire.MethodNodePatch, func(context.Context, *wire.PatchNode) (*wire.Empty, error) { return &wire.Empty{}, nil })
		wire.Method(m, wire.MethodNodePeers, func(context.Context, *wire.UpdatePeers) (*wire.Empty, error) {
			peerPushes.Add(1)
			return &wire.Empty{}, nil
		})
		wire.Method(m, wire.MethodNodeReset, empty)
		wire.Method(m, wire.MethodNodePing, empty)
	})
	if err != nil {
		return err
	}
	defer nodeSrv.Close()
	code, err := os.ReadFile(noopPath)
	if err != nil {
		return fmt.Errorf("cannot read function code: %w", err)
	}
	s := scaleSeries{{name: "orchestrator CPU per refresh interval (ms)", color: "#1f77b4"},
		{name: "placement p50 (ms)", color: "#d62728"}, {name: "orchestrator RSS (MiB)", color: "#2ca02c"}}
	for _, n := range counts {
		label := "nodes=" + strconv.Itoa(n)
		p, err := r.nodesPoint(ctx, exe, con.Addr(), nodeSrv.Addr(), domains, &peerPushes, code, n)
		if p.registered < n {
			r.point(label, "registered", p.registered, "failed", strconv.Quote(err.Error()))
			break
		}
		kv := []any{"register_all", p.register, "peer_pushes", p.pushes, "settled", p.settled,
			"orc_cpu_ms_per_refresh", p.cpuPerRefresh, "orc_cpu_pct", p.cpuPct, "orc_rss_MB", p.rssMB}
		if err != nil {
			r.point(label, append(kv, "place_failed", strconv.Quote(err.Error()))...)
			s[0].x, s[0].y = append(s[0].x, float64(n)), append(s[0].y, p.cpuPerRefresh)
			s[2].x, s[2].y = append(s[2].x, float64(n)), append(s[2].y, p.rssMB)
			break
		}
		r.point(label, append(kv, "place_p50", p.place.p50, "place_p99", p.place.p99)...)
		s.add(float64(n), p.cpuPerRefresh, float64(p.place.p50)/1e6, p.rssMB)
	}
	return r.plot("nodes", &chart{title: "lightweight nodes registered with one orchestrator (refresh 2 s)",
		xLabel: "nodes (log scale)", yLabel: "see legend (log scale)", logX: true, logY: true, series: s})
}

// refreshNodes is the lightweight nodes' refresh interval, a node's default.
const refreshNodes = 2 * time.Second

type nodesResult struct {
	registered            int
	register, settled     time.Duration // until all registered; then until the peer pushes stopped
	pushes                int64         // UpdatePeers calls the nodes received
	cpuPerRefresh, cpuPct float64
	rssMB                 float64
	place                 distribution
}

// nodesPoint runs one orchestrator process with n lightweight nodes.
func (r *scenarioRun) nodesPoint(ctx context.Context, exe, conAddr, nodeAddr string, domains *domainStub, pushes *atomic.Int64,
	code []byte, n int) (res nodesResult, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	orcAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp(r.dir, "orc-")
	if err != nil {
		return res, err
	}
	// With --cpuprofile the orchestrator serves /debug/pprof, and profiles
	// of it are taken over the joins and over the keep-alives.
	metricsURL, pprofOn, metricsAddr := "", false, ""
	if r.cfg.CPUProfile != "" {
		if metricsAddr, err = freeAddr(); err != nil {
			return res, err
		}
		metricsURL, pprofOn = "http://"+metricsAddr, true
	}
	cfg := filepath.Join(dir, "orchestrator.toml")
	toml := fmt.Sprintf("[general]\ndomain_id = %q\norchestrator_url = %q\nnode_register_url = \"\"\ndomain_register_url = %q\n"+
		"metrics_url = %q\npprof = %t\n\n[tls]\nenabled = false\n", "scale-"+strconv.Itoa(n), "http://"+orcAddr, "http://"+conAddr,
		metricsURL, pprofOn)
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		return res, err
	}
	logf, err := os.Create(filepath.Join(dir, "orc.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "orc", "-c", cfg)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("cannot start the orchestrator: %w", err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	orc := wire.NewClient(orcAddr, wire.ControlOptions(r.log))
	defer orc.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	profile := func(what string, d time.Duration) <-chan error {
		done := make(chan error, 1)
		if metricsAddr == "" {
			done <- nil
			return done
		}
		path := fmt.Sprintf("%s-orc-%s-%d.pprof", r.cfg.CPUProfile, what, n)
		go func() { done <- fetchProfile(ctx, metricsAddr, d, path) }()
		return done
	}
	if metricsAddr != "" {
		if err := waitHTTP(ctx, metricsAddr); err != nil {
			return res, err
		}
	}
	// The joins: the nodes' first updates are spread over one interval.
	joins := profile("join", 2*refreshNodes)
	for range n {
		wg.Go(func() { lightNode(ctx, orcAddr, nodeAddr, r.log) })
	}
	// Registered: the orchestrator reports all of them to the controller.
	t0 := time.Now()
	deadline := t0.Add(time.Minute + time.Duration(n)*200*time.Millisecond)
	for domains.nodes() != n {
		if time.Now().After(deadline) {
			res.registered = domains.nodes()
			return res, fmt.Errorf("%d of %d nodes registered in %v", res.registered, n, time.Since(t0))
		}
		if err := core.Sleep(ctx, 50*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.registered, res.register = n, time.Since(t0)
	// Each node that joins is pushed to every other one: wait until those
	// pushes stop (none for a second), then measure three refresh intervals
	// of keep-alives alone.
	t0, before := time.Now(), pushes.Load()
	for last := int64(-1); last != before; {
		if time.Since(t0) > growLimit {
			break
		}
		if err := core.Sleep(ctx, time.Second); err != nil {
			return res, err
		}
		last, before = before, pushes.Load()
	}
	res.settled, res.pushes = time.Since(t0), before
	if err := <-joins; err != nil { // profiles do not overlap
		r.log.Warn("cannot profile the orchestrator", "err", err)
	}
	pid := cmd.Process.Pid
	c0, err := procTime(pid)
	if err != nil {
		return res, err
	}
	keepalives := profile("keepalive", 3*refreshNodes)
	defer func() {
		if err := <-keepalives; err != nil {
			r.log.Warn("cannot profile the orchestrator", "err", err)
		}
	}()
	t0 = time.Now()
	if err := core.Sleep(ctx, 3*refreshNodes); err != nil {
		return res, err
	}
	c1, err := procTime(pid)
	if err != nil {
		return res, err
	}
	wall := time.Since(t0)
	res.cpuPerRefresh = float64(c1-c0) / 1e6 * float64(refreshNodes) / float64(wall)
	res.cpuPct = 100 * float64(c1-c0) / float64(wall)
	res.rssMB = float64(procStatus(pid, "VmRSS")) / 1024
	sum := sha256.Sum256(code)
	var lat []time.Duration
	for i := range 20 {
		fs := &wire.FunctionSpec{Logical: core.NewID(), Workflow: core.NewID(), Name: "f" + strconv.Itoa(i), ClassID: "noop",
			FunctionType: spec.FunctionTypeWASM, Version: "0.1", Code: code, CodeHash: sum, Annotations: map[string]string{}}
		t := time.Now()
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := wire.Call[wire.FunctionSpec, wire.StartResponse](cctx, orc, wire.MethodOrcStartFunction, fs)
		cancel()
		if err != nil {
			return res, fmt.Errorf("cannot place a function among %d nodes: %w", n, err)
		}
		lat = append(lat, time.Since(t))
	}
	res.place = newDistribution(lat)
	return res, nil
}

// waitHTTP waits until something accepts connections at addr.
func waitHTTP(ctx context.Context, addr string) error {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			return c.Close()
		}
		if err := core.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("nothing listens at %s", addr)
}

// fetchProfile writes a CPU profile of d taken by the net/http/pprof
// endpoint at addr into path.
func fetchProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// lightNode registers one node with the orchestrator at orcAddr and keeps it
// registered until ctx ends, announcing nodeAddr as its address. Its
// updates carry what a node's do, without samples or logs.
func lightNode(ctx context.Context, orcAddr, nodeAddr string, log *slog.Logger) {
	c := wire.NewClient(orcAddr, wire.ControlOptions(log))
	defer c.Close()
	req := &wire.UpdateNode{Node: core.NewID(), Addr: nodeAddr, Nonce: rand.Uint64(), RefreshMS: refreshNodes.Milliseconds(),
		Capabilities: wire.Capabilities{NumCPUs: 2, NumCores: 2, ClockFreqMHz: 2000, MemSizeMiB: 1024,
			Runtimes: []string{spec.FunctionTypeWASM}},
		Health: wire.NodeHealth{MemFree: 1 << 20, MemAvailable: 1 << 20, ProcCPUUsage: 1, LoadAvg1: 10}}
	// Spread the first updates over one interval, as nodes started at
	// different times would be.
	if core.Sleep(ctx, rand.N(refreshNodes)) != nil {
		return
	}
	t := time.NewTicker(refreshNodes)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, refreshNodes)
		wire.Call[wire.UpdateNode, wire.UpdateNodeResponse](cctx, c, wire.MethodOrcUpdateNode, req)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// domainStub is the controller's side of domain registration: it counts the
// nodes an orchestrator reports.
type domainStub struct {
	mu sync.Mutex
	n  int
}

func (d *domainStub) update(_ context.Context, req *wire.UpdateDomain) (*wire.UpdateDomainResponse, error) {
	d.mu.Lock()
	d.n = req.Nodes
	d.mu.Unlock()
	return &wire.UpdateDomainResponse{}, nil
}

func (d *domainStub) nodes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// serveStub starts a plaintext control listener on loopback answering the
// methods that methods registers.
func serveStub(ctx context.Context, log *slog.Logger, methods func(*wire.Mux)) (*wire.Server, error) {
	mux := &wire.Mux{}
	methods(mux)
	// One listener stands for up to --counts nodes, each of which would run
	// wire.DefaultMaxRequests requests of its own.
	srv, err := wire.NewServer(wire.ServerConfig{Addr: "127.0.0.1:0", MaxFrame: wire.MaxControlFrame, Log: log, Mux: mux,
		MaxRequests: 1 << 16, MaxConns: 1 << 16})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return srv, nil
}

// freeAddr returns a loopback address with a port free at the time of the
// call, for a process that takes its address from a configuration file.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// procRuntime returns the time the threads of process pid have run on a CPU,
// from the scheduler's own count, in nanoseconds (/proc/PID/stat counts
// 10 ms ticks).
func procRuntime(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("cannot list the threads of process %d", pid)
	}
	var sum int64
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := bytes.Fields(data)
		if len(f) < 1 {
			continue
		}
		ns, _ := strconv.ParseInt(string(f[0]), 10, 64)
		sum += ns
	}
	return time.Duration(sum), nil
}

// procTime returns the CPU time of process pid: the scheduler's count, or
// where it is not kept the user plus system time.
func procTime(pid int) (time.Duration, error) {
	if t, err := procRuntime(pid); err == nil {
		return t, nil
	}
	return procCPU(pid)
}

// procCPU returns the user plus system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces: count from its end.
	f := bytes.Fields(data[bytes.LastIndexByte(data, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	// Linux reports these in USER_HZ, 100 on every architecture Go runs on.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
