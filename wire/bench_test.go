package wire

import (
	"bytes"
	"context"
	"errors"
	"runtime"
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
