package orc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/core/telemetry"
	"github.com/edgeless-go/edgeless/wire"
)

// component is a logical function or resource and its physical instances.
// Its fields are guarded by o.mu, except q and cloudQ (atomics) and op.
type component struct {
	logical   core.ID
	fn        *wire.FunctionSpec // exactly one of fn and res is set
	res       *wire.ResourceSpec
	req       spec.Requirements
	instances []core.InstanceID
	outputs   map[string]core.ID // channel → logical target
	starting  map[core.ID]int    // node → starts under way there
	gone      bool               // stopped: instances started for it now are stopped at once
	failures  int                // consecutive failures, for the re-creation backoff
	retryAt   time.Time          // no re-creation before this
	started   time.Time          // when the last instance was created
	busyAt    time.Time          // when an invocation last found every instance overloaded
	usedAt    time.Time          // when an invocation last came
	warmAt    time.Time          // when a prewarm last asked for instances
	q         qos                // the edge's load, for the edge-cloud policy
	cloudQ    qos                // and the cloud's

	// op serialises the operations that change the instances across calls
	// to nodes (start, stop, migrate, scale out, prewarm, re-creation), so
	// that each sees the outcome of the one before. It is taken before
	// o.mu, never while holding it.
	op chan struct{}
}

func newComponent(logical core.ID, fn *wire.FunctionSpec, res *wire.ResourceSpec, req spec.Requirements) *component {
	return &component{logical: logical, fn: fn, res: res, req: req, starting: map[core.ID]int{}, op: make(chan struct{}, 1)}
}

// lock takes c's operation lock, unless ctx ends first.
func (c *component) lock(ctx context.Context) error {
	select {
	case c.op <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tryLock takes c's operation lock if it is free.
func (c *component) tryLock() bool {
	select {
	case c.op <- struct{}{}:
		return true
	default:
		return false
	}
}

func (c *component) unlock() { <-c.op }

// Re-creation backoff: the first attempt after a failure is immediate, so a
// crashed function comes back at once; a function that keeps failing is
// retried ever more slowly, up to maxBackoff.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = time.Minute
	// stableAfter is how long an instance must have run for a failure to
	// count as a new first one.
	stableAfter = 30 * time.Second
)

// nextFailure returns the failure count and the time of the next
// re-creation that a failure of c at now leads to.
func (c *component) nextFailure(now time.Time) (int, time.Time) {
	failures := c.failures
	if now.Sub(c.started) > stableAfter {
		failures = 0
	}
	failures++
	delay := time.Duration(0)
	if failures > 1 {
		delay = min(minBackoff<<min(failures-2, 10), maxBackoff)
	}
	return failures, now.Add(delay)
}

// failed records a failure of c at now and returns how long re-creation waits.
func (c *component) failed(now time.Time) time.Duration {
	c.failures, c.retryAt = c.nextFailure(now)
	return c.retryAt.Sub(now)
}

func (c *component) name() string {
	if c.fn != nil {
		return c.fn.Name
	}
	return c.res.Name
}

// Orc is an orchestrator.
type Orc struct {
	cfg   Config
	creds *wire.Credentials // nil when TLS is off
	log   *slog.Logger
	nonce uint64

	server    *wire.Server
	regServer *wire.Server // node_register_url's listener; nil when nodes register at server
	con       *wire.Client
	addr      string
	regAddr   string

	// mu guards the domain's state: the fields below up to proxy, and those
	// of the nodes and components they hold. It is held only to read or
	// change that state, never across a call to another process, so a node
	// that is slow or frozen delays only the operations that wait for its
	// answer. The only other lock, a component's op, is taken before mu.
	mu       sync.Mutex
	nodes    map[core.ID]*node
	exits    []wire.InstanceExit
	states   map[core.ID]wire.SyncedState // newest synced state of each logical function, from the nodes
	comps    map[core.ID]*component
	rr       int           // round-robin turn of placement
	patchSeq uint64        // version of the last output mapping sent
	meshed   chan struct{} // closed, and replaced, each time a node is meshed in
	peering  bool          // a peer round is under way
	peerDel  []core.ID     // nodes that left since the last peer round began
	closing  bool          // spawn starts nothing more

	proxy *redisProxy // nil unless proxy_type is Redis

	reg        *telemetry.Registry
	metricsSrv *telemetry.Server
	invokeRR   atomic.Uint64
	placements *metrics.Counter
	failures   *metrics.Counter // instances lost to node failures and instance exits
	offloaded  *metrics.Counter
	scaledOut  *metrics.Counter
	scaledIn   *metrics.Counter

	kick    chan struct{} // asks for a reconcile now
	regKick chan struct{} // asks for a domain registration now
	ctx     context.Context
	cancel  context.CancelFunc // ends ctx, and with it every call in flight
	group   core.Group         // every goroutine spawn started
	closed  atomic.Bool
}

// New validates cfg and prepares an orchestrator; it opens no sockets.
func New(cfg Config, log *slog.Logger) (*Orc, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid orchestrator configuration: %w", err)
	}
	creds, err := loadCredentials(&cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	o := &Orc{
		cfg:     cfg,
		creds:   creds,
		log:     log.With("domain", cfg.General.DomainID),
		nonce:   rand.Uint64(),
		nodes:   map[core.ID]*node{},
		states:  map[core.ID]wire.SyncedState{},
		comps:   map[core.ID]*component{},
		meshed:  make(chan struct{}),
		kick:    make(chan struct{}, 1),
		regKick: make(chan struct{}, 1),
		reg:     telemetry.NewRegistry(),
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.registerMetrics()
	return o, nil
}

// spawn runs f on a goroutine of its own that Close waits for, with a
// context that Close cancels. Once closing, it runs nothing and returns false.
func (o *Orc) spawn(f func(ctx context.Context)) bool {
	return o.group.Go(func() { f(o.ctx) })
}

// handle adapts a request handler so that Close also ends the calls to
// nodes it makes: a request never holds Close up for longer than a call's
// own cancellation takes.
func handle[Req, Resp any](o *Orc, f func(context.Context, *Req) (*Resp, error)) func(context.Context, *Req) (*Resp, error) {
	return func(ctx context.Context, req *Req) (*Resp, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(o.ctx, cancel)()
		return f(ctx, req)
	}
}

// Start opens the orchestrator's listener and begins registering with the
// controller and reconciling. It returns once the orchestrator serves; when
// it fails, it has closed what it opened.
func (o *Orc) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	if o.cfg.Proxy.ProxyType == "Redis" {
		p, err := newRedisProxy(ctx, o.cfg.Proxy, o.cfg.General.DomainID, o.log)
		if err != nil {
			return err
		}
		o.proxy = p
	}
	listen := o.cfg.General.OrchestratorURL.HostPort()
	mux := &wire.Mux{}
	// A node's keep-alive and its state pushes take o.mu briefly and call
	// nobody: they are answered on the connection's reading goroutine, so
	// that they cost no goroutine nor hand-off, and slow requests (starts
	// that wait for nodes) cannot take all of MaxRequests from them.
	wire.MethodInline(mux, wire.MethodOrcUpdateNode, o.updateNode)
	wire.MethodInline(mux, wire.MethodOrcSyncStates, o.syncStates)
	wire.Method(mux, wire.MethodOrcStartFunction, handle(o, o.startFunction))
	wire.Method(mux, wire.MethodOrcStartResource, handle(o, o.startResource))
	wire.Method(mux, wire.MethodOrcStop, handle(o, o.stop))
	wire.Method(mux, wire.MethodOrcPatch, handle(o, o.patch))
	wire.Method(mux, wire.MethodOrcPlacement, o.placement)
	wire.Method(mux, wire.MethodOrcRoutes, o.routes)
	wire.Method(mux, wire.MethodOrcCordon, o.cordon)
	wire.Method(mux, wire.MethodOrcMigrate, handle(o, o.migrate))
	wire.Method(mux, wire.MethodOrcNodes, o.nodeList)
	wire.Method(mux, wire.MethodOrcInvoke, handle(o, o.invoke))
	wire.Method(mux, wire.MethodOrcPrewarm, handle(o, o.prewarm))
	srv, err := o.serve(ctx, listen, mux)
	if err != nil {
		return fmt.Errorf("cannot start orchestrator on %s: %w", listen, err)
	}
	o.server = srv
	o.addr = wire.Announced(srv.Addr())
	o.regAddr = o.addr
	if err := o.startNodeRegister(ctx); err != nil {
		return err
	}
	if err := o.startMetrics(); err != nil {
		return err
	}
	if a := o.cfg.General.OrchestratorURLAnnounced; !a.IsZero() {
		o.addr = a.HostPort()
	}
	conAddr := o.cfg.General.DomainRegisterURL.HostPort()
	o.con = wire.NewClient(conAddr, o.clientOptions(wire.Identity{Role: wire.RoleController}, nil))
	o.spawn(o.reconcileLoop)
	o.spawn(o.registerLoop)
	if o.proxy != nil {
		o.spawn(o.proxyLoop)
	}
	o.log.Info("orchestrator started", "addr", o.addr, "controller", conAddr, "strategy", o.cfg.Baseline.OrchestrationStrategy)
	return nil
}

// startNodeRegister opens the separate node registration listener of
// EDGELESS's layout (node_register_url) when it differs from
// orchestrator_url, which accepts registrations as well.
func (o *Orc) startNodeRegister(ctx context.Context) error {
	u := o.cfg.General.NodeRegisterURL
	if u.IsZero() || u.HostPort() == o.cfg.General.OrchestratorURL.HostPort() {
		return nil
	}
	listen := u.HostPort()
	mux := &wire.Mux{}
	wire.MethodInline(mux, wire.MethodOrcUpdateNode, o.updateNode)
	srv, err := o.serve(ctx, listen, mux)
	if err != nil {
		return fmt.Errorf("cannot serve node registration on %s: %w", listen, err)
	}
	o.regServer = srv
	o.regAddr = srv.Addr()
	return nil
}

// serve starts a control listener on addr answering the methods of mux.
func (o *Orc) serve(ctx context.Context, addr string, mux *wire.Mux) (*wire.Server, error) {
	// Its connections are the nodes' and the controller's, mostly idle: Go's
	// poller, not gnet's event loops (see wire.ServerConfig.Net).
	scfg := wire.ServerConfig{Addr: addr, MaxFrame: wire.MaxControlFrame, Log: o.log, Handler: dropEvents{}, Mux: mux, Net: true}
	if o.creds != nil {
		scfg.TLS = o.creds.ServerTLS()
		scfg.Authorize = authorize
		scfg.EventsFrom = func(wire.Identity) bool { return false }
	}
	srv, err := wire.NewServer(scfg)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return srv, nil
}

// Addr returns the address the controller reaches the orchestrator at; nodes
// may register there too.
func (o *Orc) Addr() string { return o.addr }

// NodeRegisterAddr returns the address nodes register at: node_register_url's
// listener, or Addr when there is no separate one.
func (o *Orc) NodeRegisterAddr() string { return o.regAddr }

// Close stops the loops and the listener. Instances keep running on their
// nodes: they belong to the controller's workflows, not to this process.
func (o *Orc) Close() error {
	if !o.closed.CompareAndSwap(false, true) {
		return nil
	}
	o.cancel()
	o.group.Close()
	var errs []error
	if o.server != nil {
		errs = append(errs, o.server.Close())
	}
	if o.regServer != nil {
		errs = append(errs, o.regServer.Close())
	}
	if o.metricsSrv != nil {
		errs = append(errs, o.metricsSrv.Close())
	}
	if o.con != nil {
		errs = append(errs, o.con.Close())
	}
	if err := o.proxy.close(); err != nil {
		errs = append(errs, fmt.Errorf("cannot close the Redis proxy: %w", err))
	}
	o.mu.Lock()
	nodes := slices.Collect(maps.Values(o.nodes))
	o.mu.Unlock()
	for _, n := range nodes {
		errs = append(errs, n.close())
	}
	o.log.Info("orchestrator stopped")
	return errors.Join(errs...)
}

// Run starts an orchestrator and serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	o, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := o.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return o.Close()
}

// clientOptions are those of a connection to peer; onLost, when set, is
// called when an established connection breaks.
func (o *Orc) clientOptions(peer wire.Identity, onLost func()) wire.ClientOptions {
	opts := wire.ControlOptions(o.log)
	opts.OnLost = onLost
	if o.creds != nil {
		opts.TLS = o.creds.ClientTLS(peer)
	}
	return opts
}

// loadCredentials returns the orchestrator's TLS credentials, or nil with TLS
// off. The certificate names the domain.
func loadCredentials(cfg *Config) (*wire.Credentials, error) {
	if !cfg.TLS.Enabled {
		return nil, nil
	}
	c, err := wire.LoadRole(wire.RoleOrchestrator, cfg.Credentials, cfg.TLS.CAPath, cfg.TLS.CertPath, cfg.TLS.KeyPath)
	if err == nil && c.Identity().ID != cfg.General.DomainID {
		err = fmt.Errorf("invalid orchestrator certificate: it is for domain %q, the configuration's general.domain_id is %q", c.Identity().ID, cfg.General.DomainID)
	}
	return c, err
}

// authorize lets nodes register and the controller give orders.
func authorize(peer wire.Identity, method string) error {
	want := wire.RoleController
	if method == wire.MethodOrcUpdateNode || method == wire.MethodOrcSyncStates {
		want = wire.RoleNode
	}
	if peer.Role != want {
		return fmt.Errorf("only a %s may", want)
	}
	return nil
}

// dropEvents refuses dataplane events: nothing runs at the orchestrator.
type dropEvents struct{}

func (dropEvents) HandleEvent(*core.Event) {}

func (o *Orc) wake() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// syncStates keeps the newest state of each function a node pushes, for an
// instance re-created elsewhere after its node is lost. A node's push counts
// only for the functions it hosts or is starting.
func (o *Orc) syncStates(ctx context.Context, req *wire.SyncStates) (*wire.Empty, error) {
	if peer := wire.PeerIdentity(ctx); peer.Authenticated() && peer.ID != req.Node.String() {
		return nil, fmt.Errorf("node %s: states refused: the certificate is that of node %s", req.Node, peer.ID)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var refused []core.ID
	for _, s := range req.States {
		if c := o.comps[s.Logical]; c == nil || !c.hostedOn(req.Node) {
			refused = append(refused, s.Logical)
			continue
		}
		if old, ok := o.states[s.Logical]; !ok || s.Seq > old.Seq {
			o.states[s.Logical] = s
		}
	}
	if len(refused) > 0 {
		// A late push from a node the function has left, or a node
		// overreaching: either way not the function's state.
		o.log.Debug("states refused: the node hosts none of these functions", "node", req.Node, "functions", refused)
	}
	return &wire.Empty{}, nil
}

// hostedOn reports whether node id hosts an instance of c or is starting one.
func (c *component) hostedOn(id core.ID) bool {
	return c.starting[id] > 0 || slices.ContainsFunc(c.instances, func(i core.InstanceID) bool { return i.Node == id })
}

// state returns the newest state held for a logical function, or nil.
func (o *Orc) state(logical core.ID) *wire.SyncedState {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.states[logical]; ok {
		return &s
	}
	return nil
}

// updateNode handles a node's registration and keep-alive. A node that is new,
// or whose nonce changed because it restarted, is (re)admitted; its peers are
// updated by the next reconcile.
func (o *Orc) updateNode(ctx context.Context, req *wire.UpdateNode) (*wire.UpdateNodeResponse, error) {
	addr, err := wire.ParseAddr(req.Addr)
	if err != nil || req.Node.IsZero() {
		return nil, fmt.Errorf("node %s: bad registration (address %q)", req.Node, req.Addr)
	}
	if peer := wire.PeerIdentity(ctx); peer.Authenticated() && peer.ID != req.Node.String() {
		o.log.Warn("refusing a registration that claims another node's id", "node", req.Node, "certificate", peer.ID)
		return nil, fmt.Errorf("node %s: registration refused: the certificate is that of node %s", req.Node, peer.ID)
	}
	now := time.Now()
	refresh := time.Duration(req.RefreshMS) * time.Millisecond
	deadline := now.Add(2 * refresh)
	o.mu.Lock()
	n := o.nodes[req.Node]
	if n != nil && n.nonce == req.Nonce && !req.Leaving {
		// A keep-alive: the common case, a few field stores.
		n.deadline, n.refresh, n.caps, n.providers = deadline, refresh, req.Capabilities, req.Providers
		n.alive(now)
		if len(req.Exits) > 0 {
			o.exits = append(o.exits, req.Exits...)
			o.wake()
		}
		o.proxy.record(req, now)
		o.mu.Unlock()
		return &wire.UpdateNodeResponse{}, nil
	}
	// Logs are written once o.mu is released: a write may wait.
	if n != nil && n.nonce != req.Nonce && n.addr != addr && now.Before(n.deadline) && !n.client.Down() {
		o.mu.Unlock()
		// Another live process holds this id: a copied configuration or
		// certificate. Admitting it would make the two flap forever.
		o.log.Warn("refusing a second node with the same node_id while the first is alive", "node", req.Node,
			"registered_addr", n.addr, "refused_addr", addr)
		return nil, fmt.Errorf("node %s: registration refused: node_id already in use by a live node at %s", req.Node, n.addr)
	}
	o.exits = append(o.exits, req.Exits...)
	o.proxy.record(req, now)
	if req.Leaving {
		leaving := n != nil && n.nonce == req.Nonce
		if leaving {
			n.deadline = time.Time{} // expired: the next reconcile, now, drops it
			o.wake()
		}
		o.mu.Unlock()
		if leaving {
			o.log.Info("node is leaving; re-creating its instances elsewhere", "node", req.Node)
		}
		return &wire.UpdateNodeResponse{}, nil
	}
	fresh := &node{
		id: req.Node, addr: addr, nonce: req.Nonce, refresh: refresh, deadline: deadline,
		caps: req.Capabilities, providers: req.Providers,
		// A broken connection to a node is the first sign of its failure
		// (a crash, kill -9): reconcile at once rather than at its deadline.
		client: wire.NewClient(addr, o.clientOptions(wire.Identity{Role: wire.RoleNode, ID: req.Node.String()}, o.wake)),
		probe:  wire.NewClient(addr, o.clientOptions(wire.Identity{Role: wire.RoleNode, ID: req.Node.String()}, nil)),
	}
	fresh.alive(now)
	o.nodes[req.Node] = fresh
	o.wake()
	o.mu.Unlock()
	if n != nil {
		o.log.Warn("node restarted; its instances are lost", "node", req.Node)
		if !o.spawn(func(context.Context) { n.close() }) { // it may flush
			n.close() // closing: Close no longer sees it among o.nodes
		}
	} else {
		o.log.Info("node joined", "node", req.Node, "addr", addr, "runtimes", req.Capabilities.Runtimes)
	}
	return &wire.UpdateNodeResponse{Reset: n != nil}, nil
}

func (o *Orc) node(id core.ID) *node {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.nodes[id]
}

// registerLoop keeps the domain registered with the controller.
func (o *Orc) registerLoop(ctx context.Context) {
	interval := o.cfg.refreshInterval()
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		err := o.register(ctx, interval)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			o.log.Warn("cannot register with the controller; retrying", "err", err)
			failing = true
		case err == nil && failing:
			o.log.Info("registered with the controller again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.regKick:
		}
	}
}

func (o *Orc) register(ctx context.Context, interval time.Duration) error {
	o.mu.Lock()
	req := &wire.UpdateDomain{
		Domain:    o.cfg.General.DomainID,
		Addr:      o.addr,
		Nonce:     o.nonce,
		RefreshMS: interval.Milliseconds(),
		Cloud:     o.cfg.Scheduling.CloudDomain,
	}
	runtimes, classes := map[string]bool{}, map[string]bool{}
	for _, n := range o.nodes {
		if n.meshed {
			req.Nodes++
		}
		req.Capabilities.NumCPUs += n.caps.NumCPUs
		req.Capabilities.NumCores += n.caps.NumCores
		for _, r := range n.caps.Runtimes {
			runtimes[r] = true
		}
		for _, p := range n.providers {
			classes[p.ClassType] = true
		}
	}
	o.mu.Unlock()
	req.Capabilities.Runtimes = slices.Sorted(maps.Keys(runtimes))
	req.ResourceTypes = slices.Sorted(maps.Keys(classes))
	ctx, cancel := context.WithTimeout(ctx, interval)
	defer cancel()
	resp, err := wire.Call[wire.UpdateDomain, wire.UpdateDomainResponse](ctx, o.con, wire.MethodConUpdateDomain, req)
	if err != nil {
		return err
	}
	if resp.Reset {
		o.resetDomain(ctx)
	}
	return nil
}

// resetDomain stops everything: the controller does not know this domain (it
// restarted), so whatever runs here is nobody's any more.
func (o *Orc) resetDomain(ctx context.Context) {
	o.mu.Lock()
	var insts []core.InstanceID
	for id, c := range o.comps {
		insts = append(insts, c.instances...)
		c.instances, c.gone = nil, true
		delete(o.comps, id)
	}
	clear(o.states)
	o.mu.Unlock()
	if len(insts) > 0 {
		o.log.Warn("controller reset the domain; stopping all instances", "instances", len(insts))
		o.stopInstances(ctx, insts)
	}
}
