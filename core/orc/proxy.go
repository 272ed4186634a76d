package orc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/proxyschema"
	"github.com/edgeless-go/edgeless/wire"
)

// The Redis proxy mirrors the orchestrator's state in the schema of package
// proxyschema (EDGELESS's key names and JSON values), and applies the
// intents that outside tools push on the list proxyschema.Intents.

const (
	// maxPending bounds the health entries, samples and log entries waiting
	// for Redis: while it is unreachable the oldest are dropped.
	maxPending = 100_000
	// proxyTimeout bounds one round of mirroring, so that a Redis that hangs
	// delays the next round rather than stopping the proxy.
	proxyTimeout = 10 * time.Second
)

// redisProxy is the orchestrator's Redis proxy. record is safe from any
// goroutine; everything else runs on the proxy loop, which owns the client
// and the dataset files.
type redisProxy struct {
	rdb      *redis.Client
	url      string
	log      *slog.Logger
	domain   string
	gcPeriod time.Duration
	nextGC   time.Time
	dataset  *dataset // nil without dataset_path

	// written holds, per category, the keys and values last written, so
	// that a round writes only what changed and last_update means a change.
	written map[string]map[string]string

	mu      sync.Mutex // guards the pending telemetry below
	health  []healthEntry
	samples []wire.Sample
	logs    []wire.LogEntry
	dropped int
}

type healthEntry struct {
	node   core.ID
	ts     float64
	health wire.NodeHealth
}

// newRedisProxy connects to the Redis of s and flushes its database, as
// EDGELESS does: the mirror starts from nothing.
func newRedisProxy(ctx context.Context, s ProxySettings, domain string, log *slog.Logger) (*redisProxy, error) {
	opts, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("cannot use the Redis proxy at %s: %w", core.Redact(s.RedisURL), err)
	}
	// Fail fast and let the loop retry: a round must not hang on a Redis
	// that is away.
	opts.MaxRetries, opts.DialerRetries = 1, 1
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	p := &redisProxy{
		rdb:      redis.NewClient(opts),
		url:      s.RedisURL,
		log:      log,
		domain:   domain,
		gcPeriod: time.Duration(s.ProxyGCPeriodSeconds) * time.Second,
		written:  map[string]map[string]string{},
	}
	ctx, cancel := context.WithTimeout(ctx, proxyTimeout)
	defer cancel()
	if err := p.rdb.FlushDB(ctx).Err(); err != nil {
		p.rdb.Close()
		return nil, fmt.Errorf("cannot flush the Redis proxy at %s: %w", core.Redact(s.RedisURL), err)
	}
	if d := s.DatasetSettings; d.DatasetPath != "" {
		if p.dataset, err = openDataset(d); err != nil {
			p.rdb.Close()
			return nil, err
		}
	}
	log.Info("Redis proxy ready", "url", core.Redact(s.RedisURL), "gc_period", p.gcPeriod, "dataset", s.DatasetSettings.DatasetPath)
	return p, nil
}

// close releases the client and the dataset files; p may be nil.
func (p *redisProxy) close() error {
	if p == nil {
		return nil
	}
	errs := []error{p.rdb.Close()}
	if p.dataset != nil {
		errs = append(errs, p.dataset.close())
	}
	return errors.Join(errs...)
}

// record queues the health, performance samples and log entries of a node's
// update for the next round. A zero health is a node that does not measure
// it, not one with no memory: it is not mirrored. p may be nil (no proxy).
func (p *redisProxy) record(req *wire.UpdateNode, now time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if req.Health != (wire.NodeHealth{}) {
		p.health = append(p.health, healthEntry{node: req.Node, ts: unixSeconds(now), health: req.Health})
	}
	p.samples = append(p.samples, req.Samples...)
	p.logs = append(p.logs, req.Logs...)
	p.health = trimPending(p, p.health)
	p.samples = trimPending(p, p.samples)
	p.logs = trimPending(p, p.logs)
}

// trimPending drops the oldest entries beyond maxPending; p.mu is held.
func trimPending[T any](p *redisProxy, s []T) []T {
	if over := len(s) - maxPending; over > 0 {
		p.dropped += over
		return slices.Delete(s, 0, over)
	}
	return s
}

// takePending returns the queued telemetry and empties the queue.
func (p *redisProxy) takePending() ([]healthEntry, []wire.Sample, []wire.LogEntry, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, s, l, d := p.health, p.samples, p.logs, p.dropped
	p.health, p.samples, p.logs, p.dropped = nil, nil, nil, 0
	return h, s, l, d
}

// requeue puts back telemetry that could not be written, ahead of what
// arrived meanwhile.
func (p *redisProxy) requeue(h []healthEntry, s []wire.Sample, l []wire.LogEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.health = trimPending(p, append(h, p.health...))
	p.samples = trimPending(p, append(s, p.samples...))
	p.logs = trimPending(p, append(l, p.logs...))
}

// proxyLoop applies intents and mirrors the state at the reconcile period.
func (o *Orc) proxyLoop(ctx context.Context) {
	interval := time.Duration(o.cfg.General.ReconcileIntervalMS) * time.Millisecond
	t := time.NewTicker(interval)
	defer t.Stop()
	failures := 0
	var retryAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.Before(retryAt) {
				continue
			}
		}
		err := o.proxyRound(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if failures == 0 {
				o.log.Warn("Redis proxy unavailable; retrying", "url", o.proxy.url, "err", err)
			}
			failures++
			// While Redis is away, try less and less often.
			retryAt = time.Now().Add(min(interval<<min(failures, 10), 30*time.Second))
		case err == nil && failures > 0:
			o.log.Info("Redis proxy available again", "url", core.Redact(o.proxy.url))
			failures, retryAt = 0, time.Time{}
		}
	}
}

// proxyRound applies pending intents, then mirrors nodes, providers,
// instances and dependencies, pushes the telemetry received since the last
// round and, when due, removes old telemetry.
func (o *Orc) proxyRound(ctx context.Context) error {
	p := o.proxy
	if err := o.applyIntents(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, proxyTimeout)
	defer cancel()
	now := time.Now()
	nodes, comps := o.proxyView()
	if err := p.mirror(ctx, nodes, comps, now); err != nil {
		// What Redis holds is unknown now: write everything next round.
		p.written = map[string]map[string]string{}
		return err
	}
	present := map[core.ID]bool{}
	for _, n := range nodes {
		present[n.id] = true
	}
	if err := p.pushTelemetry(ctx, present); err != nil {
		return err
	}
	return p.gc(ctx, now)
}

// applyIntents pops every intent and applies it with the same operations
// as the orchestrator's admin requests. A bad or infeasible intent is
// logged and dropped, as EDGELESS does.
func (o *Orc) applyIntents(ctx context.Context) error {
	for {
		key, value, ok, err := o.proxy.popIntent(ctx)
		if err != nil || !ok {
			return err
		}
		if value == "" {
			o.log.Warn("intent without a value ignored", "key", key)
			continue
		}
		// A migration may take longer than a Redis round: it gets ctx.
		if err := o.applyIntent(ctx, key, value); err != nil {
			o.log.Warn("intent not applied", "key", key, "value", value, "err", err)
			continue
		}
		o.log.Info("intent applied", "key", key, "value", value)
	}
}

// popIntent takes the next intent off the list and deletes its key; ok is
// false when there is none.
func (p *redisProxy) popIntent(ctx context.Context) (key, value string, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, proxyTimeout)
	defer cancel()
	key, err = p.rdb.LPop(ctx, proxyschema.Intents).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("cannot pop from %q: %w", proxyschema.Intents, err)
	}
	var get *redis.StringCmd
	if _, err := p.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		get = pipe.Get(ctx, key)
		pipe.Del(ctx, key)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return key, "", false, fmt.Errorf("cannot read intent %q: %w", key, err)
	}
	value, _ = get.Result() // a missing key reads as ""
	return key, value, true, nil
}

// applyIntent applies one intent: migrate a component to the first feasible
// of the listed nodes, or (un)cordon a node.
func (o *Orc) applyIntent(ctx context.Context, key, value string) error {
	in, err := proxyschema.ParseIntent(key, value)
	if err != nil {
		return err
	}
	switch in.Kind {
	case proxyschema.IntentMigrate:
		_, err = o.migrate(ctx, &wire.Migrate{Logical: in.Logical, Nodes: in.Targets})
	case proxyschema.IntentCordon:
		_, err = o.cordon(ctx, &wire.Cordon{Node: in.Node, Cordoned: in.Cordoned})
	}
	return err
}

// nodeView and compView are copies of what the proxy mirrors, taken under
// the orchestrator's locks and used without them.
type nodeView struct {
	id        core.ID
	caps      wire.Capabilities
	providers []wire.Provider
}

type compView struct {
	logical   core.ID
	fn        *wire.FunctionSpec
	res       *wire.ResourceSpec
	instances []core.InstanceID
	outputs   map[string]core.ID
}

func (o *Orc) proxyView() ([]nodeView, []compView) {
	o.mu.Lock()
	defer o.mu.Unlock()
	comps := make([]compView, 0, len(o.comps))
	for _, c := range o.comps {
		// instances is edited in place (slices.DeleteFunc): copy it. The
		// specs and output maps are replaced, never edited.
		comps = append(comps, compView{logical: c.logical, fn: c.fn, res: c.res, instances: slices.Clone(c.instances), outputs: c.outputs})
	}
	nodes := make([]nodeView, 0, len(o.nodes))
	for _, n := range o.nodes {
		nodes = append(nodes, nodeView{id: n.id, caps: n.caps, providers: n.providers})
	}
	return nodes, comps
}

// mirror writes the string keys of every category that changed since the
// last round, deletes the keys of what is gone, and stamps last_update.
func (p *redisProxy) mirror(ctx context.Context, nodes []nodeView, comps []compView, now time.Time) error {
	// SETNX tells whether the database lost our keys (flushed, restarted).
	fresh, err := p.rdb.SetNX(ctx, proxyschema.DomainID, p.domain, 0).Result()
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", proxyschema.DomainID, err)
	}
	if fresh && len(p.written) > 0 {
		p.log.Warn("Redis proxy lost its keys; writing them again", "url", p.url)
		p.written = map[string]map[string]string{}
	}
	want := map[string]map[string]string{}
	for _, c := range proxyschema.Categories {
		want[c] = map[string]string{}
	}
	for _, n := range nodes {
		want[proxyschema.CategoryCapabilities][proxyschema.CapabilitiesKey(n.id)] = capabilities(n.caps).Encode()
		for _, pr := range n.providers {
			v := proxyschema.Provider{ClassType: pr.ClassType, NodeID: n.id.String(), Outputs: pr.Outputs}
			want[proxyschema.CategoryProvider][proxyschema.ProviderKey(pr.ID)] = v.Encode()
		}
	}
	for _, c := range comps {
		if len(c.instances) > 0 { // a component with no instance running is not active
			want[proxyschema.CategoryInstance][proxyschema.InstanceKey(c.logical)] = instance(c).Encode()
		}
		if c.outputs != nil {
			want[proxyschema.CategoryDependency][proxyschema.DependencyKey(c.logical)] = proxyschema.Dependencies(c.outputs).Encode()
		}
	}
	ts := proxyschema.FormatSeconds(unixSeconds(now))
	for _, cat := range proxyschema.Categories {
		changed, err := p.syncCategory(ctx, cat, want[cat], ts)
		if err != nil {
			return err
		}
		if p.dataset != nil && len(changed) > 0 {
			p.dataset.changed(cat, changed, nodes, comps, ts)
		}
	}
	return nil
}

// syncCategory writes the keys of cat whose value changed, deletes those no
// longer wanted and stamps <cat>:last_update; it returns the changed keys.
func (p *redisProxy) syncCategory(ctx context.Context, cat string, want map[string]string, ts string) ([]string, error) {
	have := p.written[cat]
	var changed []string
	pipe := p.rdb.Pipeline()
	for k, v := range want {
		if old, ok := have[k]; !ok || old != v {
			pipe.Set(ctx, k, v, 0)
			changed = append(changed, k)
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			pipe.Del(ctx, k)
			if cat == proxyschema.CategoryCapabilities {
				// A node that left takes its health history with it.
				pipe.Del(ctx, proxyschema.HealthPrefix+strings.TrimPrefix(k, proxyschema.CapabilitiesPrefix))
			}
		}
	}
	if pipe.Len() == 0 {
		return nil, nil
	}
	pipe.Set(ctx, proxyschema.LastUpdateKey(cat), ts, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("cannot write %s keys: %w", cat, err)
	}
	p.written[cat] = want
	return changed, nil
}

// pushTelemetry adds the queued health entries, performance samples and
// log entries to their sorted sets. Health of nodes that left is dropped.
func (p *redisProxy) pushTelemetry(ctx context.Context, present map[core.ID]bool) error {
	health, samples, logs, dropped := p.takePending()
	if dropped > 0 {
		p.log.Warn("Redis proxy dropped telemetry it could not write in time", "entries", dropped)
	}
	if len(health)+len(samples)+len(logs) == 0 {
		return nil
	}
	health = slices.DeleteFunc(health, func(h healthEntry) bool { return !present[h.node] })
	pipe := p.rdb.Pipeline()
	for _, h := range health {
		pipe.ZAdd(ctx, proxyschema.HealthKey(h.node), redis.Z{Score: h.ts, Member: proxyschema.Health(h.health).Encode()})
	}
	for _, s := range samples {
		pipe.ZAdd(ctx, proxyschema.PerformanceKey(s.Instance, s.Metric),
			redis.Z{Score: s.Timestamp, Member: proxyschema.Member(s.Timestamp, proxyschema.FormatSeconds(s.Seconds))})
	}
	for _, l := range logs {
		pipe.ZAdd(ctx, proxyschema.PerformanceKey(l.Instance, l.Target),
			redis.Z{Score: l.Timestamp, Member: proxyschema.Member(l.Timestamp, l.Message)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		p.requeue(health, samples, logs)
		return fmt.Errorf("cannot write health and performance samples: %w", err)
	}
	if p.dataset != nil {
		p.dataset.telemetry(health, samples, logs)
	}
	return nil
}

// gc removes health and performance entries older than the GC period, once
// per period.
func (p *redisProxy) gc(ctx context.Context, now time.Time) error {
	if p.gcPeriod <= 0 || now.Before(p.nextGC) {
		return nil
	}
	p.nextGC = now.Add(p.gcPeriod)
	limit := "(" + proxyschema.FormatSeconds(unixSeconds(now.Add(-p.gcPeriod)))
	removed := int64(0)
	for _, pattern := range []string{proxyschema.PerformancePrefix + "*", proxyschema.HealthPrefix + "*"} {
		iter := p.rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			n, err := p.rdb.ZRemRangeByScore(ctx, iter.Val(), "-inf", limit).Result()
			if err != nil {
				return fmt.Errorf("cannot remove old entries of %s: %w", iter.Val(), err)
			}
			removed += n
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("cannot list %s keys: %w", pattern, err)
		}
	}
	if removed > 0 {
		p.log.Debug("Redis proxy removed old entries", "entries", removed)
	}
	return nil
}

// capabilities converts a node's capabilities to EDGELESS's names.
func capabilities(c wire.Capabilities) proxyschema.Capabilities {
	return proxyschema.Capabilities{
		NumCPUs: c.NumCPUs, ClockFreqCPU: c.ClockFreqMHz, NumCores: c.NumCores, MemSize: c.MemSizeMiB,
		Labels: c.Labels, IsTEERunning: c.TEE, HasTPM: c.TPM, Runtimes: c.Runtimes,
	}
}

// instance returns EDGELESS's ActiveInstance of c, which has an instance.
func instance(c compView) proxyschema.Instance {
	if c.fn == nil {
		r := proxyschema.Resource{ClassType: c.res.ClassType, Configuration: c.res.Configurations, WorkflowID: c.res.Workflow.String()}
		return proxyschema.Instance{Resource: &r, Placed: c.instances[:1]}
	}
	var s proxyschema.Spawn
	s.Code.ID, s.Code.Type, s.Code.Version = c.fn.ClassID, c.fn.FunctionType, c.fn.Version
	// The class's outputs are not part of the spec the orchestrator gets;
	// the channels it was patched with are what it uses.
	s.Code.Outputs = slices.Sorted(maps.Keys(c.outputs))
	s.Annotations = c.fn.Annotations
	// Function state is kept per logical id, under any policy.
	s.StateSpecification.StateID = c.logical.String()
	s.StateSpecification.StatePolicy = "NodeLocal"
	s.WorkflowID = c.fn.Workflow.String()
	return proxyschema.Instance{Function: &s, Placed: c.instances}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// dataset appends what the proxy mirrors to CSV files, as EDGELESS's
// dataset_settings: every row starts with additional_fields, every header
// with additional_header.
type dataset struct {
	fields     string
	files      map[string]*os.File
	w          map[string]*bufio.Writer
	lastHealth map[core.ID]string
}

// datasetHeaders lists each file and its header.
var datasetHeaders = map[string]string{
	"health_status":          "timestamp,node_id," + healthCSVHeader,
	"capabilities":           "timestamp,node_id,num_cpus,model_name_cpu,clock_freq_cpu,num_cores,mem_size,labels,is_tee_running,has_tpm,runtimes,disk_tot_space,num_gpus,model_name_gpu,mem_size_gpu",
	"mapping_to_instance_id": "timestamp,logical_id,workflow_id,node_id,physical_id",
	"performance_samples":    "identifier,metric,timestamp,value",
	"application_logs":       "identifier,target,timestamp,message",
}

const healthCSVHeader = "mem_free,mem_used,mem_available,proc_cpu_usage,proc_memory,proc_vmemory,load_avg_1,load_avg_5,load_avg_15," +
	"tot_rx_bytes,tot_rx_pkts,tot_rx_errs,tot_tx_bytes,tot_tx_pkts,tot_tx_errs,disk_free_space,disk_tot_reads,disk_tot_writes," +
	"gpu_load_perc,gpu_temp_cels,active_power"

func openDataset(s DatasetSettings) (*dataset, error) {
	d := &dataset{fields: s.AdditionalFields, files: map[string]*os.File{}, w: map[string]*bufio.Writer{}, lastHealth: map[core.ID]string{}}
	for name, header := range datasetHeaders {
		path := s.DatasetPath + name + ".csv"
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			d.close()
			return nil, fmt.Errorf("cannot create the dataset directory of %s: %w", path, err)
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if s.Append {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("cannot open dataset file %s: %w", path, err)
		}
		d.files[name], d.w[name] = f, bufio.NewWriter(f)
		if st, err := f.Stat(); err == nil && st.Size() == 0 {
			fmt.Fprintf(d.w[name], "%s,%s\n", s.AdditionalHeader, header)
		}
	}
	return d, d.flush()
}

func (d *dataset) row(file string, cols ...string) {
	w := d.w[file]
	w.WriteString(d.fields)
	for _, c := range cols {
		w.WriteByte(',')
		w.WriteString(c)
	}
	w.WriteByte('\n')
}

// changed writes the rows of mirrored keys that changed: a node's new
// capabilities, a component's new instances.
func (d *dataset) changed(cat string, keys []string, nodes []nodeView, comps []compView, ts string) {
	switch cat {
	case proxyschema.CategoryCapabilities:
		for _, n := range nodes {
			if slices.Contains(keys, proxyschema.CapabilitiesKey(n.id)) {
				c := n.caps
				d.row("capabilities", ts, n.id.String(), strconv.Itoa(c.NumCPUs), "", proxyschema.FormatSeconds(c.ClockFreqMHz),
					strconv.Itoa(c.NumCores), strconv.Itoa(c.MemSizeMiB), "["+strings.Join(c.Labels, ";")+"]",
					strconv.FormatBool(c.TEE), strconv.FormatBool(c.TPM), "["+strings.Join(c.Runtimes, ";")+"]", "0", "0", "", "0")
			}
		}
	case proxyschema.CategoryInstance:
		for _, c := range comps {
			if !slices.Contains(keys, proxyschema.InstanceKey(c.logical)) {
				continue
			}
			var wf core.ID
			if c.fn != nil {
				wf = c.fn.Workflow
			} else {
				wf = c.res.Workflow
			}
			cols := []string{ts, c.logical.String(), wf.String()}
			for _, i := range c.instances {
				cols = append(cols, i.Node.String(), i.Component.String())
			}
			d.row("mapping_to_instance_id", cols...)
		}
	}
	d.flushLogged()
}

// telemetry writes health rows (when a node's health changed), samples and
// log entries.
func (d *dataset) telemetry(health []healthEntry, samples []wire.Sample, logs []wire.LogEntry) {
	for _, h := range health {
		v := healthCSV(h.health)
		if d.lastHealth[h.node] == v {
			continue
		}
		d.lastHealth[h.node] = v
		d.row("health_status", proxyschema.FormatSeconds(h.ts), h.node.String(), v)
	}
	for _, s := range samples {
		d.row("performance_samples", s.Instance.String(), s.Metric, proxyschema.FormatSeconds(s.Timestamp), proxyschema.FormatSeconds(s.Seconds))
	}
	for _, l := range logs {
		d.row("application_logs", l.Instance.String(), csvField(l.Target), proxyschema.FormatSeconds(l.Timestamp), csvField(l.Message))
	}
	d.flushLogged()
}

func healthCSV(h wire.NodeHealth) string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return strings.Join([]string{
		i(h.MemFree), i(h.MemUsed), i(h.MemAvailable), proxyschema.FormatSeconds(h.ProcCPUUsage), i(h.ProcMemory), i(h.ProcVMemory),
		i(h.LoadAvg1), i(h.LoadAvg5), i(h.LoadAvg15), i(h.TotRxBytes), i(h.TotRxPkts), i(h.TotRxErrs),
		i(h.TotTxBytes), i(h.TotTxPkts), i(h.TotTxErrs), i(h.DiskFreeSpace), i(h.DiskTotReads), i(h.DiskTotWrites),
		i(h.GPULoadPerc), proxyschema.FormatSeconds(float64(h.GPUTempCels) / 1000), i(h.ActivePower),
	}, ",")
}

// csvField quotes a free-text field when it would break the row.
func csvField(s string) string {
	if !strings.ContainsAny(s, ",\"\n\r") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func (d *dataset) flush() error {
	var errs []error
	for name, w := range d.w {
		if err := w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("cannot write dataset file %s: %w", d.files[name].Name(), err))
		}
	}
	return errors.Join(errs...)
}

// flushLogged flushes the files; a full disk must not stop the mirror, so
// the error is only remembered by the writer and reported at close.
func (d *dataset) flushLogged() {
	for _, w := range d.w {
		w.Flush()
	}
}

func (d *dataset) close() error {
	errs := []error{d.flush()}
	for _, f := range d.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
