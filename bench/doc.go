// Package bench is the `edgeless bench` verb: it starts and stops workflows
// on a cluster following an arrival model, as EDGELESS's edgeless_benchmark
// does (same flags, workflow types and CSV format), and measures what
// EDGELESS leaves to a separate script: the end-to-end latency of every
// transaction, from which it prints percentiles, throughput, loss and the
// blocking probability, writes CSV rows and draws SVG plots.
//
// Transactions are delimited by the functions themselves, as in EDGELESS:
// the function that starts transaction n calls telemetry_log(TRACE, "tbegin",
// n) and the one that completes it telemetry_log(TRACE, "tend", n). The
// benchmark pairs the two marks by workflow and transaction id:
//
//   - with --inabox the cluster runs in this process and the marks are taken
//     from the nodes' log records as they are made (record.Time is read on
//     the instance's goroutine at the host call), through a slog.Handler that
//     only appends them to a list of pointer-free marks: about 0.2 µs per
//     mark (BenchmarkMark), and no I/O, lock hand-off or allocation beyond
//     the host call's own;
//   - against a remote cluster (--controller-url) the nodes must run with
//     performance_samples = true and the orchestrator with the Redis proxy;
//     --redis-url then reads the marks from the proxy's
//     performance:<instance>:tbegin|tend sorted sets at the end of the run.
//
// With --scenario NAME it runs one of the fixed scenarios instead (invoke,
// rate, cold, chain, payload, failover: see scenario.go and
// docs/performance.md), each against clusters it starts in this process.
//
// Every loop is bounded in time (--warmup + --duration) and in count
// (--max-workflows, --max-transactions), and only the addresses given are
// contacted.
package bench
