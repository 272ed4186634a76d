package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/node/ebpf"
	"github.com/edgeless-go/edgeless/core/telemetry"
	"github.com/edgeless-go/edgeless/resources"
	"github.com/edgeless-go/edgeless/wire"
)

// Node runs function instances and resource providers.
type Node struct {
	cfg   Config
	creds *wire.Credentials // nil when TLS is off
	id    core.ID
	log   *slog.Logger
	addr  string // announced dataplane address

	server *wire.Server
	orc    *wire.Client
	fns    map[string]*functionRuntime // function type → runtime
	state  stateStore
	provs  map[string]resources.Provider // provider id → provider
	labels []string                      // advertised: the configured ones and hostname=<host>
	nonce  uint64
	bufs   sync.Pool // *[]byte payload buffers for mailboxes

	reg        *telemetry.Registry
	metricsSrv *telemetry.Server
	dropped    *metrics.Counter
	foreign    *metrics.Counter
	replicas   *replicas // nil when state lives in a shared Redis
	offloaded  *metrics.Counter
	cpu        atomic.Uint64 // node process CPU percent (float64 bits), from the last health read
	invoker    *invoker
	probes     *ebpf.Probes // nil unless eBPF telemetry runs
	samples    *samples
	health     *healthReader
	memory     *memoryBudget

	// Read on every event without locks; replaced whole under mu.
	instances atomic.Pointer[map[core.ID]receiver] // function and resource instances, and the invoker
	peers     atomic.Pointer[map[core.ID]*wire.Client]

	// epoch and leaseUntil (monotonic nanoseconds since epoch) bound when
	// instances may run: until the lease of the last accepted registration.
	epoch      time.Time
	leaseUntil atomic.Int64

	mu    sync.Mutex // serialises changes to instances and peers, and guards exits
	exits []wire.InstanceExit
	kick  chan struct{} // asks the registration loop to report now
	// regDone is closed when the registration loop has returned: no
	// registration can follow the node's goodbye.
	regDone chan struct{}
	cancel  context.CancelFunc
	group   core.Group // loops and instance goroutines
	closed  atomic.Bool
}

// New validates cfg and prepares a node; it opens no sockets.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid node configuration: %w", err)
	}
	id := core.NewID()
	if cfg.General.NodeID != "" {
		id, _ = core.ParseID(cfg.General.NodeID)
	}
	creds, err := loadCredentials(&cfg)
	if err != nil {
		return nil, err
	}
	if creds != nil {
		// The certificate is the node's identity: node_id may repeat it or
		// be left out, never differ from it.
		certID, err := core.ParseID(creds.Identity().ID)
		if err != nil {
			return nil, fmt.Errorf("invalid node certificate: its id %q is not a node UUID", creds.Identity().ID)
		}
		if cfg.General.NodeID != "" && certID != id {
			return nil, fmt.Errorf("invalid node configuration: general.node_id %s differs from the id %s in the node's certificate", id, certID)
		}
		id = certID
	}
	if log == nil {
		log = slog.Default()
	}
	n := &Node{
		cfg:     cfg,
		creds:   creds,
		id:      id,
		log:     log.With("node", id.String()),
		fns:     map[string]*functionRuntime{},
		provs:   map[string]resources.Provider{},
		labels:  nodeLabels(cfg.Capabilities.Labels),
		nonce:   rand.Uint64(),
		kick:    make(chan struct{}, 1),
		regDone: make(chan struct{}),
		reg:     telemetry.NewRegistry(),
		samples: &samples{},
		health:  &healthReader{dir: cfg.State.Dir},
		memory:  newMemoryBudget(id.String(), cfg.General.MemoryBudgetMB),
	}
	n.bufs.New = func() any { b := make([]byte, 0, 256); return &b }
	n.epoch = time.Now()
	n.leaseUntil.Store(math.MaxInt64) // no lease before the first registration
	n.invoker = newInvoker(n)
	n.registerNodeMetrics()
	n.instances.Store(&map[core.ID]receiver{n.invoker.id.Component: n.invoker})
	noPeers := map[core.ID]*wire.Client{}
	n.peers.Store(&noPeers)
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() core.ID { return n.id }

// Start opens the dataplane listener, starts the runtimes and begins
// registering with the orchestrator. It returns once the node serves; when
// it fails, Close releases what it had started.
func (n *Node) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	listen := n.cfg.General.InvocationURL.HostPort()
	if n.state, err = newStateStore(n.cfg.State); err != nil {
		return err
	}
	if err := n.startRuntimes(); err != nil {
		return err
	}
	if err := n.startProviders(ctx); err != nil {
		return err
	}
	mux := &wire.Mux{}
	wire.Method(mux, wire.MethodNodeStartFunction, n.startFunction)
	wire.Method(mux, wire.MethodNodeStartResource, n.startResource)
	wire.Method(mux, wire.MethodNodeStop, n.stopComponent)
	wire.Method(mux, wire.MethodNodePatch, n.patch)
	wire.Method(mux, wire.MethodNodePeers, n.updatePeers)
	wire.Method(mux, wire.MethodNodeReset, n.reset)
	wire.Method(mux, wire.MethodNodeInvoke, n.invoke)
	wire.Method(mux, wire.MethodNodePing, func(context.Context, *wire.Empty) (*wire.Empty, error) { return &wire.Empty{}, nil })
	scfg := wire.ServerConfig{
		Addr:     listen,
		MaxFrame: n.cfg.General.MaxFrameBytes,
		Log:      n.log,
		Handler:  n,
		Mux:      mux,
	}
	if n.creds != nil {
		scfg.TLS = n.creds.ServerTLS()
		scfg.Authorize = authorizeControl
		scfg.EventsFrom = eventsFrom
	}
	srv, err := wire.NewServer(scfg)
	if err != nil {
		return fmt.Errorf("cannot start node dataplane on %s: %w", listen, err)
	}
	n.server = srv
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("cannot start node dataplane on %s: %w", listen, err)
	}
	n.addr = wire.Announced(srv.Addr())
	n.startProbes()
	if u := n.cfg.Telemetry.MetricsURL; !u.IsZero() {
		ms := telemetry.NewServer(n.reg, n.cfg.Telemetry.Pprof, n.log)
		if err := ms.Start(u.HostPort()); err != nil {
			return err
		}
		n.metricsSrv = ms
	}
	if a := n.cfg.General.InvocationURLAnnounced; !a.IsZero() {
		n.addr = a.HostPort()
	}
	orcAddr := n.cfg.General.NodeRegisterURL.HostPort()
	n.orc = wire.NewClient(orcAddr, n.clientOptions(wire.Identity{Role: wire.RoleOrchestrator}))
	ctx, n.cancel = context.WithCancel(context.Background())
	n.group.Go(func() { n.registerLoop(ctx) })
	if n.cfg.State.RedisURL == "" {
		n.replicas = newReplicas(n)
		n.group.Go(func() { n.replicas.loop(ctx) })
	}
	budget, _ := n.memory.free()
	n.log.Info("node started", "addr", n.addr, "orchestrator", orcAddr, "runtimes", n.runtimes(), "memory_budget_mib", budget)
	return nil
}

// MetricsAddr returns the address of the node's /metrics endpoint, or "".
func (n *Node) MetricsAddr() string {
	if n.metricsSrv == nil {
		return ""
	}
	return n.metricsSrv.Addr()
}

// clientOptions are those of the node's connections: a frame as large as
// max_frame_bytes must fit in the outbound queue, or a large event would be
// refused as if the peer were slow.
func (n *Node) clientOptions(peer wire.Identity) wire.ClientOptions {
	o := wire.ClientOptions{
		MaxFrame:   n.cfg.General.MaxFrameBytes,
		MaxPending: max(wire.DefaultMaxPending, 2*n.cfg.General.MaxFrameBytes),
		Log:        n.log,
	}
	if n.creds != nil {
		o.TLS = n.creds.ClientTLS(peer)
	}
	return o
}

// loadCredentials returns the node's TLS credentials, or nil with TLS off.
func loadCredentials(cfg *Config) (*wire.Credentials, error) {
	if !cfg.TLS.Enabled {
		return nil, nil
	}
	return wire.LoadRole(wire.RoleNode, cfg.Credentials, cfg.TLS.CAPath, cfg.TLS.CertPath, cfg.TLS.KeyPath)
}

// authorizeControl lets only the orchestrator give a node orders. The
// controller may invoke instances, which it does directly once the
// orchestrator has told it where they run: an invocation is no order.
func authorizeControl(peer wire.Identity, method string) error {
	if peer.Role == wire.RoleController && method == wire.MethodNodeInvoke {
		return nil
	}
	if peer.Role != wire.RoleOrchestrator {
		return errors.New("only the orchestrator gives a node orders")
	}
	return nil
}

// eventsFrom lets peers of the domain send events, and operators' clients
// (the CLI's raw cast).
func eventsFrom(peer wire.Identity) bool {
	return peer.Role == wire.RoleNode || peer.Role == wire.RoleClient
}

// Addr returns the address of the node's dataplane, as announced to others.
func (n *Node) Addr() string { return n.addr }

// Close hands the node's work over (handOver), then stops every instance
// (each gets handle_stop), the loops and the listener. It is idempotent,
// waits for all it started, and is the one cleanup path of a Start that
// failed half-way.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	if n.cancel != nil {
		n.cancel()
		<-n.regDone
		n.handOver()
	}
	n.stopAll()
	// After stopAll: an instance added before closed was set is stopped
	// there, and its goroutine must still be allowed to start and end.
	n.group.Close()
	close(n.invoker.quit) // invocations still waiting fail
	var errs []error
	if n.metricsSrv != nil {
		errs = append(errs, n.metricsSrv.Close())
	}
	if n.server != nil {
		errs = append(errs, n.server.Close())
	}
	if n.orc != nil {
		errs = append(errs, n.orc.Close())
	}
	n.mu.Lock()
	for _, p := range *n.peers.Load() {
		errs = append(errs, p.Close())
	}
	n.mu.Unlock()
	n.closeProviders()
	n.closeRuntimes()
	if n.state != nil {
		errs = append(errs, n.state.close())
	}
	if n.probes != nil {
		errs = append(errs, n.probes.Close())
	}
	n.log.Info("node stopped")
	return errors.Join(errs...)
}

// Run starts a node and serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	n, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return n.Close()
}

// registerLoop pushes the node's registration to the orchestrator every
// refresh interval, and at once when an instance exits.
func (n *Node) registerLoop(ctx context.Context) {
	defer close(n.regDone)
	interval := n.cfg.refreshInterval()
	t := time.NewTicker(interval)
	defer t.Stop()
	renewed := make(chan time.Time, 1)
	if !n.cfg.SameProcess {
		n.group.Go(func() { n.fenceLoop(ctx, renewed) })
	}
	failing := false
	for {
		sent := time.Now()
		err := n.register(ctx, interval)
		if err == nil {
			select {
			case <-renewed: // replace a renewal not yet taken
			default:
			}
			renewed <- sent
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			n.log.Warn("cannot register with the orchestrator; retrying", "err", err)
			failing = true
		case err == nil && failing:
			n.log.Info("registered with the orchestrator again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
	}
}

// fenced reports whether now is past the lease of the last accepted
// registration: instances must not run. It is cheap enough for every event:
// an atomic load and a monotonic subtraction.
func (n *Node) fenced(now time.Time) bool {
	return int64(now.Sub(n.epoch)) > n.leaseUntil.Load()
}

// fencedNow is fenced at this moment, from a monotonic reading alone:
// cheaper than time.Now's two, on every event an instance sends.
func (n *Node) fencedNow() bool {
	return int64(time.Since(n.epoch)) > n.leaseUntil.Load()
}

// leaseEnd returns when the lease of the last accepted registration ends, or
// a time far ahead before the first one.
func (n *Node) leaseEnd() time.Time {
	return n.epoch.Add(time.Duration(n.leaseUntil.Load()))
}

// fenceLoop stops every instance of a node cut off from its orchestrator (a
// partition, a hang) before the orchestrator re-creates them elsewhere, so
// that no instance ever runs twice. The orchestrator does so once it has not
// heard from the node for 2×refresh after receiving a registration; the
// node stops them 1.75×refresh after sending its last accepted one, which
// the orchestrator received later. renewed carries the sending times.
func (n *Node) fenceLoop(ctx context.Context, renewed <-chan time.Time) {
	lease := n.cfg.refreshInterval() * 7 / 4
	fence := time.NewTimer(time.Hour)
	fence.Stop()
	defer fence.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case sent := <-renewed:
			n.leaseUntil.Store(int64(sent.Add(lease).Sub(n.epoch)))
			fence.Reset(time.Until(sent.Add(lease)))
		case <-fence.C:
			if running := n.running(); len(running) > 0 {
				n.log.Warn("cut off from the orchestrator: stopping every instance, which it re-creates elsewhere",
					"instances", len(running), "since", lease)
				n.stopAll()
				// What they sent and TCP still holds must not arrive once the
				// network heals, after their new copies have taken over.
				for _, p := range *n.peers.Load() {
					p.Reset()
				}
				// An orchestrator that did not give the node up (its
				// registrations were late, not lost) still counts them: the
				// exits tell it to re-create them. One that did has new
				// copies and ignores them.
				for _, inst := range running {
					n.instanceExited(inst.id.Component, "stopped by its node, cut off from the orchestrator past its lease")
				}
			}
		}
	}
}

func (n *Node) register(ctx context.Context, interval time.Duration) error {
	n.mu.Lock()
	exits := n.exits
	n.exits = nil
	n.mu.Unlock()
	samples, logs := n.samples.take()
	health := n.health.read()
	if n.probes != nil {
		st := n.probes.Snapshot()
		health.RunQueueP99US = st.RunQueueP99Micros
		health.ContextSwitches = int64(st.Switches())
		health.TCPRetransmits = int64(st.TCPRetransmits)
	}
	n.cpu.Store(math.Float64bits(health.ProcCPUUsage))
	req := &wire.UpdateNode{
		Node:         n.id,
		Addr:         n.addr,
		Nonce:        n.nonce,
		RefreshMS:    interval.Milliseconds(),
		Capabilities: n.capabilities(),
		Providers:    n.providers(),
		Exits:        exits,
		Health:       health,
		Samples:      samples,
		Logs:         logs,
	}
	ctx, cancel := context.WithTimeout(ctx, interval)
	defer cancel()
	if _, err := wire.Call[wire.UpdateNode, wire.UpdateNodeResponse](ctx, n.orc, wire.MethodOrcUpdateNode, req); err != nil {
		n.mu.Lock()
		n.exits = append(exits, n.exits...) // report them next time
		n.mu.Unlock()
		n.samples.putBack(samples, logs)
		return err
	}
	return nil
}

// leave tells the orchestrator that the node is going, so that what it ran
// is re-created elsewhere now.
func (n *Node) leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := &wire.UpdateNode{Node: n.id, Addr: n.addr, Nonce: n.nonce, Leaving: true}
	_, err := wire.Call[wire.UpdateNode, wire.UpdateNodeResponse](ctx, n.orc, wire.MethodOrcUpdateNode, req)
	return err
}

func (n *Node) capabilities() wire.Capabilities {
	c := n.cfg.Capabilities
	caps := wire.Capabilities{
		NumCPUs:      runtime.NumCPU(),
		NumCores:     runtime.NumCPU(),
		ClockFreqMHz: c.ClockFreqCPU,
		MemSizeMiB:   c.MemSize,
		Labels:       n.labels,
		Runtimes:     n.runtimes(),
		TEE:          c.TEE,
		TPM:          c.TPM,
	}
	caps.MemBudgetMiB, caps.MemFreeMiB = n.memory.free()
	if c.NumCPUs > 0 {
		caps.NumCPUs = c.NumCPUs
	}
	if c.NumCores > 0 {
		caps.NumCores = c.NumCores
	}
	return caps
}

// nodeLabels returns the configured labels plus hostname=<host>, which
// EDGELESS adds to every node so that label_match_all can pin a function to
// a host; a configured hostname= label wins.
func nodeLabels(configured []string) []string {
	labels := slices.Clone(configured)
	if slices.ContainsFunc(labels, func(l string) bool { return strings.HasPrefix(l, "hostname=") }) {
		return labels
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		labels = append(labels, "hostname="+host)
	}
	return labels
}

func (n *Node) providers() []wire.Provider {
	out := make([]wire.Provider, 0, len(n.provs))
	for id, p := range n.provs {
		s := p.Spec()
		out = append(out, wire.Provider{ID: id, ClassType: s.ClassType, Outputs: s.Outputs})
	}
	return out
}

// instanceExited records an instance that ended on its own and asks the
// registration loop to tell the orchestrator now.
func (n *Node) instanceExited(id core.ID, reason string) {
	n.mu.Lock()
	n.exits = append(n.exits, wire.InstanceExit{Component: id, Reason: reason})
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}
