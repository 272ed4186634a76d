package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
)

// A composition runs standalone functions as its state machine or DAG says:
// the controller walks the states (or the graph), invoking each function as
// an invocation from outside would, and keeps a report per invocation.

// compositionRun is one run of a composition: its reports, appended by the
// Parallel branches concurrently.
type compositionRun struct {
	c       *Con
	q       qosRequest // what every function invocation asks of its scheduling
	mu      sync.Mutex
	reports []spec.CompositionReport
}

// maxSteps bounds the states one run visits, so that a Choice looping back
// forever ends with an error.
const maxSteps = 10000

func (run *compositionRun) machine(ctx context.Context, m *spec.StateMachine, input any, steps *int) (any, error) {
	name := m.StartAt
	for {
		if *steps++; *steps > maxSteps {
			return nil, fmt.Errorf("more than %d states visited: does a Choice loop forever?", maxSteps)
		}
		s := m.States[name]
		out, next, err := run.state(ctx, name, s, input, steps)
		if err != nil {
			return nil, err
		}
		if next == "" {
			return out, nil
		}
		name, input = next, out
	}
}

// state runs one state and returns its output and the next state ("" at the
// end).
func (run *compositionRun) state(ctx context.Context, name string, s *spec.State, input any, steps *int) (any, string, error) {
	effective, ok := spec.Select(input, s.InputPath)
	if !ok {
		return nil, "", fmt.Errorf("state %q: the input has nothing at InputPath %q", name, s.InputPath)
	}
	var result any
	switch s.Type {
	case "Succeed":
		return effective, "", nil
	case "Fail":
		return nil, "", fmt.Errorf("state %q failed: %s: %s", name, s.Error, s.Cause)
	case "Choice":
		for i := range s.Choices {
			if s.Choices[i].Matches(effective) {
				return effective, s.Choices[i].Next, nil
			}
		}
		if s.Default == "" {
			return nil, "", fmt.Errorf("state %q: no choice matches and there is no Default", name)
		}
		return effective, s.Default, nil
	case "Pass":
		result = effective
		if len(s.Result) > 0 {
			if err := json.Unmarshal(s.Result, &result); err != nil {
				return nil, "", fmt.Errorf("state %q: Result: %w", name, err)
			}
		}
	case "Task":
		params := effective
		if s.Parameters != nil {
			p, err := spec.Parameters(s.Parameters, effective)
			if err != nil {
				return nil, "", fmt.Errorf("state %q: %w", name, err)
			}
			params = p
		}
		var err error
		if result, err = run.task(ctx, name, s.Resource, params); err != nil {
			return nil, "", err
		}
	case "Parallel":
		outs := make([]any, len(s.Branches))
		errs := make([]error, len(s.Branches))
		var wg sync.WaitGroup
		for i, b := range s.Branches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := *steps // each branch counts its own states from here
				outs[i], errs[i] = run.machine(ctx, b, effective, &n)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, "", fmt.Errorf("state %q: %w", name, err)
		}
		result = outs
	}
	placed, err := spec.Place(input, s.ResultPath, result)
	if err != nil {
		return nil, "", fmt.Errorf("state %q: ResultPath: %w", name, err)
	}
	out, ok := spec.Select(placed, s.OutputPath)
	if !ok {
		return nil, "", fmt.Errorf("state %q: the output has nothing at OutputPath %q", name, s.OutputPath)
	}
	if s.End {
		return out, "", nil
	}
	return out, s.Next, nil
}

// task invokes function fn with params, which must be a JSON object, and
// returns its reply decoded as JSON, or as a string when it is not JSON.
func (run *compositionRun) task(ctx context.Context, state, fn string, params any) (any, error) {
	if _, ok := params.(map[string]any); !ok {
		return nil, fmt.Errorf("state %q: the parameters of %q are %T, not a JSON object", state, fn, params)
	}
	payload, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("state %q: %w", state, err)
	}
	wf := run.c.functionNamed(fn)
	if wf == nil {
		return nil, fmt.Errorf("state %q: no function %q", state, fn)
	}
	res := run.c.invoke(ctx, wf, fn, payload, run.q)
	run.mu.Lock()
	run.reports = append(run.reports, spec.CompositionReport{State: state, Function: fn, ServerledgeResponse: serverledgeResponse(&res)})
	run.mu.Unlock()
	if res.Status != http.StatusOK {
		return nil, fmt.Errorf("state %q: %s", state, res.Error)
	}
	var out any
	if json.Unmarshal(res.Result, &out) != nil {
		out = string(res.Result)
	}
	return out, nil
}

// dag runs a DAG: a goroutine per node waits for the nodes it comes after;
// the first failure cancels the nodes still waiting.
func (run *compositionRun) dag(ctx context.Context, d *spec.DAG, params any) (any, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(map[string]chan struct{}, len(d.Nodes))
	outs := make(map[string]any, len(d.Nodes))
	for _, n := range d.Nodes {
		done[n.Name] = make(chan struct{})
	}
	var mu sync.Mutex // guards outs and first
	var first error
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	var wg sync.WaitGroup
	for _, n := range d.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[n.Name])
			input := params
			if len(n.After) > 0 {
				in := make(map[string]any, len(n.After))
				for _, a := range n.After {
					select {
					case <-done[a]:
					case <-ctx.Done():
						return
					}
					mu.Lock()
					v, ok := outs[a]
					mu.Unlock()
					if !ok {
						return // a it comes after failed
					}
					in[a] = v
				}
				input = in
			}
			if n.Parameters != nil {
				p, err := spec.Parameters(n.Parameters, input)
				if err != nil {
					fail(fmt.Errorf("node %q: %w", n.Name, err))
					return
				}
				input = p
			}
			out, err := run.task(ctx, n.Name, n.Function, input)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			outs[n.Name] = out
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return outs[d.ResultNode()], nil
}

// runComposition runs m on params and returns the reply's body. A task
// graph's run keeps its progress under id when it stops before its end
// (a failed task), so that /workflow/resume can take it up again.
func (c *Con) runComposition(ctx context.Context, m *spec.Composition, params any, q qosRequest, id string) invocation {
	start := time.Now()
	run := &compositionRun{c: c, q: q}
	var out any
	var err error
	switch {
	case m.Graph != nil:
		data, _ := params.(map[string]any)
		return c.runGraph(ctx, run, m.Graph, id, graphProgress{Ready: m.Graph.Start.Id, Data: data}, nil)
	case m.DAG != nil:
		out, err = run.dag(ctx, m.DAG, params)
	default:
		steps := 0
		out, err = run.machine(ctx, m.StateMachine, params, &steps)
	}
	return run.reply(start, out, err)
}

// reply is the invocation that carries a run's result, or why it failed,
// and its reports.
func (run *compositionRun) reply(start time.Time, out any, err error) invocation {
	reply := spec.CompositionReply{Success: err == nil, Result: out, Reports: run.reports, ResponseTime: time.Since(start).Seconds()}
	if err != nil {
		reply.Error = err.Error()
	}
	data, _ := json.Marshal(&reply)
	return invocation{Status: http.StatusOK, Result: data, ResponseNS: time.Since(start).Nanoseconds(), Composition: true}
}

func (c *Con) handleCreateComposition(w http.ResponseWriter, r *http.Request) {
	var req spec.CompositionCreate
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad composition: "+err.Error())
		return
	}
	if req.Name == "" {
		writeError(w, http.StatusBadRequest, "a composition needs a name")
		return
	}
	if status, err := c.addComposition(req.Name, &req.Composition); err != nil {
		writeError(w, status, err.Error())
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// addComposition validates and keeps a composition; on failure it returns
// the HTTP status that says why.
func (c *Con) addComposition(name string, comp *spec.Composition) (int, error) {
	if err := comp.Validate(); err != nil {
		return http.StatusBadRequest, err
	}
	c.mu.Lock()
	_, exists := c.compositions[name]
	var saved <-chan error
	if !exists {
		c.compositions[name] = comp
		saved = c.persistComposition(name, comp)
	}
	c.mu.Unlock()
	if exists {
		return http.StatusConflict, fmt.Errorf("composition %q exists; delete it first", name)
	}
	c.saved(saved)
	return 0, nil
}

// removeComposition forgets a composition and says whether there was one.
func (c *Con) removeComposition(name string) bool {
	c.mu.Lock()
	_, ok := c.compositions[name]
	delete(c.compositions, name)
	var saved <-chan error
	if ok {
		saved = c.persistComposition(name, nil)
	}
	c.mu.Unlock()
	c.saved(saved)
	return ok
}

// composition returns the composition name, or nil.
func (c *Con) composition(name string) *spec.Composition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.compositions[name]
}

func (c *Con) handleListCompositions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.compositionNames())
}

func (c *Con) compositionNames() []string {
	c.mu.Lock()
	names := make([]string, 0, len(c.compositions))
	for name := range c.compositions {
		names = append(names, name)
	}
	c.mu.Unlock()
	sort.Strings(names)
	return names
}

func (c *Con) handleDeleteComposition(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !c.removeComposition(name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no composition %q", name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleInvokeComposition runs a composition on the request's parameters:
// synchronously the reply is its result and a report per function; with
// "async", a request id to poll, as for a function.
func (c *Con) handleInvokeComposition(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	req, ok := c.decodeInvoke(w, r.Body)
	if !ok {
		return
	}
	m := c.composition(name)
	if m == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no composition %q", name))
		return
	}
	var params any = req.Params
	if !req.Async {
		res := c.runComposition(r.Context(), m, params, qosRequest{}, "")
		w.Header().Set("Content-Type", "application/json")
		w.Write(res.Result)
		return
	}
	id, ok := c.runAsyncID(func(ctx context.Context, id string) invocation {
		return c.runComposition(ctx, m, params, qosRequest{}, id)
	})
	if !ok {
		writeError(w, http.StatusTooManyRequests, "too many asynchronous invocations pending")
		return
	}
	writeJSON(w, http.StatusAccepted, spec.InvokeAccepted{RequestID: id})
}
