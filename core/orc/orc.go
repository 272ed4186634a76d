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

// node is a registered node of the domain.
type node struct {
	id        core.ID
	addr      string
	nonce     uint64
	deadline  time.Time
	caps      wire.Capabilities
	providers []wire.Provider
	client    *wire.Client
	meshed    bool // peers have been told about it
	cordoned  bool // gets no new instances
}

// component is a logical function or resource and its physical instances.
type component struct {
	logical   core.ID
	fn        *wire.FunctionSpec // exactly one of fn and res is set
	res       *wire.ResourceSpec
	req       spec.Requirements
	instances []core.InstanceID
	outputs   map[string]core.ID // channel → logical target
	failures  int                // consecutive failures, for the re-creation backoff
	retryAt   time.Time          // no re-creation before this
	started   time.Time          // when the last instance was created
	busyAt    time.Time          // when an invocation last found every instance overloaded
	usedAt    time.Time          // when an invocation last came
	warmAt    time.Time          // when a prewarm last asked for instances
	q         qos                // the edge's load, for the edge-cloud policy
	cloudQ    qos                // and the cloud's
}

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

// failed records a failure of c at now and returns how long re-creation waits.
func (c *component) failed(now time.Time) time.Duration {
	if now.Sub(c.started) > stableAfter {
		c.failures = 0
	}
	c.failures++
	delay := time.Duration(0)
	if c.failures > 1 {
		delay = min(minBackoff<<min(c.failures-2, 10), maxBackoff)
	}
	c.retryAt = now.Add(delay)
	return delay
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

	regMu  sync.Mutex // guards nodes, exits and states; held briefly, never across a call
	nodes  map[core.ID]*node
	exits  []wire.InstanceExit
	states map[core.ID]wire.SyncedState // newest synced state of each logical function, from the nodes

	opMu  sync.Mutex // serialises operations on comps, which call nodes
	comps map[core.ID]*component
	rr    int

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
	cancel  context.CancelFunc
	wg      sync.WaitGroup
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
		kick:    make(chan struct{}, 1),
		regKick: make(chan struct{}, 1),
		reg:     telemetry.NewRegistry(),
	}
	o.registerMetrics()
	return o, nil
}

// Start opens the orchestrator's listener and begins registering with the
// controller and reconciling. It returns once the orchestrator serves.
func (o *Orc) Start(ctx context.Context) error {
	if o.cfg.Proxy.ProxyType == "Redis" {
		p, err := newRedisProxy(ctx, o.cfg.Proxy, o.cfg.General.DomainID, o.log)
		if err != nil {
			return err
		}
		o.proxy = p
	}
	listen, _ := wire.ParseAddr(o.cfg.General.OrchestratorURL)
	mux := &wire.Mux{}
	wire.Method(mux, wire.MethodOrcUpdateNode, o.updateNode)
	wire.Method(mux, wire.MethodOrcSyncStates, o.syncStates)
	wire.Method(mux, wire.MethodOrcStartFunction, o.startFunction)
	wire.Method(mux, wire.MethodOrcStartResource, o.startResource)
	wire.Method(mux, wire.MethodOrcStop, o.stop)
	wire.Method(mux, wire.MethodOrcPatch, o.patch)
	wire.Method(mux, wire.MethodOrcPlacement, o.placement)
	wire.Method(mux, wire.MethodOrcCordon, o.cordon)
	wire.Method(mux, wire.MethodOrcMigrate, o.migrate)
	wire.Method(mux, wire.MethodOrcNodes, o.nodeList)
	wire.Method(mux, wire.MethodOrcInvoke, o.invoke)
	wire.Method(mux, wire.MethodOrcPrewarm, o.prewarm)
	srv, err := o.serve(ctx, listen, mux)
	if err != nil {
		o.proxy.close()
		return fmt.Errorf("cannot start orchestrator on %s: %w", listen, err)
	}
	o.server = srv
	o.addr = wire.Announced(srv.Addr())
	o.regAddr = o.addr
	if err := o.startNodeRegister(ctx); err != nil {
		srv.Close()
		o.proxy.close()
		return err
	}
	if err := o.startMetrics(); err != nil {
		srv.Close()
		if o.regServer != nil {
			o.regServer.Close()
		}
		o.proxy.close()
		return err
	}
	if a := o.cfg.General.OrchestratorURLAnnounced; a != "" {
		o.addr, _ = wire.ParseAddr(a)
	}
	conAddr, _ := wire.ParseAddr(o.cfg.General.DomainRegisterURL)
	o.con = wire.NewClient(conAddr, o.clientOptions(wire.Identity{Role: wire.RoleController}, nil))
	ctx, o.cancel = context.WithCancel(context.Background())
	o.wg.Add(2)
	go o.reconcileLoop(ctx)
	go o.registerLoop(ctx)
	if o.proxy != nil {
		o.wg.Add(1)
		go o.proxyLoop(ctx)
	}
	o.log.Info("orchestrator started", "addr", o.addr, "controller", conAddr, "strategy", o.cfg.Baseline.OrchestrationStrategy)
	return nil
}

// startNodeRegister opens the separate node registration listener of
// EDGELESS's layout (node_register_url) when it differs from
// orchestrator_url, which accepts registrations as well.
func (o *Orc) startNodeRegister(ctx context.Context) error {
	u := o.cfg.General.NodeRegisterURL
	if u == "" || u == o.cfg.General.OrchestratorURL {
		return nil
	}
	listen, _ := wire.ParseAddr(u)
	mux := &wire.Mux{}
	wire.Method(mux, wire.MethodOrcUpdateNode, o.updateNode)
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
	scfg := wire.ServerConfig{Addr: addr, MaxFrame: wire.MaxControlFrame, Log: o.log, Handler: dropEvents{}, Mux: mux}
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
	if o.cancel != nil {
		o.cancel()
	}
	o.wg.Wait()
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
	o.regMu.Lock()
	for _, n := range o.nodes {
		errs = append(errs, n.client.Close())
	}
	o.regMu.Unlock()
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
// instance re-created elsewhere after its node is lost.
func (o *Orc) syncStates(ctx context.Context, req *wire.SyncStates) (*wire.Empty, error) {
	if peer := wire.PeerIdentity(ctx); peer.Authenticated() && peer.ID != req.Node.String() {
		return nil, fmt.Errorf("node %s: states refused: the certificate is that of node %s", req.Node, peer.ID)
	}
	o.regMu.Lock()
	defer o.regMu.Unlock()
	for _, s := range req.States {
		if old, ok := o.states[s.Logical]; !ok || s.Seq > old.Seq {
			o.states[s.Logical] = s
		}
	}
	return &wire.Empty{}, nil
}

// state returns the newest state held for a logical function, or nil.
func (o *Orc) state(logical core.ID) *wire.SyncedState {
	o.regMu.Lock()
	defer o.regMu.Unlock()
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
	deadline := now.Add(2 * time.Duration(req.RefreshMS) * time.Millisecond)
	o.regMu.Lock()
	defer o.regMu.Unlock()
	if n := o.nodes[req.Node]; n != nil && n.nonce != req.Nonce && n.addr != addr && now.Before(n.deadline) && !n.client.Down() {
		// Another live process holds this id: a copied configuration or
		// certificate. Admitting it would make the two flap forever.
		o.log.Warn("refusing a second node with the same node_id while the first is alive", "node", req.Node,
			"registered_addr", n.addr, "refused_addr", addr)
		return nil, fmt.Errorf("node %s: registration refused: node_id already in use by a live node at %s", req.Node, n.addr)
	}
	o.exits = append(o.exits, req.Exits...)
	o.proxy.record(req, time.Now())
	n := o.nodes[req.Node]
	if req.Leaving {
		if n != nil && n.nonce == req.Nonce {
			o.log.Info("node is leaving; re-creating its instances elsewhere", "node", req.Node)
			n.deadline = time.Time{} // expired: the next reconcile, now, drops it
			o.wake()
		}
		return &wire.UpdateNodeResponse{}, nil
	}
	if n != nil && n.nonce == req.Nonce {
		n.deadline, n.caps, n.providers = deadline, req.Capabilities, req.Providers
		if len(req.Exits) > 0 {
			o.wake()
		}
		return &wire.UpdateNodeResponse{}, nil
	}
	if n != nil {
		o.log.Warn("node restarted; its instances are lost", "node", req.Node)
		n.client.Close()
	} else {
		o.log.Info("node joined", "node", req.Node, "addr", addr, "runtimes", req.Capabilities.Runtimes)
	}
	o.nodes[req.Node] = &node{
		id: req.Node, addr: addr, nonce: req.Nonce, deadline: deadline,
		caps: req.Capabilities, providers: req.Providers,
		// A broken connection to a node is the first sign of its failure
		// (a crash, kill -9): reconcile at once rather than at its deadline.
		client: wire.NewClient(addr, o.clientOptions(wire.Identity{Role: wire.RoleNode, ID: req.Node.String()}, o.wake)),
	}
	o.wake()
	return &wire.UpdateNodeResponse{Reset: n != nil}, nil
}

func (o *Orc) reconcileLoop(ctx context.Context) {
	defer o.wg.Done()
	t := time.NewTicker(time.Duration(o.cfg.General.ReconcileIntervalMS) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.kick:
		}
		o.reconcile(ctx)
	}
}

// reconcile drops expired nodes, wires new ones into the mesh, re-creates
// instances that were lost and repatches whatever pointed at them.
func (o *Orc) reconcile(ctx context.Context) {
	now := time.Now()
	o.regMu.Lock()
	var expired, fresh []*node
	for id, n := range o.nodes {
		// A node whose connection broke and cannot be redialled is gone: a
		// node that is alive answers, and one that comes back registers anew.
		if now.After(n.deadline) || n.client.Down() {
			expired = append(expired, n)
			delete(o.nodes, id)
		} else if !n.meshed {
			fresh = append(fresh, n)
			n.meshed = true
		}
	}
	exits := o.exits
	o.exits = nil
	all := o.liveNodesLocked()
	o.regMu.Unlock()

	if len(expired)+len(fresh) > 0 {
		select { // the controller should see the new capacity now
		case o.regKick <- struct{}{}:
		default:
		}
	}
	o.opMu.Lock()
	defer o.opMu.Unlock()
	changed := map[core.ID]bool{}
	for _, n := range expired {
		o.log.Warn("node lost (refresh deadline missed, or unreachable); re-creating its instances elsewhere", "node", n.id)
		n.client.Close()
		for _, c := range o.comps {
			if dropInstances(c, func(i core.InstanceID) bool { return i.Node == n.id }) {
				changed[c.logical] = true
				o.failures.Inc()
			}
		}
		for _, m := range all {
			callNode(ctx, o, m, wire.MethodNodePeers, &wire.UpdatePeers{Del: []core.ID{n.id}})
		}
	}
	for _, n := range fresh {
		// Whatever a node we did not know runs is nobody's: an orchestrator
		// that restarted has forgotten it.
		callNode(ctx, o, n, wire.MethodNodeReset, &wire.Empty{})
		peers := make([]wire.Peer, 0, len(all))
		for _, m := range all {
			peers = append(peers, wire.Peer{Node: m.id, Addr: m.addr})
			if m.id != n.id {
				callNode(ctx, o, m, wire.MethodNodePeers, &wire.UpdatePeers{Add: []wire.Peer{{Node: n.id, Addr: n.addr}}})
			}
		}
		callNode(ctx, o, n, wire.MethodNodePeers, &wire.UpdatePeers{Add: peers})
		// A node that restarted comes back empty: drop what it used to run.
		for _, c := range o.comps {
			if dropInstances(c, func(i core.InstanceID) bool { return i.Node == n.id }) {
				changed[c.logical] = true
			}
		}
	}
	for _, e := range exits {
		for _, c := range o.comps {
			if dropInstances(c, func(i core.InstanceID) bool { return i.Component == e.Component }) {
				delay := c.failed(now)
				o.failures.Inc()
				o.log.Warn("instance ended; re-creating it", "component", c.name(), "instance", e.Component, "reason", e.Reason, "after", delay)
				changed[c.logical] = true
			}
		}
	}
	o.scaleIn(ctx, now)
	for _, c := range o.comps {
		if len(c.instances) >= c.want() || now.Before(c.retryAt) {
			continue
		}
		before := len(c.instances)
		err := o.fill(ctx, c, nil)
		if len(c.instances) != before {
			c.started = now
			changed[c.logical] = true
		}
		if err != nil {
			o.log.Warn("cannot re-create component; will retry", "component", c.name(), "err", err, "after", c.failed(now))
		}
	}
	o.repatch(ctx, changed)
}

// dropInstances removes the instances matching gone and reports whether any were.
func dropInstances(c *component, gone func(core.InstanceID) bool) bool {
	n := len(c.instances)
	c.instances = slices.DeleteFunc(c.instances, gone)
	return len(c.instances) != n
}

// repatch sends fresh output mappings to every instance of a changed component
// and of every component that maps a channel to a changed one.
func (o *Orc) repatch(ctx context.Context, changed map[core.ID]bool) {
	if len(changed) == 0 {
		return
	}
	for _, c := range o.comps {
		affected := changed[c.logical]
		for _, t := range c.outputs {
			affected = affected || changed[t]
		}
		if affected {
			o.patchComponent(ctx, c)
		}
	}
}

func (o *Orc) liveNodesLocked() []*node {
	out := make([]*node, 0, len(o.nodes))
	for _, n := range o.nodes {
		out = append(out, n)
	}
	return out
}

func (o *Orc) node(id core.ID) *node {
	o.regMu.Lock()
	defer o.regMu.Unlock()
	return o.nodes[id]
}

// callNode sends a control request to a node, logging a failure: the
// reconcile loop retries what matters on its next turn.
func callNode[Req any](ctx context.Context, o *Orc, n *node, method string, req *Req) {
	if err := request(ctx, n, method, req); err != nil {
		o.log.Warn("node request failed", "node", n.id, "method", method, "err", err)
	}
}

// request sends a control request to a node and waits for its answer.
func request[Req any](ctx context.Context, n *node, method string, req *Req) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := wire.Call[Req, wire.Empty](ctx, n.client, method, req)
	return err
}

// registerLoop keeps the domain registered with the controller.
func (o *Orc) registerLoop(ctx context.Context) {
	defer o.wg.Done()
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
	o.regMu.Lock()
	req := &wire.UpdateDomain{
		Domain:    o.cfg.General.DomainID,
		Addr:      o.addr,
		Nonce:     o.nonce,
		RefreshMS: interval.Milliseconds(),
		Nodes:     len(o.nodes),
	}
	runtimes, classes := map[string]bool{}, map[string]bool{}
	for _, n := range o.nodes {
		req.Capabilities.NumCPUs += n.caps.NumCPUs
		req.Capabilities.NumCores += n.caps.NumCores
		for _, r := range n.caps.Runtimes {
			runtimes[r] = true
		}
		for _, p := range n.providers {
			classes[p.ClassType] = true
		}
	}
	o.regMu.Unlock()
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
	o.opMu.Lock()
	defer o.opMu.Unlock()
	if len(o.comps) == 0 {
		return
	}
	o.log.Warn("controller reset the domain; stopping all components", "components", len(o.comps))
	for id, c := range o.comps {
		o.stopInstances(ctx, c)
		delete(o.comps, id)
	}
}
