package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
)

// Serverledge's task-graph workflows: POST /workflow/import takes one as
// Serverledge marshals it, /workflow/invoke runs it, and /workflow/resume
// takes up a run that stopped (a failed task, or a resume whose plan ended)
// from its saved progress, which any controller sharing the store can read.

// graphProgress is where a task graph's run stopped: the task to run next,
// its input and the reports so far.
type graphProgress struct {
	Workflow string                   `json:"workflow"`
	Ready    string                   `json:"ready"`
	Data     map[string]any           `json:"data"`
	Reports  []spec.CompositionReport `json:"reports"`
}

// errStopped ends a run at a task its plan does not include.
var errStopped = errors.New("stopped where the plan ends")

// runGraph runs g from p (the start, or where a run stopped), executing only
// the tasks of plan when it is not empty. When it stops before the end it
// saves its progress under id (when there is one) and its reply's result is
// null, as Serverledge's is for an unfinished run.
func (c *Con) runGraph(ctx context.Context, run *compositionRun, g *spec.TaskGraph, id string, p graphProgress, plan []string) invocation {
	start := time.Now()
	run.reports = append(run.reports, p.Reports...)
	steps := 0
	ready, out, err := run.walk(ctx, g, p.Ready, p.Data, plan, &steps)
	if err == nil {
		if id != "" {
			c.async.dropProgress(id) // finished: nothing left to resume
		}
		return run.reply(start, out, nil)
	}
	if id != "" && ready != "" {
		p := graphProgress{Workflow: g.Name, Ready: ready, Data: out, Reports: run.reports}
		data, jerr := json.Marshal(&p)
		if jerr != nil {
			panic("BUG: a run's progress does not marshal: " + jerr.Error())
		}
		c.async.saveProgress(id, data)
	}
	if errors.Is(err, errStopped) {
		return run.reply(start, nil, nil)
	}
	return run.reply(start, nil, err)
}

// walk runs g's tasks from id until the end, a FanInTask reached by a
// branch (fanIn true), or a task outside plan. It returns the task it
// stopped at and that task's input ("" and the result at the end).
func (run *compositionRun) walk(ctx context.Context, g *spec.TaskGraph, id string, data map[string]any, plan []string, steps *int) (string, map[string]any, error) {
	for {
		if *steps++; *steps > maxSteps {
			return id, data, fmt.Errorf("more than %d tasks visited: does a ChoiceTask loop forever?", maxSteps)
		}
		switch id {
		case g.End.Id:
			return "", data, nil
		case g.Start.Id:
			id = g.Start.Next
			continue
		}
		t := g.Tasks[id]
		if len(plan) > 0 && !slices.Contains(plan, id) {
			return id, data, errStopped
		}
		next, out, err := run.graphTask(ctx, g, t, data, steps)
		if err != nil {
			return id, data, err
		}
		if next == "" {
			return "", out, nil
		}
		id, data = next, out
	}
}

// graphTask runs one task and returns the next one ("" when the run ends
// here) and its input.
func (run *compositionRun) graphTask(ctx context.Context, g *spec.TaskGraph, t *spec.Task, data map[string]any, steps *int) (string, map[string]any, error) {
	switch t.Type {
	case spec.TaskSimple, spec.TaskFunction:
		if data == nil {
			data = map[string]any{}
		}
		out, err := run.task(ctx, t.Id, t.Func, data)
		if err != nil {
			return "", nil, err
		}
		// An object is the next task's input as it is; anything else is
		// its "result", the name Serverledge gives a function's output when
		// it declares none.
		m, ok := out.(map[string]any)
		if !ok {
			m = map[string]any{"result": out}
		}
		return t.After()[0], m, nil
	case spec.TaskChoice:
		for i := range t.Conditions {
			if t.Conditions[i].Matches(data) {
				return t.Alternatives[i], data, nil
			}
		}
		return "", nil, fmt.Errorf("task %q: no condition is met", t.Id)
	case spec.TaskFail:
		return "", nil, fmt.Errorf("task %q failed: %s: %s", t.Id, t.Error, t.Cause)
	case spec.TaskSucceed:
		return "", data, nil
	case spec.TaskFanOut:
		return run.fanOut(ctx, g, t, data, steps)
	}
	return t.After()[0], data, nil // PassTask, FanInTask
}

// fanOut runs each branch of t on the same input, at once, up to the
// FanInTask they meet at; that task's input is their outputs by branch
// number ("0", "1", …), as Serverledge merges them.
func (run *compositionRun) fanOut(ctx context.Context, g *spec.TaskGraph, t *spec.Task, data map[string]any, steps *int) (string, map[string]any, error) {
	branches := t.After()
	outs := make([]map[string]any, len(branches))
	ends := make([]string, len(branches))
	errs := make([]error, len(branches))
	var wg sync.WaitGroup
	for i, b := range branches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := *steps // each branch counts its own tasks from here
			ends[i], outs[i], errs[i] = run.branch(ctx, g, b, data, &n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", nil, fmt.Errorf("task %q: %w", t.Id, err)
	}
	merged := make(map[string]any, len(outs))
	for i, o := range outs {
		if ends[i] != ends[0] {
			return "", nil, fmt.Errorf("task %q: branch 0 ends at %q, branch %d at %q: the branches must meet at one FanInTask", t.Id, ends[0], i, ends[i])
		}
		merged[fmt.Sprint(i)] = o
	}
	return ends[0], merged, nil
}

// branch runs the tasks of a fan-out branch from id up to the FanInTask it
// meets, which it returns with the branch's output.
func (run *compositionRun) branch(ctx context.Context, g *spec.TaskGraph, id string, data map[string]any, steps *int) (string, map[string]any, error) {
	for {
		if *steps++; *steps > maxSteps {
			return "", nil, fmt.Errorf("more than %d tasks visited in a branch", maxSteps)
		}
		t := g.Tasks[id]
		if t == nil {
			return "", nil, fmt.Errorf("branch reached %q before a FanInTask", id)
		}
		if t.Type == spec.TaskFanIn {
			return id, data, nil
		}
		next, out, err := run.graphTask(ctx, g, t, data, steps)
		if err != nil {
			return "", nil, err
		}
		if next == "" {
			return "", nil, fmt.Errorf("branch ended at task %q before a FanInTask", id)
		}
		id, data = next, out
	}
}

// slQoS maps Serverledge's QoS fields onto a scheduling request.
func slQoS(class int64, maxRespT float64, canOffload bool) qosRequest {
	q := qosRequest{CanOffload: canOffload, Urgent: class == qosHighPerformance}
	if maxRespT > 0 {
		q.MaxResp = time.Duration(maxRespT * float64(time.Second))
	}
	return q
}

// slWorkflowImport adds a task graph as Serverledge marshals its workflows.
func (c *Con) slWorkflowImport(w http.ResponseWriter, r *http.Request) {
	var g spec.TaskGraph
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&g); err != nil {
		writeJSON(w, http.StatusBadRequest, "could not parse the workflow: "+err.Error())
		return
	}
	if c.composition(g.Name) != nil {
		writeJSON(w, http.StatusConflict, "workflow already exists")
		return
	}
	for _, fn := range g.Functions() {
		if c.findFunction(fn) == nil {
			writeJSON(w, http.StatusBadRequest, "workflow with non-existing function "+fn)
			return
		}
	}
	c.slAddWorkflow(w, g.Name, &spec.Composition{Graph: &g})
}

// slAddWorkflow keeps a workflow and answers as Serverledge does.
func (c *Con) slAddWorkflow(w http.ResponseWriter, name string, comp *spec.Composition) {
	if status, err := c.addComposition(name, comp); err != nil {
		msg := err.Error()
		if status == http.StatusConflict {
			msg = "workflow already exists"
		}
		writeJSON(w, status, msg)
		return
	}
	writeJSON(w, http.StatusOK, struct{ Created string }{name})
}

// slWorkflowResume takes up the run ReqId of a task graph where it stopped.
func (c *Con) slWorkflowResume(w http.ResponseWriter, r *http.Request) {
	var req spec.ServerledgeWorkflowResume
	m := c.slWorkflowRequest(w, r, &req)
	if m == nil {
		return
	}
	name := r.PathValue("workflow")
	if m.Graph == nil {
		writeJSON(w, http.StatusBadRequest, "workflow '"+name+"' was not imported as a task graph: only those can be resumed")
		return
	}
	var p graphProgress
	data, ok := c.async.loadProgress(req.ReqId)
	if !ok || json.Unmarshal(data, &p) != nil || p.Workflow != name {
		writeJSON(w, http.StatusNotFound, fmt.Sprintf("no progress of request %q of workflow '%s' to resume (unknown, finished, or older than %ds)", req.ReqId, name, c.cfg.AsyncResultTTLSec))
		return
	}
	if req.Params != nil {
		p.Data = req.Params // a resume may hand the next task new input
	}
	q := slQoS(req.QoS.Class, req.QoS.MaxRespT, req.CanDoOffloading)
	// The run's progress stays under its own id, whatever id an async
	// resume answers with.
	run := func(ctx context.Context, _ string) invocation {
		return c.runGraph(ctx, &compositionRun{c: c, q: q}, m.Graph, req.ReqId, p, req.Plan.ToExecute)
	}
	c.answerWorkflow(w, r, req.Async, run)
}

// answerWorkflow runs a workflow invocation synchronously (id ""),
// answering with Serverledge's report, or in the background, answering with
// the id its result is kept under.
func (c *Con) answerWorkflow(w http.ResponseWriter, r *http.Request, async bool, run func(ctx context.Context, id string) invocation) {
	if async {
		id, ok := c.runAsyncID(run)
		if !ok {
			slText(w, http.StatusTooManyRequests, "")
			return
		}
		writeJSON(w, http.StatusOK, spec.ServerledgeAsync{ReqId: id})
		return
	}
	res := run(r.Context(), "")
	var reply spec.CompositionReply
	json.Unmarshal(res.Result, &reply) // ours, from runComposition
	if !reply.Success {
		writeJSON(w, http.StatusInternalServerError, reply.Error)
		return
	}
	writeJSON(w, http.StatusOK, serverledgeWorkflowResponse(res.Result))
}
