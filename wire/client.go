package wire

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// Client defaults, used where ClientOptions leaves a field at zero.
const (
	DefaultMaxPending     = 8 << 20
	DefaultDialTimeout    = 2 * time.Second
	DefaultBackoffMin     = 50 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
)

// Errors returned by Client methods.
var (
	// ErrUnavailable means the peer is down: the last dial failed or the
	// connection broke, and the client is reconnecting in the background.
	ErrUnavailable = errors.New("peer unavailable")
	// ErrQueueFull means MaxPending bytes are already waiting to be written.
	ErrQueueFull = errors.New("outbound queue full")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("client closed")
)

// ClientOptions configures a Client. Zero fields take the defaults.
type ClientOptions struct {
	MaxFrame       int           // largest frame body sent or accepted; default DefaultMaxFrame
	MaxPending     int           // bytes queued for writing before sends fail with ErrQueueFull; default DefaultMaxPending
	DialTimeout    time.Duration // default DefaultDialTimeout
	BackoffMin     time.Duration // delay before the first redial; doubles per failure; default DefaultBackoffMin
	BackoffMax     time.Duration // cap on the redial delay; default DefaultBackoffMax
	RequestTimeout time.Duration // Call timeout when its context has no deadline; default DefaultRequestTimeout
	Log            *slog.Logger  // nil discards
	// TLS, when set, dials with mutual TLS (Credentials.ClientTLS, naming the
	// identity the peer must prove); nil dials plaintext.
	TLS *tls.Config
	// OnLost, when set, is called (on the client's own goroutine, without
	// locks held) each time an established connection breaks: the owner may
	// treat the peer as gone rather than wait for a timeout.
	OnLost func()
	// InProcess lets calls reach a Server listening at the address in this
	// process without a connection (see local.go): the handler gets the
	// caller's request value itself and the caller the handler's response,
	// so neither may change them once handed over. Events still take the
	// network.
	InProcess bool
}

func (o *ClientOptions) fill() {
	if o.MaxFrame <= 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = DefaultBackoffMin
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffMin)
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// link is the state of a Client's connection.
type link uint8

const (
	linkIdle       link = iota // never used: no goroutines yet
	linkConnecting             // first dial in progress: sends are queued
	linkUp                     // connected
	linkDown                   // dial failed or connection lost: sends fail fast until a redial succeeds
	linkClosed
)

// Client is one multiplexed connection to a peer, dialled lazily on first
// use and redialled with capped exponential backoff after a failure. Events
// and requests are appended to one outbound buffer that a writer goroutine
// flushes with a single write per wake-up, so sends batch under load and go
// out at once when idle; a call that finds no write in progress writes the
// buffer itself instead. All methods are safe for concurrent use.
type Client struct {
	addr string
	opts ClientOptions
	log  *slog.Logger

	ctx    context.Context // ends dialling, backoff and the final flush on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the connection goroutine and its reader
	wake   chan struct{}  // a token means the outbound buffer may be non-empty

	mu        sync.Mutex
	state     link
	conn      net.Conn // while linkUp
	out       []byte   // frames waiting for the writer
	outFrames int
	calls     map[uint64]chan<- callResult
	nextID    uint64

	// writing is set while a goroutine writes to conn: the connection's
	// writer, or a caller flushing its request itself. That goroutine owns
	// spare, the second buffer swapped with out.
	writing bool
	spare   []byte
	// deferred is set while out holds frames queued by QueueEvent that no
	// one was woken for: the next SendEvent must wake the writer even though
	// out is not empty.
	deferred bool
	room     *sendRoom // of conn's socket, while linkUp

	local atomic.Pointer[localLink] // the in-process server last admitted

	framesOut atomic.Uint64
	bytesOut  atomic.Uint64
	framesIn  atomic.Uint64
	bytesIn   atomic.Uint64
	rejected  atomic.Uint64
	lost      atomic.Uint64
	late      atomic.Uint64
	connects  atomic.Uint64
}

// ClientStats counts a Client's traffic.
type ClientStats struct {
	FramesOut uint64 // frames written to the socket
	BytesOut  uint64
	FramesIn  uint64 // response frames read
	BytesIn   uint64
	Rejected  uint64 // sends and calls refused: peer down or queue full
	Lost      uint64 // frames accepted but dropped because the connection failed before they were written
	Late      uint64 // responses that arrived after their call gave up
	Connects  uint64 // successful dials
}

// NewClient returns a Client for the peer at addr (host:port). It opens no
// connection until the first SendEvent or Call.
func NewClient(addr string, opts ClientOptions) *Client {
	opts.fill()
	c := &Client{
		addr:  addr,
		opts:  opts,
		log:   opts.Log.With("peer", addr),
		wake:  make(chan struct{}, 1),
		calls: make(map[uint64]chan<- callResult),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Addr returns the peer's address.
func (c *Client) Addr() string { return c.addr }

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	return ClientStats{
		FramesOut: c.framesOut.Load(),
		BytesOut:  c.bytesOut.Load(),
		FramesIn:  c.framesIn.Load(),
		BytesIn:   c.bytesIn.Load(),
		Rejected:  c.rejected.Load(),
		Lost:      c.lost.Load(),
		Late:      c.late.Load(),
		Connects:  c.connects.Load(),
	}
}

// SendEvent encodes e into the outbound buffer and returns; it never waits
// for the network, and e is not retained. A nil error means the event is
// queued, not delivered. It fails at once with ErrUnavailable while the peer
// is down, ErrQueueFull when MaxPending bytes are waiting, ErrFrameTooLarge,
// or ErrClosed. While the very first connection is being dialled, events are
// queued.
func (c *Client) SendEvent(e *core.Event) error { return c.queueEvent(e, true) }

// QueueEvent is SendEvent without waking the writer: the event waits in the
// outbound buffer for the caller's Flush, or for whichever send or flush
// comes first. A sender of many events in a row thus writes them in one
// batch from its own thread, rather than hand each to the writer's.
func (c *Client) QueueEvent(e *core.Event) error { return c.queueEvent(e, false) }

func (c *Client) queueEvent(e *core.Event, wake bool) error {
	if !e.Kind.Valid() {
		return fmt.Errorf("cannot send event to %s: invalid kind %d", c.addr, e.Kind)
	}
	size := eventFrameSize(e)
	if size-prefixLen > c.opts.MaxFrame {
		return fmt.Errorf("cannot send event to %s: %w", c.addr, frameTooLarge(uint64(size-prefixLen), c.opts.MaxFrame))
	}
	c.mu.Lock()
	if err := c.admitLocked(size); err != nil {
		c.mu.Unlock()
		return err
	}
	signal := c.queuedLocked(wake)
	c.out = AppendEvent(c.out, e)
	c.outFrames++
	c.mu.Unlock()
	if signal {
		c.signal()
	}
	return nil
}

// queuedLocked accounts for a frame about to join out, and reports whether
// the writer must be woken for it: frames join others already waiting for a
// write, and the first ones either wake the writer or, without wake, wait
// for a Flush.
func (c *Client) queuedLocked(wake bool) bool {
	if len(c.out) > 0 && !c.deferred {
		return false
	}
	if wake {
		c.deferred = false
		return true
	}
	c.deferred = c.deferred || !c.writing
	return false
}

// Flush sends what QueueEvent left waiting. It writes on the caller's thread
// when the connection is up, idle, and its socket has room for the lot, so
// that the write cannot block on a peer that stopped reading; otherwise it
// wakes the writer.
func (c *Client) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.deferred {
		return
	}
	c.deferred = false
	if c.state == linkUp && !c.writing && c.room.fits(len(c.out)) {
		_ = c.flushLocked(c.conn, 1) // a failure is the connection goroutine's to report
	} else {
		c.signal()
	}
}

// admitLocked decides whether size more bytes may be queued, starting the
// connection on first use.
func (c *Client) admitLocked(size int) error {
	switch c.state {
	case linkIdle:
		c.state = linkConnecting
		c.wg.Add(1)
		go c.run()
	case linkDown:
		c.rejected.Add(1)
		return ErrUnavailable
	case linkClosed:
		return ErrClosed
	}
	if len(c.out)+size > c.opts.MaxPending {
		c.rejected.Add(1)
		return ErrQueueFull
	}
	return nil
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// startCall registers done under a new request id and queues the request.
func (c *Client) startCall(method string, body []byte, done chan<- callResult) (uint64, error) {
	size := requestFrameSize(method, body)
	if size-prefixLen > c.opts.MaxFrame {
		return 0, frameTooLarge(uint64(size-prefixLen), c.opts.MaxFrame)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.admitLocked(size); err != nil {
		return 0, err
	}
	c.nextID++
	id := c.nextID
	c.calls[id] = done
	signal := c.queuedLocked(true)
	c.out = appendRequest(c.out, id, method, body)
	c.outFrames++
	if c.state == linkUp && !c.writing && c.room.fits(len(c.out)) {
		// Write it from here rather than wake the writer: a call waits
		// for its answer anyway, and a hand-off between threads costs more
		// than the write on an idle machine. Only when the socket has room:
		// a peer that stopped reading must not hold the caller past its
		// deadline.
		c.flushLocked(c.conn, 1)
	} else if signal {
		c.signal()
	}
	return id, nil
}

// maxFlushRounds bounds how many times a flushing goroutine writes what
// others queued meanwhile before it hands the rest to the writer.
const maxFlushRounds = 4

// flushLocked writes the outbound buffer to conn, and what is queued
// meanwhile, up to rounds writes; c.mu is held on entry and on return but
// not while writing. A failed write closes conn, so that the connection
// goroutine sees it and fails the waiting calls. The caller checked that no
// one else is writing.
func (c *Client) flushLocked(conn net.Conn, rounds int) error {
	c.writing = true
	var err error
	for round := 0; len(c.out) > 0 && c.conn == conn && round < rounds; round++ {
		buf, frames := c.out, c.outFrames
		c.out, c.outFrames, c.deferred = c.spare[:0], 0, false
		c.mu.Unlock()
		var n int
		n, err = conn.Write(buf)
		c.bytesOut.Add(uint64(n))
		if err != nil {
			c.lost.Add(uint64(frames))
			conn.Close()
		} else {
			c.framesOut.Add(uint64(frames))
		}
		c.mu.Lock()
		c.spare = buf[:0]
		if err != nil {
			break
		}
		if c.conn == conn {
			c.room.wrote(n)
		}
	}
	c.writing = false
	if len(c.out) > 0 && err == nil {
		c.signal()
	}
	return err
}

// abandonCall forgets a call that gave up, so its late response is dropped.
func (c *Client) abandonCall(id uint64) {
	c.mu.Lock()
	delete(c.calls, id)
	c.mu.Unlock()
}

// pendingCalls returns the number of calls waiting for a response.
func (c *Client) pendingCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// Reset drops the connection at once, with everything queued or written but
// not yet acknowledged by the peer: the kernel discards its send buffer
// (SO_LINGER 0) instead of delivering it late, after a partition heals.
// Waiting calls fail; the next send redials. It is safe for concurrent use.
func (c *Client) Reset() {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close() // the connection goroutine sees it fail and drops the queue
}

// Down reports whether the peer is unreachable: the connection broke or the
// last dial failed, and no redial has succeeded since.
func (c *Client) Down() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == linkDown
}

// Close stops the connection goroutines after one bounded attempt (at most
// DialTimeout) to write what is queued, fails waiting calls with ErrClosed and
// waits for the goroutines to end. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.state == linkClosed {
		c.mu.Unlock()
		return nil
	}
	c.state = linkClosed
	if c.conn != nil {
		// Bounds a write that is blocked on a peer that stopped reading.
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.opts.DialTimeout))
	}
	c.failCallsLocked(ErrClosed)
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// failCallsLocked ends every waiting call with err.
func (c *Client) failCallsLocked(err error) {
	for id, done := range c.calls {
		done <- callResult{err: err}
		delete(c.calls, id)
	}
}

// run owns the connection: it dials, serves the connection until it fails,
// and redials with backoff until Close.
func (c *Client) run() {
	defer c.wg.Done()
	backoff := c.opts.BackoffMin
	for {
		conn, err := c.dial()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.down(err, backoff == c.opts.BackoffMin)
		} else {
			began := time.Now()
			err = c.serve(conn)
			if c.ctx.Err() != nil {
				return
			}
			c.down(err, true)
			if c.opts.OnLost != nil {
				c.opts.OnLost()
			}
			// A connection that lived long was healthy: start backing off
			// afresh. One that dies at once (a peer that accepts and drops)
			// keeps backing off rather than redialling in a tight loop.
			if time.Since(began) > c.opts.BackoffMax {
				backoff = c.opts.BackoffMin
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.opts.BackoffMax)
	}
}

func (c *Client) dial() (net.Conn, error) {
	d := net.Dialer{Timeout: c.opts.DialTimeout}
	var conn net.Conn
	var err error
	if c.opts.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: c.opts.TLS}
		conn, err = td.DialContext(c.ctx, "tcp", c.addr)
	} else {
		conn, err = d.DialContext(c.ctx, "tcp", c.addr)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == linkClosed {
		conn.Close()
		return nil, ErrClosed
	}
	c.state, c.conn, c.room = linkUp, conn, newSendRoom(conn)
	c.connects.Add(1)
	c.log.Debug("connected")
	return conn, nil
}

// down records a failed dial or a lost connection: queued frames are dropped,
// waiting calls fail and sends fail fast until the next successful dial.
func (c *Client) down(err error, loud bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == linkClosed {
		return
	}
	wasUp := c.state == linkUp
	// A peer that closed the connection with nothing of ours in flight
	// left as peers do when they stop or restart: worth a line, not a
	// warning.
	quiet := errors.Is(err, io.EOF) && c.outFrames == 0 && len(c.calls) == 0
	c.state, c.conn, c.room = linkDown, nil, nil
	c.lost.Add(uint64(c.outFrames))
	c.out, c.outFrames, c.deferred = c.out[:0], 0, false
	c.failCallsLocked(fmt.Errorf("%w: %v", ErrUnavailable, err))
	switch {
	case wasUp && quiet:
		c.log.Info("peer closed the connection")
	case wasUp:
		c.log.Warn("connection to peer lost", "err", err)
	case loud:
		c.log.Warn("cannot connect to peer", "err", err)
	default:
		c.log.Debug("cannot connect to peer", "err", err)
	}
}

// serve runs the writer on this goroutine and the reader on another until the
// connection fails or the client closes, and returns why it ended.
func (c *Client) serve(conn net.Conn) error {
	readErr := make(chan error, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		readErr <- c.read(conn)
	}()
	err := c.write(conn, readErr)
	conn.Close()
	if rerr := <-readErr; err == nil {
		err = rerr
	}
	return err
}

// write flushes the outbound buffer whenever it is signalled, swapping it for
// the spare one so senders never wait for the socket. It returns nil when the
// reader failed (serve then reports the reader's error).
func (c *Client) write(conn net.Conn, readErr chan error) error {
	for {
		select {
		case <-c.wake:
		case err := <-readErr:
			readErr <- err
			return nil
		case <-c.ctx.Done():
			// Close set a write deadline on conn, bounding this last flush.
			_ = c.flush(conn)
			return ErrClosed
		}
		if err := c.flush(conn); err != nil {
			return err
		}
	}
}

// flush writes what is queued, unless a caller is writing: it then writes
// what follows too, or wakes the writer again.
func (c *Client) flush(conn net.Conn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing {
		return nil
	}
	return c.flushLocked(conn, maxFlushRounds)
}

// read decodes response frames until the connection fails.
func (c *Client) read(conn net.Conn) error {
	buf := make([]byte, firstRead)
	start, end := 0, 0
	for {
		for {
			body, n, err := nextFrame(buf[start:end], c.opts.MaxFrame)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			if err := c.handleResponse(body); err != nil {
				return err
			}
			c.framesIn.Add(1)
			c.bytesIn.Add(uint64(n))
			start += n
		}
		// Keep the partial frame at the front and make room for all of it.
		end = copy(buf, buf[start:end])
		start = 0
		if end >= prefixLen {
			if want := prefixLen + int(binary.BigEndian.Uint32(buf)); want > len(buf) {
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

// handleResponse hands a response to its call. The body is copied: buf is
// reused for the next read.
func (c *Client) handleResponse(body []byte) error {
	id, errText, payload, err := decodeEnvelope(body, kindResponse, "response")
	if err != nil {
		return err
	}
	c.mu.Lock()
	done, ok := c.calls[id]
	delete(c.calls, id)
	c.mu.Unlock()
	if !ok {
		c.late.Add(1)
		return nil
	}
	done <- callResult{remote: string(errText), body: append([]byte(nil), payload...)}
	return nil
}
