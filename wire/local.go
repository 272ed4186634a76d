package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
)

// In-process calls. A Client whose options set InProcess calls a Server
// that listens at the Client's address in this same process (an inabox
// cluster: the controller and its nodes) directly, on the caller's
// goroutine: no connection, no TLS records, no hand-off between the
// connection's goroutines. The hop is then as cheap as a function call,
// which is most of the cost of a small request on one machine.
//
// It admits exactly what a TLS handshake between the two would: a client
// with TLS reaches only a server with TLS whose certificate passes the
// client's verification and whose configuration accepts the client's
// certificate, and the handler sees the identity that certificate names. A
// plaintext client reaches only a plaintext server. Anything else takes the
// network, where it fails as it always did.

// localServers maps the addresses of this process's started servers, bound
// and announced, to them.
var localServers sync.Map

// localLink is a server in this process and the identity a client presents
// to it, or why the client may not call it in process.
type localLink struct {
	s   *Server
	id  Identity
	err error
}

func (s *Server) localAddrs() []string {
	a := s.Addr()
	if b := Announced(a); b != a {
		return []string{a, b}
	}
	return []string{a}
}

// registerLocal makes s reachable to in-process clients.
func (s *Server) registerLocal() {
	for _, a := range s.localAddrs() {
		localServers.Store(a, s)
	}
}

// unregisterLocal withdraws s; a server that took over an address since is
// left in place.
func (s *Server) unregisterLocal() {
	for _, a := range s.localAddrs() {
		localServers.CompareAndDelete(a, s)
	}
}

// localLink returns the server in this process at c's address with the
// identity c presents to it, or nil when c must use the network.
func (c *Client) localLink() *localLink {
	if !c.opts.InProcess || c.ctx.Err() != nil { // closed: the network path says so
		return nil
	}
	v, ok := localServers.Load(c.addr)
	if !ok {
		return nil
	}
	s := v.(*Server)
	l := c.local.Load()
	if l == nil || l.s != s {
		l = &localLink{s: s}
		if l.id, l.err = admitLocal(c.opts.TLS, s.cfg.TLS); l.err != nil {
			c.log.Debug("calling an in-process server over the network", "addr", c.addr, "err", l.err)
		}
		c.local.Store(l)
	}
	if l.err != nil {
		return nil
	}
	return l
}

var errLocalTLS = errors.New("client and server disagree on TLS")

// admitLocal verifies a client with configuration cli and a server with
// srv to each other as their handshake would, and returns the client's
// identity as the server would see it.
func admitLocal(cli, srv *tls.Config) (Identity, error) {
	switch {
	case cli == nil && srv == nil:
		return Identity{}, nil
	case cli == nil || srv == nil:
		return Identity{}, errLocalTLS
	case cli.VerifyConnection == nil || !cli.InsecureSkipVerify || srv.ClientAuth != tls.RequireAndVerifyClientCert ||
		len(cli.Certificates) == 0 || len(srv.Certificates) == 0:
		// Only the shape of Credentials' configurations is understood.
		return Identity{}, errors.New("TLS configuration not of Credentials")
	}
	srvChain, err := parseChain(srv.Certificates[0])
	if err != nil {
		return Identity{}, err
	}
	if err := cli.VerifyConnection(tls.ConnectionState{PeerCertificates: srvChain}); err != nil {
		return Identity{}, fmt.Errorf("server refused by the client: %w", err)
	}
	cliChain, err := parseChain(cli.Certificates[0])
	if err != nil {
		return Identity{}, err
	}
	inter := x509.NewCertPool()
	for _, ic := range cliChain[1:] {
		inter.AddCert(ic)
	}
	if _, err := cliChain[0].Verify(x509.VerifyOptions{Roots: srv.ClientCAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return Identity{}, fmt.Errorf("client refused by the server: %w", err)
	}
	if srv.VerifyConnection != nil {
		if err := srv.VerifyConnection(tls.ConnectionState{PeerCertificates: cliChain}); err != nil {
			return Identity{}, fmt.Errorf("client refused by the server: %w", err)
		}
	}
	return IdentityOf(cliChain[0])
}

func parseChain(c tls.Certificate) ([]*x509.Certificate, error) {
	chain := make([]*x509.Certificate, len(c.Certificate))
	for k, der := range c.Certificate {
		var err error
		if chain[k], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("cannot parse certificate: %w", err)
		}
	}
	return chain, nil
}

// callLocal serves req from the in-process client c, admitted as l, as
// dispatch does a request from a connection, except that the handler runs
// on the caller's goroutine, gets req itself and returns its response
// itself: nothing is encoded. It runs with the caller's context, whose
// deadline (Call always sets one) bounds it, and the server's Close waits
// for it; deriving a context that Close also ended would register it with
// the server's, a shared lock on every call. ok is false when the method's
// handler takes other types than the caller's: the call then takes the
// network, where the codec reconciles them.
func callLocal[Req, Resp any](ctx context.Context, c *Client, l *localLink, method string, req *Req) (resp *Resp, err error, ok bool) {
	s := l.s
	s.writeMu.RLock()
	if s.stopping {
		s.writeMu.RUnlock()
		return nil, fmt.Errorf("cannot call %q on %s: %w", method, c.addr, ErrUnavailable), true
	}
	s.requests.Add(1)
	s.writeMu.RUnlock()
	defer s.requests.Done()
	if msg := s.authorize(l.id, method); msg != "" {
		return nil, &RemoteError{Method: method, Message: msg}, true
	}
	h, found := s.cfg.Mux.lookup(method)
	if !found {
		return nil, &RemoteError{Method: method, Message: unknownMethod(method).Error()}, true
	}
	fn, typed := h.typed.(func(context.Context, *Req) (*Resp, error))
	if !typed {
		return nil, nil, false
	}
	if !h.inline {
		select {
		case s.sem <- struct{}{}:
			defer func() { <-s.sem }()
		default:
			s.refused.Add(1)
			return nil, &RemoteError{Method: method, Message: fmt.Sprintf("server busy: %d requests running", cap(s.sem))}, true
		}
	}
	resp, err = serveLocal(context.WithValue(ctx, identityKey{}, l.id), method, fn, req)
	switch {
	case err != nil && ctx.Err() != nil:
		// The handler gave up with the caller, who over a connection would
		// have stopped waiting for its answer.
		return nil, fmt.Errorf("cannot call %q on %s: no response: %w", method, c.addr, ctx.Err()), true
	case err != nil:
		return nil, &RemoteError{Method: method, Message: errText(err)}, true
	case resp == nil: // a nil response arrives as a zero one over the network
		resp = new(Resp)
	}
	return resp, nil, true
}

// serveLocal runs fn on req; a panic is an error, as in handler.serve.
func serveLocal[Req, Resp any](ctx context.Context, method string, fn func(context.Context, *Req) (*Resp, error), req *Req) (resp *Resp, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("method %q panicked: %v", method, r)
		}
	}()
	return fn(ctx, req)
}
