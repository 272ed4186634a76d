package wire

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

func benchEvent() core.Event {
	return testEvent(core.KindCast, 0, 1_700_000_000_000_000_000, bytes.Repeat([]byte("p"), 100))
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := benchEvent()
	buf := AppendEvent(nil, &e)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], &e)
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	e := benchEvent()
	body := AppendEvent(nil, &e)[prefixLen:]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var got core.Event
	for b.Loop() {
		if err := DecodeEvent(body, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDecode(b *testing.B) {
	e := benchEvent()
	buf := AppendEvent(nil, &e)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var got core.Event
	for b.Loop() {
		buf = AppendEvent(buf[:0], &e)
		if err := DecodeEvent(buf[prefixLen:], &got); err != nil {
			b.Fatal(err)
		}
	}
}

// counter is a Handler that only counts.
type counter struct{ n atomic.Uint64 }

func (c *counter) HandleEvent(*core.Event) { c.n.Add(1) }

// benchLink starts a server and a connected client for a benchmark.
func benchLink(b *testing.B) (*counter, *Client) {
	b.Helper()
	h := &counter{}
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Handler: h})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c := NewClient(s.Addr(), ClientOptions{})
	b.Cleanup(func() { c.Close() })
	e := benchEvent()
	if err := c.SendEvent(&e); err != nil {
		b.Fatal(err)
	}
	for h.n.Load() == 0 {
		runtime.Gosched()
	}
	return h, c
}

// send retries while the queue is full, as a producer faster than the
// network must.
func send(b *testing.B, c *Client, e *core.Event) {
	for {
		err := c.SendEvent(e)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrQueueFull) {
			b.Fatal(err)
		}
		runtime.Gosched()
	}
}

// BenchmarkClientSendEvent measures the cost to the caller of SendEvent on a
// live connection: encoding into the outbound buffer and waking the writer.
func BenchmarkClientSendEvent(b *testing.B) {
	h, c := benchLink(b)
	e := benchEvent()
	b.SetBytes(int64(eventFrameSize(&e)))
	b.ReportAllocs()
	for b.Loop() {
		send(b, c, &e)
	}
	b.StopTimer()
	want := uint64(b.N) + 1
	for h.n.Load() < want {
		runtime.Gosched()
	}
}

// BenchmarkLoopbackThroughput measures events per second from SendEvent to
// the server's Handler over loopback, delivery included.
func BenchmarkLoopbackThroughput(b *testing.B) {
	h, c := benchLink(b)
	e := benchEvent()
	b.SetBytes(int64(eventFrameSize(&e)))
	b.ReportAllocs()
	start := h.n.Load()
	began := time.Now()
	b.ResetTimer()
	for range b.N {
		send(b, c, &e)
	}
	for h.n.Load() < start+uint64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "events/s")
}

// relay is a Handler that sends every event it receives on to next. The
// two relays of a ring share their count of hops: warm is closed at hop
// warmHops, done at hop target, and no event goes on from there.
type relay struct {
	next   atomic.Pointer[Client] // set after the servers start
	hops   *atomic.Uint64
	target uint64
	warm   chan struct{}
	done   chan struct{}
}

const warmHops = 2000

func (r *relay) HandleEvent(e *core.Event) {
	n := r.hops.Add(1)
	switch n {
	case warmHops:
		close(r.warm)
	case r.target:
		close(r.done)
	}
	if n < r.target {
		_ = r.next.Load().SendEvent(e) // 64 in flight never fill the queue
	}
}

// BenchmarkRingFloor is BenchmarkRing/remote/*/loaded without nodes or
// functions: two servers on loopback whose handlers send every event they
// receive to the other, 64 events in flight, so that every event crosses a
// connection. It is the transport's own bound for that ring, to compare
// with the ring through instances in the same run; tls uses mutual TLS, as
// the ring's default, plain none.
func BenchmarkRingFloor(b *testing.B) {
	for _, secure := range []bool{true, false} {
		b.Run(map[bool]string{true: "tls", false: "plain"}[secure], func(b *testing.B) {
			benchRingFloor(b, secure)
		})
	}
}

func benchRingFloor(b *testing.B, secure bool) {
	ca, err := NewCA("bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	var hops atomic.Uint64
	warm, done := make(chan struct{}), make(chan struct{})
	var relays [2]*relay
	var servers [2]*Server
	var creds [2]*Credentials
	for i := range relays {
		relays[i] = &relay{hops: &hops, target: warmHops + uint64(b.N), warm: warm, done: done}
		// A benchmark's log lines are always printed: keep them out.
		cfg := ServerConfig{Handler: relays[i], Log: slog.New(slog.DiscardHandler)}
		if secure {
			if creds[i], err = ca.Credentials(Identity{Role: RoleNode, ID: strconv.Itoa(i)}, nil); err != nil {
				b.Fatal(err)
			}
			cfg.TLS, cfg.EventsFrom = creds[i].ServerTLS(), func(Identity) bool { return true }
		}
		servers[i] = startServer(b, cfg)
	}
	for i, r := range relays {
		var opts ClientOptions
		if secure {
			opts.TLS = creds[i].ClientTLS(Identity{Role: RoleNode, ID: strconv.Itoa(1 - i)})
		}
		c := NewClient(servers[1-i].Addr(), opts)
		b.Cleanup(func() { c.Close() })
		r.next.Store(c)
	}
	e := benchEvent()
	for range 64 {
		if err := relays[1].next.Load().SendEvent(&e); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.After(time.Minute)
	wait := func(c chan struct{}) {
		select {
		case <-c:
		case <-deadline:
			b.Fatalf("%d of %d hops after a minute", hops.Load(), warmHops+b.N)
		}
	}
	wait(warm)
	b.ReportAllocs()
	b.ResetTimer()
	wait(done)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
