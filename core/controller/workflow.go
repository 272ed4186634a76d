package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// ErrNoDomain reports a workflow that no registered domain can run.
var ErrNoDomain = errors.New("no domain can run this workflow")

// ErrNotFound reports an unknown workflow id.
var ErrNotFound = errors.New("no such workflow")

// startWorkflow deploys w on a domain that offers every function type and
// resource class it needs: all functions, then all resources, then the
// mappings. On any failure it stops what it started and returns the reason.
func (c *Con) startWorkflow(ctx context.Context, w *spec.Workflow) (core.ID, error) {
	d, err := c.pickDomain(w)
	if err != nil {
		return core.ID{}, err
	}
	wf := &workflow{id: core.NewID(), spec: w, domain: d, started: time.Now(), logical: map[string]core.ID{}}
	for _, f := range w.Functions {
		wf.logical[f.Name] = core.NewID()
	}
	for _, r := range w.Resources {
		wf.logical[r.Name] = core.NewID()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.RequestTimeoutSec)*time.Second)
	defer cancel()
	var started []core.ID
	fail := func(err error) (core.ID, error) {
		c.stopComponents(wf, started)
		c.log.Warn("workflow start failed; rolled back", "workflow", wf.id, "err", err)
		return core.ID{}, err
	}
	for _, f := range w.Functions {
		cs := f.ClassSpecification
		ft, _ := spec.CanonicalFunctionType(cs.FunctionType)
		req := &wire.FunctionSpec{
			Logical: wf.logical[f.Name], Workflow: wf.id, Name: f.Name,
			ClassID: cs.ID, FunctionType: ft, Version: cs.Version, Code: cs.Binary, Annotations: f.Annotations,
		}
		if _, err := wire.Call[wire.FunctionSpec, wire.StartResponse](ctx, d.client, wire.MethodOrcStartFunction, req); err != nil {
			return fail(fmt.Errorf("cannot start function %q: %w", f.Name, err))
		}
		started = append(started, req.Logical)
	}
	for _, r := range w.Resources {
		req := &wire.ResourceSpec{
			Logical: wf.logical[r.Name], Workflow: wf.id, Name: r.Name,
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
		req := &wire.PatchLogical{Logical: wf.logical[name], Outputs: map[string]core.ID{}}
		for ch, target := range mapping {
			req.Outputs[ch] = wf.logical[target]
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
	c.mu.Lock()
	c.workflows[wf.id] = wf
	c.mu.Unlock()
	c.log.Info("workflow started", "workflow", wf.id, "domain", d.id, "functions", len(w.Functions), "resources", len(w.Resources))
	return wf.id, nil
}

// pickDomain returns the first domain, by name, whose nodes offer every
// function type and resource class w needs.
func (c *Con) pickDomain(w *spec.Workflow) (*domain, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.domains) == 0 {
		return nil, fmt.Errorf("%w: no orchestration domain is registered", ErrNoDomain)
	}
	ids := make([]string, 0, len(c.domains))
	for id := range c.domains {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var reasons []error
	for _, id := range ids {
		d := c.domains[id]
		var missing []string
		for _, f := range w.Functions {
			ft, _ := spec.CanonicalFunctionType(f.ClassSpecification.FunctionType)
			if !slices.Contains(d.runtimes, ft) {
				missing = append(missing, fmt.Sprintf("function type %s (function %q)", ft, f.Name))
			}
		}
		for _, r := range w.Resources {
			if !slices.Contains(d.resources, r.ClassType) {
				missing = append(missing, fmt.Sprintf("resource class %s (resource %q)", r.ClassType, r.Name))
			}
		}
		if len(missing) == 0 {
			return d, nil
		}
		reasons = append(reasons, fmt.Errorf("domain %s (%d nodes) lacks %v", id, d.nodes, missing))
	}
	return nil, fmt.Errorf("%w: %w", ErrNoDomain, errors.Join(reasons...))
}

// stopComponents stops logical components, logging what fails: a stop must
// go as far as it can.
func (c *Con) stopComponents(wf *workflow, ids []core.ID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.cfg.RequestTimeoutSec)*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := wire.Call[wire.StopComponent, wire.Empty](ctx, wf.domain.client, wire.MethodOrcStop, &wire.StopComponent{ID: id}); err != nil {
			c.log.Warn("cannot stop component", "workflow", wf.id, "component", id, "err", err)
		}
	}
}

func (c *Con) stopWorkflow(id core.ID) error {
	c.mu.Lock()
	wf := c.workflows[id]
	delete(c.workflows, id)
	c.mu.Unlock()
	if wf == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	ids := make([]core.ID, 0, len(wf.logical))
	for _, f := range wf.spec.Functions {
		ids = append(ids, wf.logical[f.Name])
	}
	for _, r := range wf.spec.Resources {
		ids = append(ids, wf.logical[r.Name])
	}
	c.stopComponents(wf, ids)
	c.log.Info("workflow stopped", "workflow", id)
	return nil
}

func (c *Con) listWorkflows() []*workflow {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*workflow, 0, len(c.workflows))
	for _, wf := range c.workflows {
		out = append(out, wf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].started.Before(out[j].started) })
	return out
}

// info describes a workflow; with placement it asks the domain where each
// instance runs now.
func (c *Con) info(ctx context.Context, wf *workflow, placement bool) spec.WorkflowInfo {
	wi := spec.WorkflowInfo{ID: wf.id.String(), Domain: wf.domain.id, Started: wf.started.UTC().Format(time.RFC3339)}
	var where map[core.ID][]core.InstanceID
	if placement {
		req := &wire.Placement{}
		for _, id := range wf.logical {
			req.Logical = append(req.Logical, id)
		}
		resp, err := wire.Call[wire.Placement, wire.PlacementResponse](ctx, wf.domain.client, wire.MethodOrcPlacement, req)
		if err != nil {
			c.log.Warn("cannot ask where instances run", "workflow", wf.id, "err", err)
		} else {
			where = resp.Instances
		}
	}
	add := func(name, kind string) {
		ci := spec.ComponentInfo{Name: name, Kind: kind, LogicalID: wf.logical[name].String(), Instances: []spec.InstanceInfo{}}
		for _, i := range where[wf.logical[name]] {
			ci.Instances = append(ci.Instances, spec.InstanceInfo{Node: i.Node.String(), Instance: i.Component.String()})
		}
		wi.Components = append(wi.Components, ci)
	}
	for _, f := range wf.spec.Functions {
		add(f.Name, "function")
	}
	for _, r := range wf.spec.Resources {
		add(r.Name, "resource")
	}
	if placement {
		wi.Workflow = withoutCode(wf.spec)
	}
	return wi
}

// withoutCode returns a copy of w without the code bytes, for display.
func withoutCode(w *spec.Workflow) *spec.Workflow {
	cp := *w
	cp.Functions = slices.Clone(w.Functions)
	for i := range cp.Functions {
		cp.Functions[i].ClassSpecification.Binary = nil
	}
	return &cp
}
