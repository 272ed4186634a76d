package controller

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// ErrNoDomain reports a workflow that no registered domain can run.
var ErrNoDomain = errors.New("no domain can run this workflow")

// ErrNotFound reports an unknown workflow id.
var ErrNotFound = errors.New("no such workflow")

// ErrConflict reports a workflow that claims what another one owns.
var ErrConflict = errors.New("conflict")

// workflow is an admitted workflow. It keeps its ids for life: re-deployed
// after its domain was lost, its functions get their synced state back.
type workflow struct {
	ID      core.ID            `json:"id"`
	Spec    *spec.Workflow     `json:"workflow"`
	Domain  string             `json:"domain"` // where it runs, or ran last
	Started time.Time          `json:"started"`
	Logical map[string]core.ID `json:"logical"` // component name → logical id
	// Cloud is the copy of a standalone function that the edge-cloud
	// policy deployed in a cloud domain, or nil.
	Cloud *cloudCopy `json:"cloud,omitempty"`

	running bool       // deployed in Domain, which is live
	cloudOp sync.Mutex // serialises deploying the copy; taken before Con.mu, never inside it
	code    []string   // SHA-256 of each function's code, as kept on disk; guarded by Con.mu
}

func (wf *workflow) components() []core.ID {
	ids := make([]core.ID, 0, len(wf.Logical))
	for _, f := range wf.Spec.Functions {
		ids = append(ids, wf.Logical[f.Name])
	}
	for _, r := range wf.Spec.Resources {
		ids = append(ids, wf.Logical[r.Name])
	}
	return ids
}

// startWorkflow admits w and deploys it on a domain that can run it.
func (c *Con) startWorkflow(ctx context.Context, w *spec.Workflow) (core.ID, error) {
	d, err := c.pickDomain(w, false)
	if err != nil {
		c.failed.Inc()
		return core.ID{}, err
	}
	wf := &workflow{ID: core.NewID(), Spec: w, Started: time.Now(), Logical: map[string]core.ID{}}
	for _, f := range w.Functions {
		wf.Logical[f.Name] = core.NewID()
	}
	for _, r := range w.Resources {
		wf.Logical[r.Name] = core.NewID()
	}
	c.mu.Lock()
	err = c.claimLocked(wf)
	c.mu.Unlock()
	if err == nil {
		if err = c.deploy(ctx, wf, d); err != nil {
			c.mu.Lock()
			c.releaseLocked(wf)
			c.mu.Unlock()
		}
	}
	if err != nil {
		c.failed.Inc()
		return core.ID{}, err
	}
	c.started.Inc()
	c.mu.Lock()
	c.workflows[wf.ID] = wf
	c.placedLocked(wf, d)
	saved := c.persistPut(wf)
	c.mu.Unlock()
	c.saved(saved) // durable before the API answers
	c.log.Info("workflow started", "workflow", wf.ID, "domain", d.id, "functions", len(w.Functions), "resources", len(w.Resources))
	return wf.ID, nil
}

// ingressHosts returns the hosts wf's http-ingress resources claim, lower
// case without a port; "*" stands for a catch-all.
func ingressHosts(wf *workflow) []string {
	var hosts []string
	for _, r := range wf.Spec.Resources {
		if r.ClassType != "http-ingress" {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(r.Configurations["host"]))
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		hosts = append(hosts, cmp.Or(h, "*"))
	}
	return hosts
}

// claimLocked reserves wf's ingress hosts, or names the workflow that owns
// one of them: a host's requests, with their credentials, go to one workflow.
func (c *Con) claimLocked(wf *workflow) error {
	hosts := ingressHosts(wf)
	for _, h := range hosts {
		if owner, ok := c.hosts[h]; ok && owner != wf.ID {
			return fmt.Errorf("%w: http-ingress host %q belongs to workflow %s", ErrConflict, h, owner)
		}
	}
	for _, h := range hosts {
		c.hosts[h] = wf.ID
	}
	return nil
}

func (c *Con) releaseLocked(wf *workflow) {
	for _, h := range ingressHosts(wf) {
		if c.hosts[h] == wf.ID {
			delete(c.hosts, h)
		}
	}
}

// sourceAnnotations returns the annotations to start f with, f being a
// source: nothing in its workflow sends it events, so what it produces comes
// from timers set in handle_init, and each instance would produce every
// event once. Unless min_instances says how many to keep, it runs one
// instance; max_instances still bounds those added for invocations.
func (c *Con) sourceAnnotations(wf core.ID, f spec.Function) map[string]string {
	r, err := spec.ParseRequirements(f.Annotations)
	if err != nil || r.MaxInstances <= 1 || r.MinInstances > 0 || r.ScaleToZero {
		return f.Annotations
	}
	ann := maps.Clone(f.Annotations)
	ann[spec.KeyMinInstances] = "1"
	c.log.Info("a source function runs one instance: each would produce every event; set min_instances to run more",
		"workflow", wf, "function", f.Name, "max_instances", r.MaxInstances)
	return ann
}

// placedLocked records that wf now runs in d.
func (c *Con) placedLocked(wf *workflow, d *domain) {
	if wf.Domain != "" && wf.Domain != d.id {
		// Whatever the old domain still runs of wf must go when it returns.
		delete(c.known, wf.Domain)
	}
	wf.Domain, wf.running = d.id, true
	c.known[d.id] = d.nonce
}

// deploy starts every function, then every resource, then patches the
// mappings. On any failure it stops what it started and returns the reason.
func (c *Con) deploy(ctx context.Context, wf *workflow, d *domain) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.RequestTimeoutSec)*time.Second)
	defer cancel()
	var started []core.ID
	fail := func(err error) error {
		c.stopComponents(wf, d, started)
		c.log.Warn("workflow deployment failed; rolled back", "workflow", wf.ID, "domain", d.id, "err", err)
		return err
	}
	w := wf.Spec
	targets := map[string]bool{}
	for _, f := range w.Functions {
		for _, t := range f.OutputMapping {
			targets[t] = true
		}
	}
	for _, r := range w.Resources {
		for _, t := range r.OutputMapping {
			targets[t] = true
		}
	}
	for _, f := range w.Functions {
		cs := f.ClassSpecification
		ft, _ := spec.CanonicalFunctionType(cs.FunctionType)
		ann := f.Annotations
		if !targets[f.Name] {
			ann = c.sourceAnnotations(wf.ID, f)
		}
		req := &wire.FunctionSpec{
			Logical: wf.Logical[f.Name], Workflow: wf.ID, Name: f.Name,
			ClassID: cs.ID, FunctionType: ft, Version: cs.Version, Code: cs.Binary, CodeHash: sha256.Sum256(cs.Binary),
			Annotations: ann,
		}
		if _, err := wire.Call[wire.FunctionSpec, wire.StartResponse](ctx, d.client, wire.MethodOrcStartFunction, req); err != nil {
			return fail(fmt.Errorf("cannot start function %q: %w", f.Name, err))
		}
		started = append(started, req.Logical)
	}
	for _, r := range w.Resources {
		req := &wire.ResourceSpec{
			Logical: wf.Logical[r.Name], Workflow: wf.ID, Name: r.Name,
			ClassType: r.ClassType, Configurations: r.Configurations,
		}
		if _, err := wire.Call[wire.ResourceSpec, wire.StartResponse](ctx, d.client, wire.MethodOrcStartResource, req); err != nil {
			return fail(fmt.Errorf("cannot start resource %q: %w", r.Name, err))
		}
		started = append(started, req.Logical)
	}
	patch := func(name string, mapping map[string]string) error {
		if len(mapping) == 0 {
			return nil
		}
		req := &wire.PatchLogical{Logical: wf.Logical[name], Outputs: map[string]core.ID{}}
		for ch, target := range mapping {
			req.Outputs[ch] = wf.Logical[target]
		}
		if _, err := wire.Call[wire.PatchLogical, wire.Empty](ctx, d.client, wire.MethodOrcPatch, req); err != nil {
			return fmt.Errorf("cannot patch the outputs of %q: %w", name, err)
		}
		return nil
	}
	for _, f := range w.Functions {
		if err := patch(f.Name, f.OutputMapping); err != nil {
			return fail(err)
		}
	}
	for _, r := range w.Resources {
		if err := patch(r.Name, r.OutputMapping); err != nil {
			return fail(err)
		}
	}
	return nil
}

// pickDomain returns the first ready domain whose nodes offer every function
// type and resource class w needs: edge domains before cloud domains (cloud
// first under the cloud-only policy), by name. With cloud, only cloud
// domains qualify.
func (c *Con) pickDomain(w *spec.Workflow, cloud bool) (*domain, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []*domain
	for _, d := range c.domains {
		if d.ready && (d.cloud || !cloud) {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		what := "orchestration domain"
		if cloud {
			what = "cloud domain"
		}
		return nil, fmt.Errorf("%w: no %s is registered", ErrNoDomain, what)
	}
	cloudFirst := c.cfg.Scheduling.Policy == spec.PolicyCloudOnly
	slices.SortFunc(ds, func(a, b *domain) int {
		if a.cloud != b.cloud {
			if a.cloud == cloudFirst {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	var reasons []error
	for _, d := range ds {
		missing := lacks(d, w)
		if len(missing) == 0 {
			return d, nil
		}
		reasons = append(reasons, fmt.Errorf("domain %s (%d nodes) lacks %v", d.id, d.nodes, missing))
	}
	return nil, fmt.Errorf("%w: %w", ErrNoDomain, errors.Join(reasons...))
}

// lacks lists what w needs that domain d does not offer.
func lacks(d *domain, w *spec.Workflow) []string {
	var missing []string
	for _, f := range w.Functions {
		ft, _ := spec.CanonicalFunctionType(f.ClassSpecification.FunctionType)
		if !slices.Contains(d.runtimes, ft) {
			missing = append(missing, fmt.Sprintf("function type %s (function %q)", ft, f.Name))
		}
	}
	for _, r := range w.Resources {
		if !slices.Contains(d.resources, r.ClassType) {
			why := ""
			if s := spec.NotOffered(r.ClassType); s != "" {
				why = ": " + s
			}
			missing = append(missing, fmt.Sprintf("resource class %s (resource %q)%s", r.ClassType, r.Name, why))
		}
	}
	return missing
}

// migrateDomain moves the whole of workflow id to domain target: it deploys
// it there first, then stops it in its old domain, so that it is never down
// for longer than the new instances take to start. Function state moves
// with it only when the nodes share it (Redis).
func (c *Con) migrateDomain(ctx context.Context, id core.ID, target string) error {
	c.mu.Lock()
	wf := c.workflows[id]
	var from, to *domain
	if wf != nil {
		from, to = c.domains[wf.Domain], c.domains[target]
	}
	c.mu.Unlock()
	switch {
	case wf == nil:
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	case to == nil || !to.ready:
		return fmt.Errorf("%w: no ready domain %q", ErrNoDomain, target)
	case wf.running && wf.Domain == target:
		return nil
	}
	if missing := lacks(to, wf.Spec); len(missing) > 0 {
		return fmt.Errorf("%w: domain %s (%d nodes) lacks %v", ErrNoDomain, target, to.nodes, missing)
	}
	if err := c.deploy(ctx, wf, to); err != nil {
		return err
	}
	c.mu.Lock()
	_, live := c.workflows[id]
	wasRunning := wf.running
	var saved <-chan error
	if live {
		c.placedLocked(wf, to)
		saved = c.persistPut(wf)
	}
	c.mu.Unlock()
	if !live { // stopped meanwhile
		c.stopComponents(wf, to, wf.components())
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	c.saved(saved)
	if from != nil && wasRunning {
		c.stopComponents(wf, from, wf.components())
	}
	c.log.Info("workflow migrated", "workflow", id, "domain", target)
	return nil
}

// stopComponents stops logical components in d, logging what fails: a stop
// must go as far as it can.
func (c *Con) stopComponents(wf *workflow, d *domain, ids []core.ID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.cfg.RequestTimeoutSec)*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := wire.Call[wire.StopComponent, wire.Empty](ctx, d.client, wire.MethodOrcStop, &wire.StopComponent{ID: id}); err != nil {
			c.log.Warn("cannot stop component", "workflow", wf.ID, "component", id, "err", err)
		}
	}
}

func (c *Con) stopWorkflow(id core.ID) error {
	c.mu.Lock()
	wf := c.workflows[id]
	delete(c.workflows, id)
	var saved <-chan error
	if wf != nil {
		c.releaseLocked(wf)
		saved = c.persistDelete(id)
	}
	var d, cloud *domain
	var copyID core.ID
	if wf != nil && wf.running {
		d = c.domains[wf.Domain]
	}
	if wf != nil && wf.Cloud != nil && wf.Cloud.live {
		cloud, copyID = c.domains[wf.Cloud.Domain], wf.Cloud.Logical
	}
	c.mu.Unlock()
	if wf == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if name := wf.Spec.Annotations[spec.AnnotationFunction]; name != "" {
		c.direct.forget(name, wf)
	}
	if d != nil {
		c.stopComponents(wf, d, wf.components())
	}
	if cloud != nil {
		c.stopComponents(wf, cloud, []core.ID{copyID})
	}
	c.saved(saved)
	c.log.Info("workflow stopped", "workflow", id)
	return nil
}

// redeploy deploys the workflows that lost their domain on a ready one.
func (c *Con) redeploy(ctx context.Context) {
	c.mu.Lock()
	var orphans []*workflow
	for _, wf := range c.workflows {
		if !wf.running {
			orphans = append(orphans, wf)
		}
	}
	c.mu.Unlock()
	for _, wf := range orphans {
		d, err := c.pickDomain(wf.Spec, false)
		if err != nil {
			continue // wait for a domain
		}
		if err := c.deploy(ctx, wf, d); err != nil {
			continue
		}
		c.mu.Lock()
		_, live := c.workflows[wf.ID]
		var saved <-chan error
		if live {
			c.placedLocked(wf, d)
			saved = c.persistPut(wf)
		}
		c.mu.Unlock()
		if !live { // stopped meanwhile
			c.stopComponents(wf, d, wf.components())
			continue
		}
		c.saved(saved)
		c.redeployed.Inc()
		c.log.Info("workflow re-deployed", "workflow", wf.ID, "domain", d.id)
	}
}

func (c *Con) listWorkflows() []*workflow {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*workflow, 0, len(c.workflows))
	for _, wf := range c.workflows {
		out = append(out, wf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// info describes a workflow; with placement it asks the domain where each
// instance runs now.
func (c *Con) info(ctx context.Context, wf *workflow, placement bool) spec.WorkflowInfo {
	c.mu.Lock()
	var d *domain
	if wf.running {
		d = c.domains[wf.Domain]
	}
	c.mu.Unlock()
	wi := spec.WorkflowInfo{ID: wf.ID.String(), Domain: wf.Domain, Started: wf.Started.UTC().Format(time.RFC3339)}
	if d == nil {
		wi.Domain += " (lost; waiting to re-deploy)"
	}
	var where map[core.ID][]core.InstanceID
	if placement && d != nil {
		req := &wire.Placement{Logical: wf.components()}
		resp, err := wire.Call[wire.Placement, wire.PlacementResponse](ctx, d.client, wire.MethodOrcPlacement, req)
		if err != nil {
			c.log.Warn("cannot ask where instances run", "workflow", wf.ID, "err", err)
		} else {
			where = resp.Instances
		}
	}
	add := func(name, kind string) {
		ci := spec.ComponentInfo{Name: name, Kind: kind, LogicalID: wf.Logical[name].String(), Instances: []spec.InstanceInfo{}}
		for _, i := range where[wf.Logical[name]] {
			ci.Instances = append(ci.Instances, spec.InstanceInfo{Node: i.Node.String(), Instance: i.Component.String()})
		}
		wi.Components = append(wi.Components, ci)
	}
	for _, f := range wf.Spec.Functions {
		add(f.Name, "function")
	}
	for _, r := range wf.Spec.Resources {
		add(r.Name, "resource")
	}
	if placement {
		wi.Workflow = withoutCode(wf.Spec)
	}
	return wi
}

// withoutCode returns a copy of w for display: without the code bytes, and
// with the passwords of URLs in resource configurations redacted.
func withoutCode(w *spec.Workflow) *spec.Workflow {
	cp := *w
	cp.Functions = slices.Clone(w.Functions)
	for i := range cp.Functions {
		cp.Functions[i].ClassSpecification.Binary = nil
	}
	cp.Resources = slices.Clone(w.Resources)
	for i := range cp.Resources {
		conf := make(map[string]string, len(cp.Resources[i].Configurations))
		for k, v := range cp.Resources[i].Configurations {
			conf[k] = core.Redact(v)
		}
		cp.Resources[i].Configurations = conf
	}
	return &cp
}
