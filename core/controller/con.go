package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/core/telemetry"
	"github.com/edgeless-go/edgeless/internal/fastserve"
	"github.com/edgeless-go/edgeless/wire"
	"github.com/valyala/fasthttp"
)

// domain is a registered orchestration domain.
type domain struct {
	id        string
	addr      string
	nonce     uint64
	deadline  time.Time
	nodes     int
	cores     int
	runtimes  []string
	resources []string
	cloud     bool // designated cloud by its orchestrator
	client    *wire.Client
	// ready is false from a reset until the domain's next registration: by
	// then it has dropped what it ran, so deploying there is safe.
	ready bool
}

// Con is a controller.
type Con struct {
	cfg   Config
	log   *slog.Logger
	creds *wire.Credentials // nil when TLS is off
	auth  *authenticator    // nil: the API authenticates nobody
	https bool              // the API is served over TLS

	http     *fasthttp.Server // the API (fastfront.go)
	httpLn   net.Listener
	server   *wire.Server
	httpAddr string

	mu        sync.Mutex // guards domains, known and workflows; never held across a call
	domains   map[string]*domain
	known     map[string]uint64 // nonce of each domain under which our workflows run there
	workflows map[core.ID]*workflow
	hosts     map[string]core.ID // http-ingress host → the workflow owning it
	// compositions by name; guarded by mu
	compositions map[string]*spec.Composition

	faasMu sync.Mutex // serialises function creation, so that names stay unique
	bodies *budget    // bytes of request bodies being decoded
	// bodyWait is how long a request waits for room in bodies.
	bodyWait time.Duration
	async    *asyncResults
	direct   *direct // routes for invoking functions on their nodes
	store    *store  // the persistence files; nil without persistence_filename

	reg        *telemetry.Registry
	metricsSrv *telemetry.Server
	started    *metrics.Counter // workflow starts that succeeded
	failed     *metrics.Counter // and that failed
	redeployed *metrics.Counter
	// Invocations by path: straight to an instance, or through the
	// orchestrator (no route, or the instance could not take it).
	invokedDirect, invokedOrc *metrics.Counter
	// invocations an edge domain turned away that a cloud domain served
	cloudOffloads *metrics.Counter

	cancel context.CancelFunc
	group  core.Group // every goroutine the controller starts
	closed atomic.Bool
}

// New validates cfg and prepares a controller; it opens no sockets.
func New(cfg Config, log *slog.Logger) (*Con, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid controller configuration: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	creds, err := loadCredentials(&cfg)
	if err != nil {
		return nil, err
	}
	auth, err := newAuthenticator(cfg.TokensPath, cfg.Tokens, log.With("component", "controller"))
	if err != nil {
		return nil, fmt.Errorf("%w (make one with `edgeless cert token`, or set tokens_path = \"\" on a trusted network)", err)
	}
	async, err := newAsyncStore(&cfg, log.With("component", "controller"))
	if err != nil {
		return nil, err
	}
	c := &Con{
		cfg:          cfg,
		creds:        creds,
		auth:         auth,
		https:        cfg.ControllerURL.HTTPS(),
		log:          log.With("component", "controller"),
		domains:      map[string]*domain{},
		known:        map[string]uint64{},
		workflows:    map[core.ID]*workflow{},
		hosts:        map[string]core.ID{},
		compositions: map[string]*spec.Composition{},
		reg:          telemetry.NewRegistry(),
		bodies:       newBudget(cfg.bodyBudget()),
		bodyWait:     bodyWait,
		async:        async,
	}
	c.direct = newDirect(c)
	const invocations, invocationsHelp = "edgeless_con_invocations_total", "Function invocations, by path: direct to an instance, or through the orchestrator."
	c.invokedDirect = c.reg.Counter(invocations, invocationsHelp, `path="direct"`)
	c.invokedOrc = c.reg.Counter(invocations, invocationsHelp, `path="orchestrator"`)
	const starts = "edgeless_con_workflow_starts_total"
	c.started = c.reg.Counter(starts, "Workflow start requests, by result.", `result="ok"`)
	c.failed = c.reg.Counter(starts, "Workflow start requests, by result.", `result="failed"`)
	c.redeployed = c.reg.Counter("edgeless_con_workflow_redeployments_total", "Workflows re-deployed after their domain was lost.", "")
	c.cloudOffloads = c.reg.Counter("edgeless_con_cloud_offloads_total", "Invocations an edge domain could not serve in time that a cloud domain served (edge-cloud policy).", "")
	c.reg.Gauge("edgeless_con_workflows", "Admitted workflows.", "", func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(len(c.workflows))
	})
	c.reg.Gauge("edgeless_con_request_body_bytes", "Bytes of request bodies being decoded, bounded by body_budget_mb.", "", func() float64 {
		used, _ := c.bodies.inUse()
		return float64(used)
	})
	c.reg.Gauge("edgeless_con_domains", "Registered orchestration domains.", "", func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(len(c.domains))
	})
	return c, nil
}

// Start opens the domain registration listener and the HTTP API. It returns
// once both serve. When it fails, what it opened is closed again.
func (c *Con) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := c.load(); err != nil {
		return err
	}
	if err := c.async.open(); err != nil {
		return err
	}
	mux := &wire.Mux{}
	wire.Method(mux, wire.MethodConUpdateDomain, c.updateDomain)
	regAddr := c.cfg.DomainRegisterURL.HostPort()
	scfg := wire.ServerConfig{Addr: regAddr, MaxFrame: wire.MaxControlFrame, Log: c.log, Handler: dropEvents{}, Mux: mux}
	if c.creds != nil {
		scfg.TLS = c.creds.ServerTLS()
		scfg.Authorize = func(peer wire.Identity, _ string) error {
			if peer.Role != wire.RoleOrchestrator {
				return errors.New("only an orchestrator registers its domain")
			}
			return nil
		}
		scfg.EventsFrom = func(wire.Identity) bool { return false }
	}
	srv, err := wire.NewServer(scfg)
	if err != nil {
		return err
	}
	c.server = srv
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("cannot listen for domains on %s: %w", regAddr, err)
	}
	addr := c.cfg.ControllerURL.HostPort()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen for the API on %s: %w", addr, err)
	}
	c.httpAddr = ln.Addr().String()
	limits := core.APILimits()
	ln = limits.Listener(ln)
	if c.https {
		// TLS for our clients, plain HTTP for serverledge-cli on the same
		// port; the handlers confine plain requests to Serverledge's paths.
		ln = newSniffListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c.creds.Certificate()}})
	}
	c.httpLn = ln
	if !c.cfg.MetricsURL.IsZero() {
		c.metricsSrv = telemetry.NewServer(c.reg, c.cfg.Pprof, c.log)
		if err := c.metricsSrv.Start(c.cfg.MetricsURL.HostPort()); err != nil {
			c.metricsSrv = nil
			ln.Close()
			return err
		}
	}
	ctx, c.cancel = context.WithCancel(context.Background())
	// fasthttp serves the API's handlers: fastfront.go.
	front := newFastFront(c.routes(), c.log)
	front.native = c.fastInvoke
	c.http = fastserve.Server(limits, c.cfg.MaxWorkflowMB<<20, true, front.serve, c.log)
	c.http.NoDefaultContentType = true // as net/http, which sniffs
	c.group.Go(func() {
		if err := c.http.Serve(ln); err != nil && !c.closed.Load() {
			c.log.Error("API server failed", "err", err)
		}
	})
	c.group.Go(func() { c.maintainLoop(ctx) })
	c.group.Go(func() { c.direct.loop(ctx) })
	c.log.Info("controller started", "api", c.URL(), "domain_register", srv.Addr(), "tls", c.creds != nil,
		"authentication", c.auth != nil)
	if c.auth == nil {
		c.log.Warn("the API authenticates nobody (tokens_path is empty): anyone who reaches it may run code on the nodes")
	}
	return nil
}

// Addr returns the host:port of the HTTP API.
func (c *Con) Addr() string { return c.httpAddr }

// URL returns the URL of the HTTP API.
func (c *Con) URL() string {
	if c.https {
		return "https://" + c.httpAddr
	}
	return "http://" + c.httpAddr
}

// loadCredentials returns the controller's TLS credentials, or nil with TLS
// off.
func loadCredentials(cfg *Config) (*wire.Credentials, error) {
	if !cfg.TLS.Enabled {
		return nil, nil
	}
	return wire.LoadRole(wire.RoleController, cfg.Credentials, cfg.TLS.CAPath, cfg.TLS.CertPath, cfg.TLS.KeyPath)
}

// MetricsAddr returns the address of the controller's /metrics endpoint, or "".
func (c *Con) MetricsAddr() string {
	if c.metricsSrv == nil {
		return ""
	}
	return c.metricsSrv.Addr()
}

// DomainAddr returns the address orchestrators register at.
func (c *Con) DomainAddr() string { return c.server.Addr() }

// Close stops the API and the registration listener. Workflows keep running
// in their domains. It is idempotent, waits, and closes what a Start that
// failed half-way opened.
func (c *Con) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if c.cancel != nil {
		c.cancel()
	}
	var errs []error
	if c.http != nil {
		// Shutdown closes idle connections and waits for requests in
		// flight; a connection that never sent one (a stalled TLS
		// handshake) is not waited for past the grace period: its read
		// deadline ends it.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := c.http.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
		cancel()
		c.httpLn.Close() // Shutdown closes it only once Serve has taken it
	}
	c.group.Close()
	errs = append(errs, c.closeStore())
	errs = append(errs, c.async.close())
	if c.metricsSrv != nil {
		errs = append(errs, c.metricsSrv.Close())
	}
	if c.server != nil {
		errs = append(errs, c.server.Close())
	}
	c.mu.Lock()
	for _, d := range c.domains {
		errs = append(errs, d.client.Close())
	}
	c.mu.Unlock()
	c.log.Info("controller stopped")
	return errors.Join(errs...)
}

// Run starts a controller and serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	c, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return c.Close()
}

// clientOptions are those of the connection to the orchestrator of domain.
func (c *Con) clientOptions(domain string) wire.ClientOptions {
	opts := wire.ControlOptions(c.log)
	if c.creds != nil {
		opts.TLS = c.creds.ClientTLS(wire.Identity{Role: wire.RoleOrchestrator, ID: domain})
	}
	return opts
}

type dropEvents struct{}

func (dropEvents) HandleEvent(*core.Event) {}

// updateDomain handles an orchestrator's registration. A domain seen for the
// first time under this nonce is told to reset, unless it is the domain our
// saved workflows run in and kept running while the controller restarted: then
// it is adopted as it is.
func (c *Con) updateDomain(ctx context.Context, req *wire.UpdateDomain) (*wire.UpdateDomainResponse, error) {
	addr, err := wire.ParseAddr(req.Addr)
	if err != nil || req.Domain == "" {
		return nil, fmt.Errorf("domain %q: bad registration (address %q)", req.Domain, req.Addr)
	}
	if peer := wire.PeerIdentity(ctx); peer.Authenticated() && peer.ID != req.Domain {
		c.log.Warn("refusing a registration that claims another domain", "domain", req.Domain, "certificate", peer.ID)
		return nil, fmt.Errorf("domain %q: registration refused: the certificate is that of domain %q", req.Domain, peer.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.domains[req.Domain]
	reset := false
	if d == nil || d.nonce != req.Nonce {
		if d != nil {
			d.client.Close()
		}
		known, ok := c.known[req.Domain]
		adopt := ok && known == req.Nonce && d == nil
		reset = !adopt
		d = &domain{id: req.Domain, addr: addr, nonce: req.Nonce, ready: adopt,
			client: wire.NewClient(addr, c.clientOptions(req.Domain))}
		c.domains[req.Domain] = d
		for _, wf := range c.workflows {
			if wf.Domain == req.Domain {
				wf.running = adopt
			}
			if wf.Cloud != nil && wf.Cloud.Domain == req.Domain {
				wf.Cloud.live = adopt
			}
		}
		if reset {
			delete(c.known, req.Domain)
		}
		c.log.Info("domain joined", "domain", req.Domain, "addr", addr, "nodes", req.Nodes, "adopted", adopt)
	} else if !d.ready {
		d.ready = true
	}
	d.deadline = time.Now().Add(2 * time.Duration(req.RefreshMS) * time.Millisecond)
	d.nodes, d.cores, d.runtimes, d.resources = req.Nodes, req.Capabilities.NumCores, req.Capabilities.Runtimes, req.ResourceTypes
	d.cloud = req.Cloud
	return &wire.UpdateDomainResponse{Reset: reset}, nil
}

// maintainLoop drops domains that stopped refreshing and re-deploys the
// workflows that ran there on a domain that can run them.
func (c *Con) maintainLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.mu.Lock()
			for id, d := range c.domains {
				if now.After(d.deadline) {
					c.log.Warn("domain missed its refresh deadline; its workflows will be re-deployed", "domain", id)
					d.client.Close()
					delete(c.domains, id)
					for _, wf := range c.workflows {
						if wf.Domain == id {
							wf.running = false
						}
						if wf.Cloud != nil && wf.Cloud.Domain == id {
							wf.Cloud.live = false
						}
					}
				}
			}
			c.mu.Unlock()
			c.redeploy(ctx)
		}
	}
}

// Nodes returns how many nodes the ready domains have in all.
func (c *Con) Nodes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, d := range c.domains {
		if d.ready {
			n += d.nodes
		}
	}
	return n
}
