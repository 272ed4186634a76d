//go:build linux

package ebpf

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

// childEnv tells a re-executed test binary which child role to play.
const childEnv = "EDGELESS_EBPF_TEST_CHILD"

// startProbes starts probes for the test. Without root the kernel refuses and
// the test is skipped; as root (CI) every failure is one.
func startProbes(t *testing.T, port int) *Probes {
	t.Helper()
	p, err := Start(Config{Enabled: true, DataplanePort: port}, slog.New(slog.DiscardHandler))
	if err != nil && os.Geteuid() != 0 && errors.Is(err, ErrNotPermitted) {
		t.Skipf("needs root: %v", err)
	}
	if err != nil {
		t.Fatalf("cannot start the probes: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("cannot close the probes: %v", err)
		}
	})
	return p
}

// burn runs two goroutines that alternately spin and sleep until stop closes,
// so the process's threads keep being woken, preempted and switched.
func burn(stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for end := time.Now().Add(2 * time.Millisecond); time.Now().Before(end); {
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	return &wg
}

// rusage returns the process's context switches and CPU time, all threads
// included, as the kernel accounts them.
func rusage(t testing.TB) (switches uint64, cpu time.Duration) {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return uint64(ru.Nvcsw + ru.Nivcsw), time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestSchedulerCounts(t *testing.T) {
	p := startProbes(t, 0)
	before := p.Snapshot()
	ruSw0, ruCPU0 := rusage(t)

	stop := make(chan struct{})
	wg := burn(stop)
	testutil.Eventually(t, 10*time.Second, "run-queue samples, switches and CPU time", func() bool {
		s := p.Snapshot()
		return s.RunQueueSamples >= before.RunQueueSamples+200 &&
			s.Switches() >= before.Switches()+200 &&
			s.CPU >= before.CPU+50*time.Millisecond
	})
	close(stop)
	wg.Wait()

	after := p.Snapshot()
	ruSw1, ruCPU1 := rusage(t)
	sw, ruSw := after.Switches()-before.Switches(), ruSw1-ruSw0
	cpu, ruCPU := after.CPU-before.CPU, ruCPU1-ruCPU0
	t.Logf("switches %d (getrusage %d), cpu %v (getrusage %v), run-queue samples %d, p50 %.1f µs, p99 %.1f µs",
		sw, ruSw, cpu, ruCPU, after.RunQueueSamples-before.RunQueueSamples, after.RunQueueP50Micros, after.RunQueueP99Micros)

	// The probes and getrusage count the same kernel events; they differ
	// only by what happened between the two reads and, for CPU time, by the
	// slices still running.
	if sw < ruSw/2 || sw > ruSw*3/2+100 {
		t.Errorf("switches %d, getrusage says %d", sw, ruSw)
	}
	if cpu < ruCPU/2 || cpu > ruCPU*3/2+20*time.Millisecond {
		t.Errorf("cpu %v, getrusage says %v", cpu, ruCPU)
	}
	if after.RunQueueP50Micros <= 0 || after.RunQueueP99Micros < after.RunQueueP50Micros {
		t.Errorf("p50 %v µs, p99 %v µs", after.RunQueueP50Micros, after.RunQueueP99Micros)
	}
	var sum uint64
	for _, n := range after.RunQueue {
		sum += n
	}
	if sum != after.RunQueueSamples {
		t.Errorf("buckets sum to %d, samples %d", sum, after.RunQueueSamples)
	}
}

// sendOver opens a connection to ln, sends n bytes and waits until the
// accepting side has read them all.
func sendOver(t *testing.T, ln net.Listener, n int) {
	t.Helper()
	read := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			read <- err
			return
		}
		defer c.Close()
		_, err = io.CopyN(io.Discard, c, int64(n))
		read <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bytes.Repeat([]byte{'x'}, n)); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
}

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// TestTCPBytes also runs two probes at once, as two nodes in one process do:
// each counts its own port only.
func TestTCPBytes(t *testing.T) {
	const n, m = 1 << 20, 300 << 10
	ln1, port1 := listen(t)
	ln2, port2 := listen(t)
	p1 := startProbes(t, port1)
	p2 := startProbes(t, port2)
	b1, b2 := p1.Snapshot(), p2.Snapshot()

	sendOver(t, ln1, n)
	sendOver(t, ln2, m)

	f := func(name string, p *Probes, before Stats, want uint64) {
		t.Helper()
		var s Stats
		testutil.Eventually(t, 10*time.Second, name+" bytes", func() bool {
			s = p.Snapshot()
			return s.TCPBytesOut-before.TCPBytesOut >= want && s.TCPBytesIn-before.TCPBytesIn >= want
		})
		// Both ends are in this process: the client's sends and the
		// server's receives count. The other port's traffic must not.
		in, out := s.TCPBytesIn-before.TCPBytesIn, s.TCPBytesOut-before.TCPBytesOut
		if in != want || out != want {
			t.Errorf("%s: in %d, out %d bytes, want %d each", name, in, out, want)
		}
	}
	f("port1", p1, b1, n)
	f("port2", p2, b2, m)
}

// TestTCPBytesInPIDNamespace runs TestTCPBytes as pid 1 of a new pid
// namespace, as in a container: the node knows only its namespaced pid.
func TestTCPBytesInPIDNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a pid namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^(TestTCPBytes|TestPid)$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=pidns")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestTCPBytes ", "--- PASS: TestPid ", "pid 1"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("child output lacks %q:\n%s", want, out)
		}
	}
}

// TestPid reports the pid the test binary sees; a child of
// TestTCPBytesInPIDNamespace must see 1.
func TestPid(t *testing.T) {
	t.Logf("pid %d", os.Getpid())
	if os.Getenv(childEnv) == "pidns" && os.Getpid() != 1 {
		t.Errorf("pid %d in the new namespace, want 1", os.Getpid())
	}
}

func TestDisabled(t *testing.T) {
	p, err := Start(Config{DataplanePort: 1}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrDisabled) || p != nil {
		t.Fatalf("got %v, %v; want nil, ErrDisabled", p, err)
	}
}

// TestNotPermitted drops root in a child process (uid and gid nobody, which
// also clears the capabilities) and expects Start to say not permitted.
func TestNotPermitted(t *testing.T) {
	f := func() {
		t.Helper()
		p, err := Start(Config{Enabled: true, DataplanePort: 7000}, slog.New(slog.DiscardHandler))
		if !errors.Is(err, ErrNotPermitted) || p != nil {
			t.Fatalf("as uid %d: got %v, %v; want nil, ErrNotPermitted", os.Geteuid(), p, err)
		}
		t.Logf("uid %d: %v", os.Geteuid(), err)
	}
	switch {
	case os.Getenv(childEnv) == "nobody":
		const nobody = 65534
		if err := syscall.Setgroups(nil); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setgid(nobody); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setuid(nobody); err != nil {
			t.Fatal(err)
		}
		f()
		return
	case os.Geteuid() != 0:
		f()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNotPermitted$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=nobody")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "uid 65534: ") || !strings.Contains(string(out), "--- PASS: TestNotPermitted") {
		t.Fatalf("child did not run as nobody:\n%s", out)
	}
}

func TestBadPort(t *testing.T) {
	if _, err := Start(Config{Enabled: true, DataplanePort: 70000}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("port 70000 accepted")
	}
}

func TestClose(t *testing.T) {
	p := startProbes(t, 0)
	set := metrics.NewSet()
	p.Register(set)
	for range 2 {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if s := p.Snapshot(); s != (Stats{}) {
		t.Errorf("snapshot after Close: %+v", s)
	}
	var b bytes.Buffer
	set.WritePrometheus(&b)
	if b.Len() != 0 {
		t.Errorf("metrics after Close:\n%s", b.String())
	}
}
