// Package ebpf is the node's kernel-level telemetry: small BPF programs that
// count, inside the kernel, what the node process cannot see from user space.
//
// What is measured, for the threads of the calling process only (the node):
//
//   - Run-queue latency: from the moment a thread is woken (sched_wakeup,
//     sched_wakeup_new) or leaves a CPU still runnable (sched_switch) to the
//     moment it runs again (sched_switch), as a histogram with log2 buckets
//     from 1 ns to about 9 minutes, kept in a per-CPU BPF array. It is how
//     long ready work waited for a CPU: the node's scheduling pressure.
//   - Context switches, split like the kernel's nvcsw/nivcsw into voluntary
//     (the thread slept or blocked) and involuntary (it was still runnable),
//     and the threads' CPU time, both from sched_switch.
//   - On the dataplane port given to Start (a connection counts when either
//     end uses it): TCP payload bytes the node sent and received, from the
//     sock_send_length and sock_recv_length tracepoints that every send and
//     receive on a socket passes, and retransmitted segments from
//     tcp_retransmit_skb. Retransmits happen in timers and softirqs, not in
//     the node's threads, so they count for any process using the port.
//
// All programs are BTF tracepoints (tp_btf): they attach without tracefs,
// kprobes or a perf event, read task and socket fields directly, and cost one
// indirect call on a tracepoint that is otherwise a no-op. fentry/fexit would
// have given tcp_sendmsg's result directly, but some kernels refuse to load
// them even for root (EPERM), and the socket tracepoints see the same bytes.
// Counters live in a single per-CPU array entry, so the programs take no lock
// and no atomic; Snapshot sums the CPUs. Kernel structure offsets are not
// compiled in: the programs carry CO-RE relocations that are resolved against
// the running kernel's BTF when they load.
//
// The process is recognised by its tgid in the initial pid namespace, which a
// process in a container does not know: the first time one of its threads
// leaves a CPU, sched_switch translates its namespaced pid into that tgid.
// Several Probes may run in one process (each loads its own programs and
// maps); they count the same threads and differ only in the port.
//
// What is needed: Linux 6.3 or later (for the socket length tracepoints),
// built with BTF (/sys/kernel/btf/vmlinux), and a process that is root or
// holds CAP_BPF and CAP_PERFMON. Start says which of these is missing with
// ErrNotPermitted or ErrNotSupported, and the node runs without the probes.
//
// The programs are in bpf/probes.c; the compiled objects are committed (see
// gen.go), so building the node needs no C compiler.
package ebpf
