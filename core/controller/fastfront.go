package controller

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"

	"github.com/valyala/fasthttp"
)

// The API is served by fasthttp (internal/fastserve): most of its traffic
// is invocations and polls, small requests on keep-alive connections, for
// which net/http's server cost more than the invocation. The handlers stay
// net/http handlers: a request reaches the API's http.Handler through an
// http.Request and ResponseWriter that are reused, on fasthttp's goroutine,
// with the body streamed, so that the body budget and every rule of the
// API hold as they are. No handler streams its answer or takes over its
// connection, and none needs the request's context to end when its client
// goes away: each bounds its own waits.

// bridge is one request's net/http view of a fasthttp request, reused.
type bridge struct {
	req  http.Request
	url  url.URL
	body streamBody
	read bytes.Reader // the body when fasthttp read it whole
	w    bridgeWriter
}

// streamBody is a request body read from fasthttp's stream.
type streamBody struct{ r io.Reader }

func (b *streamBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *streamBody) Close() error               { return nil }

// bridgeWriter collects a handler's answer into the fasthttp response.
type bridgeWriter struct {
	ctx    *fasthttp.RequestCtx
	header http.Header
	status int // 0 until the header is written
}

func (w *bridgeWriter) Header() http.Header { return w.header }

func (w *bridgeWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	// net/http's Header holds canonical names already.
	w.ctx.Response.Header.DisableNormalizing()
	for k, vs := range w.header {
		if k == "Content-Length" || k == "Transfer-Encoding" { // fasthttp frames the body
			continue
		}
		for _, v := range vs {
			w.ctx.Response.Header.Add(k, v)
		}
	}
	w.ctx.SetStatusCode(status)
}

func (w *bridgeWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		// Set in the map, or by setHeader straight in the response.
		if w.header.Get("Content-Type") == "" && len(w.ctx.Response.Header.ContentType()) == 0 {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.WriteHeader(http.StatusOK)
	}
	return w.ctx.Write(p)
}

// setHeader sets the response header k, canonical, to v: on the fast front
// straight into fasthttp's response, without net/http's map, which takes a
// slice per value.
func setHeader(w http.ResponseWriter, k, v string) {
	if b, ok := w.(*bridgeWriter); ok && b.status == 0 {
		b.ctx.Response.Header.Set(k, v)
		return
	}
	w.Header().Set(k, v)
}

// fastFront serves h to fasthttp's requests.
type fastFront struct {
	h       http.Handler
	bridges sync.Pool
	log     *slog.Logger
	// native, when set, serves the requests it takes from fasthttp's
	// request, without its net/http view; it answers through b.w.
	native func(ctx *fasthttp.RequestCtx, b *bridge) bool
}

func newFastFront(h http.Handler, log *slog.Logger) *fastFront {
	f := &fastFront{h: h, log: log}
	f.bridges.New = func() any { return &bridge{w: bridgeWriter{header: http.Header{}}} }
	return f
}

// serve is the fasthttp handler.
func (f *fastFront) serve(ctx *fasthttp.RequestCtx) {
	b := f.bridges.Get().(*bridge)
	defer func() {
		if p := recover(); p != nil {
			// As net/http's server: the request fails, the process goes on.
			f.log.Error("API handler panicked", "method", b.req.Method, "path", b.url.Path, "panic", p)
			ctx.Response.Reset()
			ctx.SetStatusCode(http.StatusInternalServerError)
		}
		b.body.r, b.w.ctx = nil, nil
		clear(b.req.Header)
		clear(b.w.header)
		f.bridges.Put(b)
	}()
	b.w.ctx, b.w.status = ctx, 0
	if f.native == nil || !f.native(ctx, b) {
		f.h.ServeHTTP(&b.w, b.request(ctx))
	}
	if b.w.status == 0 {
		b.w.WriteHeader(http.StatusOK)
	}
}

// request fills b's http.Request from ctx's request, every field anew (a
// handler may have cached a parsed form in the last one). Its context is
// the background: fasthttp's must not outlive the request, and every
// context a handler derives from a cancellable one registers with it, a
// shared lock per request; each handler bounds its own waits.
func (b *bridge) request(ctx *fasthttp.RequestCtx) *http.Request {
	h := &ctx.Request.Header
	header := b.req.Header // cleared, kept for its buckets
	if header == nil {
		header = http.Header{}
	}
	for k, v := range h.All() {
		if string(k) == "Host" {
			continue
		}
		key := headerKey(k)
		header[key] = append(header[key], string(v))
	}
	b.url = url.URL{Path: string(ctx.Path()), RawQuery: string(ctx.URI().QueryString())}
	b.req = http.Request{
		Method: method(h.Method()), URL: &b.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: header,
		Host: string(h.Host()), RemoteAddr: ctx.RemoteAddr().String(), ContentLength: int64(h.ContentLength()),
	}
	r := &b.req
	if !h.IsHTTP11() {
		r.Proto, r.ProtoMinor = "HTTP/1.0", 0
	}
	if ctx.IsTLS() {
		r.TLS = ctx.TLSConnectionState()
	}
	r.Body = b.requestBody(ctx)
	if r.Body == http.NoBody {
		r.ContentLength = 0
	}
	return r
}

// requestBody is ctx's request body.
func (b *bridge) requestBody(ctx *fasthttp.RequestCtx) io.ReadCloser {
	if n := ctx.Request.Header.ContentLength(); n == 0 || n < -1 { // none, or no framing: no body
		return http.NoBody
	}
	// A length, or chunked (-1: unknown).
	b.body.r = ctx.RequestBodyStream()
	if b.body.r == nil {
		b.read.Reset(ctx.Request.Body())
		b.body.r = &b.read
	}
	return &b.body
}

// headerKey returns the canonical header name k as a string, without
// allocating for the usual ones.
func headerKey(k []byte) string {
	switch string(k) {
	case "Accept":
		return "Accept"
	case "Accept-Encoding":
		return "Accept-Encoding"
	case "Authorization":
		return "Authorization"
	case "Connection":
		return "Connection"
	case "Content-Length":
		return "Content-Length"
	case "Content-Type":
		return "Content-Type"
	case "User-Agent":
		return "User-Agent"
	}
	return string(k)
}

// method returns m as a string, without allocating for the usual ones.
func method(m []byte) string {
	for _, s := range [...]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead} {
		if string(m) == s {
			return s
		}
	}
	return string(m)
}

// Invocations are most of the API's traffic: fastInvoke serves them from
// fasthttp's request, without building its net/http view (header map,
// strings of the path, the query and the client's address), under the same
// rules as the mux's routes for them.
var (
	apiInvokePath = []byte("/api/v1/invoke/")
	slInvokePath  = []byte("/invoke/")
)

// fastInvoke serves POST /api/v1/invoke/NAME and Serverledge's POST
// /invoke/NAME; false leaves the request to the mux, as any other, or a
// name that is not one path segment.
func (c *Con) fastInvoke(ctx *fasthttp.RequestCtx, b *bridge) bool {
	if !ctx.IsPost() {
		return false
	}
	path := ctx.Path() // unescaped and cleaned, as the mux's
	name, api := bytes.CutPrefix(path, apiInvokePath)
	serverledge := false
	if !api {
		if name, serverledge = bytes.CutPrefix(path, slInvokePath); !serverledge {
			return false
		}
	}
	if len(name) == 0 || bytes.IndexByte(name, '/') >= 0 {
		return false
	}
	w := &b.w
	// plainOnlyServerledge, then guard or tokenless.
	if api && c.https && !ctx.IsTLS() {
		writeError(w, http.StatusBadRequest, errPlainHTTP)
		return true
	}
	authz := ctx.Request.Header.Peek("Authorization")
	if !serverledge || len(authz) > 0 || !c.mayGoWithoutToken(ctx.RemoteIP()) {
		if !c.admit(w, string(authz), RoleInvoker) {
			return true
		}
	}
	if api {
		c.invokeAPI(context.Background(), w, string(name), b.requestBody(ctx))
	} else {
		c.invokeServerledge(context.Background(), w, string(name), b.requestBody(ctx))
	}
	return true
}
