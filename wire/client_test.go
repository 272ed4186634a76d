package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	first := &recorder{}
	s := startServer(t, ServerConfig{Handler: first})
	addr := s.Addr()
	var lost atomic.Int32
	c := newClient(t, addr, ClientOptions{BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		OnLost: func() { lost.Add(1) }})
	e := testEvent(core.KindCast, 1, 0, []byte("before"))
	if err := c.SendEvent(&e); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "first event", func() bool { return first.len() == 1 })

	if c.Down() {
		t.Fatal("Down while connected")
	}
	s.Close()
	testutil.Eventually(t, 10*time.Second, "OnLost", func() bool { return lost.Load() == 1 })
	testutil.Eventually(t, 10*time.Second, "Down", c.Down)
	testutil.Eventually(t, 10*time.Second, "ErrUnavailable", func() bool { return errors.Is(c.SendEvent(&e), ErrUnavailable) })
	began := time.Now()
	if _, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Call while down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("Call while down took %v, want an immediate failure", d)
	}
	if c.Stats().Rejected == 0 {
		t.Error("Rejected not counted")
	}

	second := &recorder{}
	mux := &Mux{}
	Method(mux, "echo", func(_ context.Context, r *echoReq) (*echoResp, error) { return &echoResp{Text: r.Text}, nil })
	startServer(t, ServerConfig{Addr: addr, Handler: second, Mux: mux})
	e.Payload = []byte("after")
	testutil.Eventually(t, 10*time.Second, "an event through the new connection", func() bool {
		_ = c.SendEvent(&e)
		return second.len() > 0
	})
	if got := second.snapshot()[0]; string(got.Payload) != "after" {
		t.Fatalf("payload %q", got.Payload)
	}
	resp, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{Text: "back"})
	if err != nil || resp.Text != "back" {
		t.Fatalf("Call after reconnect: %v, %v", resp, err)
	}
	if got := c.Stats().Connects; got != 2 {
		t.Fatalf("Connects = %d, want 2", got)
	}
	if c.Down() {
		t.Fatal("Down after the reconnect")
	}
}

func TestClientUnreachablePeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	c := newClient(t, addr, ClientOptions{BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	e := testEvent(core.KindCast, 0, 0, nil)
	// Sends are queued while the first dial runs; once it fails, sends
	// fail fast and what was queued is counted as lost.
	queued := uint64(0)
	testutil.Eventually(t, 10*time.Second, "ErrUnavailable", func() bool {
		err := c.SendEvent(&e)
		if err == nil {
			queued++
		}
		return errors.Is(err, ErrUnavailable)
	})
	if got := c.Stats().Lost; queued == 0 || got != queued {
		t.Fatalf("Lost = %d, want %d", got, queued)
	}
}

func TestClientQueueFull(t *testing.T) {
	// A peer that accepts and never reads: the socket buffers fill, the
	// writer blocks and the bounded queue must refuse more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
	}()
	c := newClient(t, ln.Addr().String(), ClientOptions{MaxPending: 64 << 10, DialTimeout: 100 * time.Millisecond})
	e := testEvent(core.KindCast, 0, 0, bytes.Repeat([]byte("q"), 1000))
	var err2 error
	for i := 0; i < 1_000_000 && err2 == nil; i++ {
		err2 = c.SendEvent(&e)
	}
	if !errors.Is(err2, ErrQueueFull) {
		t.Fatalf("SendEvent: %v, want ErrQueueFull", err2)
	}
	began := time.Now()
	c.Close() // bounded by DialTimeout although the peer does not read
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	select {
	case conn := <-accepted:
		conn.Close()
	default:
	}
}

func TestClientFrameTooLarge(t *testing.T) {
	c := newClient(t, "127.0.0.1:1", ClientOptions{MaxFrame: 1024})
	e := testEvent(core.KindCast, 0, 0, make([]byte, 1024))
	if err := c.SendEvent(&e); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("SendEvent: %v, want ErrFrameTooLarge", err)
	}
	for eventFrameSize(&e)-prefixLen > 1024 { // find the largest payload that fits
		e.Payload = e.Payload[:len(e.Payload)-1]
	}
	if size := eventFrameSize(&e) - prefixLen; size != 1024 {
		t.Fatalf("test payload gives a %d-byte body", size)
	}
	if err := c.SendEvent(&e); err != nil {
		t.Fatalf("SendEvent at the limit: %v", err)
	}
	_, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{Text: string(make([]byte, 2000))})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Call: %v, want ErrFrameTooLarge", err)
	}
	e.Kind = 0
	if err := c.SendEvent(&e); err == nil {
		t.Fatal("SendEvent accepted kind 0")
	}
}

func TestClientCloseIsIdempotent(t *testing.T) {
	s := startServer(t, ServerConfig{Handler: &recorder{}})
	c := NewClient(s.Addr(), ClientOptions{})
	if err := c.Close(); err != nil { // never used: nothing to stop
		t.Fatal(err)
	}
	e := testEvent(core.KindCast, 0, 0, nil)
	if err := c.SendEvent(&e); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendEvent after Close: %v", err)
	}

	rec := &recorder{}
	s2 := startServer(t, ServerConfig{Handler: rec})
	c2 := NewClient(s2.Addr(), ClientOptions{})
	if err := c2.SendEvent(&e); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "a connection", func() bool { return c2.Stats().Connects == 1 })
	for range 99 {
		if err := c2.SendEvent(&e); err != nil {
			t.Fatal(err)
		}
	}
	c2.Close()
	c2.Close()
	// Close flushes what was queued.
	testutil.Eventually(t, 10*time.Second, "queued events", func() bool { return rec.len() == 100 })
	if _, err := Call[echoReq, echoResp](context.Background(), c2, "echo", &echoReq{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close: %v", err)
	}
}

// A peer that closes the connection with nothing of the client's in flight
// (it stops or restarts) is logged as such, not warned about.
func TestPeerClosingIsNotAWarning(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", secure), func(t *testing.T) {
			var log testutil.Buffer
			s, c := connectedPair(t, secure, ClientOptions{Log: slog.New(slog.NewTextHandler(&log, nil))}, &recorder{})
			s.Close()
			testutil.Eventually(t, 10*time.Second, "Down", c.Down)
			if got := log.String(); !strings.Contains(got, `level=INFO msg="peer closed the connection"`) || strings.Contains(got, "WARN") {
				t.Fatalf("log:\n%s\nwant the peer's close at INFO and no warning", got)
			}
		})
	}
}
