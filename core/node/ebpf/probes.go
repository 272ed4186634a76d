package ebpf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// ErrDisabled is returned by Start when the configuration turns the probes off.
var ErrDisabled = errors.New("ebpf telemetry is disabled")

// ErrNotPermitted is wrapped by the error of Start when the kernel refuses the
// process: it is not root and lacks CAP_BPF and CAP_PERFMON, or RLIMIT_MEMLOCK
// is too low on kernels that still charge BPF memory to it.
var ErrNotPermitted = errors.New("ebpf telemetry is not permitted (it needs root, or CAP_BPF and CAP_PERFMON)")

// ErrNotSupported is wrapped by the error of Start when the kernel lacks what
// the probes need: BPF, BTF (/sys/kernel/btf/vmlinux) or one of the
// tracepoints (Linux 6.3 or later has them all).
var ErrNotSupported = errors.New("ebpf telemetry is not supported by this kernel")

// learnTimeout bounds how long Start waits for the kernel side to identify the
// node's threads; any thread of a running Go process leaves its CPU far more
// often than that.
const learnTimeout = 2 * time.Second

// Config selects the probes.
type Config struct {
	// Enabled turns the probes on; Start returns ErrDisabled otherwise.
	Enabled bool
	// DataplanePort is the TCP port whose connections are counted (bytes in
	// and out of the node process, retransmits); 0 attaches no TCP probes.
	DataplanePort int
}

// Probes are the node's loaded and attached BPF programs. Snapshot and Close
// are safe to call from any goroutine.
type Probes struct {
	port int

	mu     sync.Mutex // guards everything below against a concurrent Close
	objs   probesObjects
	links  []link.Link
	closed bool
}

// Start loads the programs into the kernel and attaches them. It returns once
// the kernel side has identified the calling process's threads, so counting
// starts at once. The returned error wraps ErrDisabled, ErrNotPermitted or
// ErrNotSupported when the probes cannot run here; the caller reports it once
// and runs without them.
func Start(cfg Config, log *slog.Logger) (*Probes, error) {
	if !cfg.Enabled {
		return nil, ErrDisabled
	}
	if cfg.DataplanePort < 0 || cfg.DataplanePort > 65535 {
		return nil, fmt.Errorf("cannot start ebpf probes: dataplane port %d out of range", cfg.DataplanePort)
	}
	p := &Probes{port: cfg.DataplanePort}
	if err := p.load(); err != nil {
		return nil, fmt.Errorf("cannot load ebpf probes: %w", classify(err))
	}
	if err := p.attach(); err != nil {
		p.Close()
		return nil, fmt.Errorf("cannot attach ebpf probes: %w", classify(err))
	}
	if err := p.learnTgid(); err != nil {
		p.Close()
		return nil, err
	}
	log.Info("ebpf telemetry on", "dataplane_port", cfg.DataplanePort)
	return p, nil
}

func (p *Probes) load() error {
	spec, err := loadProbes()
	if err != nil {
		return err
	}
	var ns syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/pid", &ns); err != nil {
		return fmt.Errorf("cannot read the pid namespace: %w", err)
	}
	consts := []struct {
		name string
		val  any
	}{
		{"pidns_dev", uint64(ns.Dev)},
		{"pidns_ino", ns.Ino},
		{"ns_tgid", uint32(os.Getpid())},
		{"port", uint16(p.port)},
	}
	for _, c := range consts {
		if err := spec.Variables[c.name].Set(c.val); err != nil {
			return fmt.Errorf("cannot set %s: %w", c.name, err)
		}
	}
	err = spec.LoadAndAssign(&p.objs, nil)
	if errors.Is(err, syscall.EPERM) && raiseMemlock() {
		// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK and say
		// EPERM when it is exhausted; later ones never get here as root.
		err = spec.LoadAndAssign(&p.objs, nil)
	}
	return err
}

// raiseMemlock lifts RLIMIT_MEMLOCK and reports whether it changed anything.
func raiseMemlock() bool {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim) != nil || lim.Cur == unix.RLIM_INFINITY {
		return false
	}
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	return unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf) == nil
}

func (p *Probes) attach() error {
	progs := []*ebpf.Program{p.objs.SchedWakeup, p.objs.SchedWakeupNew, p.objs.SchedSwitch}
	if p.port != 0 {
		progs = append(progs, p.objs.SockSendLength, p.objs.SockRecvLength, p.objs.TcpRetransmitSkb)
	}
	for _, prog := range progs {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			return fmt.Errorf("cannot attach %s: %w", prog, err)
		}
		p.links = append(p.links, l)
	}
	return nil
}

// learnTgid waits until sched_switch has seen one of the process's threads
// leave a CPU and recorded the process's tgid as the kernel knows it.
func (p *Probes) learnTgid() error {
	deadline := time.Now().Add(learnTimeout)
	for {
		var tgid uint32
		if err := p.objs.NodeTgid.Get(&tgid); err != nil {
			return fmt.Errorf("cannot read the node's tgid from the kernel: %w", err)
		}
		if tgid != 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot find the node's threads in the kernel within %v: %w", learnTimeout, ErrNotSupported)
		}
		// Sleeping switches this thread out, which is what is waited for.
		time.Sleep(time.Millisecond)
	}
}

// classify wraps err with the sentinel a caller can branch on.
func classify(err error) error {
	switch {
	case errors.Is(err, os.ErrPermission): // EPERM, EACCES
		return fmt.Errorf("%w: %w", ErrNotPermitted, err)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, btf.ErrNotSupported),
		errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.Errno(524)): // ENOTSUPP
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	return err
}

// Snapshot returns the counters summed over all CPUs. After Close, or when
// the kernel refuses to read the counters, it returns the zero Stats: the
// node then reports no eBPF figures rather than stopping.
func (p *Probes) Snapshot() Stats {
	s, _ := p.snapshot()
	return s
}

// snapshot also reports whether the probes were open and readable.
func (p *Probes) snapshot() (Stats, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Stats{}, false
	}
	var perCPU []probesStats
	if err := p.objs.CpuStats.Lookup(uint32(0), &perCPU); err != nil {
		return Stats{}, false
	}
	var s Stats
	for i := range perCPU {
		c := &perCPU[i]
		// The conversion fails to compile if the C side's slot count drifts.
		for k, n := range [RunQueueSlots]uint64(c.RqSlots) {
			s.RunQueue[k] += n
		}
		s.RunQueueSum += time.Duration(c.RqSumNs)
		s.VoluntarySwitches += c.SwitchesVoluntary
		s.InvoluntarySwitches += c.SwitchesInvoluntary
		s.CPU += time.Duration(c.CpuNs)
		s.TCPRetransmits += c.TcpRetransmits
		s.TCPBytesOut += c.TcpBytesOut
		s.TCPBytesIn += c.TcpBytesIn
	}
	for _, n := range s.RunQueue {
		s.RunQueueSamples += n
	}
	s.RunQueueP50Micros = s.RunQueueQuantile(0.5)
	s.RunQueueP99Micros = s.RunQueueQuantile(0.99)
	return s, true
}

// Close detaches and unloads the programs. It is idempotent.
func (p *Probes) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for _, l := range p.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cannot detach %v: %w", l, err))
		}
	}
	p.links = nil
	if err := p.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("cannot unload the ebpf programs: %w", err))
	}
	return errors.Join(errs...)
}
