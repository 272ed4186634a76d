package telemetry

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

type family struct {
	help, typ string
}

type histEntry struct {
	family, labels string
	h              *Histogram
}

// Registry holds one mode's metrics. Safe for concurrent use.
type Registry struct {
	set *metrics.Set

	mu       sync.Mutex
	families map[string]family
	hists    map[string]histEntry // by full name
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{set: metrics.NewSet(), families: map[string]family{}, hists: map[string]histEntry{}}
	r.set.RegisterMetricsWriter(r.writeHistograms)
	return r
}

// Labels formats label pairs (name, value, name, value, …) for the metric
// methods, escaping values as the text format requires.
func Labels(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(escaper.Replace(kv[i+1]))
		b.WriteByte('"')
	}
	return b.String()
}

var escaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func fullName(fam, labels string) string {
	if labels == "" {
		return fam
	}
	return fam + "{" + labels + "}"
}

func (r *Registry) declare(fam, help, typ string) {
	r.mu.Lock()
	r.families[fam] = family{help: help, typ: typ}
	r.mu.Unlock()
}

// Counter returns the counter fam{labels}, creating it on first use.
func (r *Registry) Counter(fam, help, labels string) *metrics.Counter {
	r.declare(fam, help, "counter")
	return r.set.GetOrCreateCounter(fullName(fam, labels))
}

// Gauge registers fam{labels} whose value f returns when scraped; a second
// registration of the same name keeps the first f.
func (r *Registry) Gauge(fam, help, labels string, f func() float64) {
	r.declare(fam, help, "gauge")
	r.set.GetOrCreateGauge(fullName(fam, labels), f)
}

// CounterFunc registers the counter fam{labels} whose value f returns when
// scraped: for counts kept elsewhere (e.g. a connection's statistics).
func (r *Registry) CounterFunc(fam, help, labels string, f func() float64) {
	r.declare(fam, help, "counter")
	r.set.GetOrCreateGauge(fullName(fam, labels), f)
}

// Histogram returns the histogram fam{labels}, creating it on first use.
func (r *Registry) Histogram(fam, help, labels string) *Histogram {
	r.declare(fam, help, "histogram")
	r.mu.Lock()
	defer r.mu.Unlock()
	name := fullName(fam, labels)
	if e, ok := r.hists[name]; ok {
		return e.h
	}
	e := histEntry{family: fam, labels: labels, h: &Histogram{}}
	r.hists[name] = e
	return e.h
}

// Unregister removes the metric fam{labels} of any kind, e.g. when the
// instance it describes stops.
func (r *Registry) Unregister(fam, labels string) {
	name := fullName(fam, labels)
	r.set.UnregisterMetric(name)
	r.mu.Lock()
	delete(r.hists, name)
	r.mu.Unlock()
}

func (r *Registry) writeHistograms(w io.Writer) {
	r.mu.Lock()
	entries := make([]histEntry, 0, len(r.hists))
	for _, e := range r.hists {
		entries = append(entries, e)
	}
	r.mu.Unlock()
	slices.SortFunc(entries, func(a, b histEntry) int {
		return strings.Compare(fullName(a.family, a.labels), fullName(b.family, b.labels))
	})
	for _, e := range entries {
		e.h.write(w, e.family, e.labels)
	}
}

// WritePrometheus writes every metric in the Prometheus text format, each
// family preceded by its HELP and TYPE lines.
func (r *Registry) WritePrometheus(w io.Writer) {
	var raw bytes.Buffer
	r.set.WritePrometheus(&raw)
	r.mu.Lock()
	fams := make(map[string]family, len(r.families))
	for k, v := range r.families {
		fams[k] = v
	}
	r.mu.Unlock()
	out := bufio.NewWriter(w)
	last := ""
	for _, line := range strings.SplitAfter(raw.String(), "\n") {
		if line == "" {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		fam := name
		if _, ok := fams[fam]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if f := strings.TrimSuffix(name, suffix); f != name && fams[f].typ == "histogram" {
					fam = f
				}
			}
		}
		if fam != last {
			if f, ok := fams[fam]; ok {
				out.WriteString("# HELP " + fam + " " + f.help + "\n# TYPE " + fam + " " + f.typ + "\n")
			}
			last = fam
		}
		out.WriteString(line)
	}
	out.Flush()
}

// RegisterMetricsWriter adds a writer of ready-made exposition lines (with
// their own HELP and TYPE), called at every scrape.
func (r *Registry) RegisterMetricsWriter(f func(io.Writer)) {
	r.set.RegisterMetricsWriter(f)
}

// Handler serves the registry at /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		r.WritePrometheus(w)
	})
}
