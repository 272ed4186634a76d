package resources

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/fastserve"
	"github.com/valyala/fasthttp"
)

// HTTPIngressConfig configures a node's http-ingress server.
type HTTPIngressConfig struct {
	// Addr is the host:port the server listens on; port 0 picks a free one.
	Addr string
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	MaxBodyBytes int64
	// CallTimeout is how long the node lets a call wait for its reply; an
	// instance's timeout_ms is capped to it.
	CallTimeout time.Duration
	// AllowCatchAll lets a workflow claim every host (an empty or "*" host).
	AllowCatchAll bool
	Log           *slog.Logger
}

// HTTPIngress is the http-ingress provider: one HTTP/1.1 server per node,
// shared by all its resource instances. A request goes to an instance whose
// host, method and workflow match; the instance turns it into a call (or a
// cast) on its output new_request.
type HTTPIngress struct {
	cfg    HTTPIngressConfig
	log    *slog.Logger
	routes atomic.Pointer[[]*ingressRoute] // replaced whole under mu
	mu     sync.Mutex
	next   atomic.Uint32 // round robin among matching routes
	bufs   sync.Pool     // *[]byte for bodies and JSON

	srv      *fasthttp.Server
	ln       net.Listener
	base     context.Context    // of every call; ended by Close
	cancel   context.CancelFunc // ends base
	served   chan struct{}
	closeErr error
	closed   sync.Once
}

// NewHTTPIngress validates cfg; it opens no socket.
func NewHTTPIngress(cfg HTTPIngressConfig) (*HTTPIngress, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("cannot use http-ingress address %q: %w", cfg.Addr, err)
	}
	if cfg.MaxBodyBytes < 1 {
		return nil, fmt.Errorf("http-ingress: max body bytes must be positive, got %d", cfg.MaxBodyBytes)
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &HTTPIngress{cfg: cfg, log: cfg.Log.With("provider", "http-ingress")}
	p.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	p.routes.Store(&[]*ingressRoute{})
	return p, nil
}

// Listen opens the listener and serves in the background; it returns once
// the server accepts connections.
func (p *HTTPIngress) Listen(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen for http-ingress on %s: %w", p.cfg.Addr, err)
	}
	p.ln = ln
	p.base, p.cancel = context.WithCancel(context.Background())
	// fasthttp rather than net/http (internal/fastserve).
	limits := core.IngressLimits()
	p.srv = fastserve.Server(limits, int(p.cfg.MaxBodyBytes), false, p.serve, p.log)
	limited := limits.Listener(ln)
	p.served = make(chan struct{})
	go func() {
		defer close(p.served)
		if err := p.srv.Serve(limited); err != nil && p.base.Err() == nil {
			p.log.Error("http-ingress server stopped", "err", err)
		}
	}()
	p.log.Info("http-ingress listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on, "" before Listen.
func (p *HTTPIngress) Addr() string {
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Close stops the server: requests in flight are cancelled and answered, and
// Close waits for their handlers. It is idempotent.
func (p *HTTPIngress) Close() error {
	p.closed.Do(func() {
		if p.srv == nil {
			return
		}
		p.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.srv.ShutdownWithContext(ctx); err != nil {
			p.closeErr = fmt.Errorf("cannot shut down http-ingress: %w", err)
		}
		// Shutdown closes the listener only once Serve has taken it: a
		// Close right after Listen would leave Serve accepting.
		p.ln.Close()
		<-p.served
	})
	return p.closeErr
}

// Spec implements Provider.
func (p *HTTPIngress) Spec() Spec {
	return Spec{
		ClassType: "http-ingress",
		Version:   "2.1",
		Description: "Receives HTTP requests on the node's http_ingress_url and calls (or casts to) the component on new_request. " +
			"The default mode calls with the JSON EdgelessHTTPRequest and answers with the EdgelessHTTPResponse the function replies; " +
			"mode=raw calls with the request body and answers 200 with the reply's bytes.",
		Outputs: []string{"new_request"},
		Configurations: map[string]string{
			"host":            "Host header to match (port ignored); empty matches any host",
			"method":          "comma-separated methods to match (GET, HEAD, POST, PUT, DELETE, PATCH); empty matches any",
			"methods":         "not read, as in EDGELESS (whose examples set it although its code reads method), unless enforce_methods=true",
			"enforce_methods": "true: match `methods` too, when `method` is not set",
			"wf_id":           "true: the client must add ?wf_id=<workflow UUID> to the URL",
			"async":           "true: cast the body to new_request and answer 200 OK at once",
			"encode_base64":   "async only, true: cast the body base64-encoded",
			"mode":            "json (default): EDGELESS JSON request and reply; raw: the body in, the reply's bytes out",
			"timeout_ms":      "how long to wait for the reply before answering 504 (default and upper bound: the node's call timeout)",
		},
	}
}

// ingressRoute is one resource instance's interest in requests.
type ingressRoute struct {
	host     string // lower case, no port; "" = any (catch-all)
	methods  uint8  // bit i = methods[i]; 0 = any
	wfID     bool
	workflow string // the workflow id as a string, compared with ?wf_id=
	async    bool
	base64   bool
	raw      bool
	timeout  time.Duration
	out      Host
}

// Start implements Provider.
func (p *HTTPIngress) Start(cfg StartConfig) (Instance, error) {
	c := cfg.Configurations
	host := strings.ToLower(hostOnly(strings.TrimSpace(c["host"])))
	if host == "*" {
		host = ""
	}
	if host == "" && !p.cfg.AllowCatchAll {
		return nil, &ConfigError{Class: "http-ingress", Key: "host",
			Msg: "empty: a catch-all ingress takes every host's requests, and the node's operator must allow it (resources.http_ingress_allow_catch_all)"}
	}
	rt := &ingressRoute{
		host:     host,
		wfID:     isTrue(c["wf_id"]),
		workflow: cfg.Workflow.String(),
		async:    isTrue(c["async"]),
		base64:   isTrue(c["encode_base64"]),
		timeout:  p.cfg.CallTimeout,
		out:      cfg.Host,
	}
	// EDGELESS reads only `method`, although its docs and examples write
	// `methods`: a workflow that sets `methods` answers every method there,
	// and so it does here unless enforce_methods asks for more.
	list := c["method"]
	if c["methods"] != "" && list == "" {
		if isTrue(c["enforce_methods"]) {
			list = c["methods"]
		} else if p.cfg.Log != nil {
			p.cfg.Log.Info("http-ingress: `methods` is not read, as in EDGELESS, so every method matches; use `method`, or enforce_methods=true",
				"workflow", cfg.Workflow, "methods", c["methods"])
		}
	}
	for m := range strings.SplitSeq(list, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" {
			continue
		}
		bit := methodBit(m)
		if bit == 0 {
			return nil, &ConfigError{Class: "http-ingress", Key: "method", Msg: "unknown method " + strconv.Quote(m)}
		}
		rt.methods |= bit
	}
	switch mode := strings.ToLower(strings.TrimSpace(c["mode"])); mode {
	case "", "json":
	case "raw":
		rt.raw = true
	default:
		return nil, &ConfigError{Class: "http-ingress", Key: "mode", Msg: "want json or raw, got " + strconv.Quote(mode)}
	}
	if s := c["timeout_ms"]; s != "" {
		ms, err := strconv.Atoi(s)
		if err != nil || ms < 1 {
			return nil, &ConfigError{Class: "http-ingress", Key: "timeout_ms", Msg: "want a positive integer, got " + strconv.Quote(s)}
		}
		rt.timeout = min(time.Duration(ms)*time.Millisecond, p.cfg.CallTimeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A host belongs to one workflow: another one would receive part of its
	// requests, with their headers and credentials.
	for _, other := range *p.routes.Load() {
		if other.host == rt.host && other.workflow != rt.workflow {
			return nil, &ConfigError{Class: "http-ingress", Key: "host",
				Msg: strconv.Quote(cmp.Or(rt.host, "*")) + " belongs to workflow " + other.workflow}
		}
	}
	next := append(slices.Clone(*p.routes.Load()), rt)
	p.routes.Store(&next)
	return &ingressInstance{p: p, rt: rt}, nil
}

// ingressInstance is the handle of one route; it receives no events.
type ingressInstance struct {
	p  *HTTPIngress
	rt *ingressRoute
}

func (i *ingressInstance) Cast(core.InstanceID, []byte) error { return nil }

func (i *ingressInstance) Call(core.InstanceID, []byte) (core.CallRet, []byte, error) {
	return core.CallNoReply, nil, nil
}

func (i *ingressInstance) Close() error {
	i.p.mu.Lock()
	defer i.p.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(*i.p.routes.Load()), func(r *ingressRoute) bool { return r == i.rt })
	i.p.routes.Store(&next)
	return nil
}

func methodBit(httpMethod string) uint8 {
	for i, m := range methods {
		if m[0] == httpMethod {
			return 1 << i
		}
	}
	return 0
}

// hostOnly strips a port from a Host header value.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

// match picks a route for the request, round robin among those that match.
func (p *HTTPIngress) match(ctx *fasthttp.RequestCtx, bit uint8) *ingressRoute {
	routes := *p.routes.Load()
	host := hostOnly(bstr(ctx.Host()))
	var wf string
	var found *ingressRoute
	n := 0
	for _, rt := range routes {
		if rt.host != "" && !strings.EqualFold(rt.host, host) {
			continue
		}
		if rt.methods != 0 && rt.methods&bit == 0 {
			continue
		}
		if rt.wfID {
			if wf == "" {
				wf = bstr(ctx.QueryArgs().Peek("wf_id"))
			}
			if !strings.EqualFold(wf, rt.workflow) {
				continue
			}
		}
		// Reservoir choice over the matches, without building a list.
		n++
		if n == 1 || p.next.Add(1)%uint32(n) == 0 {
			found = rt
		}
	}
	return found
}

// serve answers one request; it runs on the connection's goroutine, and
// nothing of ctx may be kept once it returns.
func (p *HTTPIngress) serve(ctx *fasthttp.RequestCtx) {
	bit := methodBit(bstr(ctx.Method()))
	if bit == 0 {
		fastserve.Error(ctx, "Method Not Allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	rt := p.match(ctx, bit)
	if rt == nil {
		fastserve.Error(ctx, "Not Found", fasthttp.StatusNotFound)
		return
	}
	// The server read the whole body, within MaxBodyBytes (413 past it).
	body := ctx.PostBody()
	if rt.async {
		payload := body
		if rt.base64 {
			jp := p.bufs.Get().(*[]byte)
			defer p.bufs.Put(jp)
			payload = base64.StdEncoding.AppendEncode((*jp)[:0], body)
			*jp = payload
		}
		// 200 promises delivery: an event that cannot be queued (a full
		// mailbox, an unreachable node) is refused, for the client to retry.
		if err := rt.out.Cast("new_request", payload); err != nil {
			fastserve.Error(ctx, "Service Unavailable: cannot queue the event: "+err.Error(), fasthttp.StatusServiceUnavailable)
			return
		}
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("OK")
		return
	}
	payload := body
	if !rt.raw {
		jp := p.bufs.Get().(*[]byte)
		defer p.bufs.Put(jp)
		payload = appendIngressRequest((*jp)[:0], ctx, rt.host, body)
		*jp = payload
	}
	// The node bounds every call by its call timeout already; a context
	// timer is needed only for a shorter timeout_ms.
	cctx := p.base
	if rt.timeout < p.cfg.CallTimeout {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(cctx, rt.timeout)
		defer cancel()
	}
	start := time.Now()
	ret, reply, err := rt.out.Call(cctx, "new_request", payload)
	if err != nil {
		// The node's own call timer is as long as rt.timeout or shorter, so
		// the elapsed time tells a timeout from other failures.
		if errors.Is(err, context.DeadlineExceeded) || time.Since(start) >= rt.timeout {
			fastserve.Error(ctx, "Gateway Timeout", fasthttp.StatusGatewayTimeout)
			return
		}
		if p.log.Enabled(p.base, slog.LevelDebug) {
			p.log.Debug("http-ingress call failed", "err", err)
		}
		fastserve.Error(ctx, "Service Unavailable", fasthttp.StatusServiceUnavailable)
		return
	}
	switch {
	case ret == core.CallErr:
		fastserve.Error(ctx, "Internal Server Error", fasthttp.StatusInternalServerError)
	case ret == core.CallNoReply && rt.raw:
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case ret == core.CallNoReply:
		fastserve.Error(ctx, "Not Found", fasthttp.StatusNotFound) // as EDGELESS answers
	case rt.raw:
		ctx.SetContentType(http.DetectContentType(reply))
		ctx.SetBody(reply)
	default:
		var resp HTTPResponse
		if err := ParseHTTPResponse(reply, &resp); err != nil {
			if p.log.Enabled(p.base, slog.LevelDebug) {
				p.log.Debug("http-ingress reply is not an EdgelessHTTPResponse", "err", err)
			}
			fastserve.Error(ctx, "Bad Gateway", fasthttp.StatusBadGateway)
			return
		}
		// As net/http did: the type is sniffed from the body unless the
		// function names one.
		ctx.SetContentType(http.DetectContentType(resp.Body))
		h := &ctx.Response.Header
		for k, v := range resp.Headers {
			h.Add(k, v)
		}
		ctx.SetStatusCode(resp.Status)
		ctx.SetBody(resp.Body)
	}
}

// bstr views b as a string without copying; the string must not outlive b.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// appendIngressRequest appends the EdgelessHTTPRequest JSON of the request.
// Header names are lower case and repeated headers are joined with ", ", as
// a map of strings holds one value per name; Host and Transfer-Encoding are
// left out, as net/http leaves them out of a request's headers.
func appendIngressRequest(dst []byte, ctx *fasthttp.RequestCtx, host string, body []byte) []byte {
	if host == "" {
		host = bstr(ctx.Host())
	}
	dst = append(dst, `{"method":"`...)
	dst = append(dst, edgelessMethod(bstr(ctx.Method()))...)
	dst = append(dst, `","protocol":"Unknown","host":`...)
	dst = appendJSONString(dst, host)
	dst = append(dst, `,"path":`...)
	dst = appendJSONString(dst, bstr(ctx.RequestURI()))
	dst = append(dst, `,"body":`...)
	dst = appendJSONBytes(dst, body)
	dst = append(dst, `,"headers":{`...)
	var fixed [32]headerField
	fields := fixed[:0]
	for k, v := range ctx.Request.Header.AllInOrder() {
		if bytes.EqualFold(k, []byte("Host")) || bytes.EqualFold(k, []byte("Transfer-Encoding")) {
			continue
		}
		fields = append(fields, headerField{k, v})
	}
	first := true
	for i, f := range fields {
		if f.key == nil { // joined to an earlier one
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		for _, c := range f.key {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		dst = append(dst, `":`...)
		value := f.value
		for j := i + 1; j < len(fields); j++ {
			if fields[j].key != nil && bytes.EqualFold(fields[j].key, f.key) {
				value = append(append(value[:len(value):len(value)], ", "...), fields[j].value...)
				fields[j].key = nil
			}
		}
		dst = appendJSONString(dst, bstr(value))
	}
	return append(dst, "}}"...)
}

// headerField is one request header line.
type headerField struct{ key, value []byte }
