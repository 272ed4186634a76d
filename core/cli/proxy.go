package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/proxyschema"
)

const proxyUsage = `usage: edgeless proxy [flags] VERB
  show functions | resources | logical-to-physical | logical-to-workflow
  show node capabilities | resource-providers | health | instances
  top nodes [--watch] [--interval 1s]
  intent migrate LOGICAL_ID NODE | cordon NODE | uncordon NODE
  dump performance | performance-csv | instances
NODE is a node's UUID, or its name as printed with --node-print-format.
flags:`

// Proxy runs `edgeless proxy [flags] <verb> …`: it reads the mirror that an
// orchestrator's Redis proxy keeps (EDGELESS's proxy_cli), and writes
// intents for the orchestrator to apply.
func Proxy(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	var redisURL, proxyType, conURL string
	for _, name := range []string{"r", "redis-url"} {
		fs.StringVar(&redisURL, name, "redis://127.0.0.1:6379", "URL of the Redis the orchestrator's proxy writes to")
	}
	for _, name := range []string{"p", "proxy-type"} {
		fs.StringVar(&proxyType, name, "Redis", "proxy type (only Redis)")
	}
	for _, name := range []string{"c", "controller-url"} {
		fs.StringVar(&conURL, name, Default().ControllerURL, "controller API, for component names in dump performance-csv")
	}
	format := fs.String("node-print-format", "hostname", "how nodes are printed: uuid, labels or hostname")
	outDir := fs.String("o", ".", "directory the dump verbs write their files to")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), proxyUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.EqualFold(proxyType, "redis") {
		return fmt.Errorf("proxy: unknown proxy type %q (want Redis)", proxyType)
	}
	switch *format {
	case "uuid", "labels", "hostname":
	default:
		return fmt.Errorf("proxy: invalid --node-print-format %q (want uuid, labels or hostname)", *format)
	}
	rest := fs.Args()
	if len(rest) < 2 {
		fs.Usage()
		return errors.New("proxy: missing verb")
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("proxy: cannot use Redis URL %q: %w", redisURL, err)
	}
	opts.MaxRetries, opts.DialerRetries = 1, 1
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cannot connect to Redis at %s: %w", redisURL, err)
	}
	m := &mirror{rdb: rdb, format: *format}
	if err := m.loadNames(ctx); err != nil {
		return err
	}
	verb, what, rest := rest[0], rest[1], rest[2:]
	switch verb + " " + what {
	case "show functions", "show resources", "show logical-to-physical", "show logical-to-workflow",
		"dump performance", "dump performance-csv", "dump instances":
		if len(rest) > 0 {
			return fmt.Errorf("proxy %s %s: unexpected arguments %q (flags go before the verb)", verb, what, rest)
		}
	}
	switch verb + " " + what {
	case "show functions", "show resources", "show logical-to-physical", "show logical-to-workflow":
		return m.show(ctx, what, out)
	case "show node":
		if len(rest) != 1 {
			return errors.New("proxy show node: want capabilities, resource-providers, health or instances")
		}
		return m.showNode(ctx, rest[0], out)
	case "top nodes":
		tf := flag.NewFlagSet("top nodes", flag.ContinueOnError)
		watch := tf.Bool("watch", false, "redraw the table in the terminal until interrupted")
		interval := tf.Duration("interval", time.Second, "time between redraws with --watch")
		if err := tf.Parse(rest); err != nil {
			return err
		}
		return m.top(ctx, *watch, *interval, out)
	case "intent migrate":
		if len(rest) != 2 {
			return errors.New("proxy intent migrate: want LOGICAL_ID NODE")
		}
		lid, err := core.ParseID(rest[0])
		if err != nil {
			return fmt.Errorf("proxy intent migrate: invalid logical id: %w", err)
		}
		node, err := m.resolveNode(ctx, rest[1])
		if err != nil {
			return err
		}
		return m.intent(ctx, proxyschema.Intent{Kind: proxyschema.IntentMigrate, Logical: lid, Targets: []core.ID{node}}, out)
	case "intent cordon", "intent uncordon":
		if len(rest) != 1 {
			return fmt.Errorf("proxy intent %s: want NODE", what)
		}
		node, err := m.resolveNode(ctx, rest[0])
		if err != nil {
			return err
		}
		return m.intent(ctx, proxyschema.Intent{Kind: proxyschema.IntentCordon, Node: node, Cordoned: what == "cordon"}, out)
	case "dump performance":
		return m.dumpPerformance(ctx, *outDir, out)
	case "dump performance-csv":
		c := &client{base: strings.TrimSuffix(conURL, "/"), http: &http.Client{Timeout: 10 * time.Second}}
		return m.dumpPerformanceCSV(ctx, c, out)
	case "dump instances":
		return m.dumpInstances(ctx, *outDir, out)
	}
	fs.Usage()
	return fmt.Errorf("proxy: unknown verb %q", verb+" "+what)
}

// mirror reads the keys an orchestrator's Redis proxy writes.
type mirror struct {
	rdb    *redis.Client
	format string
	names  map[string]string // node UUID → printed name
}

// keys lists the keys matching pattern, sorted.
func (m *mirror) keys(ctx context.Context, pattern string) ([]string, error) {
	var keys []string
	iter := m.rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("cannot list %s keys: %w", pattern, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// values returns the string values of the keys matching prefix+"*" by the
// rest of their key, skipping last_update and keys of other types.
func (m *mirror) values(ctx context.Context, prefix string) (map[string]string, error) {
	keys, err := m.keys(ctx, prefix+"*")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range keys {
		id := strings.TrimPrefix(k, prefix)
		if proxyschema.IsLastUpdate(id) {
			continue
		}
		v, err := m.rdb.Get(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue // gone meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", k, err)
		}
		out[id] = v
	}
	return out, nil
}

// capabilities returns each node's capabilities; values it cannot read are
// left out, as they are by EDGELESS's proxy_cli.
func (m *mirror) capabilities(ctx context.Context) (map[string]proxyschema.Capabilities, error) {
	raw, err := m.values(ctx, proxyschema.CapabilitiesPrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]proxyschema.Capabilities{}
	for node, v := range raw {
		if c, err := proxyschema.DecodeCapabilities(v); err == nil {
			out[node] = c
		}
	}
	return out, nil
}

// health returns each node's latest health status.
func (m *mirror) health(ctx context.Context) (map[string]proxyschema.Health, error) {
	keys, err := m.keys(ctx, proxyschema.HealthPrefix+"*")
	if err != nil {
		return nil, err
	}
	out := map[string]proxyschema.Health{}
	for _, k := range keys {
		last, err := m.rdb.ZRange(ctx, k, -1, -1).Result()
		if err != nil || len(last) == 0 {
			continue
		}
		if h, err := proxyschema.DecodeHealth(last[0]); err == nil {
			out[strings.TrimPrefix(k, proxyschema.HealthPrefix)] = h
		}
	}
	return out, nil
}

// instances returns the active instances by logical id.
func (m *mirror) instances(ctx context.Context) (map[string]proxyschema.Instance, error) {
	raw, err := m.values(ctx, proxyschema.InstancePrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]proxyschema.Instance{}
	for lid, v := range raw {
		if in, err := proxyschema.DecodeInstance(v); err == nil && len(in.Placed) > 0 {
			out[lid] = in
		}
	}
	return out, nil
}

// loadNames maps node UUIDs to the names --node-print-format asks for.
// Nodes that would print alike get their UUID's first digits appended.
func (m *mirror) loadNames(ctx context.Context) error {
	m.names = map[string]string{}
	if m.format == "uuid" {
		return nil
	}
	caps, err := m.capabilities(ctx)
	if err != nil {
		return err
	}
	count := map[string]int{}
	for node, c := range caps {
		name := ""
		if m.format == "labels" {
			name = strings.Join(c.Labels, ",")
		} else {
			for _, l := range c.Labels {
				if h, ok := strings.CutPrefix(l, "hostname="); ok {
					name = h
					break
				}
			}
		}
		if name != "" {
			m.names[node] = name
			count[name]++
		}
	}
	for node, name := range m.names {
		if count[name] > 1 {
			m.names[node] = name + "/" + node[:8]
		}
	}
	return nil
}

func (m *mirror) node(id string) string {
	if n, ok := m.names[id]; ok {
		return n
	}
	return id
}

// resolveNode accepts a node's UUID or its printed name.
func (m *mirror) resolveNode(ctx context.Context, s string) (core.ID, error) {
	if id, err := core.ParseID(s); err == nil {
		return id, nil
	}
	var match []string
	for id, name := range m.names {
		if name == s {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 1:
		return core.ParseID(match[0])
	case 0:
		return core.ID{}, fmt.Errorf("proxy: no node is named %q (give its UUID, or see `edgeless proxy show node capabilities`)", s)
	}
	return core.ID{}, fmt.Errorf("proxy: %d nodes are named %q; give a UUID", len(match), s)
}

func (m *mirror) show(ctx context.Context, what string, out io.Writer) error {
	all, err := m.instances(ctx)
	if err != nil {
		return err
	}
	for _, lid := range sortedKeys(all) {
		in := all[lid]
		var cols []string
		switch what {
		case "functions", "resources":
			if (in.Function != nil) != (what == "functions") {
				continue
			}
			for _, p := range in.Placed {
				cols = append(cols, m.node(p.Node.String()))
			}
		case "logical-to-physical":
			for _, p := range in.Placed {
				cols = append(cols, p.Component.String())
			}
		case "logical-to-workflow":
			cols = []string{in.Workflow()}
		}
		fmt.Fprintf(out, "%s -> %s\n", lid, strings.Join(cols, ","))
	}
	return nil
}

func (m *mirror) showNode(ctx context.Context, what string, out io.Writer) error {
	switch what {
	case "capabilities":
		caps, err := m.capabilities(ctx)
		if err != nil {
			return err
		}
		for _, node := range sortedKeys(caps) {
			c := caps[node]
			extra := ""
			if c.IsTEERunning {
				extra += ", TEE"
			}
			if c.HasTPM {
				extra += ", TPM"
			}
			fmt.Fprintf(out, "%s -> %d %s CPU(s) at %s BogoMIPS, %d core(s), %d MiB memory, labels [%s]%s, runtimes [%s], disk space %d MiB, %d %s GPU(s) %d MiB\n",
				m.node(node), c.NumCPUs, c.ModelNameCPU, strconv.FormatFloat(c.ClockFreqCPU, 'f', -1, 64), c.NumCores, c.MemSize,
				strings.Join(c.Labels, ","), extra, strings.Join(c.Runtimes, ","), c.DiskTotSpace, c.NumGPUs, c.ModelNameGPU, c.MemSizeGPU)
		}
	case "resource-providers":
		raw, err := m.values(ctx, proxyschema.ProviderPrefix)
		if err != nil {
			return err
		}
		for _, id := range sortedKeys(raw) {
			p, err := proxyschema.DecodeProvider(raw[id])
			if err != nil {
				continue
			}
			fmt.Fprintf(out, "%s -> class_type %s, node_id %s, outputs [%s]\n", id, p.ClassType, p.NodeID, strings.Join(p.Outputs, ","))
		}
	case "health":
		health, err := m.health(ctx)
		if err != nil {
			return err
		}
		for _, node := range sortedKeys(health) {
			h := health[node]
			power := h.ActivePower
			fmt.Fprintf(out, "%s -> memory free %d kb, used %d kb, available %d kb, process cpu usage %.1f%%, memory %d kb, vmemory %d kb, "+
				"load avg 1 minute %d%% 5 minutes %d%% 15 minutes %d%%, network tot rx %d bytes (%d pkts) %d errs, tot tx %d bytes (%d pkts) %d errs, "+
				"disk available %d bytes, tot disk reads %d writes %d, gpu_load_perc %d%%, gpu_temp_cels %.2f°, active_power %d mW\n",
				m.node(node), h.MemFree, h.MemUsed, h.MemAvailable, h.ProcCPUUsage, h.ProcMemory, h.ProcVMemory,
				h.LoadAvg1, h.LoadAvg5, h.LoadAvg15, h.TotRxBytes, h.TotRxPkts, h.TotRxErrs, h.TotTxBytes, h.TotTxPkts, h.TotTxErrs,
				h.DiskFreeSpace, h.DiskTotReads, h.DiskTotWrites, h.GPULoadPerc, float64(h.GPUTempCels)/1000, power)
		}
	case "instances":
		all, err := m.instances(ctx)
		if err != nil {
			return err
		}
		byNode := map[string][]string{}
		for _, lid := range sortedKeys(all) {
			tag := "[R] "
			if all[lid].Function != nil {
				tag = "[F] "
			}
			for _, p := range all[lid].Placed {
				byNode[p.Node.String()] = append(byNode[p.Node.String()], tag+lid)
			}
		}
		for _, node := range sortedKeys(byNode) {
			fmt.Fprintln(out, m.node(node))
			for _, line := range byNode[node] {
				fmt.Fprintln(out, line)
			}
		}
	default:
		return fmt.Errorf("proxy show node: unknown %q (want capabilities, resource-providers, health or instances)", what)
	}
	return nil
}

// rateWindow is how far back top counts executions for its event rate.
const rateWindow = 10 * time.Second

// top prints the node table once, or with watch redraws it in the terminal
// every interval until ctx ends.
func (m *mirror) top(ctx context.Context, watch bool, interval time.Duration, out io.Writer) error {
	if !watch {
		return m.topNodes(ctx, out)
	}
	if interval <= 0 {
		return fmt.Errorf("proxy top nodes: --interval must be positive, got %v", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var frame bytes.Buffer
	for {
		frame.Reset()
		// Home and clear, then the whole frame at once: no flicker.
		frame.WriteString("\x1b[H\x1b[2J")
		fmt.Fprintf(&frame, "edgeless top — %s — every %v, Ctrl-C to quit\n\n", time.Now().Format(time.TimeOnly), interval)
		if err := m.loadNames(ctx); err != nil {
			if ctx.Err() != nil { // interrupted while reading: a clean stop
				return nil
			}
			return err
		}
		if err := m.topNodes(ctx, &frame); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(&frame, "cannot read the mirror: %v\n", err)
		}
		if _, err := out.Write(frame.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// topNodes prints one row per node: runtimes, load, the node process's CPU,
// memory in use, GPU, power, instances and the rate of function executions
// (from the performance samples, when nodes send them).
func (m *mirror) topNodes(ctx context.Context, out io.Writer) error {
	caps, err := m.capabilities(ctx)
	if err != nil {
		return err
	}
	health, err := m.health(ctx)
	if err != nil {
		return err
	}
	all, err := m.instances(ctx)
	if err != nil {
		return err
	}
	physical := map[string][]core.ID{}
	for _, in := range all {
		for _, p := range in.Placed {
			physical[p.Node.String()] = append(physical[p.Node.String()], p.Component)
		}
	}
	nodes := sortedKeys(caps)
	slices.SortStableFunc(nodes, func(a, b string) int { return strings.Compare(m.node(a), m.node(b)) })
	since := proxyschema.FormatSeconds(float64(time.Now().Add(-rateWindow).UnixNano()) / 1e9)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tRuntimes\tLoad\tProc CPU\tMemory\tGPU util\tPower\tInstances\tEvents/s")
	for _, node := range nodes {
		load, cpu, mem, gpu, power := "-", "-", "-", "-", "-"
		if h, ok := health[node]; ok {
			load = strconv.FormatFloat(float64(h.LoadAvg1)/100, 'f', 2, 64)
			cpu = strconv.FormatFloat(h.ProcCPUUsage, 'f', 0, 64) + "%"
			if total := h.MemUsed + h.MemAvailable; total > 0 {
				mem = strconv.FormatInt(h.MemUsed*100/total, 10) + "%"
			}
			if h.GPULoadPerc >= 0 {
				gpu = strconv.FormatInt(h.GPULoadPerc, 10) + "%"
			}
			if h.ActivePower >= 0 {
				power = strconv.FormatInt(h.ActivePower, 10) + " mW"
			}
		}
		rate := "-"
		executions, series := int64(0), 0
		for _, pid := range physical[node] {
			key := proxyschema.PerformanceKey(pid, "function_execution_time")
			n, err := m.rdb.ZCount(ctx, key, since, "+inf").Result()
			if err != nil {
				return fmt.Errorf("cannot read %s: %w", key, err)
			}
			if exists, _ := m.rdb.Exists(ctx, key).Result(); exists > 0 {
				series++
			}
			executions += n
		}
		if series > 0 {
			rate = strconv.FormatFloat(float64(executions)/rateWindow.Seconds(), 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.node(node), strings.Join(caps[node].Runtimes, ","),
			load, cpu, mem, gpu, power, len(physical[node]), rate)
	}
	return tw.Flush()
}

// intent writes an intent key and queues it, as EDGELESS's proxy_cli does.
func (m *mirror) intent(ctx context.Context, in proxyschema.Intent, out io.Writer) error {
	key, value := in.Key(), in.Value()
	if _, err := m.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Set(ctx, key, value, 0)
		pipe.RPush(ctx, proxyschema.Intents, key)
		return nil
	}); err != nil {
		return fmt.Errorf("cannot write intent %s: %w", key, err)
	}
	fmt.Fprintf(out, "%s = %s queued\n", key, value)
	return nil
}

// performance returns the performance series: physical id → metric (or log
// target) → "<ts>:<value>" members in time order.
func (m *mirror) performance(ctx context.Context) (map[string]map[string][]string, error) {
	keys, err := m.keys(ctx, proxyschema.PerformancePrefix+"*")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]string{}
	for _, k := range keys {
		pid, series, ok := proxyschema.ParsePerformanceKey(k)
		if !ok {
			continue
		}
		members, err := m.rdb.ZRange(ctx, k, 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", k, err)
		}
		if out[pid.String()] == nil {
			out[pid.String()] = map[string][]string{}
		}
		out[pid.String()][series] = members
	}
	return out, nil
}

// dumpPerformance writes one file <metric>-<physical id>.dat per series,
// with "timestamp,value" lines.
func (m *mirror) dumpPerformance(ctx context.Context, dir string, out io.Writer) error {
	perf, err := m.performance(ctx)
	if err != nil {
		return err
	}
	for _, pid := range sortedKeys(perf) {
		for _, metric := range sortedKeys(perf[pid]) {
			var b strings.Builder
			for _, member := range perf[pid][metric] {
				if ts, v, ok := proxyschema.SplitMember(member); ok {
					b.WriteString(ts + "," + v + "\n")
				}
			}
			if err := saveFile(filepath.Join(dir, metric+"-"+pid+".dat"), []byte(b.String()), out); err != nil {
				return err
			}
		}
	}
	return nil
}

// dumpPerformanceCSV prints every sample as "metric,name,lid,timestamp,value";
// component names come from the controller when it answers.
func (m *mirror) dumpPerformanceCSV(ctx context.Context, c *client, out io.Writer) error {
	perf, err := m.performance(ctx)
	if err != nil {
		return err
	}
	all, err := m.instances(ctx)
	if err != nil {
		return err
	}
	lidOf := map[string]string{}
	for lid, in := range all {
		for _, p := range in.Placed {
			lidOf[p.Component.String()] = lid
		}
	}
	names := map[string]string{}
	var list struct {
		Workflows []struct {
			Components []struct {
				Name      string `json:"name"`
				LogicalID string `json:"logical_id"`
			} `json:"components"`
		} `json:"workflows"`
	}
	// Names are a convenience: without a controller the column stays empty.
	if c.do(ctx, http.MethodGet, "/api/v1/workflows", nil, &list) == nil {
		for _, w := range list.Workflows {
			for _, ci := range w.Components {
				names[ci.LogicalID] = ci.Name
			}
		}
	}
	fmt.Fprintln(out, "metric,name,lid,timestamp,value")
	for _, pid := range sortedKeys(perf) {
		lid := lidOf[pid]
		for _, metric := range sortedKeys(perf[pid]) {
			for _, member := range perf[pid][metric] {
				if ts, v, ok := proxyschema.SplitMember(member); ok {
					fmt.Fprintf(out, "%s,%s,%s,%s,%s\n", csvQuote(metric), csvQuote(names[lid]), lid, ts, csvQuote(v))
				}
			}
		}
	}
	return nil
}

// dumpInstances writes the spec of every function (fun-<lid>.json) and
// resource (res-<lid>.json).
func (m *mirror) dumpInstances(ctx context.Context, dir string, out io.Writer) error {
	all, err := m.instances(ctx)
	if err != nil {
		return err
	}
	for _, lid := range sortedKeys(all) {
		in := all[lid]
		var b bytes.Buffer
		if err := json.Indent(&b, in.Spec, "", "  "); err != nil {
			return fmt.Errorf("cannot format the spec of %s: %w", lid, err)
		}
		b.WriteByte('\n')
		prefix := "res-"
		if in.Function != nil {
			prefix = "fun-"
		}
		if err := saveFile(filepath.Join(dir, prefix+lid+".json"), b.Bytes(), out); err != nil {
			return err
		}
	}
	return nil
}

func saveFile(path string, data []byte, out io.Writer) error {
	fmt.Fprintf(out, "saving to %s\n", path)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// csvQuote quotes a field when it would break the CSV row.
func csvQuote(s string) string {
	if !strings.ContainsAny(s, ",\"\n\r") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
