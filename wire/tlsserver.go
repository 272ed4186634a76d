package wire

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// bigFrame is the size from which a partial frame draws on the server's
// budget: smaller ones fit the per-connection buffers.
const bigFrame = 64 << 10

// budget is a count of bytes that connections draw on for large frames. It is
// safe for concurrent use.
type budget struct{ free int64 }

// take draws n bytes, or reports false when fewer are left.
func (b *budget) take(n int64) bool {
	for {
		f := atomic.LoadInt64(&b.free)
		if f < n {
			return false
		}
		if atomic.CompareAndSwapInt64(&b.free, f, f-n) {
			return true
		}
	}
}

func (b *budget) put(n int64) {
	if n > 0 {
		atomic.AddInt64(&b.free, n)
	}
}

// reserve makes p hold budget for a frame of size body bytes that has not
// fully arrived, and reports false when the server cannot hold it now.
func (s *Server) reserve(p *peer, size int) bool {
	if size < bigFrame || p.reserved > 0 {
		return true
	}
	if !s.budget.take(int64(size)) {
		s.denied.Add(1)
		if ok, n := s.badLog.Allow(); ok {
			s.log.Warn("closing connection: too many large frames arriving at once", "remote", p.remote,
				"peer", p.id.String(), "frame_bytes", size, "limit_bytes", s.cfg.MaxBuffered, "suppressed", n-1)
		}
		return false
	}
	p.reserved = int64(size)
	return true
}

// tlsResponder writes response frames to a TLS connection. Responses that
// arrive while one is being written are written together after it, by the
// goroutine writing: under load one syscall and one TLS record carry many
// responses, and no writer goroutine is woken for each. A sender returns
// once its frame is queued, unless maxQueuedResponses bytes already wait:
// then it waits for the write in progress, so a peer that stops reading
// holds at most that much, and a handler at most until the write deadline.
type tlsResponder struct {
	mu      sync.Mutex
	drained sync.Cond // signalled after each write; L is &mu
	conn    net.Conn
	writing bool   // a sender is writing queued; guarded by mu
	queued  []byte // frames waiting for the write in progress
	spare   []byte // the buffer of the last write, reused for queued
	err     error  // the failed write's error: the connection is broken
}

// maxQueuedResponses bounds the response bytes queued behind a write.
const maxQueuedResponses = 1 << 20

func newTLSResponder(conn net.Conn) *tlsResponder {
	r := &tlsResponder{conn: conn}
	r.drained.L = &r.mu
	return r
}

func (r *tlsResponder) send(frame []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.writing && len(r.queued) >= maxQueuedResponses && r.err == nil {
		r.drained.Wait()
	}
	if r.err != nil {
		return r.err
	}
	r.queued = append(r.queued, frame...)
	if r.writing {
		return nil
	}
	r.writing = true
	for len(r.queued) > 0 && r.err == nil {
		buf := r.queued
		r.queued = r.spare[:0]
		r.mu.Unlock()
		_ = r.conn.SetWriteDeadline(time.Now().Add(DefaultRequestTimeout))
		_, err := r.conn.Write(buf)
		r.mu.Lock()
		r.spare, r.err = buf[:0], err
		r.drained.Broadcast()
	}
	r.writing = false
	return r.err
}

// startTLS listens with Go's net package and serves each connection on its
// own goroutine once its TLS handshake has proved who the peer is.
func (s *Server) startTLS() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.ln, s.addr, s.live = ln, ln.Addr().String(), map[net.Conn]struct{}{}
	s.mu.Unlock()
	s.tconns.Add(1)
	go s.accept(ln)
	s.log.Info("dataplane listening", "addr", s.Addr(), "tls", s.cfg.TLS != nil)
	return nil
}

func (s *Server) accept(ln net.Listener) {
	defer s.tconns.Done()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("cannot accept a dataplane connection", "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.conns.Add(1) > int64(s.cfg.MaxConns) || !s.track(conn) {
			s.conns.Add(-1)
			s.denied.Add(1)
			conn.Close()
			continue
		}
		s.tconns.Add(1)
		go s.serveTLS(conn)
	}
}

// track registers conn for Close, or reports false once the server closes.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.live[conn] = struct{}{}
	return true
}

// serveTLS authenticates one connection and then reads its frames until it
// fails. Nothing larger than the TLS record buffers is allocated for a peer
// before its handshake succeeds, and a handshake must finish within
// HandshakeTimeout.
func (s *Server) serveTLS(raw net.Conn) {
	defer s.tconns.Done()
	defer func() {
		raw.Close()
		s.mu.Lock()
		delete(s.live, raw)
		s.mu.Unlock()
		s.conns.Add(-1)
	}()
	var conn net.Conn = raw
	id := Identity{} // anonymous, as on gnet, without TLS
	if s.cfg.TLS != nil {
		tc := tls.Server(raw, s.cfg.TLS)
		_ = tc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			s.denied.Add(1)
			s.log.Debug("dataplane handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
			return
		}
		_ = tc.SetDeadline(time.Time{})
		cs := tc.ConnectionState()
		var err error
		if id, err = IdentityOf(cs.PeerCertificates[0]); err != nil {
			s.denied.Add(1)
			s.log.Warn("refusing dataplane connection", "remote", raw.RemoteAddr().String(), "err", err)
			return
		}
		conn = tc
	}
	out := newTLSResponder(conn)
	p := s.newPeer(raw.RemoteAddr().String(), id, out, out)
	defer s.release(p)
	if err := s.readFrames(conn, p); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
		var fe *frameSizeError
		if errors.As(err, &fe) || errors.Is(err, ErrMalformed) || errors.Is(err, errBudget) {
			s.malformed.Add(1)
			if ok, n := s.badLog.Allow(); ok {
				s.log.Warn("closing connection after a malformed frame", "remote", p.remote, "peer", id.String(),
					"err", err, "suppressed", n-1)
			}
			return
		}
		s.log.Debug("dataplane connection ended", "remote", p.remote, "peer", id.String(), "err", err)
	}
}

var errBudget = errors.New("too many large frames arriving at once")

// readFrames decodes frames from conn into a buffer that grows only once a
// frame's prefix has been read and the server's budget holds its size.
func (s *Server) readFrames(conn net.Conn, p *peer) error {
	buf := make([]byte, firstRead)
	start, end := 0, 0
	for {
		used, frames := start, 0
		for {
			body, n, err := nextFrame(buf[used:end], s.maxFrame)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			if err := s.handleFrame(p, body); err != nil {
				return err
			}
			used += n
			frames++
		}
		s.count(frames, used-start)
		rest := buf[used:end]
		if frames > 0 && p.reserved > 0 {
			s.budget.put(p.reserved)
			p.reserved = 0
			if len(buf) > bigFrame && len(rest) == 0 {
				buf = make([]byte, bigFrame) // give a large frame's memory back
			}
		}
		end = copy(buf, rest)
		start = 0
		if end >= prefixLen {
			size := int(binary.BigEndian.Uint32(buf))
			if want := prefixLen + size; want > len(buf) {
				if !s.reserve(p, size) {
					return errBudget
				}
				buf = append(buf[:end], make([]byte, want-end)...)
			}
		}
		n, err := conn.Read(buf[end:])
		end += n
		if err != nil {
			return err
		}
		buf = growRead(buf, end)
	}
}

// firstRead is the size of a connection's first read buffer: a mostly idle
// control connection keeps that, one whose reads fill it gets a larger one
// (growRead).
const firstRead = 4 << 10

// growRead doubles a read buffer that the last read filled, up to bigFrame,
// so that a busy connection reads many frames per call.
func growRead(buf []byte, end int) []byte {
	if end < len(buf) || len(buf) >= bigFrame {
		return buf
	}
	return append(buf, make([]byte, min(len(buf), bigFrame-len(buf)))...)
}

// closeTLS closes the TLS listener and every connection and waits for their
// goroutines.
func (s *Server) closeTLS() {
	s.mu.Lock()
	ln := s.ln
	for c := range s.live {
		c.Close()
	}
	s.mu.Unlock()
	if ln == nil {
		return
	}
	ln.Close()
	s.tconns.Wait()
}
