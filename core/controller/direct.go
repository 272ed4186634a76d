package controller

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// The controller invokes a warm function on its node directly: it caches
// where each function's instances run (wire.MethodOrcRoutes) and sends the
// invocation to one of them, round robin, over the dataplane's TLS
// transport. The orchestrator stays in charge of every decision about where
// work goes: an invocation the cached route cannot serve (no instance, the
// instance gone or its node unreachable, the instance overloaded, or an
// edge-cloud request) takes the orchestrator's path, which offloads, scales
// out and cold-starts, and the route is refreshed.
//
// The controller is the front because it already terminates the API, holds
// the tokens and the function registry, and has a certificate the nodes can
// admit; a node as front would need all three. A node that runs in the
// controller's process (inabox) is called in process (wire's InProcess),
// which halves the cost of an invocation there.

// routeRefresh is how often the routes are fetched again, with the uses
// since the last time, which hold off scale-to-zero (scale_in_after_sec is
// at least a second).
const routeRefresh = 250 * time.Millisecond

// direct holds the cached routes. The invocation path reads them through
// atomic pointers only; the refresher and the registry's changes write them
// under mu.
type direct struct {
	c    *Con
	kick chan struct{} // asks the refresher for a turn now

	fns atomic.Pointer[map[string]*fnRoute] // function name → route; copied on write

	mu    sync.Mutex            // serialises writers of fns; guards nodes
	nodes map[core.ID]*nodeLink // connections to nodes that routes use

	// bound is the context of the direct calls whose caller set no
	// deadline (see callContext); the refresher replaces it and ends the
	// old ones once past their deadline (ending, the refresher's only).
	bound  atomic.Pointer[context.Context]
	ending []boundEnd
}

type boundEnd struct {
	at     time.Time
	cancel context.CancelFunc
}

// nodeLink is the controller's connection to one node's dataplane.
type nodeLink struct {
	addr   string
	client *wire.Client
}

// fnRoute is the cached route of one standalone function.
type fnRoute struct {
	wf      *workflow
	logical core.ID
	domain  string

	table atomic.Pointer[routeTable] // nil until fetched
	used  atomic.Bool                // invoked directly since the last refresh
	stale atomic.Bool                // a direct invocation failed: refresh at once
	next  atomic.Uint32              // round robin over the table's targets
}

// routeTable is an immutable snapshot of a function's instances.
type routeTable struct {
	version uint64
	targets []target
	viaOrc  bool // requests that may be offloaded go through the orchestrator
}

type target struct {
	component core.ID
	client    *wire.Client
}

func newDirect(c *Con) *direct {
	d := &direct{c: c, kick: make(chan struct{}, 1), nodes: map[core.ID]*nodeLink{}}
	d.fns.Store(&map[string]*fnRoute{})
	return d
}

// lookup returns the cached route of the function name, or nil. It takes
// no lock.
func (d *direct) lookup(name string) *fnRoute {
	return (*d.fns.Load())[name]
}

// add caches a route for wf, the function name, unless wf stopped
// meanwhile; its table follows at the refresher's next turn, which it asks
// for.
func (d *direct) add(name string, wf *workflow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if (*d.fns.Load())[name] != nil {
		return
	}
	d.c.mu.Lock()
	live := d.c.workflows[wf.ID] == wf && wf.running
	domain := wf.Domain
	d.c.mu.Unlock()
	if !live {
		return
	}
	fns := maps.Clone(*d.fns.Load())
	fns[name] = &fnRoute{wf: wf, logical: wf.Logical[wf.Spec.Functions[0].Name], domain: domain}
	d.fns.Store(&fns)
	d.refreshSoon()
}

// forget drops the route of the function name when it is that of wf (nil:
// whichever it is).
func (d *direct) forget(name string, wf *workflow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if fr := (*d.fns.Load())[name]; fr == nil || wf != nil && fr.wf != wf {
		return
	}
	fns := maps.Clone(*d.fns.Load())
	delete(fns, name)
	d.fns.Store(&fns)
}

func (d *direct) refreshSoon() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// errNoRoute says that an invocation must take the orchestrator's path.
var errNoRoute = errors.New("no direct route")

// invoke calls an instance of fr's function on its node. errNoRoute means
// that the orchestrator must take the invocation: the route has no
// instance or excludes the request, the instance refused it as overloaded
// (the orchestrator then offloads or scales out), or it could not be
// reached or is gone (the route is refreshed). Any other error is final:
// the caller's context ended or the node did not answer in time.
func (d *direct) invoke(ctx context.Context, fr *fnRoute, payload []byte, q qosRequest) (*wire.InvokeResponse, error) {
	t := fr.table.Load()
	switch {
	case t == nil:
		return nil, errNoRoute
	case len(t.targets) == 0:
		// Scaled to zero when fetched: the orchestrator starts one, and the
		// next refresh finds it.
		fr.stale.Store(true)
		return nil, errNoRoute
	case t.viaOrc && q.CanOffload:
		return nil, errNoRoute
	}
	if !fr.used.Load() {
		fr.used.Store(true)
	}
	tg := &t.targets[int(fr.next.Add(1))%len(t.targets)]
	ctx = d.callContext(ctx)
	resp, err := wire.Call[wire.Invoke, wire.InvokeResponse](ctx, tg.client, wire.MethodNodeInvoke,
		&wire.Invoke{Component: tg.component, Payload: payload, Urgent: q.Urgent})
	switch {
	case err == nil && !resp.Overloaded:
		return resp, nil
	case err == nil: // the orchestrator offloads or scales out
		return nil, errNoRoute
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		// The instance may be running it: a retry elsewhere would run it
		// twice, and wait as long again.
		return nil, err
	}
	// Gone, or its node unreachable: the orchestrator knows better.
	fr.stale.Store(true)
	d.refreshSoon()
	return nil, errNoRoute
}

// callContext bounds a direct call by the transport's request timeout when
// ctx sets no bound of its own, as wire.Call would, but with a context
// shared by the calls of a routeRefresh: a context of its own per call,
// with its timer, cost more than the call's other bookkeeping together.
// A call's bound is thus the timeout, plus at most one routeRefresh; not
// less, so that the node may run the call on this goroutine when the
// function's handler budget is the timeout (node's runNow). A shared bound
// the refresher was late to renew is not used.
func (d *direct) callContext(ctx context.Context) context.Context {
	if ctx.Done() != nil {
		return ctx
	}
	if b := d.bound.Load(); b != nil {
		if dl, _ := (*b).Deadline(); time.Until(dl) >= wire.DefaultRequestTimeout {
			return *b
		}
	}
	return ctx // none yet, or stale: wire.Call bounds it
}

// renewBound replaces the shared bound, and ends those past their deadline.
func (d *direct) renewBound(now time.Time) {
	at := now.Add(wire.DefaultRequestTimeout + routeRefresh)
	ctx, cancel := context.WithDeadline(context.Background(), at)
	d.bound.Store(&ctx)
	live := d.ending[:0]
	for _, e := range d.ending {
		if now.After(e.at) {
			e.cancel()
		} else {
			live = append(live, e)
		}
	}
	d.ending = append(live, boundEnd{at, cancel})
}

// loop refreshes routes every routeRefresh, and at once when asked, until
// ctx ends. It owns the node connections and closes them on its way out.
func (d *direct) loop(ctx context.Context) {
	t := time.NewTicker(routeRefresh)
	defer t.Stop()
	defer d.closeNodes()
	defer func() {
		for _, e := range d.ending {
			e.cancel()
		}
	}()
	d.renewBound(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d.renewBound(now)
		case <-d.kick:
		}
		d.refresh(ctx)
	}
}

// refresh drops the routes of functions no longer running where they were
// cached, and fetches every other route, in one request per domain (an
// unchanged route costs its version). Routes of unused functions are
// refreshed too: a node that leaves waits until its connections close, and
// the controller closes its own once no route names the node.
func (d *direct) refresh(ctx context.Context) {
	fns := *d.fns.Load()
	type ask struct {
		name string
		fr   *fnRoute
	}
	asks := map[string][]ask{} // by domain
	var dead []string
	clients := map[string]*wire.Client{}
	d.c.mu.Lock()
	for name, fr := range fns {
		wf := fr.wf
		dom := d.c.domains[fr.domain]
		if d.c.workflows[wf.ID] != wf || !wf.running || wf.Domain != fr.domain || dom == nil {
			dead = append(dead, name)
			continue
		}
		asks[fr.domain] = append(asks[fr.domain], ask{name, fr})
		clients[fr.domain] = dom.client
	}
	d.c.mu.Unlock()
	for _, name := range dead {
		d.forget(name, fns[name].wf)
	}
	for dom, as := range asks {
		req := &wire.Routes{Functions: make([]wire.RouteQuery, len(as))}
		for k, a := range as {
			var v uint64
			if t := a.fr.table.Load(); t != nil && !a.fr.stale.Load() {
				v = t.version
			}
			req.Functions[k] = wire.RouteQuery{Logical: a.fr.logical, Version: v, Used: a.fr.used.Swap(false)}
		}
		cctx, cancel := context.WithTimeout(ctx, time.Duration(d.c.cfg.RequestTimeoutSec)*time.Second)
		resp, err := wire.Call[wire.Routes, wire.RoutesResponse](cctx, clients[dom], wire.MethodOrcRoutes, req)
		cancel()
		if err != nil || len(resp.Routes) != len(as) {
			// Keep the routes: the nodes may serve while the orchestrator
			// is away. Uses are reported again next turn.
			for _, a := range as {
				a.fr.used.Store(true)
			}
			d.c.log.Debug("cannot fetch function routes", "domain", dom, "err", err)
			continue
		}
		for k, a := range as {
			d.apply(a.name, a.fr, &resp.Routes[k])
		}
	}
	d.closeUnused()
}

// apply installs a fetched route.
func (d *direct) apply(name string, fr *fnRoute, r *wire.Route) {
	if r.Gone {
		d.forget(name, fr.wf)
		return
	}
	if t := fr.table.Load(); t != nil && t.version == r.Version && r.Instances == nil {
		fr.stale.Store(false)
		return
	}
	t := &routeTable{version: r.Version, viaOrc: r.ViaOrchestrator, targets: make([]target, 0, len(r.Instances))}
	d.mu.Lock()
	for _, i := range r.Instances {
		t.targets = append(t.targets, target{component: i.Instance.Component, client: d.nodeLocked(i.Instance.Node, i.Addr)})
	}
	d.mu.Unlock()
	fr.table.Store(t)
	fr.stale.Store(false)
}

// nodeLocked returns the connection to node id at addr, opening it (lazily:
// the client dials on first use) or replacing one to an old address.
func (d *direct) nodeLocked(id core.ID, addr string) *wire.Client {
	if l := d.nodes[id]; l != nil && l.addr == addr {
		return l.client
	} else if l != nil {
		l.client.Close()
	}
	// The orchestrator's invocation path has the same frame bound and
	// call timeout.
	opts := wire.ControlOptions(d.c.log)
	opts.InProcess = !d.c.cfg.InvokeOverNetwork
	if d.c.creds != nil {
		opts.TLS = d.c.creds.ClientTLS(wire.Identity{Role: wire.RoleNode, ID: id.String()})
	}
	l := &nodeLink{addr: addr, client: wire.NewClient(addr, opts)}
	d.nodes[id] = l
	return l.client
}

// closeUnused closes the connections to nodes that no route uses any more.
// An invocation still holding an old table then fails over to the
// orchestrator.
func (d *direct) closeUnused() {
	used := map[*wire.Client]bool{}
	for _, fr := range *d.fns.Load() {
		if t := fr.table.Load(); t != nil {
			for _, tg := range t.targets {
				used[tg.client] = true
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, l := range d.nodes {
		if !used[l.client] {
			l.client.Close()
			delete(d.nodes, id)
		}
	}
}

func (d *direct) closeNodes() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, l := range d.nodes {
		l.client.Close()
		delete(d.nodes, id)
	}
}
