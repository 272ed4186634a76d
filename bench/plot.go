package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// series is one line of a chart.
type series struct {
	name, color string
	x, y        []float64
}

// chart is a line chart written as a self-contained SVG file: axes with
// ticks (decades on a log axis), one polyline per series and a legend.
type chart struct {
	title, xLabel, yLabel string
	logX, logY            bool
	series                []series
}

const (
	plotW, plotH                       = 720, 440
	marginL, marginR, marginT, marginB = 70, 20, 40, 50
)

func (c *chart) bounds(xs bool, log bool) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		v := s.y
		if xs {
			v = s.x
		}
		for _, f := range v {
			if log && f <= 0 {
				continue
			}
			lo, hi = math.Min(lo, f), math.Max(hi, f)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	if log {
		lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
		if hi <= lo {
			hi = lo * 10
		}
		return lo, hi
	}
	if hi <= lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 5)
	return math.Floor(lo/step) * step, math.Ceil(hi/step) * step
}

// niceStep rounds a tick step to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / p; {
	case f <= 1:
		return p
	case f <= 2:
		return 2 * p
	case f <= 5:
		return 5 * p
	}
	return 10 * p
}

func ticks(lo, hi float64, log bool) []float64 {
	var t []float64
	if log {
		for v := lo; v <= hi*1.0001; v *= 10 {
			t = append(t, v)
		}
		return t
	}
	step := niceStep((hi - lo) / 5)
	for v := lo; v <= hi+step/1000; v += step {
		t = append(t, v)
	}
	return t
}

func formatTick(v float64) string {
	if v != 0 && (math.Abs(v) >= 1e6 || math.Abs(v) < 1e-3) {
		return fmt.Sprintf("%.0e", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func (c *chart) writeSVG(w io.Writer) error {
	x0, x1 := c.bounds(true, c.logX)
	y0, y1 := c.bounds(false, c.logY)
	pw, ph := float64(plotW-marginL-marginR), float64(plotH-marginT-marginB)
	scale := func(v, lo, hi float64, log bool) float64 {
		if log {
			return (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		}
		return (v - lo) / (hi - lo)
	}
	px := func(v float64) float64 { return marginL + scale(v, x0, x1, c.logX)*pw }
	py := func(v float64) float64 { return marginT + (1-scale(v, y0, y1, c.logY))*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" text-anchor="middle" font-size="14">%s</text>`+"\n", plotW/2, xmlEscape(c.title))
	for _, t := range ticks(x0, x1, c.logX) {
		x := px(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, marginT, x, marginT+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, marginT+ph+16, formatTick(t))
	}
	for _, t := range ticks(y0, y1, c.logY) {
		y := py(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y, marginL+pw, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y+4, formatTick(t))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="black"/>`+"\n", marginL, marginT, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+pw/2, plotH-10, xmlEscape(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+ph/2, xmlEscape(c.yLabel))
	// The legend sits in the top right corner, wide enough for the longest
	// name at about 7 px per character of the 12 px font.
	var longest int
	for _, s := range c.series {
		longest = max(longest, len([]rune(s.name)))
	}
	lx := marginL + pw - 30 - 7*float64(max(longest, 15))
	for i, s := range c.series {
		var pts strings.Builder
		for k := range s.x {
			if (c.logX && s.x[k] <= 0) || (c.logY && s.y[k] <= 0) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.x[k]), py(s.y[k]))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, pts.String())
		ly := marginT + 16 + 16*i
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%d" x2="%.0f" y2="%d" stroke="%s" stroke-width="2"/>`+"\n",
			lx, ly, lx+20, ly, s.color)
		fmt.Fprintf(&b, `<text x="%.0f" y="%d">%s</text>`+"\n", lx+25, ly+4, xmlEscape(s.name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// cdfChart draws the latency CDF of sorted durations on a log axis, from at
// most 500 points.
func cdfChart(title string, sorted []time.Duration) *chart {
	s := series{name: "latency CDF", color: "#1f77b4"}
	n := len(sorted)
	step := max(1, n/500)
	for i := 0; i < n; i += step {
		s.x = append(s.x, float64(sorted[i])/1e3)
		s.y = append(s.y, float64(i+1)/float64(n))
	}
	if n > 0 {
		s.x = append(s.x, float64(sorted[n-1])/1e3)
		s.y = append(s.y, 1)
	}
	return &chart{title: title, xLabel: "end-to-end latency (µs, log scale)", yLabel: "fraction of transactions",
		logX: true, series: []series{s}}
}

// timeChart draws latency over time: the p50, p99 and maximum of the
// transactions that began in each of at most 200 time slices.
func timeChart(title string, done []txn, from int64, window time.Duration) *chart {
	slices := 200
	width := max(int64(window)/int64(slices), int64(time.Millisecond))
	buckets := map[int64][]time.Duration{}
	var keys []int64
	for _, t := range done {
		k := (t.begin - from) / width
		if _, ok := buckets[k]; !ok {
			keys = append(keys, k)
		}
		buckets[k] = append(buckets[k], t.latency())
	}
	p50 := series{name: "p50", color: "#1f77b4"}
	p99 := series{name: "p99", color: "#ff7f0e"}
	mx := series{name: "max", color: "#d62728"}
	for _, k := range keys {
		d := newDistribution(buckets[k])
		at := float64(k*width+width/2) / 1e9
		p50.x, p50.y = append(p50.x, at), append(p50.y, float64(d.p50)/1e3)
		p99.x, p99.y = append(p99.x, at), append(p99.y, float64(d.p99)/1e3)
		mx.x, mx.y = append(mx.x, at), append(mx.y, float64(d.max)/1e3)
	}
	return &chart{title: title, xLabel: "time since the end of the warm-up (s)", yLabel: "latency (µs, log scale)",
		logY: true, series: []series{p50, p99, mx}}
}

// writeChart writes c to path.
func writeChart(path string, c *chart) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write plot: %w", err)
	}
	if err := c.writeSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot write plot %s: %w", path, err)
	}
	return f.Close()
}
