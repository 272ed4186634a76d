package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// testLog writes through t.Log so a failing test shows what the transport said.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// recorder is a Handler that keeps copies of the events it receives.
type recorder struct {
	mu     sync.Mutex
	events []core.Event
}

func (r *recorder) HandleEvent(e *core.Event) {
	c := *e
	c.Payload = append([]byte(nil), e.Payload...)
	r.mu.Lock()
	r.events = append(r.events, c)
	r.mu.Unlock()
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recorder) snapshot() []core.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]core.Event(nil), r.events...)
}

// startServer starts a server on 127.0.0.1:0 (or cfg.Addr) and closes it
// when the test ends.
func startServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Log == nil {
		cfg.Log = testLog(t)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClient(t *testing.T, addr string, opts ClientOptions) *Client {
	t.Helper()
	if opts.Log == nil {
		opts.Log = testLog(t)
	}
	c := NewClient(addr, opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServerAddrResolvesPortZero(t *testing.T) {
	s := startServer(t, ServerConfig{Handler: &recorder{}})
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, %v", s.Addr(), err)
	}
}

func TestServerConfigErrors(t *testing.T) {
	f := func(name string, cfg ServerConfig) {
		t.Helper()
		if _, err := NewServer(cfg); err == nil {
			t.Fatalf("%s: NewServer accepted %+v", name, cfg)
		}
	}
	f("no address", ServerConfig{})
	f("no port", ServerConfig{Addr: "127.0.0.1"})
	f("negative max frame", ServerConfig{Addr: "127.0.0.1:0", MaxFrame: -1})
}

func TestServerStartFailsOnBusyPort(t *testing.T) {
	first := startServer(t, ServerConfig{Handler: &recorder{}})
	s, err := NewServer(ServerConfig{Addr: first.Addr(), Handler: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	// SO_REUSEADDR does not allow two listeners on one port.
	if err := s.Start(context.Background()); err == nil {
		s.Close()
		t.Fatalf("second server started on %s", first.Addr())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestServerCloseIsIdempotent(t *testing.T) {
	s := startServer(t, ServerConfig{Handler: &recorder{}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	unstarted, _ := NewServer(ServerConfig{Addr: "127.0.0.1:0"})
	if err := unstarted.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestEventsArriveIntactAndInOrder(t *testing.T) {
	rec := &recorder{}
	s := startServer(t, ServerConfig{Handler: rec})
	c := newClient(t, s.Addr(), ClientOptions{})
	const n = 5000
	for i := range n {
		e := testEvent(core.KindCast, uint64(i), int64(i)*1000, []byte("payload-"+strconv.Itoa(i)))
		if i%7 == 0 {
			e.Payload = bytes.Repeat([]byte{byte(i)}, 3000) // frames that span reads
		}
		if err := c.SendEvent(&e); err != nil { // the 8 MiB queue holds all of them
			t.Fatalf("SendEvent %d: %v", i, err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "all events", func() bool { return rec.len() == n })
	for i, got := range rec.snapshot() {
		want := testEvent(core.KindCast, uint64(i), int64(i)*1000, []byte("payload-"+strconv.Itoa(i)))
		if i%7 == 0 {
			want.Payload = bytes.Repeat([]byte{byte(i)}, 3000)
		}
		if !sameEvent(&got, &want) {
			t.Fatalf("event %d: got corr %d payload %d bytes, want corr %d", i, got.Corr, len(got.Payload), want.Corr)
		}
	}
	// Counters are updated after handling and after writing: poll them.
	testutil.Eventually(t, 10*time.Second, "counters", func() bool {
		st, cs := s.Stats(), c.Stats()
		return st.FramesIn == n && cs.FramesOut == n && cs.BytesOut == st.BytesIn
	})
	if st, cs := s.Stats(), c.Stats(); st.Malformed != 0 || st.Conns != 1 || cs.Connects != 1 {
		t.Fatalf("server stats %+v, client stats %+v", st, cs)
	}
}

// rawConn dials addr with a plain socket for sending hand-made bytes.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitClosed fails the test unless the peer closes conn.
func waitClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

func TestMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	rec := &recorder{}
	s := startServer(t, ServerConfig{Handler: rec, MaxFrame: 1024})
	good := newClient(t, s.Addr(), ClientOptions{})
	send := func(corr uint64) {
		t.Helper()
		e := testEvent(core.KindCast, corr, 0, []byte("ok"))
		if err := good.SendEvent(&e); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "event "+strconv.FormatUint(corr, 10), func() bool {
			evs := rec.snapshot()
			return len(evs) > 0 && evs[len(evs)-1].Corr == corr
		})
	}
	send(1)

	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	valid := AppendEvent(nil, &core.Event{Kind: core.KindCast})
	f := func(name string, data []byte) {
		t.Helper()
		before := s.Stats().Malformed
		conn := rawConn(t, s.Addr())
		if _, err := conn.Write(data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		waitClosed(t, conn)
		if got := s.Stats().Malformed; got != before+1 {
			t.Fatalf("%s: Malformed = %d, want %d", name, got, before+1)
		}
		send(before + 2)
	}
	f("never-used code", frame(b(0xc1, 0xc1, 0xc1)))
	f("empty body", frame(nil))
	f("not an array", frame(b(0xa3, 'a', 'b', 'c')))
	f("unknown kind", frame(b(0x93, 9, 0, 0)))
	f("response from a client", appendResponse(nil, 1, "", nil))
	f("bad event after a good one", append(append([]byte(nil), valid...), frame(b(0x96, 1, 0xc0))...))
	f("oversize length", binary.BigEndian.AppendUint32(nil, 1025))
	f("oversize length 4 GiB", b(0xff, 0xff, 0xff, 0xff))
	f("truncated request", frame(b(0x94, 16, 1)))
	testutil.Eventually(t, 10*time.Second, "one connection left", func() bool { return s.Stats().Conns == 1 })
}

// A peer that sends requests and never reads the answers is dropped once a
// frame's worth and a megabyte of them wait, rather than have the server
// buffer answers without bound; other peers are served on.
func TestServerDropsPeerLeavingAnswersUnread(t *testing.T) {
	s := startServer(t, ServerConfig{Mux: &Mux{}, MaxFrame: 4096})
	conn := rawConn(t, s.Addr())
	var burst []byte
	for i := range 1000 { // each answered at once: unknown method
		burst = appendRequest(burst, uint64(i+1), "no.such.method", nil)
	}
	// Bounded: at most 64 MiB of requests, far beyond the answers' bound
	// and the sockets' buffers, before the server must have closed.
	var err error
	for sent := 0; err == nil && sent < 64<<20; sent += len(burst) {
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Write(burst)
	}
	if err == nil {
		t.Fatal("64 MiB of requests whose answers were never read, and the server still reads them")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server stopped reading but kept the connection: %v", err)
	}
	if got := s.Stats().Stalled; got != 1 {
		t.Fatalf("Stalled = %d, want 1", got)
	}
	if _, err := Call[Empty, Empty](context.Background(), newClient(t, s.Addr(), ClientOptions{}), "no.such.method", &Empty{}); err == nil || !strings.Contains(err.Error(), "unknown method") {
		t.Fatalf("another peer's call: %v, want its unknown-method answer", err)
	}
}

func TestServerWithoutHandlerRejectsEvents(t *testing.T) {
	s := startServer(t, ServerConfig{Mux: &Mux{}})
	conn := rawConn(t, s.Addr())
	conn.Write(AppendEvent(nil, &core.Event{Kind: core.KindCast}))
	waitClosed(t, conn)
	if got := s.Stats().Malformed; got != 1 {
		t.Fatalf("Malformed = %d, want 1", got)
	}
}

// panicky is a Handler with a bug.
type panicky struct{}

func (panicky) HandleEvent(*core.Event) { panic("handler bug") }

func TestHandlerPanicClosesConnection(t *testing.T) {
	s := startServer(t, ServerConfig{Handler: panicky{}})
	conn := rawConn(t, s.Addr())
	conn.Write(AppendEvent(nil, &core.Event{Kind: core.KindCast}))
	waitClosed(t, conn)
	other := rawConn(t, s.Addr())
	testutil.Eventually(t, 10*time.Second, "server still accepting", func() bool { return s.Stats().Conns == 1 })
	other.Close()
}

func TestLargeEventsSpanManyReads(t *testing.T) {
	rec := &recorder{}
	s := startServer(t, ServerConfig{Handler: rec})
	c := newClient(t, s.Addr(), ClientOptions{})
	for i := range 3 {
		e := testEvent(core.KindCast, uint64(i), 0, bytes.Repeat([]byte{byte('a' + i)}, 3<<20))
		if err := c.SendEvent(&e); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "a large event", func() bool { return rec.len() == i+1 })
		if got := rec.snapshot()[i]; !sameEvent(&got, &e) {
			t.Fatalf("event %d arrived damaged: %d payload bytes", i, len(got.Payload))
		}
	}
}
