package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/inabox"
	"github.com/edgeless-go/edgeless/core/spec"
)

// The scale scenarios grow one dimension of a cluster through the sizes of
// --counts and measure each size: nothing is extrapolated. Each size gets at
// most growLimit to reach; a size that fails or runs out of time is
// reported with the reason, and the larger ones are skipped.
const growLimit = 10 * time.Minute

// noopPath is the idle function the scale scenarios deploy.
const noopPath = "functions/noop/noop.wasm"

// counts returns --counts, or def when it is empty.
func (r *scenarioRun) counts(def string) []int {
	s := r.sc.Counts
	if s == "" {
		s = def
	}
	c, _ := ints("counts", s, 1, maxCount)
	return c
}

// procStatus returns a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return -1
}

// roomFor lets the node of c hold n idle instances. Their memory fits its
// budget because each declares what it needs (noopWorkflow).
func roomFor(c *inabox.Config, n int) {
	c.Node.WASM.MaxInstances = n + 16
}

// noopWorkflow returns a workflow of k idle noop functions.
func noopWorkflow(code spec.ClassSpec, k int) *spec.Workflow {
	w := newWorkflow()
	for i := range k {
		// noop's instance needs less than a MiB: it says so, or the node's
		// memory budget would count the runtime's whole limit for each.
		w.Functions = append(w.Functions, spec.Function{Name: "noop" + strconv.Itoa(i), ClassSpecification: code,
			OutputMapping: map[string]string{}, Annotations: map[string]string{spec.KeyMemoryMB: "1"}})
	}
	return w
}

// grow starts workflows of per functions each until have reaches n; it
// returns the new count and stops at the first error or after limit.
func grow(ctx context.Context, con *controller, code spec.ClassSpec, have, n, per int, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	for have < n {
		if time.Now().After(deadline) {
			return have, fmt.Errorf("not reached in %v", limit)
		}
		k := min(per, n-have)
		if _, err := con.start(ctx, noopWorkflow(code, k)); err != nil {
			return have, err
		}
		have += k
	}
	return have, nil
}

// scaleSeries are the lines of a scale plot, one per measured quantity.
type scaleSeries []series

func (s scaleSeries) add(x float64, ys ...float64) {
	for i, y := range ys {
		s[i].x, s[i].y = append(s[i].x, x), append(s[i].y, y)
	}
}

// instances grows the idle WASM instances of one node through --counts
// (default 100, 1k, 10k), 100 per workflow, and measures at each size the
// start time and RSS per instance and the latency of a two-function ring
// on the same node.
func (r *scenarioRun) instances(ctx context.Context) error {
	counts := r.counts("100,1000,10000")
	const per = 100
	b, err := r.box(ctx, 1, "", func(c *inabox.Config) { roomFor(c, counts[len(counts)-1]) })
	if err != nil {
		return err
	}
	defer b.Close()
	con := newController(boxAPI(b))
	code, err := classOf("noop", noopPath, nil)
	if err != nil {
		return err
	}
	nodes := []string{b.Nodes[0].ID().String()}
	ring := func(label string, kv ...any) (time.Duration, error) {
		d, tps, err := r.ring(ctx, con, nodes, false, 2, 16, 1)
		if err != nil {
			return 0, err
		}
		r.point(label, append(kv, "txn", d.n, "txn_p50", d.p50, "txn_p99", d.p99, "txn_per_s", tps)...)
		return d.p50, nil
	}
	runtime.GC()
	base := procStatus(os.Getpid(), "VmRSS")
	if _, err := ring("instances=0", "rss_MB", float64(base)/1024); err != nil {
		return err
	}
	s := scaleSeries{{name: "start per instance (µs)", color: "#1f77b4"}, {name: "RSS per added instance (KiB)", color: "#2ca02c"},
		{name: "2-hop ring p50 with them present (µs)", color: "#d62728"}}
	have, prevRSS := 0, base
	for _, n := range counts {
		t0, from := time.Now(), have
		have, err = grow(ctx, con, code, have, n, per, growLimit)
		if err != nil {
			r.point("instances="+strconv.Itoa(n), "failed_at", have, "error", strconv.Quote(err.Error()))
			break
		}
		start := time.Since(t0) / time.Duration(n-from)
		runtime.GC()
		rss := procStatus(os.Getpid(), "VmRSS")
		// Per added instance leaves out what the first ones paid once (the
		// module's compilation, the pool's first pages).
		added := float64(rss-prevRSS) / float64(n-from)
		prevRSS = rss
		p50, err := ring("instances="+strconv.Itoa(n), "start_per_instance", start, "rss_MB", float64(rss)/1024,
			"rss_per_instance_KB", float64(rss-base)/float64(n), "rss_per_added_KB", added)
		if err != nil {
			return err
		}
		s.add(float64(n), float64(start)/1e3, added, float64(p50)/1e3)
	}
	return r.plot("instances", &chart{title: "idle noop WASM instances on one node", xLabel: "instances (log scale)",
		yLabel: "see legend (log scale)", logX: true, logY: true, series: s})
}

// workflows grows the workflows of one controller through --counts
// (default 1k, 10k), each one noop function, and measures at each size the
// start time and memory per workflow and `workflow list` latency. It does
// so twice, in two clusters: with the controller's persistence file off,
// and on, where it also measures the time a restarted controller takes to
// recover. With it on, a start appends one record to the controller's
// journal and syncs it.
func (r *scenarioRun) workflows(ctx context.Context) error {
	counts := r.counts("1000,10000")
	code, err := classOf("noop", noopPath, nil)
	if err != nil {
		return err
	}
	s := scaleSeries{{name: "start per workflow (µs)", color: "#1f77b4"}, {name: "Go heap per workflow (KiB)", color: "#2ca02c"},
		{name: "workflow list p50 (µs)", color: "#ff7f0e"}, {name: "start per workflow, persistence on (µs)", color: "#9467bd"},
		{name: "controller restart until recovered (µs)", color: "#d62728"}}
	for _, persist := range []bool{false, true} {
		if err := r.workflowsPass(ctx, code, counts, persist, s); err != nil {
			return err
		}
	}
	return r.plot("workflows", &chart{title: "workflows of one noop function, one controller", xLabel: "workflows (log scale)",
		yLabel: "see legend (log scale)", logX: true, logY: true, series: s})
}

func (r *scenarioRun) workflowsPass(ctx context.Context, code spec.ClassSpec, counts []int, persist bool, s scaleSeries) error {
	suffix := ""
	b, err := r.box(ctx, 1, "", func(c *inabox.Config) {
		roomFor(c, counts[len(counts)-1])
		if persist {
			c.Controller.PersistenceFilename = filepath.Join(r.dir, "controller.save")
			suffix = "/persist"
		}
	})
	if err != nil {
		return err
	}
	defer b.Close()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseRSS, baseHeap := procStatus(os.Getpid(), "VmRSS"), ms.HeapInuse
	have := 0
	for _, n := range counts {
		label := "workflows=" + strconv.Itoa(n) + suffix
		con := newController(boxAPI(b))
		t0, from := time.Now(), have
		have, err = grow(ctx, con, code, have, n, 1, growLimit)
		if err != nil {
			r.point(label, "failed_at", have, "after", time.Since(t0), "error", strconv.Quote(err.Error()))
			return nil
		}
		start := time.Since(t0) / time.Duration(n-from)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		rss := procStatus(os.Getpid(), "VmRSS")
		heapKB := float64(ms.HeapInuse-baseHeap) / 1024 / float64(n)
		var lists []time.Duration
		var size int
		for range 5 {
			t := time.Now()
			l, k, err := con.list(ctx)
			if err != nil {
				return err
			}
			lists, size = append(lists, time.Since(t)), k
			if len(l.Workflows) != n {
				return fmt.Errorf("%s: the controller lists %d workflows", label, len(l.Workflows))
			}
		}
		list := newDistribution(lists)
		kv := []any{"start_per_workflow", start, "heap_per_workflow_KB", heapKB,
			"list_p50", list.p50, "list_max", list.max, "list_KB", float64(size) / 1024}
		if !persist {
			// The process keeps the pages of the first pass's cluster: RSS
			// means something in the first pass only.
			r.point(label, append(kv, "rss_MB", float64(rss)/1024, "rss_per_workflow_KB", float64(rss-baseRSS)/float64(n))...)
			s[0].x, s[0].y = append(s[0].x, float64(n)), append(s[0].y, float64(start)/1e3)
			s[1].x, s[1].y = append(s[1].x, float64(n)), append(s[1].y, heapKB)
			s[2].x, s[2].y = append(s[2].x, float64(n)), append(s[2].y, float64(list.p50)/1e3)
			continue
		}
		rec, err := r.restartController(ctx, b, n)
		if err != nil {
			r.point(label, append(kv, "restart_failed", strconv.Quote(err.Error()))...)
			return nil
		}
		r.point(label, append(kv, "restart_recovery", rec)...)
		s[3].x, s[3].y = append(s[3].x, float64(n)), append(s[3].y, float64(start)/1e3)
		s[4].x, s[4].y = append(s[4].x, float64(n)), append(s[4].y, float64(rec)/1e3)
	}
	return nil
}

// restartController restarts the box's controller and returns the time
// until it lists all n workflows as running and places the newest one's
// instance.
func (r *scenarioRun) restartController(ctx context.Context, b *inabox.Inabox, n int) (time.Duration, error) {
	t0 := time.Now()
	if err := b.RestartController(ctx); err != nil {
		return 0, err
	}
	con := newController(boxAPI(b))
	deadline := t0.Add(growLimit)
	for {
		l, _, err := con.list(ctx)
		if err == nil && len(l.Workflows) == n && allRunning(l) {
			// The list does not ask where instances run: inspect does.
			wi, err := con.inspect(ctx, l.Workflows[n-1].ID)
			if err == nil && len(wi.Components) > 0 && len(wi.Components[0].Instances) > 0 {
				return time.Since(t0), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not every workflow listed with its instances %v after the restart", growLimit)
		}
		if err := core.Sleep(ctx, 10*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// allRunning reports whether every workflow of l runs in a domain the
// controller knows; the others are listed with their domain marked lost.
func allRunning(l spec.WorkflowList) bool {
	for _, w := range l.Workflows {
		if strings.Contains(w.Domain, "(lost") {
			return false
		}
	}
	return true
}
