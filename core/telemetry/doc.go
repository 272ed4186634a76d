// Package telemetry is how every mode exposes its metrics: a registry over a
// VictoriaMetrics metrics.Set that adds the HELP and TYPE lines Prometheus
// tools expect, a lock-free histogram with fixed buckets from 1 µs to 10 s,
// and the HTTP server of /metrics (and /debug/pprof when asked).
//
// Each mode owns its Registry: several nodes can live in one process.
package telemetry
