package resources

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
)

// LogicalResolver is implemented by a Host that knows the logical function
// id of the instances that send to the resource (at least those on its own
// node). The metrics-collector uses it to key averages by logical function.
type LogicalResolver interface {
	// LogicalID returns the logical function id of the physical instance
	// src, or false when it does not know it.
	LogicalID(src core.InstanceID) (core.ID, bool)
}

// maxOpen bounds the measurements a collector instance waits to see end, so
// that begins without ends cannot grow its memory without limit.
const maxOpen = 1 << 16

// MetricsCollector is the metrics-collector provider. Functions cast
// "function:begin:<n>", "function:end:<n>", "workflow:begin:<n>" and
// "workflow:end:<n>" to it; for every end it appends "<ms>,<unix s.mmm>" to
// the list function:<physical id>:samples (or workflow:<wf_name>:samples) and
// sets function:<logical id>:average (or workflow:<wf_name>:average) to the
// exponentially smoothed average of the samples. "reset:<ms>" deletes every
// key written so far and ignores samples for the given warm-up period.
type MetricsCollector struct {
	log *slog.Logger
	rc  *redis.Client

	mu     sync.Mutex // guards keys and warmup, shared by the instances
	keys   map[string]struct{}
	warmup time.Time // samples before it are ignored
}

// NewMetricsCollector returns a collector writing to the Redis at redisURL;
// it connects lazily.
func NewMetricsCollector(redisURL string, log *slog.Logger) (*MetricsCollector, error) {
	rc, err := redisClient("metrics-collector", redisURL)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &MetricsCollector{log: log.With("provider", "metrics-collector"), rc: rc, keys: map[string]struct{}{}}, nil
}

// Close closes the connection to Redis.
func (p *MetricsCollector) Close() error { return p.rc.Close() }

// Spec implements Provider.
func (p *MetricsCollector) Spec() Spec {
	return Spec{
		ClassType:   "metrics-collector",
		Version:     "1.0",
		Description: "Times function:begin/end:<n> and workflow:begin/end:<n> casts and stores samples and smoothed averages in Redis.",
		Outputs:     []string{},
		Configurations: map[string]string{
			"alpha":   "smoothing factor of the averages, in (0, 1] (default 0.9)",
			"wf_name": "workflow name used in workflow:<wf_name>:… keys; without it workflow events are ignored",
		},
	}
}

// Start implements Provider.
func (p *MetricsCollector) Start(cfg StartConfig) (Instance, error) {
	alpha := 0.9
	if s := cfg.Configurations["alpha"]; s != "" {
		a, err := strconv.ParseFloat(s, 64)
		if err != nil || a <= 0 || a > 1 {
			return nil, &ConfigError{Class: "metrics-collector", Key: "alpha", Msg: "want a number in (0, 1], got " + strconv.Quote(s)}
		}
		alpha = a
	}
	i := &collectorInstance{
		p:        p,
		alpha:    alpha,
		wfName:   cfg.Configurations["wf_name"],
		open:     map[openKey]time.Time{},
		averages: map[string]float64{},
		fail:     core.Throttle{Every: 10 * time.Second},
	}
	i.logical, _ = cfg.Host.(LogicalResolver)
	return i, nil
}

type openKey struct {
	workflow bool
	src      core.InstanceID // zero for workflow events
	n        uint64
}

type collectorInstance struct {
	p        *MetricsCollector
	alpha    float64
	wfName   string
	logical  LogicalResolver
	open     map[openKey]time.Time
	averages map[string]float64 // average key → value
	fail     core.Throttle
}

// metricEvent is a parsed payload.
type metricEvent struct {
	reset    bool
	warmup   time.Duration
	workflow bool
	begin    bool
	n        uint64
}

func parseMetricEvent(p []byte) (metricEvent, error) {
	var e metricEvent
	parts := bytes.Split(p, []byte{':'})
	if len(parts) == 2 && string(parts[0]) == "reset" {
		ms, err := strconv.ParseUint(string(parts[1]), 10, 63)
		if err != nil {
			return e, fmt.Errorf("bad warm-up period %q", parts[1])
		}
		return metricEvent{reset: true, warmup: time.Duration(ms) * time.Millisecond}, nil
	}
	if len(parts) != 3 {
		return e, fmt.Errorf("want kind:begin|end:<n>, got %q", p)
	}
	switch string(parts[0]) {
	case "workflow":
		e.workflow = true
	case "function":
	default:
		return e, fmt.Errorf("unknown kind %q", parts[0])
	}
	switch string(parts[1]) {
	case "begin":
		e.begin = true
	case "end":
	default:
		return e, fmt.Errorf("want begin or end, got %q", parts[1])
	}
	n, err := strconv.ParseUint(string(parts[2]), 10, 64)
	if err != nil {
		return e, fmt.Errorf("bad id %q", parts[2])
	}
	e.n = n
	return e, nil
}

func (i *collectorInstance) Cast(src core.InstanceID, payload []byte) error {
	now := time.Now()
	e, err := parseMetricEvent(payload)
	if err != nil {
		if ok, n := i.fail.Allow(); ok {
			i.p.log.Warn("metrics-collector ignores a malformed event", "err", err, "count", n)
		}
		return nil
	}
	if e.reset {
		i.reset(e.warmup)
		return nil
	}
	if e.workflow && i.wfName == "" {
		return nil
	}
	k := openKey{workflow: e.workflow, n: e.n}
	if !e.workflow {
		k.src = src
	}
	if e.begin {
		if len(i.open) >= maxOpen {
			clear(i.open)
			i.p.log.Warn("metrics-collector dropped measurements that never ended", "count", maxOpen)
		}
		i.open[k] = now
		return nil
	}
	began, ok := i.open[k]
	if !ok {
		return nil
	}
	delete(i.open, k)
	sample := now.Sub(began).Milliseconds()
	var samplesKey, avgKey string
	if e.workflow {
		samplesKey = "workflow:" + i.wfName + ":samples"
		avgKey = "workflow:" + i.wfName + ":average"
	} else {
		logical := src.Component
		if i.logical != nil {
			if id, ok := i.logical.LogicalID(src); ok {
				logical = id
			}
		}
		samplesKey = "function:" + src.Component.String() + ":samples"
		avgKey = "function:" + logical.String() + ":average"
	}
	avg, seen := i.averages[avgKey]
	if seen {
		avg = float64(sample)*i.alpha + (1-i.alpha)*avg
	} else {
		avg = float64(sample)
	}
	i.averages[avgKey] = avg
	i.p.store(samplesKey, avgKey, sample, avg, now, &i.fail)
	return nil
}

// store writes one sample and the new average, unless in a warm-up period.
func (p *MetricsCollector) store(samplesKey, avgKey string, sample int64, avg float64, now time.Time, fail *core.Throttle) {
	p.mu.Lock()
	if now.Before(p.warmup) {
		p.mu.Unlock()
		return
	}
	p.keys[samplesKey] = struct{}{}
	p.keys[avgKey] = struct{}{}
	p.mu.Unlock()
	ms := now.UnixMilli()
	v := strconv.AppendInt(nil, sample, 10)
	v = append(v, ',')
	v = strconv.AppendInt(v, ms/1000, 10)
	v = append(v, '.', byte('0'+ms%1000/100), byte('0'+ms%100/10), byte('0'+ms%10))
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	_, err := p.rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.RPush(ctx, samplesKey, v)
		pl.Set(ctx, avgKey, strconv.FormatFloat(avg, 'f', -1, 64), 0)
		return nil
	})
	if err != nil {
		if ok, n := fail.Allow(); ok {
			p.log.Warn("metrics-collector cannot write to Redis; sample dropped", "key", samplesKey, "err", err, "failures", n)
		}
	}
}

// reset deletes the keys written so far and starts a warm-up period.
func (i *collectorInstance) reset(warmup time.Duration) {
	p := i.p
	p.mu.Lock()
	keys := make([]string, 0, len(p.keys))
	for k := range p.keys {
		keys = append(keys, k)
	}
	clear(p.keys)
	p.warmup = time.Now().Add(warmup)
	p.mu.Unlock()
	clear(i.averages)
	clear(i.open)
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	if err := p.rc.Del(ctx, keys...).Err(); err != nil {
		p.log.Warn("metrics-collector cannot delete its keys", "err", err)
	}
	p.log.Info("metrics reset", "keys", len(keys), "warmup", warmup)
}

func (i *collectorInstance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	if err := i.Cast(src, payload); err != nil {
		return core.CallErr, nil, nil
	}
	return core.CallReply, nil, nil
}

func (i *collectorInstance) Close() error { return nil }
