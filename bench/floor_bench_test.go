package bench

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// echo is a gnet server writing back whatever it reads: the floor a remote
// hop is compared with, measured in the same process and run as the ring.
type echo struct {
	gnet.BuiltinEventEngine
	ready chan string
	eng   gnet.Engine
}

func (e *echo) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	close(e.ready)
	return gnet.None
}

func (e *echo) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	c.Write(buf)
	return gnet.None
}

// quiet is a gnet logger that says nothing (gnet logs its start to stdout,
// where it would garble the benchmark's output).
type quiet struct{}

func (quiet) Debugf(string, ...any) {}
func (quiet) Infof(string, ...any)  {}
func (quiet) Warnf(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(string, ...any) {}

// BenchmarkEchoFloor is the round trip of a 158-byte frame (an event with a
// 100 B payload) to a gnet echo server over loopback, one in flight: run it
// with BenchmarkRing/remote/*/idle, e.g.
// go test -run '^$' -bench 'EchoFloor|Ring/remote/wasm/idle' ./bench/,
// and compare p50-rtt-µs with the ring's p50-hop-µs.
func BenchmarkEchoFloor(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := &echo{ready: make(chan string)}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(e, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLogger(quiet{}))
	}()
	select {
	case <-e.ready:
	case err := <-done:
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Stop only signals with an ended context; Run returns when stopped
		e.eng.Stop(ctx)
		<-done
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	frame, back := make([]byte, 158), make([]byte, 158)
	rtts := make([]time.Duration, 0, b.N)
	for range 2000 { // warm up
		conn.Write(frame)
		io.ReadFull(conn, back)
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := conn.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, back); err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(rtts)
	b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds())/1e3, "p50-rtt-µs")
	b.ReportMetric(float64(rtts[len(rtts)*99/100].Nanoseconds())/1e3, "p99-rtt-µs")
}
