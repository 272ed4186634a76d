package orc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// The Redis proxy mirrors the orchestrator's state with EDGELESS's key names
// and JSON values, so that EDGELESS's proxy_cli, dashboards and delegated
// orchestrators work unchanged against it:
//
//	domain_info:domain_id            the domain's name
//	node:capabilities:<node>         NodeCapabilities JSON
//	node:health:<node>               sorted set of NodeHealthStatus JSON, scored by arrival time
//	provider:<provider id>           {"class_type","node_id","outputs"}
//	instance:<logical id>            {"Function":[spawn request without code,[instance ids]]} or {"Resource":[spec,instance id]}
//	dependency:<logical id>          {"<channel>":"<logical id>"}
//	<category>:last_update           when the category last changed, Unix seconds with a fraction
//	performance:<physical id>:<metric or log target>  sorted sets of "<ts>:<value>"
//
// and it applies the intents that outside tools push on the list "intents":
// the key of a string intent:migrate:<logical id> = "<node>[,<node>…]" or
// intent:cordon:<node> = "yes"|"no".

const (
	keyDomainID = "domain_info:domain_id"
	keyIntents  = "intents"
	// maxPending bounds the health entries, samples and log entries waiting
	// for Redis: while it is unreachable the oldest are dropped.
	maxPending = 100_000
	// proxyTimeout bounds one round of mirroring, so that a Redis that hangs
	// delays the next round rather than stopping the proxy.
	proxyTimeout = 10 * time.Second
)

// The categories of string keys, each with its last_update key.
var proxyCategories = []string{"node:capabilities", "provider", "instance", "dependency"}

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
	key, err = p.rdb.LPop(ctx, keyIntents).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("cannot pop from %q: %w", keyIntents, err)
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
	rest, ok := strings.CutPrefix(key, "intent:")
	if !ok {
		return errors.New(`the key does not start with "intent:"`)
	}
	kind, arg, _ := strings.Cut(rest, ":")
	switch kind {
	case "migrate":
		lid, err := core.ParseID(arg)
		if err != nil {
			return fmt.Errorf("bad component: %w", err)
		}
		var targets []core.ID
		for s := range strings.SplitSeq(value, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			id, err := core.ParseID(s)
			if err != nil {
				return fmt.Errorf("bad target node: %w", err)
			}
			targets = append(targets, id)
		}
		_, err = o.migrate(ctx, &wire.Migrate{Logical: lid, Nodes: targets})
		return err
	case "cordon":
		id, err := core.ParseID(arg)
		if err != nil {
			return fmt.Errorf("bad node: %w", err)
		}
		var cordoned bool
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "yes", "true":
			cordoned = true
		case "no", "false":
		default:
			return fmt.Errorf(`cordon value must be "yes" or "no"`)
		}
		_, err = o.cordon(ctx, &wire.Cordon{Node: id, Cordoned: cordoned})
		return err
	}
	return fmt.Errorf("unknown intent %q", kind)
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
	fresh, err := p.rdb.SetNX(ctx, keyDomainID, p.domain, 0).Result()
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", keyDomainID, err)
	}
	if fresh && len(p.written) > 0 {
		p.log.Warn("Redis proxy lost its keys; writing them again", "url", p.url)
		p.written = map[string]map[string]string{}
	}
	want := map[string]map[string]string{}
	for _, c := range proxyCategories {
		want[c] = map[string]string{}
	}
	for _, n := range nodes {
		want["node:capabilities"]["node:capabilities:"+n.id.String()] = capabilitiesJSON(n.caps)
		for _, pr := range n.providers {
			want["provider"]["provider:"+pr.ID] = marshal(providerValue{ClassType: pr.ClassType, NodeID: n.id.String(), Outputs: nonNil(pr.Outputs)})
		}
	}
	for _, c := range comps {
		lid := c.logical.String()
		if v, ok := instanceJSON(c); ok {
			want["instance"]["instance:"+lid] = v
		}
		if c.outputs != nil {
			deps := make(map[string]string, len(c.outputs))
			for ch, t := range c.outputs {
				deps[ch] = t.String()
			}
			want["dependency"]["dependency:"+lid] = marshal(deps)
		}
	}
	ts := formatSeconds(unixSeconds(now))
	for _, cat := range proxyCategories {
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
			if cat == "node:capabilities" {
				// A node that left takes its health history with it.
				pipe.Del(ctx, "node:health:"+strings.TrimPrefix(k, "node:capabilities:"))
			}
		}
	}
	if pipe.Len() == 0 {
		return nil, nil
	}
	pipe.Set(ctx, cat+":last_update", ts, 0)
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
		pipe.ZAdd(ctx, "node:health:"+h.node.String(), redis.Z{Score: h.ts, Member: healthJSON(h.health)})
	}
	for _, s := range samples {
		pipe.ZAdd(ctx, "performance:"+s.Instance.String()+":"+s.Metric,
			redis.Z{Score: s.Timestamp, Member: formatSeconds(s.Timestamp) + ":" + formatSeconds(s.Seconds)})
	}
	for _, l := range logs {
		pipe.ZAdd(ctx, "performance:"+l.Instance.String()+":"+l.Target,
			redis.Z{Score: l.Timestamp, Member: formatSeconds(l.Timestamp) + ":" + l.Message})
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
	limit := "(" + formatSeconds(unixSeconds(now.Add(-p.gcPeriod)))
	removed := int64(0)
	for _, pattern := range []string{"performance:*", "node:health:*"} {
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

// The JSON values, shaped as EDGELESS's serde output.

type capabilitiesValue struct {
	NumCPUs      int      `json:"num_cpus"`
	ModelNameCPU string   `json:"model_name_cpu"`
	ClockFreqCPU float64  `json:"clock_freq_cpu"`
	NumCores     int      `json:"num_cores"`
	MemSize      int      `json:"mem_size"`
	Labels       []string `json:"labels"`
	IsTEERunning bool     `json:"is_tee_running"`
	HasTPM       bool     `json:"has_tpm"`
	Runtimes     []string `json:"runtimes"`
	DiskTotSpace int      `json:"disk_tot_space"`
	NumGPUs      int      `json:"num_gpus"`
	ModelNameGPU string   `json:"model_name_gpu"`
	MemSizeGPU   int      `json:"mem_size_gpu"`
}

func capabilitiesJSON(c wire.Capabilities) string {
	return marshal(capabilitiesValue{
		NumCPUs: c.NumCPUs, ClockFreqCPU: c.ClockFreqMHz, NumCores: c.NumCores, MemSize: c.MemSizeMiB,
		Labels: nonNil(c.Labels), IsTEERunning: c.TEE, HasTPM: c.TPM, Runtimes: nonNil(c.Runtimes),
	})
}

// healthJSON is the node:health value: NodeHealthStatus, whose JSON names
// wire.NodeHealth shares, with the CPU use rounded, since EDGELESS reads it
// as an integer; our eBPF figures come along, and EDGELESS ignores them.
func healthJSON(h wire.NodeHealth) string {
	h.ProcCPUUsage = math.Round(h.ProcCPUUsage)
	return marshal(h)
}

type providerValue struct {
	ClassType string   `json:"class_type"`
	NodeID    string   `json:"node_id"`
	Outputs   []string `json:"outputs"`
}

// spawnValue is EDGELESS's SpawnFunctionRequest with the code stripped.
type spawnValue struct {
	Code struct {
		ID      string   `json:"function_class_id"`
		Type    string   `json:"function_class_type"`
		Version string   `json:"function_class_version"`
		Code    []int    `json:"function_class_code"`
		Outputs []string `json:"function_class_outputs"`
	} `json:"code"`
	Annotations        map[string]string `json:"annotations"`
	StateSpecification struct {
		StateID     string `json:"state_id"`
		StatePolicy string `json:"state_policy"`
	} `json:"state_specification"`
	WorkflowID string `json:"workflow_id"`
}

// resourceValue is EDGELESS's ResourceInstanceSpecification.
type resourceValue struct {
	ClassType     string            `json:"class_type"`
	Configuration map[string]string `json:"configuration"`
	WorkflowID    string            `json:"workflow_id"`
}

// instanceJSON returns EDGELESS's ActiveInstance of c; a component with no
// instance running is not active.
func instanceJSON(c compView) (string, bool) {
	if len(c.instances) == 0 {
		return "", false
	}
	if c.fn != nil {
		var s spawnValue
		s.Code.ID, s.Code.Type, s.Code.Version = c.fn.ClassID, c.fn.FunctionType, c.fn.Version
		s.Code.Code = []int{}
		// The class's outputs are not part of the spec the orchestrator
		// gets; the channels it was patched with are what it uses.
		s.Code.Outputs = slices.Sorted(maps.Keys(c.outputs))
		if s.Code.Outputs == nil {
			s.Code.Outputs = []string{}
		}
		s.Annotations = nonNilMap(c.fn.Annotations)
		// Function state is kept per logical id, under any policy.
		s.StateSpecification.StateID = c.logical.String()
		s.StateSpecification.StatePolicy = "NodeLocal"
		s.WorkflowID = c.fn.Workflow.String()
		ids := make([]string, len(c.instances))
		for i, in := range c.instances {
			ids[i] = instanceIDString(in)
		}
		return marshal(map[string][2]any{"Function": {s, ids}}), true
	}
	r := resourceValue{ClassType: c.res.ClassType, Configuration: nonNilMap(c.res.Configurations), WorkflowID: c.res.Workflow.String()}
	return marshal(map[string][2]any{"Resource": {r, instanceIDString(c.instances[0])}}), true
}

// instanceIDString formats an instance as EDGELESS's InstanceId Display.
func instanceIDString(i core.InstanceID) string {
	return "InstanceId(node_id: " + i.Node.String() + ", function_id: " + i.Component.String() + ")"
}

// marshal encodes v as JSON without HTML escaping, as serde_json does.
func marshal(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("BUG: cannot encode a proxy value: " + err.Error())
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// formatSeconds formats a time or duration in seconds as EDGELESS does: the
// shortest decimal that reads back the same.
func formatSeconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }

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
	case "node:capabilities":
		for _, n := range nodes {
			if slices.Contains(keys, "node:capabilities:"+n.id.String()) {
				c := n.caps
				d.row("capabilities", ts, n.id.String(), strconv.Itoa(c.NumCPUs), "", formatSeconds(c.ClockFreqMHz),
					strconv.Itoa(c.NumCores), strconv.Itoa(c.MemSizeMiB), "["+strings.Join(c.Labels, ";")+"]",
					strconv.FormatBool(c.TEE), strconv.FormatBool(c.TPM), "["+strings.Join(c.Runtimes, ";")+"]", "0", "0", "", "0")
			}
		}
	case "instance":
		for _, c := range comps {
			if !slices.Contains(keys, "instance:"+c.logical.String()) {
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
		d.row("health_status", formatSeconds(h.ts), h.node.String(), v)
	}
	for _, s := range samples {
		d.row("performance_samples", s.Instance.String(), s.Metric, formatSeconds(s.Timestamp), formatSeconds(s.Seconds))
	}
	for _, l := range logs {
		d.row("application_logs", l.Instance.String(), csvField(l.Target), formatSeconds(l.Timestamp), csvField(l.Message))
	}
	d.flushLogged()
}

func healthCSV(h wire.NodeHealth) string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return strings.Join([]string{
		i(h.MemFree), i(h.MemUsed), i(h.MemAvailable), formatSeconds(h.ProcCPUUsage), i(h.ProcMemory), i(h.ProcVMemory),
		i(h.LoadAvg1), i(h.LoadAvg5), i(h.LoadAvg15), i(h.TotRxBytes), i(h.TotRxPkts), i(h.TotRxErrs),
		i(h.TotTxBytes), i(h.TotTxPkts), i(h.TotTxErrs), i(h.DiskFreeSpace), i(h.DiskTotReads), i(h.DiskTotWrites),
		i(h.GPULoadPerc), formatSeconds(float64(h.GPUTempCels) / 1000), i(h.ActivePower),
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
