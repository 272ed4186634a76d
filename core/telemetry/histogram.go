package telemetry

import (
	"io"
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// boundsNS are the histogram buckets' upper bounds: 1-2-5 steps from 1 µs to
// 10 s, wide enough for a local hop and for a slow function.
var boundsNS = [...]int64{
	1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5,
	1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 2e8, 5e8,
	1e9, 2e9, 5e9, 1e10,
}

// les are the bounds as the le label values, in seconds.
var les = func() []string {
	out := make([]string, len(boundsNS))
	for i, b := range boundsNS {
		out[i] = strconv.FormatFloat(float64(b)/1e9, 'g', -1, 64)
	}
	return out
}()

// Histogram counts durations into fixed buckets. Observe is lock-free and
// allocation-free; safe for concurrent use.
type Histogram struct {
	buckets [len(boundsNS) + 1]atomic.Uint64 // the last is +Inf
	sumNS   atomic.Int64
	count   atomic.Uint64
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := bucket(d)
	h.buckets[i].Add(1)
	h.sumNS.Add(int64(d))
	h.count.Add(1)
}

// ObserveOwned is Observe for a histogram that only the calling goroutine
// observes (any may read it): plain atomic stores instead of locked
// read-modify-writes, whose cost is a large part of a local hop's
// bookkeeping. Mixing it with Observe on one histogram loses counts.
func (h *Histogram) ObserveOwned(d time.Duration) {
	i := bucket(d)
	h.buckets[i].Store(h.buckets[i].Load() + 1)
	h.sumNS.Store(h.sumNS.Load() + int64(d))
	h.count.Store(h.count.Load() + 1)
}

func bucket(d time.Duration) int {
	i := 0
	for i < len(boundsNS) && int64(d) > boundsNS[i] {
		i++
	}
	return i
}

// write appends the histogram's lines in the Prometheus text format; labels
// is the label list without braces (may be empty).
func (h *Histogram) write(w io.Writer, family, labels string) {
	var b []byte
	sep := ""
	if labels != "" {
		sep = ","
	}
	cum := uint64(0)
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		le := "+Inf"
		if i < len(les) {
			le = les[i]
		}
		b = append(b, family...)
		b = append(b, "_bucket{"...)
		b = append(b, labels...)
		b = append(b, sep...)
		b = append(b, `le="`...)
		b = append(b, le...)
		b = append(b, "\"} "...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	braces := ""
	if labels != "" {
		braces = "{" + labels + "}"
	}
	b = append(b, family+"_sum"+braces+" "...)
	b = strconv.AppendFloat(b, float64(h.sumNS.Load())/1e9, 'g', -1, 64)
	b = append(b, '\n')
	b = append(b, family+"_count"+braces+" "...)
	b = strconv.AppendUint(b, h.count.Load(), 10)
	b = append(b, '\n')
	w.Write(b)
}

// Quantile estimates the q-quantile (0..1) from the buckets, in seconds, by
// interpolating within the bucket it falls in; NaN when empty.
func (h *Histogram) Quantile(q float64) float64 {
	n := h.count.Load()
	if n == 0 {
		return math.NaN()
	}
	top := float64(boundsNS[len(boundsNS)-1]) / 1e9
	rank := q * float64(n)
	cum, lower := 0.0, 0.0
	for i := range h.buckets {
		c := float64(h.buckets[i].Load())
		if i == len(boundsNS) {
			return top
		}
		upper := float64(boundsNS[i]) / 1e9
		if cum+c >= rank && c > 0 {
			return lower + (upper-lower)*(rank-cum)/c
		}
		cum += c
		lower = upper
	}
	return top
}
