package bench

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// arrivals yields the workflows of an arrival model in order of arrival:
// next returns when the next one arrives and when it ends (+Inf: at the end
// of the run), both in seconds from the start, or ok=false when the model
// has no more.
type arrivals interface {
	next() (at, end float64, ok bool)
}

// arrivalModels lists the --arrival-model names.
const arrivalModels = "poisson, incremental, incr-and-keep, single, trace"

// newArrivals returns the model named by --arrival-model. Times are in
// seconds; rng draws the random ones.
func newArrivals(model string, interarrival, lifetime, warmup float64, trace string, rng *rand.Rand) (arrivals, error) {
	switch model {
	case "poisson":
		return &poisson{interarrival: interarrival, lifetime: lifetime, rng: rng, at: -1}, nil
	case "incremental":
		return &incremental{interarrival: interarrival, lifetime: lifetime, until: math.Inf(1)}, nil
	case "incr-and-keep":
		return &incremental{interarrival: interarrival, lifetime: math.Inf(1), until: warmup}, nil
	case "single":
		return &incremental{interarrival: math.Inf(1), lifetime: math.Inf(1), until: 0}, nil
	case "trace":
		return loadTrace(trace)
	}
	return nil, fmt.Errorf("unknown arrival model %q (want %s)", model, arrivalModels)
}

// poisson: exponential inter-arrival times and lifetimes; the first
// workflow arrives at 0, as in EDGELESS.
type poisson struct {
	interarrival, lifetime float64
	rng                    *rand.Rand
	at                     float64
}

func (p *poisson) next() (float64, float64, bool) {
	if p.at < 0 {
		p.at = 0
	} else {
		p.at += p.rng.ExpFloat64() * p.interarrival
	}
	return p.at, p.at + p.rng.ExpFloat64()*p.lifetime, true
}

// incremental: one workflow every interarrival seconds while the arrival
// time is at most until, each living lifetime seconds.
type incremental struct {
	interarrival, lifetime, until float64
	k                             int
}

func (m *incremental) next() (float64, float64, bool) {
	at := 0.0 // not 0 * interarrival: single's interval is +Inf
	if m.k > 0 {
		if at = float64(m.k) * m.interarrival; at > m.until {
			return 0, 0, false
		}
	}
	m.k++
	return at, at + m.lifetime, true
}

// trace: workflows from a file of lines "arrival,end_time" in seconds,
// sorted by arrival; blank lines and lines starting with # are skipped.
type trace struct {
	rows [][2]float64
	k    int
}

func loadTrace(path string) (*trace, error) {
	if path == "" {
		return nil, fmt.Errorf("the trace arrival model needs --workload-trace")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the workload trace: %w", err)
	}
	defer f.Close()
	t := &trace{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		a, e, ok := strings.Cut(s, ",")
		at, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
		end, err2 := strconv.ParseFloat(strings.TrimSpace(e), 64)
		if !ok || err1 != nil || err2 != nil || at < 0 || end < at {
			return nil, fmt.Errorf("%s:%d: want arrival,end_time with 0 <= arrival <= end_time, got %q", path, line, s)
		}
		if n := len(t.rows); n > 0 && at < t.rows[n-1][0] {
			return nil, fmt.Errorf("%s:%d: arrivals must not decrease", path, line)
		}
		t.rows = append(t.rows, [2]float64{at, end})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the workload trace %s: %w", path, err)
	}
	return t, nil
}

func (t *trace) next() (float64, float64, bool) {
	if t.k >= len(t.rows) {
		return 0, 0, false
	}
	r := t.rows[t.k]
	t.k++
	return r[0], r[1], true
}
