//go:build linux

package ebpf

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// echoLoad is a steady loopback load: request/response exchanges of small
// frames over one TCP connection, two syscalls and a wake-up per hop, the
// pattern of events between two nodes.
type echoLoad struct {
	port   int
	client net.Conn
	buf    []byte
}

func newEchoLoad(tb testing.TB) *echoLoad {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // ends when the client closes
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		client.Close()
		ln.Close()
		<-done
	})
	return &echoLoad{port: ln.Addr().(*net.TCPAddr).Port, client: client, buf: make([]byte, 64)}
}

// run makes n exchanges and returns the CPU time the process spent on them.
func (l *echoLoad) run(tb testing.TB, n int) time.Duration {
	tb.Helper()
	_, cpu0 := rusage(tb)
	for range n {
		if _, err := l.client.Write(l.buf); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(l.client, l.buf); err != nil {
			tb.Fatal(err)
		}
	}
	_, cpu1 := rusage(tb)
	return cpu1 - cpu0
}

// TestOverhead reports the process's CPU time under the echo load with the
// probes off and on, alternating in one run so both see the same machine. It
// asserts nothing about the ratio: it is a measurement.
func TestOverhead(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const rounds, exchanges = 3, 20000
	l := newEchoLoad(t)
	l.run(t, exchanges/10) // warm up
	var off, on time.Duration
	var p *Probes
	for range rounds {
		off += l.run(t, exchanges)
		p = startProbes(t, l.port)
		before := p.Snapshot()
		on += l.run(t, exchanges)
		s := p.Snapshot()
		if s.TCPBytesOut-before.TCPBytesOut < exchanges*64 {
			t.Errorf("probes counted %d bytes out, want at least %d", s.TCPBytesOut-before.TCPBytesOut, exchanges*64)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	n := rounds * exchanges
	t.Logf("echo load, %d exchanges: probes off %v (%.1f µs/exchange), on %v (%.1f µs/exchange), on/off CPU ratio %.3f",
		n, off, float64(off.Microseconds())/float64(n), on, float64(on.Microseconds())/float64(n), float64(on)/float64(off))

	// The kernel's own accounting of the programs' run time, taken apart
	// from the ratio because it slows every program run a little.
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Logf("no program run-time statistics: %v", err)
		return
	}
	defer stats.Close()
	p = startProbes(t, l.port)
	l.run(t, exchanges)
	for _, prog := range []*ebpf.Program{p.objs.SchedSwitch, p.objs.SchedWakeup, p.objs.SockSendLength, p.objs.SockRecvLength} {
		st, err := prog.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.RunCount > 0 {
			t.Logf("%s: %d runs (whole machine), %.0f ns per run", prog, st.RunCount, float64(st.Runtime)/float64(st.RunCount))
		}
	}
}

// BenchmarkEchoLoad measures the echo load's CPU time per exchange with the
// probes off and on; compare the cpu-ns/op of the two with benchstat.
func BenchmarkEchoLoad(b *testing.B) {
	f := func(name string, probes bool) {
		b.Run(name, func(b *testing.B) {
			l := newEchoLoad(b)
			if probes {
				p, err := Start(Config{Enabled: true, DataplanePort: l.port}, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Skipf("probes cannot run here: %v", err)
				}
				defer p.Close()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := l.run(b, b.N)
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
	f("off", false)
	f("on", true)
}
