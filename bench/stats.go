package bench

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// txn is one measured transaction.
type txn struct {
	wf         string
	begin, end int64 // Unix ns
}

func (t txn) latency() time.Duration { return time.Duration(t.end - t.begin) }

// pairing is the outcome of pairing marks.
type pairing struct {
	done     []txn // completed, sorted by begin
	lost     int   // began in the window, long enough before their workflow stopped, never ended
	inFlight int   // began in the window but too close to their workflow's stop to judge
	orphans  int   // ends without a begin
}

// pairMarks pairs each transaction's tbegin with its tend. A transaction is
// measured when it began in [from, to). stops holds when each workflow was
// stopped (absent: still running at to); one that never ended is lost when
// it began more than grace before its workflow's stop (or before to), and
// in flight otherwise.
func pairMarks(marks []mark, wfs []string, from, to int64, stops map[string]int64, grace time.Duration) pairing {
	type key struct {
		txn uint64
		wf  uint32
	}
	begins := make(map[key]int64, len(marks)/2+1)
	ends := make(map[key]int64, len(marks)/2+1)
	for _, m := range marks {
		k := key{m.txn, m.wf}
		set := begins
		if m.end {
			set = ends
		}
		if old, ok := set[k]; !ok || m.at < old {
			set[k] = m.at
		}
	}
	var p pairing
	for k, b := range begins {
		if b < from || b >= to {
			continue
		}
		if e, ok := ends[k]; ok && e >= b {
			p.done = append(p.done, txn{wf: wfs[k.wf], begin: b, end: e})
			continue
		}
		stop, ok := stops[wfs[k.wf]]
		if !ok || stop > to {
			stop = to
		}
		if b < stop-int64(grace) {
			p.lost++
		} else {
			p.inFlight++
		}
	}
	for k := range ends {
		if _, ok := begins[k]; !ok {
			p.orphans++
		}
	}
	slices.SortFunc(p.done, func(a, b txn) int { return cmp.Compare(a.begin, b.begin) })
	return p
}

// distribution summarises a sample of durations.
type distribution struct {
	n                         int
	mean, p50, p90, p99, p999 time.Duration
	min, max                  time.Duration
	sorted                    []time.Duration
}

func newDistribution(d []time.Duration) distribution {
	s := slices.Clone(d)
	slices.Sort(s)
	r := distribution{n: len(s), sorted: s}
	if len(s) == 0 {
		return r
	}
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	r.mean = time.Duration(sum / float64(len(s)))
	r.p50, r.p90, r.p99, r.p999 = quantile(s, 0.5), quantile(s, 0.9), quantile(s, 0.99), quantile(s, 0.999)
	r.min, r.max = s[0], s[len(s)-1]
	return r
}

// quantile returns the nearest-rank q-quantile of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// summary is what a run measured.
type summary struct {
	requested, started int
	window             time.Duration // the measured span: --duration
	latency            distribution  // of completed transactions
	deploy             distribution  // of workflow start requests
	lost, inFlight     int
	orphans, dropped   int
}

func (s *summary) throughput() float64 {
	if s.window <= 0 {
		return 0
	}
	return float64(s.latency.n) / s.window.Seconds()
}

func (s *summary) loss() float64 {
	if n := s.latency.n + s.lost; n > 0 {
		return float64(s.lost) / float64(n)
	}
	return 0
}

func (s *summary) blocking() float64 {
	if s.requested == 0 {
		return 0
	}
	return 1 - float64(s.started)/float64(s.requested)
}

// rows returns the summary as (metric, value) pairs: the table and the CSV
// share them.
func (s *summary) rows() [][2]string {
	us := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e3) }
	r := [][2]string{
		{"workflows requested", fmt.Sprint(s.requested)},
		{"workflows started", fmt.Sprint(s.started)},
		{"blocking probability", fmt.Sprintf("%.4f", s.blocking())},
		{"transactions completed", fmt.Sprint(s.latency.n)},
		{"transactions lost", fmt.Sprint(s.lost)},
		{"transactions in flight at stop", fmt.Sprint(s.inFlight)},
		{"loss", fmt.Sprintf("%.6f", s.loss())},
		{"throughput (transactions/s)", fmt.Sprintf("%.1f", s.throughput())},
	}
	if s.latency.n > 0 {
		r = append(r,
			[2]string{"latency mean (µs)", us(s.latency.mean)},
			[2]string{"latency p50 (µs)", us(s.latency.p50)},
			[2]string{"latency p90 (µs)", us(s.latency.p90)},
			[2]string{"latency p99 (µs)", us(s.latency.p99)},
			[2]string{"latency p99.9 (µs)", us(s.latency.p999)},
			[2]string{"latency max (µs)", us(s.latency.max)})
	}
	if s.deploy.n > 0 {
		r = append(r,
			[2]string{"workflow start p50 (ms)", fmt.Sprintf("%.2f", float64(s.deploy.p50)/1e6)},
			[2]string{"workflow start max (ms)", fmt.Sprintf("%.2f", float64(s.deploy.max)/1e6)})
	}
	if s.orphans > 0 {
		r = append(r, [2]string{"ends without a begin", fmt.Sprint(s.orphans)})
	}
	if s.dropped > 0 {
		r = append(r, [2]string{"marks dropped (--max-transactions)", fmt.Sprint(s.dropped)})
	}
	return r
}

// writeTable prints the summary as an aligned two-column table.
func (s *summary) writeTable(w io.Writer) {
	rows := s.rows()
	width := 0
	for _, r := range rows {
		width = max(width, len([]rune(r[0])))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
	}
}
