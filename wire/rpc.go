package wire

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Mux routes control requests to handlers by method name. The zero Mux is
// ready to use and has no methods. Methods may be added while serving.
type Mux struct {
	mu      sync.RWMutex
	methods map[string]handler
}

// handler is a registered method.
type handler struct {
	fn func(ctx context.Context, body []byte) ([]byte, error)
	// typed is the registered func(context.Context, *Req) (*Resp, error)
	// itself, for in-process calls.
	typed any
	// inline methods run on the goroutine that reads the connection.
	inline bool
}

// Method registers fn as the handler of name on m. Requests and responses are
// msgpack-encoded Req and Resp values. fn runs on its own goroutine with a
// context that ends when the connection or the server closes; its error is
// returned to the caller as a *RemoteError. Registering a name twice panics.
func Method[Req, Resp any](m *Mux, name string, fn func(ctx context.Context, req *Req) (*Resp, error)) {
	m.add(name, handler{fn: codec(name, fn), typed: fn})
}

// MethodInline registers fn as the handler of name on m, as Method does, but
// fn runs on the goroutine that reads the request's connection (on the
// plaintext server, an event loop that other connections share), and its
// answer is written from there: no goroutine is started, and no slot of
// ServerConfig.MaxRequests is taken. That is for the frequent requests that
// need only a short lock, such as a node's keep-alive: fn must answer at
// once, never waiting for another process, nor for a lock held across a
// call to one. The connection reads nothing else while fn runs.
func MethodInline[Req, Resp any](m *Mux, name string, fn func(ctx context.Context, req *Req) (*Resp, error)) {
	m.add(name, handler{fn: codec(name, fn), typed: fn, inline: true})
}

// codec wraps fn with the decoding of its request and the encoding of its
// response.
func codec[Req, Resp any](name string, fn func(ctx context.Context, req *Req) (*Resp, error)) func(context.Context, []byte) ([]byte, error) {
	return func(ctx context.Context, body []byte) ([]byte, error) {
		req := new(Req)
		if err := unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("cannot decode request of %q: %w", name, err)
		}
		resp, err := fn(ctx, req)
		if err != nil {
			return nil, err
		}
		out, err := marshal(resp)
		if err != nil {
			return nil, fmt.Errorf("cannot encode response of %q: %w", name, err)
		}
		return out, nil
	}
}

func (m *Mux) add(name string, h handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.methods[name]; dup {
		panic("BUG: wire.Method: method " + strconv.Quote(name) + " registered twice")
	}
	if m.methods == nil {
		m.methods = make(map[string]handler)
	}
	m.methods[name] = h
}

// lookup returns the handler of method; a nil Mux has none.
func (m *Mux) lookup(method string) (handler, bool) {
	if m == nil {
		return handler{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	h, ok := m.methods[method]
	return h, ok
}

// serve runs the handler of method on body. A panicking handler is reported
// as an error so one bad request cannot take the node down.
func (h handler) serve(ctx context.Context, method string, body []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("method %q panicked: %v", method, r)
		}
	}()
	return h.fn(ctx, body)
}

// serve runs the handler of method on body, or fails for an unknown method.
func (m *Mux) serve(ctx context.Context, method string, body []byte) ([]byte, error) {
	h, ok := m.lookup(method)
	if !ok {
		return nil, unknownMethod(method)
	}
	return h.serve(ctx, method, body)
}

func unknownMethod(method string) error { return fmt.Errorf("unknown method %q", method) }

// RemoteError is a request handler's error returned by the peer.
type RemoteError struct {
	Method  string // the method called
	Message string // the handler's error text
}

// Error returns the method and the remote message.
func (e *RemoteError) Error() string {
	return "remote " + strconv.Quote(e.Method) + " failed: " + e.Message
}

// Call sends req to method on the peer behind c and waits for the response.
// When ctx has no deadline, the client's RequestTimeout applies. Errors: a
// *RemoteError when the handler failed (or the method is unknown),
// ErrUnavailable when the peer is down or the connection is lost before the
// answer, ErrClosed after Close, and the context's error (such as
// context.DeadlineExceeded) when no answer came in time; a response arriving
// after that is dropped. Call is safe for concurrent use.
func Call[Req, Resp any](ctx context.Context, c *Client, method string, req *Req) (*Resp, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
	}
	if l := c.localLink(); l != nil {
		if resp, err, ok := callLocal[Req, Resp](ctx, c, l, method, req); ok {
			return resp, err
		}
	}
	body, err := marshal(req)
	if err != nil {
		return nil, fmt.Errorf("cannot encode request of %q: %w", method, err)
	}
	done := make(chan callResult, 1)
	id, err := c.startCall(method, body, done)
	if err != nil {
		return nil, fmt.Errorf("cannot call %q on %s: %w", method, c.addr, err)
	}
	var r callResult
	select {
	case r = <-done:
	case <-ctx.Done():
		c.abandonCall(id)
		return nil, fmt.Errorf("cannot call %q on %s: no response: %w", method, c.addr, ctx.Err())
	}
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("cannot call %q on %s: %w", method, c.addr, r.err)
	case r.remote != "":
		return nil, &RemoteError{Method: method, Message: r.remote}
	}
	resp := new(Resp)
	if err := unmarshal(r.body, resp); err != nil {
		return nil, fmt.Errorf("cannot decode response of %q from %s: %w", method, c.addr, err)
	}
	return resp, nil
}

// selfCoder is a message that encodes and decodes itself without
// reflection (the invocation's, on every FaaS call); any other goes through
// msgpack's reflection codec.
type selfCoder interface {
	AppendMsgpack(dst []byte) []byte
	DecodeMsgpackBytes(b []byte) error
	msgpackSize() int
}

func marshal(v any) ([]byte, error) {
	if m, ok := v.(selfCoder); ok {
		return m.AppendMsgpack(make([]byte, 0, m.msgpackSize())), nil
	}
	return msgpack.Marshal(v)
}

// unmarshal decodes b into v. A message that a self-coding type does not
// expect (a key from a newer peer) gets the reflection codec's reading,
// and its error.
func unmarshal(b []byte, v any) error {
	if m, ok := v.(selfCoder); ok && m.DecodeMsgpackBytes(b) == nil {
		return nil
	}
	return msgpack.Unmarshal(b, v)
}

// callResult is what a pending call receives: a transport error, or the
// peer's error text and response body (owned by the receiver).
type callResult struct {
	err    error
	remote string
	body   []byte
}

// requestFrameSize returns an upper bound on the size of a request frame,
// prefix included.
func requestFrameSize(method string, body []byte) int {
	return prefixLen + 1 + 1 + 9 + 5 + len(method) + binSize(len(body))
}

// appendRequest appends a request frame [16, id, method, body].
func appendRequest(dst []byte, id uint64, method string, body []byte) []byte {
	start := len(dst)
	dst = append(beginFrame(dst), mpFixarrayMin|4, kindRequest)
	dst = appendUint(dst, id)
	dst = appendStr(dst, method)
	dst = appendBin(dst, body)
	return endFrame(dst, start)
}

// appendResponse appends a response frame [17, id, err, body]; errMsg is ""
// on success.
func appendResponse(dst []byte, id uint64, errMsg string, body []byte) []byte {
	start := len(dst)
	dst = append(beginFrame(dst), mpFixarrayMin|4, kindResponse)
	dst = appendUint(dst, id)
	dst = appendStr(dst, errMsg)
	dst = appendBin(dst, body)
	return endFrame(dst, start)
}

// decodeEnvelope decodes a request or response body [kind, id, text, body]
// where text is the method or the error. text and payload alias body.
func decodeEnvelope(body []byte, kind uint64, what string) (id uint64, text, payload []byte, err error) {
	n, off, err := readArrayLen(body, 0, what)
	if err != nil {
		return 0, nil, nil, err
	}
	if n != 4 {
		return 0, nil, nil, formatErr(what, 0, "want array of 4, found array of "+strconv.Itoa(n))
	}
	at := off
	k, off, err := readUint(body, off, what+" kind")
	if err != nil {
		return 0, nil, nil, err
	}
	if k != kind {
		return 0, nil, nil, formatErr(what+" kind", at, "want "+strconv.FormatUint(kind, 10)+", found "+strconv.FormatUint(k, 10))
	}
	if id, off, err = readUint(body, off, what+" id"); err != nil {
		return 0, nil, nil, err
	}
	textField := what + " method"
	if kind == kindResponse {
		textField = what + " error"
	}
	if text, off, err = readBytes(body, off, textField, kind == kindResponse); err != nil {
		return 0, nil, nil, err
	}
	if payload, off, err = readBytes(body, off, what+" body", true); err != nil {
		return 0, nil, nil, err
	}
	if off != len(body) {
		return 0, nil, nil, formatErr(what, off, strconv.Itoa(len(body)-off)+" bytes after the array")
	}
	return id, text, payload, nil
}
