package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// domain is a registered orchestration domain.
type domain struct {
	id        string
	addr      string
	nonce     uint64
	deadline  time.Time
	nodes     int
	runtimes  []string
	resources []string
	client    *wire.Client
}

// workflow is a started workflow.
type workflow struct {
	id      core.ID
	spec    *spec.Workflow
	domain  *domain
	started time.Time
	logical map[string]core.ID // component name → logical id
}

// Con is a controller.
type Con struct {
	cfg Config
	log *slog.Logger

	http     *http.Server
	httpLn   net.Listener
	server   *wire.Server
	httpAddr string

	mu        sync.Mutex // guards domains and workflows; never held across a call
	domains   map[string]*domain
	workflows map[core.ID]*workflow

	cancel context.CancelFunc
	wg     sync.WaitGroup
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
	return &Con{
		cfg:       cfg,
		log:       log.With("component", "controller"),
		domains:   map[string]*domain{},
		workflows: map[core.ID]*workflow{},
	}, nil
}

// Start opens the domain registration listener and the HTTP API. It returns
// once both serve.
func (c *Con) Start(ctx context.Context) error {
	mux := &wire.Mux{}
	wire.Method(mux, wire.MethodConUpdateDomain, c.updateDomain)
	regAddr, _ := wire.ParseAddr(c.cfg.DomainRegisterURL)
	srv, err := wire.NewServer(wire.ServerConfig{Addr: regAddr, MaxFrame: wire.MaxControlFrame, Log: c.log, Handler: dropEvents{}, Mux: mux})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("cannot listen for domains on %s: %w", regAddr, err)
	}
	c.server = srv
	apiAddr, _ := httpAddr(c.cfg.ControllerURL)
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil {
		srv.Close()
		return fmt.Errorf("cannot listen for the API on %s: %w", apiAddr, err)
	}
	c.httpLn = ln
	c.httpAddr = ln.Addr().String()
	c.http = &http.Server{Handler: c.routes(), ReadHeaderTimeout: 10 * time.Second}
	ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		if err := c.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("API server failed", "err", err)
		}
	}()
	go c.expireLoop(ctx)
	c.log.Info("controller started", "api", "http://"+c.httpAddr, "domain_register", srv.Addr())
	return nil
}

// Addr returns the host:port of the HTTP API.
func (c *Con) Addr() string { return c.httpAddr }

// DomainAddr returns the address orchestrators register at.
func (c *Con) DomainAddr() string { return c.server.Addr() }

// Close stops the API and the registration listener. Workflows keep running
// in their domains. It is idempotent and waits.
func (c *Con) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if c.cancel != nil {
		c.cancel()
	}
	var errs []error
	if c.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, c.http.Shutdown(ctx))
		cancel()
	}
	c.wg.Wait()
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

type dropEvents struct{}

func (dropEvents) HandleEvent(*core.Event) {}

// updateDomain handles an orchestrator's registration. A domain the controller
// has not seen under this nonce is told to reset: nothing it runs is known here.
func (c *Con) updateDomain(ctx context.Context, req *wire.UpdateDomain) (*wire.UpdateDomainResponse, error) {
	addr, err := wire.ParseAddr(req.Addr)
	if err != nil || req.Domain == "" {
		return nil, fmt.Errorf("domain %q: bad registration (address %q)", req.Domain, req.Addr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.domains[req.Domain]
	reset := d == nil || d.nonce != req.Nonce
	if reset {
		if d != nil {
			d.client.Close()
		}
		c.log.Info("domain joined", "domain", req.Domain, "addr", addr, "nodes", req.Nodes)
		d = &domain{id: req.Domain, addr: addr, nonce: req.Nonce, client: wire.NewClient(addr, wire.ClientOptions{MaxFrame: wire.MaxControlFrame, Log: c.log})}
		c.domains[req.Domain] = d
	}
	d.deadline = time.Now().Add(2 * time.Duration(req.RefreshMS) * time.Millisecond)
	d.nodes, d.runtimes, d.resources = req.Nodes, req.Capabilities.Runtimes, req.ResourceTypes
	return &wire.UpdateDomainResponse{Reset: reset}, nil
}

// expireLoop drops domains that stopped refreshing.
func (c *Con) expireLoop(ctx context.Context) {
	defer c.wg.Done()
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
					c.log.Warn("domain missed its refresh deadline", "domain", id)
					d.client.Close()
					delete(c.domains, id)
				}
			}
			c.mu.Unlock()
		}
	}
}

// Nodes returns how many nodes the registered domains have in all.
func (c *Con) Nodes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, d := range c.domains {
		n += d.nodes
	}
	return n
}
