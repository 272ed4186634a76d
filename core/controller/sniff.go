package controller

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// tlsHandshake is the first byte of every TLS connection: the record type
// of its ClientHello.
const tlsHandshake = 0x16

// sniffTime bounds how long a new connection may take to send its first byte.
const sniffTime = 5 * time.Second

// sniffListener serves TLS and plain HTTP on one port, so that clients that
// cannot speak TLS (serverledge-cli) reach the API's address unchanged. A
// connection whose first byte opens a TLS handshake is handed to the server
// as a *tls.Conn; any other as it is, and the handlers confine plain requests
// to Serverledge's paths (r.TLS is nil for them). Connections are sniffed
// concurrently so that one silent client does not hold up Accept. It is safe
// for concurrent use.
type sniffListener struct {
	net.Listener
	tls   *tls.Config
	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	sniffed map[net.Conn]bool // connections whose first byte is awaited
	closed  bool
}

func newSniffListener(ln net.Listener, cfg *tls.Config) *sniffListener {
	s := &sniffListener{Listener: ln, tls: cfg, conns: make(chan net.Conn), errc: make(chan error, 1),
		done: make(chan struct{}), sniffed: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *sniffListener) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.Listener.Accept()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			// Out of descriptors, say: wait and try again, as net/http's
			// own loop does, rather than stop serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
				continue
			case <-s.done:
				return
			}
		}
		if err != nil {
			s.errc <- err
			return
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.sniffed[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go s.sniff(c)
	}
}

// sniff reads c's first byte and hands c to Accept, wrapped in TLS when it
// asks for it.
func (s *sniffListener) sniff(c net.Conn) {
	defer s.wg.Done()
	c.SetReadDeadline(time.Now().Add(sniffTime))
	r := bufio.NewReader(c)
	first, err := r.Peek(1)
	c.SetReadDeadline(time.Time{})
	s.mu.Lock()
	delete(s.sniffed, c)
	s.mu.Unlock()
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peekedConn{Conn: c, r: r}
	if first[0] == tlsHandshake {
		out = tls.Server(out, s.tls)
	}
	select {
	case s.conns <- out:
	case <-s.done:
		c.Close()
	}
}

// Accept returns the next sniffed connection.
func (s *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case err := <-s.errc:
		s.errc <- err // every later Accept fails alike
		return nil, err
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes the connections still being sniffed and
// waits for the listener's goroutines. It is idempotent.
func (s *sniffListener) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.sniffed {
		c.Close()
	}
	s.mu.Unlock()
	err := s.Listener.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
