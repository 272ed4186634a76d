package ebpf

import "time"

// RunQueueSlots is the number of run-queue latency buckets in Stats.
const RunQueueSlots = 40

// Stats are the probes' counters since Start, summed over all CPUs.
type Stats struct {
	// RunQueue is the histogram of how long the node's threads waited on a
	// run queue, from being woken or preempted to running: bucket k counts
	// waits of [2^k, 2^(k+1)) ns; bucket 0 also holds 0 and 1 ns, and the last
	// bucket every longer wait.
	RunQueue [RunQueueSlots]uint64
	// RunQueueSamples is the number of waits in RunQueue.
	RunQueueSamples uint64
	// RunQueueSum is the total of those waits.
	RunQueueSum time.Duration
	// RunQueueP50Micros and RunQueueP99Micros estimate the median and the
	// 99th percentile of the waits in µs (see RunQueueQuantile); 0 without
	// samples.
	RunQueueP50Micros, RunQueueP99Micros float64

	// VoluntarySwitches counts the node's threads leaving a CPU to sleep or
	// wait; InvoluntarySwitches those leaving it still runnable (preempted or
	// yielding). The split is the kernel's nvcsw/nivcsw.
	VoluntarySwitches, InvoluntarySwitches uint64
	// CPU is the CPU time of the node's threads, counted when a thread leaves
	// its CPU: a slice still running is not in it yet.
	CPU time.Duration

	// TCPRetransmits counts retransmitted segments of connections with the
	// dataplane port at either end, whichever process owns them.
	TCPRetransmits uint64
	// TCPBytesIn and TCPBytesOut count the bytes the node process received
	// and sent on connections with the dataplane port at either end.
	TCPBytesIn, TCPBytesOut uint64
}

// Switches returns the number of context switches of the node's threads.
func (s *Stats) Switches() uint64 {
	return s.VoluntarySwitches + s.InvoluntarySwitches
}

// RunQueueBound returns the exclusive upper bound of run-queue bucket k.
func RunQueueBound(k int) time.Duration {
	return time.Duration(uint64(1) << (k + 1))
}

// RunQueueQuantile estimates the q-quantile (0 to 1) of the run-queue waits in
// µs by interpolating linearly inside the log2 bucket it falls in, so the
// estimate is off by at most that bucket's width. It returns 0 without samples.
func (s *Stats) RunQueueQuantile(q float64) float64 {
	var total uint64
	for _, n := range s.RunQueue {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	cum := 0.0
	for k, n := range s.RunQueue {
		c := float64(n)
		if c > 0 && cum+c >= rank {
			lower := 0.0
			if k > 0 {
				lower = float64(RunQueueBound(k - 1))
			}
			upper := float64(RunQueueBound(k))
			return (lower + (upper-lower)*(rank-cum)/c) / 1e3
		}
		cum += c
	}
	return float64(RunQueueBound(RunQueueSlots-1)) / 1e3
}
