package core

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPLimits bound what one HTTP server gives its clients, so that slow or
// idle connections (slowloris, slow bodies, idle floods) cannot take the
// process's descriptors or starve other clients.
type HTTPLimits struct {
	MaxConns    int           // open connections at once
	MaxPerHost  int           // open connections from one remote IP address
	HeaderTime  time.Duration // to read a request's headers
	BodyTime    time.Duration // to read a whole request, body included
	IdleTime    time.Duration // a keep-alive connection may wait for its next request
	HeaderBytes int           // largest request header block
}

// APILimits are those of the controller's API, whose bodies may carry
// function code of tens of MB, hence the longer body time.
func APILimits() HTTPLimits {
	return HTTPLimits{MaxConns: 2048, MaxPerHost: 256, HeaderTime: 5 * time.Second, BodyTime: 2 * time.Minute, IdleTime: time.Minute, HeaderBytes: 64 << 10}
}

// IngressLimits are those of http-ingress, which faces the public.
func IngressLimits() HTTPLimits {
	return HTTPLimits{MaxConns: 8192, MaxPerHost: 1024, HeaderTime: 5 * time.Second, BodyTime: 30 * time.Second, IdleTime: time.Minute, HeaderBytes: 16 << 10}
}

// MetricsLimits are those of /metrics, scraped by a few collectors.
func MetricsLimits() HTTPLimits {
	return HTTPLimits{MaxConns: 64, MaxPerHost: 16, HeaderTime: 5 * time.Second, BodyTime: 10 * time.Second, IdleTime: time.Minute, HeaderBytes: 16 << 10}
}

// Apply sets srv's timeouts and header limit.
func (l HTTPLimits) Apply(srv *http.Server) {
	srv.ReadHeaderTimeout = l.HeaderTime
	srv.ReadTimeout = l.BodyTime
	srv.IdleTimeout = l.IdleTime
	srv.MaxHeaderBytes = l.HeaderBytes
}

// Listener wraps ln so that connections past MaxConns, or past MaxPerHost
// from one address, are closed as soon as they are accepted: they never wait
// in the kernel's backlog in front of other clients.
func (l HTTPLimits) Listener(ln net.Listener) *LimitedListener {
	return &LimitedListener{Listener: ln, max: l.MaxConns, perHost: l.MaxPerHost, hosts: map[string]int{}}
}

// LimitedListener is a net.Listener with connection bounds. It is safe for
// concurrent use.
type LimitedListener struct {
	net.Listener
	max, perHost int

	mu    sync.Mutex
	open  int
	hosts map[string]int

	refused atomic.Uint64
}

// Refused returns how many connections were closed for being over a bound.
func (l *LimitedListener) Refused() uint64 { return l.refused.Load() }

// Accept returns the next connection within the bounds.
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		l.mu.Lock()
		ok := l.open < l.max && l.hosts[host] < l.perHost
		if ok {
			l.open++
			l.hosts[host]++
		}
		l.mu.Unlock()
		if !ok {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, host: host}, nil
	}
}

func (l *LimitedListener) done(host string) {
	l.mu.Lock()
	l.open--
	if l.hosts[host]--; l.hosts[host] <= 0 {
		delete(l.hosts, host)
	}
	l.mu.Unlock()
}

type limitedConn struct {
	net.Conn
	l    *LimitedListener
	host string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.done(c.host) })
	return err
}
