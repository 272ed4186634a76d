package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// connected returns a client whose connection to s is up: one event went
// through.
func connected(t *testing.T, addr string, opts ClientOptions, rec *recorder) *Client {
	t.Helper()
	c := newClient(t, addr, opts)
	e := testEvent(core.KindCast, 0, 0, []byte("hello"))
	if err := c.SendEvent(&e); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the first event", func() bool { return rec.len() == 1 })
	return c
}

// connectedPair starts a server taking events into rec and returns it with
// a client whose connection to it is up: plain, or with node certificates
// of one CA at both ends when secure.
func connectedPair(t *testing.T, secure bool, opts ClientOptions, rec *recorder) (*Server, *Client) {
	t.Helper()
	cfg := ServerConfig{Handler: rec}
	if secure {
		p := newPKI(t)
		cfg.TLS = p.creds(RoleNode, "n1").ServerTLS()
		cfg.EventsFrom = func(Identity) bool { return true }
		opts.TLS = p.creds(RoleNode, "n2").ClientTLS(Identity{Role: RoleNode, ID: "n1"})
	}
	s := startServer(t, cfg)
	return s, connected(t, s.Addr(), opts, rec)
}

func TestQueueEventWaitsForFlush(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", secure), func(t *testing.T) {
			rec := &recorder{}
			_, c := connectedPair(t, secure, ClientOptions{}, rec)
			for i := range 3 {
				e := testEvent(core.KindCast, uint64(i+1), 0, []byte{byte(i)})
				if err := c.QueueEvent(&e); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.Stats().FramesOut; got != 1 {
				t.Fatalf("FramesOut = %d before Flush, want 1: queued events were written", got)
			}
			c.Flush()
			// The connection is up and idle, and the socket has room: the
			// events were written by Flush itself, on this goroutine.
			if got := c.Stats().FramesOut; got != 4 {
				t.Fatalf("FramesOut = %d after Flush, want 4", got)
			}
			testutil.Eventually(t, 10*time.Second, "the queued events", func() bool { return rec.len() == 4 })
			for i, e := range rec.snapshot()[1:] {
				if e.Corr != uint64(i+1) {
					t.Fatalf("event %d has corr %d: out of order", i, e.Corr)
				}
			}
		})
	}
}

func TestSendEventTakesQueuedEventsAlong(t *testing.T) {
	rec := &recorder{}
	s := startServer(t, ServerConfig{Handler: rec})
	c := connected(t, s.Addr(), ClientOptions{}, rec)
	a, b := testEvent(core.KindCast, 1, 0, nil), testEvent(core.KindCast, 2, 0, nil)
	if err := c.QueueEvent(&a); err != nil {
		t.Fatal(err)
	}
	// Another sender's event must not wait behind one queued for a Flush
	// that may come late.
	if err := c.SendEvent(&b); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "both events without a Flush", func() bool { return rec.len() == 3 })
}

func TestFlushWhileConnecting(t *testing.T) {
	rec := &recorder{}
	s := startServer(t, ServerConfig{Handler: rec})
	c := newClient(t, s.Addr(), ClientOptions{})
	e := testEvent(core.KindCast, 7, 0, []byte("early"))
	if err := c.QueueEvent(&e); err != nil { // starts the first dial
		t.Fatal(err)
	}
	c.Flush()
	testutil.Eventually(t, 10*time.Second, "the event queued before the connection", func() bool { return rec.len() == 1 })
	if got := rec.snapshot()[0]; got.Corr != 7 || string(got.Payload) != "early" {
		t.Fatalf("got %+v", got)
	}
}

// stalledPeer returns a client connected to a peer that accepts and never
// reads.
func stalledPeer(t *testing.T, opts ClientOptions) *Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn // held open, never read
		}
	}()
	t.Cleanup(func() {
		select {
		case conn := <-accepted:
			conn.Close()
		default:
		}
	})
	c := newClient(t, ln.Addr().String(), opts)
	first := testEvent(core.KindCast, 0, 0, nil)
	if err := c.SendEvent(&first); err != nil { // starts the dial
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the connection", func() bool { return c.Stats().Connects == 1 })
	return c
}

// A peer that accepts and never reads fills the socket: Flush must then
// leave the write to the writer, which blocks, and never block its caller.
func TestFlushNeverBlocksOnAStalledPeer(t *testing.T) {
	c := stalledPeer(t, ClientOptions{MaxPending: 4 << 20})
	payload := make([]byte, 32<<10)
	done := make(chan error, 1)
	go func() {
		// Bounded: MaxPending is reached within 4 MiB of events the
		// writer could not write, or the loop ends.
		for range 10_000 {
			e := testEvent(core.KindCast, 0, 0, payload)
			if err := c.QueueEvent(&e); err != nil {
				done <- err
				return
			}
			c.Flush()
		}
		done <- nil
	}()
	wantQueueFull(t, done, "Flush")
}

// A call's request is written on the caller's thread only when the socket
// has room for it: a peer that stops reading must not hold callers past
// their deadline.
func TestCallNeverBlocksOnAStalledPeer(t *testing.T) {
	c := stalledPeer(t, ClientOptions{MaxPending: 4 << 20})
	req := struct{ B []byte }{make([]byte, 256<<10)}
	done := make(chan error, 1)
	go func() {
		// Bounded: MaxPending is reached within 4 MiB of requests the
		// writer could not write, or the loop ends.
		for range 1000 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_, err := Call[struct{ B []byte }, struct{}](ctx, c, "stalled", &req)
			cancel()
			if errors.Is(err, ErrQueueFull) {
				done <- err
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				done <- fmt.Errorf("want the deadline or ErrQueueFull, got %v", err)
				return
			}
		}
		done <- nil
	}()
	wantQueueFull(t, done, "a call")
}

// wantQueueFull waits for the sending loop's end: the stalled peer's socket
// and then the queue full, never what blocked.
func wantQueueFull(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, ErrQueueFull) {
			t.Fatalf("sending ended with %v, want ErrQueueFull once the stalled peer's socket and the queue are full", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s blocked on a peer that does not read", what)
	}
}
