// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/* probes.c holds the node's kernel-side telemetry. All counters live in one
 * per-CPU array entry (struct stats), so no program takes a lock or an atomic;
 * user space sums the CPUs when it reads. Every program returns early unless
 * the task or socket concerns the node process, identified by its tgid. */
#include "kernel.h"

/* RQ_SLOTS is the number of log2 run-queue latency buckets: slot k counts
 * waits of [2^k, 2^(k+1)) ns, slot 0 also counts 0 and 1 ns, and the last slot
 * everything from 2^(RQ_SLOTS-1) ns (about 9 minutes) up. */
#define RQ_SLOTS 40

#define TASK_RUNNING 0

struct stats {
	__u64 rq_slots[RQ_SLOTS];
	__u64 rq_sum_ns;
	__u64 switches_voluntary;
	__u64 switches_involuntary;
	__u64 cpu_ns;
	__u64 tcp_retransmits;
	__u64 tcp_bytes_out;
	__u64 tcp_bytes_in;
	/* switched_at is scratch state, not a statistic: the time of the last
	 * context switch on this CPU, that is when the running task got it. */
	__u64 switched_at;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stats);
} cpu_stats SEC(".maps");

/* enqueued_at maps the pid of a runnable node thread to the time it was put on
 * a run queue. Entries go when the thread runs; the bound only matters if the
 * node has more runnable threads than this at once. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} enqueued_at SEC(".maps");

/* Set by the loader. The node knows its pid only inside its own pid namespace
 * (a container has one), while tasks carry the tgid of the initial namespace:
 * the first switch-out of a node thread translates one into the other. */
const volatile __u64 pidns_dev;
const volatile __u64 pidns_ino;
const volatile __u32 ns_tgid;
const volatile __u16 port; /* dataplane port, host byte order */

/* node_tgid is the node's tgid in the initial pid namespace, 0 until learnt. */
__u32 node_tgid;

static __always_inline __u32 learn_tgid(struct task_struct *prev)
{
	struct bpf_pidns_info ns = {};

	/* prev is the current task in sched_switch, so the helper describes it. */
	if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)))
		return 0;
	if (ns.tgid != ns_tgid)
		return 0;
	node_tgid = prev->tgid;
	return node_tgid;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFF) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline struct stats *this_cpu_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_stats, &zero);
}

static __always_inline void enqueue(struct task_struct *p, __u64 now)
{
	__u32 pid = p->pid;

	bpf_map_update_elem(&enqueued_at, &pid, &now, BPF_ANY);
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	__u32 tgid = node_tgid;

	if (tgid && p->tgid == tgid)
		enqueue(p, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_wakeup")
int sched_wakeup(__u64 *ctx)
{
	return on_wakeup((struct task_struct *)ctx[0]);
}

SEC("tp_btf/sched_wakeup_new")
int sched_wakeup_new(__u64 *ctx)
{
	return on_wakeup((struct task_struct *)ctx[0]);
}

/* sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
 * unsigned int prev_state) */
SEC("tp_btf/sched_switch")
int sched_switch(__u64 *ctx)
{
	int preempt = (__u8)ctx[0];
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	__u32 prev_state = (__u32)ctx[3];
	__u64 now = bpf_ktime_get_ns();
	struct stats *s = this_cpu_stats();
	__u32 tgid, pid;
	__u64 *ts, delta;

	if (!s)
		return 0;
	tgid = node_tgid;
	if (!tgid)
		tgid = learn_tgid(prev);
	if (!tgid)
		goto out;

	if (prev->tgid == tgid) {
		if (s->switched_at)
			s->cpu_ns += now - s->switched_at;
		/* The same split as the kernel's nvcsw/nivcsw: a task that
		 * leaves the CPU still runnable switched involuntarily and is
		 * back on a run queue from now. */
		if (preempt || prev_state == TASK_RUNNING) {
			s->switches_involuntary++;
			enqueue(prev, now);
		} else {
			s->switches_voluntary++;
		}
	}
	if (next->tgid == tgid) {
		pid = next->pid;
		ts = bpf_map_lookup_elem(&enqueued_at, &pid);
		if (ts) {
			delta = now > *ts ? now - *ts : 0;
			bpf_map_delete_elem(&enqueued_at, &pid);
			__u32 slot = log2_u64(delta);
			if (slot >= RQ_SLOTS)
				slot = RQ_SLOTS - 1;
			s->rq_slots[slot]++;
			s->rq_sum_ns += delta;
		}
	}
out:
	s->switched_at = now;
	return 0;
}

static __always_inline int on_port(struct sock *sk)
{
	__u16 lport = sk->__sk_common.skc_num;
	__u16 rport = sk->__sk_common.skc_dport;

	return lport == port || rport == __builtin_bswap16(port);
}

/* on_node_tcp tells whether sk is a TCP socket of the node on the dataplane
 * port; the socket length tracepoints run in the task that sends or receives. */
static __always_inline int on_node_tcp(struct sock *sk)
{
	__u32 tgid = node_tgid;
	__u16 family;

	if (!tgid || (bpf_get_current_pid_tgid() >> 32) != tgid)
		return 0;
	family = sk->__sk_common.skc_family;
	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	return on_port(sk);
}

/* sock_send_length(struct sock *sk, int ret, int flags) fires after every
 * send on a socket (write, send, sendmsg and their vector forms) with the
 * bytes it took or a negative errno. */
SEC("tp_btf/sock_send_length")
int sock_send_length(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int ret = (int)ctx[1];
	struct stats *s;

	if (ret <= 0 || !on_node_tcp(sk))
		return 0;
	s = this_cpu_stats();
	if (s)
		s->tcp_bytes_out += ret;
	return 0;
}

/* sock_recv_length(struct sock *sk, int ret, int flags) is its counterpart for
 * receives; a peek leaves the bytes queued, so they count when read. */
SEC("tp_btf/sock_recv_length")
int sock_recv_length(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int ret = (int)ctx[1];
	int flags = (int)ctx[2];
	struct stats *s;

	if (ret <= 0 || (flags & MSG_PEEK) || !on_node_tcp(sk))
		return 0;
	s = this_cpu_stats();
	if (s)
		s->tcp_bytes_in += ret;
	return 0;
}

/* tcp_retransmit_skb(const struct sock *sk, const struct sk_buff *skb, ...)
 * fires from timers and softirqs, in no particular task: the port alone says
 * whether the segment is the dataplane's. */
SEC("tp_btf/tcp_retransmit_skb")
int tcp_retransmit_skb(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	struct stats *s;

	if (!on_port(sk))
		return 0;
	s = this_cpu_stats();
	if (s)
		s->tcp_retransmits++;
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
