package wire

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/edgeless-go/edgeless/core"
)

// Handler receives the event frames a Server reads.
type Handler interface {
	// HandleEvent runs on the transport's loop for every event frame; e.Payload is loaned (valid only during the
	// call; copy what you keep); it must not block.
	HandleEvent(e *core.Event)
}

// DefaultMaxRequests bounds the control requests a Server runs at once when
// ServerConfig.MaxRequests is zero.
const DefaultMaxRequests = 256

// ServerConfig configures a Server.
type ServerConfig struct {
	Addr        string       // host:port to listen on; port 0 picks a free port
	MaxFrame    int          // largest frame body accepted; 0 means DefaultMaxFrame
	Log         *slog.Logger // nil discards
	Handler     Handler      // receives event frames; nil makes event frames a protocol error
	Mux         *Mux         // serves request frames; nil answers every request with "unknown method"
	MaxRequests int          // control requests running at once; beyond it requests are refused; 0 means DefaultMaxRequests

	// TLS, when set, makes the server require mutual TLS (Credentials.ServerTLS):
	// it then runs on Go's net package, one goroutine per connection, since
	// gnet carries no TLS. Nil serves plaintext on gnet, for trusted networks.
	TLS *tls.Config
	// Net serves plaintext on Go's net package too, as with TLS, instead of
	// gnet's event loops. That suits a control listener, whose connections
	// are many but mostly idle: an event loop waits for traffic in a
	// blocking epoll_wait, holding a P of the Go scheduler, and the
	// runtime's monitor thread, which takes such Ps back, then polls every
	// 20 µs to 10 ms for as long as the process is not wholly idle, which
	// costs more than a few requests a second do. Go's own poller waits
	// without a P.
	Net bool
	// Authorize decides, on TLS connections, whether a peer may call a method;
	// nil allows every method to every authenticated peer.
	Authorize func(peer Identity, method string) error
	// EventsFrom decides, on TLS connections, whether a peer may send events;
	// nil allows every authenticated peer.
	EventsFrom func(peer Identity) bool
	// MaxConns bounds open connections; more are closed at once. 0 means
	// DefaultMaxConns.
	MaxConns int
	// MaxBuffered bounds the bytes held across all connections for frames
	// larger than 64 KiB that have not fully arrived; 0 means MaxFrame.
	MaxBuffered int
	// HandshakeTimeout bounds a TLS handshake; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// Server limits taken where ServerConfig leaves them at zero.
const (
	DefaultMaxConns         = 4096
	DefaultHandshakeTimeout = 5 * time.Second
)

// Server is a gnet listener that decodes frames: events go to the Handler on
// the event loop, control requests to the Mux on their own goroutines.
type Server struct {
	cfg      ServerConfig
	log      *slog.Logger
	maxFrame int
	sem      chan struct{} // one token per running request

	ctx    context.Context // ends request handlers on Close
	cancel context.CancelFunc

	mu      sync.Mutex
	started bool
	closed  bool
	booted  bool
	eng     gnet.Engine
	addr    string
	runDone chan struct{} // closed when gnet.Run returns
	runErr  error         // gnet.Run's result; read after runDone

	requests sync.WaitGroup
	badLog   core.Throttle

	// writeMu orders replies against Close: once stopping is set no reply
	// reaches gnet, whose loops may be gone.
	writeMu  sync.RWMutex
	stopping bool

	conns     atomic.Int64
	framesIn  atomic.Uint64
	bytesIn   atomic.Uint64
	framesOut atomic.Uint64
	bytesOut  atomic.Uint64
	malformed atomic.Uint64
	stalled   atomic.Uint64
	refused   atomic.Uint64
	denied    atomic.Uint64

	budget budget                // bytes for large partial frames, shared by all connections
	ln     net.Listener          // the TLS listener; nil on gnet
	tconns sync.WaitGroup        // TLS connection goroutines
	live   map[net.Conn]struct{} // open TLS connections, closed by Close; guarded by mu
}

// ServerStats counts a Server's traffic since Start.
type ServerStats struct {
	Conns     int64  // open connections
	FramesIn  uint64 // well-formed frames read
	BytesIn   uint64 // bytes of those frames, prefixes included
	FramesOut uint64 // response frames written
	BytesOut  uint64 // bytes of those frames
	Malformed uint64 // connections closed for a malformed frame
	Stalled   uint64 // connections closed because their peer left answers unread
	Refused   uint64 // requests refused because MaxRequests were running
	Denied    uint64 // connections, requests and events refused to the peer's identity, and connections over MaxConns
}

// NewServer validates cfg and returns a Server that is not yet listening.
func NewServer(cfg ServerConfig) (*Server, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("cannot use listen address %q: %w", cfg.Addr, err)
	}
	if cfg.MaxFrame < 0 || cfg.MaxRequests < 0 {
		return nil, fmt.Errorf("cannot use server config for %s: negative MaxFrame or MaxRequests", cfg.Addr)
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxRequests == 0 {
		cfg.MaxRequests = DefaultMaxRequests
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = cfg.MaxFrame
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		maxFrame: cfg.MaxFrame,
		sem:      make(chan struct{}, cfg.MaxRequests),
		runDone:  make(chan struct{}),
		badLog:   core.Throttle{Every: time.Second},
		budget:   budget{free: int64(cfg.MaxBuffered)},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start binds the listener and starts the event loops. It returns once the
// server accepts connections, or with the error that prevented it. ctx bounds
// the start only; Close stops the server.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return fmt.Errorf("cannot start server on %s: already started or closed", s.cfg.Addr)
	}
	s.started = true
	s.mu.Unlock()
	if s.cfg.TLS != nil || s.cfg.Net {
		if err := s.startTLS(); err != nil {
			return err
		}
		s.registerLocal()
		return nil
	}

	booted := make(chan struct{})
	go func() {
		defer close(s.runDone)
		s.runErr = gnet.Run(&engine{s: s, booted: booted}, "tcp://"+s.cfg.Addr,
			gnet.WithMulticore(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			// Rebinding the port of a server that just stopped must not wait
			// for its TIME_WAIT sockets, as with Go's net.Listen.
			gnet.WithReuseAddr(true),
			gnet.WithLogger(gnetLogger{s.log}),
		)
	}()
	select {
	case <-booted:
	case <-s.runDone:
		return fmt.Errorf("cannot listen on %s: %w", s.cfg.Addr, s.runErr)
	case <-ctx.Done():
		// The engine boots or fails promptly once bound; wait so Close has an engine to stop.
		select {
		case <-booted:
		case <-s.runDone:
		}
		_ = s.Close()
		return fmt.Errorf("cannot start server on %s: %w", s.cfg.Addr, ctx.Err())
	}
	s.registerLocal()
	s.log.Info("dataplane listening", "addr", s.Addr())
	return nil
}

// Addr returns the bound host:port, with a port 0 resolved, or the configured
// address before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		return s.cfg.Addr
	}
	return s.addr
}

// Stats returns the server's counters. It is safe for concurrent use.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Conns:     s.conns.Load(),
		FramesIn:  s.framesIn.Load(),
		BytesIn:   s.bytesIn.Load(),
		FramesOut: s.framesOut.Load(),
		BytesOut:  s.bytesOut.Load(),
		Malformed: s.malformed.Load(),
		Stalled:   s.stalled.Load(),
		Refused:   s.refused.Load(),
		Denied:    s.denied.Load(),
	}
}

// Close stops accepting, closes every connection, cancels running request
// handlers and waits for the event loops and the handlers to finish. It is
// idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	booted, eng := s.booted, s.eng
	s.mu.Unlock()

	s.unregisterLocal()
	s.cancel()
	s.writeMu.Lock()
	s.stopping = true
	s.writeMu.Unlock()
	s.closeTLS()
	if booted {
		// Engine.Stop signals the loops and then polls for their end every
		// 500 ms; with a context that is already done it returns right after
		// signalling, and gnet.Run returning is the precise end.
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if err := eng.Stop(done); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("cannot stop dataplane engine", "addr", s.Addr(), "err", err)
		}
		<-s.runDone
	}
	s.requests.Wait()
	return nil
}

// engine adapts gnet's callbacks to the Server; it is a separate type so the
// callbacks do not appear in Server's API.
type engine struct {
	gnet.BuiltinEventEngine
	s      *Server
	booted chan struct{}
}

// peer is the per-connection state, owned by the connection's event loop
// (or its goroutine, with TLS).
type peer struct {
	ctx      context.Context // ends handlers of this connection's requests; carries id
	cancel   context.CancelFunc
	remote   string
	id       Identity
	events   bool       // id may send events
	ev       core.Event // reused for every event frame
	reserved int64      // bytes of the budget held for the frame arriving now
	out      responder  // for responses from any goroutine
	inline   responder  // for responses from the goroutine reading the connection
}

// responder queues a response frame on a connection; it is safe from any
// goroutine.
type responder interface {
	send(frame []byte) error
}

type gnetResponder struct{ c gnet.Conn }

func (r gnetResponder) send(frame []byte) error { return r.c.AsyncWrite(frame, nil) }

// gnetLoopResponder writes on the event loop, during OnTraffic: the frame
// goes out with the loop's next write, without a hand-off to the loop.
type gnetLoopResponder struct{ c gnet.Conn }

func (r gnetLoopResponder) send(frame []byte) error {
	_, err := r.c.Write(frame)
	return err
}

// newPeer returns the state of a new connection from id; inline answers
// from the goroutine that reads it, out from any goroutine.
func (s *Server) newPeer(remote string, id Identity, out, inline responder) *peer {
	p := &peer{remote: remote, id: id, out: out, inline: inline, events: true}
	if id.Authenticated() && s.cfg.EventsFrom != nil {
		p.events = s.cfg.EventsFrom(id)
	}
	p.ctx, p.cancel = context.WithCancel(context.WithValue(s.ctx, identityKey{}, id))
	return p
}

// release returns the budget p holds and ends its requests.
func (s *Server) release(p *peer) {
	p.cancel()
	s.budget.put(p.reserved)
	p.reserved = 0
}

func (g *engine) OnBoot(eng gnet.Engine) gnet.Action {
	s := g.s
	addr, err := boundAddr(eng)
	if err != nil {
		s.log.Warn("cannot read the bound dataplane address", "addr", s.cfg.Addr, "err", err)
		addr = s.cfg.Addr
	}
	s.mu.Lock()
	s.eng, s.addr, s.booted = eng, addr, true
	s.mu.Unlock()
	close(g.booted)
	return gnet.None
}

func (g *engine) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s := g.s
	if s.conns.Add(1) > int64(s.cfg.MaxConns) {
		s.conns.Add(-1)
		s.denied.Add(1)
		return nil, gnet.Close
	}
	c.SetContext(s.newPeer(c.RemoteAddr().String(), Identity{}, gnetResponder{c}, gnetLoopResponder{c}))
	return nil, gnet.None
}

func (g *engine) OnClose(c gnet.Conn, _ error) gnet.Action {
	if p, ok := c.Context().(*peer); ok {
		g.s.release(p)
		g.s.conns.Add(-1)
	}
	return gnet.None
}

// OnTraffic handles every complete frame in the inbound buffer, then
// discards them together. The buffer is gnet's: nothing read from it may
// outlive this call.
func (g *engine) OnTraffic(c gnet.Conn) (action gnet.Action) {
	s := g.s
	p := c.Context().(*peer)
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("BUG: closing connection after a panic while handling a frame", "remote", p.remote, "panic", r)
			action = gnet.Close
		}
	}()
	// A peer that sends requests and leaves their answers unread would have
	// gnet buffer answers without bound: past one answer of the largest
	// size and what the TLS server lets queue, it is dropped.
	if c.OutboundBuffered() > s.maxFrame+maxQueuedResponses {
		s.stalled.Add(1)
		if ok, n := s.badLog.Allow(); ok {
			s.log.Warn("closing connection whose peer does not read its answers", "remote", p.remote,
				"unread_bytes", c.OutboundBuffered(), "suppressed", n-1)
		}
		return gnet.Close
	}
	// While a large frame trickles in, look at its prefix only: peeking at
	// everything would copy the partial frame out of gnet's ring buffer on
	// every read.
	avail := c.InboundBuffered()
	if avail < prefixLen {
		return gnet.None
	}
	head, _ := c.Peek(prefixLen)
	if size := binary.BigEndian.Uint32(head); uint64(size) <= uint64(s.maxFrame) && avail < prefixLen+int(size) {
		// gnet buffers the rest as it comes: hold budget for it, or give up
		// the connection rather than let partial frames grow without bound.
		if !s.reserve(p, int(size)) {
			return gnet.Close
		}
		return gnet.None
	}
	buf, _ := c.Peek(-1)
	var used, frames int
	for {
		body, n, err := nextFrame(buf[used:], s.maxFrame)
		if err == nil && n > 0 {
			err = s.handleFrame(p, body)
		}
		if err != nil {
			s.count(frames, used)
			s.malformed.Add(1)
			if ok, n := s.badLog.Allow(); ok {
				s.log.Warn("closing connection after a malformed frame", "remote", p.remote, "err", err,
					"suppressed", n-1)
			}
			return gnet.Close
		}
		if n == 0 {
			break
		}
		used += n
		frames++
	}
	if used > 0 {
		_, _ = c.Discard(used)
		s.count(frames, used)
		s.budget.put(p.reserved)
		p.reserved = 0
	}
	return gnet.None
}

func (s *Server) count(frames, bytes int) {
	if frames > 0 {
		s.framesIn.Add(uint64(frames))
		s.bytesIn.Add(uint64(bytes))
	}
}

func (s *Server) handleFrame(p *peer, body []byte) error {
	kind, at, err := frameKind(body)
	if err != nil {
		return err
	}
	switch {
	case core.EventKind(kind).Valid() && kind <= 0xff:
		if s.cfg.Handler == nil {
			return formatErr("frame kind", at, "this server takes no event frames")
		}
		if !p.events {
			s.denied.Add(1)
			return fmt.Errorf("%s may not send events here", p.id)
		}
		if err := DecodeEvent(body, &p.ev); err != nil {
			return err
		}
		s.cfg.Handler.HandleEvent(&p.ev)
		p.ev.Payload = nil // end the loan
		return nil
	case kind == kindRequest:
		id, method, reqBody, err := decodeEnvelope(body, kindRequest, "request")
		if err != nil {
			return err
		}
		s.dispatch(p, id, string(method), append([]byte(nil), reqBody...))
		return nil
	}
	return formatErr("frame kind", at, "want 1..5 or 16, found "+strconv.FormatUint(kind, 10))
}

// dispatch runs a request: an inline method (MethodInline) or an unknown
// one at once, any other on its own goroutine, or refuses it at once when
// MaxRequests are already running: the loop must never wait for a handler.
func (s *Server) dispatch(p *peer, id uint64, method string, body []byte) {
	if msg := s.authorize(p.id, method); msg != "" {
		s.reply(p.inline, appendResponse(nil, id, msg, nil))
		return
	}
	h, ok := s.cfg.Mux.lookup(method)
	switch {
	case !ok:
		s.reply(p.inline, appendResponse(nil, id, unknownMethod(method).Error(), nil))
		return
	case h.inline:
		s.reply(p.inline, response(id, h, p.ctx, method, body))
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.refused.Add(1)
		s.reply(p.inline, appendResponse(nil, id, fmt.Sprintf("server busy: %d requests running", cap(s.sem)), nil))
		return
	}
	s.requests.Add(1)
	go func() {
		defer func() {
			<-s.sem
			s.requests.Done()
		}()
		s.reply(p.out, response(id, h, p.ctx, method, body))
	}()
}

// authorize returns why peer may not call method, or "".
func (s *Server) authorize(peer Identity, method string) string {
	if !peer.Authenticated() || s.cfg.Authorize == nil {
		return ""
	}
	if err := s.cfg.Authorize(peer, method); err != nil {
		s.denied.Add(1)
		return fmt.Sprintf("%s may not call %q: %v", peer, method, err)
	}
	return ""
}

// response runs h on a request and returns its response frame.
func response(id uint64, h handler, ctx context.Context, method string, body []byte) []byte {
	resp, err := h.serve(ctx, method, body)
	if err != nil {
		return appendResponse(nil, id, errText(err), nil)
	}
	return appendResponse(nil, id, "", resp)
}

// errText is a handler's error as the caller receives it: never empty, so
// that it still reads as an error.
func errText(err error) string {
	if msg := err.Error(); msg != "" {
		return msg
	}
	return "error without a message"
}

// reply queues a response frame on out; it is safe from any goroutine. A
// reply to a connection that has closed meanwhile is dropped.
func (s *Server) reply(out responder, frame []byte) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	if s.stopping {
		return
	}
	if err := out.send(frame); err != nil {
		s.log.Debug("cannot write response", "err", err)
		return
	}
	s.framesOut.Add(1)
	s.bytesOut.Add(uint64(len(frame)))
}

// boundAddr reads the listener's address from a duplicate of its socket, the
// only way gnet exposes it.
func boundAddr(eng gnet.Engine) (string, error) {
	fd, err := eng.Dup()
	if err != nil {
		return "", err
	}
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return "", err
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String(), nil
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String(), nil
	}
	return "", fmt.Errorf("unexpected socket address %T", sa)
}

// gnetLogger routes gnet's own logging to slog. gnet reports routine
// lifecycle at info level, which is debug detail for us.
type gnetLogger struct{ log *slog.Logger }

func (l gnetLogger) Debugf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l gnetLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l gnetLogger) Warnf(format string, args ...any)  { l.log.Warn(fmt.Sprintf(format, args...)) }
func (l gnetLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }
func (l gnetLogger) Fatalf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }
