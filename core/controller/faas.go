package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// findFunction returns the workflow of the standalone function name.
func (c *Con) findFunction(name string) *workflow {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, wf := range c.workflows {
		if wf.Spec.Annotations[spec.AnnotationFunction] == name {
			return wf
		}
	}
	return nil
}

func (c *Con) handleCreateFunction(w http.ResponseWriter, r *http.Request) {
	var req spec.FunctionCreate
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(c.cfg.MaxWorkflowMB)<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad function: "+err.Error())
		return
	}
	wf, err := req.Workflow()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	c.faasMu.Lock() // one create at a time, so that names stay unique
	defer c.faasMu.Unlock()
	if c.findFunction(req.Name) != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("function %q exists; delete it first", req.Name))
		return
	}
	id, err := c.startWorkflow(r.Context(), wf)
	if err != nil {
		writeError(w, startStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, spec.StartReply{WorkflowID: id.String()})
}

func (c *Con) handleListFunctions(w http.ResponseWriter, r *http.Request) {
	list := spec.FunctionList{Functions: []spec.FunctionInfo{}}
	for _, wf := range c.listWorkflows() {
		name := wf.Spec.Annotations[spec.AnnotationFunction]
		if name == "" {
			continue
		}
		f := wf.Spec.Functions[0]
		list.Functions = append(list.Functions, spec.FunctionInfo{
			Name: name, Runtime: f.ClassSpecification.FunctionType, WorkflowID: wf.ID.String(), Annotations: f.Annotations,
		})
	}
	sort.Slice(list.Functions, func(i, j int) bool { return list.Functions[i].Name < list.Functions[j].Name })
	writeJSON(w, http.StatusOK, list)
}

func (c *Con) handleDeleteFunction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	wf := c.findFunction(name)
	if wf == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no function %q", name))
		return
	}
	if err := c.stopWorkflow(wf.ID); err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleInvoke calls a standalone function with the request's parameters as a
// JSON object. Synchronously, the function's reply is the response body;
// with "async" the answer is 202 and a request id to poll.
func (c *Con) handleInvoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req spec.InvokeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(c.cfg.MaxWorkflowMB)<<20)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "bad invocation: "+err.Error())
		return
	}
	wf := c.findFunction(name)
	if wf == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no function %q", name))
		return
	}
	params := req.Params
	if params == nil {
		params = map[string]any{}
	}
	payload, err := json.Marshal(params)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad parameters: "+err.Error())
		return
	}
	if !req.Async {
		res := c.invoke(r.Context(), wf, name, payload)
		if res.Status != http.StatusOK {
			writeError(w, res.Status, res.Error)
			return
		}
		// Which node served, and whether the first choice was overloaded.
		w.Header().Set("Edgeless-Node", res.Node.String())
		w.Header().Set("Edgeless-Offloaded", strconv.FormatBool(res.Offloaded))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(res.Result)
		return
	}
	id, ok := c.async.add()
	if !ok {
		writeError(w, http.StatusTooManyRequests, "too many asynchronous invocations pending")
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.cfg.RequestTimeoutSec)*time.Second)
		defer cancel()
		c.async.done(id, c.invoke(ctx, wf, name, payload))
	}()
	writeJSON(w, http.StatusAccepted, spec.InvokeAccepted{RequestID: id})
}

// invoke asks the function's domain to call it.
func (c *Con) invoke(ctx context.Context, wf *workflow, name string, payload []byte) invocation {
	c.mu.Lock()
	var d *domain
	if wf.running {
		d = c.domains[wf.Domain]
	}
	c.mu.Unlock()
	if d == nil {
		return invocation{Status: http.StatusServiceUnavailable, Error: fmt.Sprintf("function %q is not running: its domain was lost; it is being re-deployed", name)}
	}
	req := &wire.Invoke{Logical: wf.Logical[wf.Spec.Functions[0].Name], Payload: payload}
	resp, err := wire.Call[wire.Invoke, wire.InvokeResponse](ctx, d.client, wire.MethodOrcInvoke, req)
	switch {
	case err != nil:
		return invocation{Status: http.StatusBadGateway, Error: fmt.Sprintf("cannot invoke %q: %v", name, err)}
	case resp.Overloaded:
		return invocation{Status: http.StatusTooManyRequests, Error: fmt.Sprintf("function %q is overloaded: every instance's queue is full and max_instances allows no more; retry later", name)}
	case resp.Failure != "":
		return invocation{Status: http.StatusInternalServerError, Error: fmt.Sprintf("function %q failed: %s", name, resp.Failure)}
	case resp.Result == core.CallErr:
		return invocation{Status: http.StatusUnprocessableEntity, Error: fmt.Sprintf("function %q returned an error for parameters %s", name, payload)}
	}
	return invocation{Status: http.StatusOK, Result: resp.Reply, Node: resp.Node, Offloaded: resp.Offloaded}
}

func (c *Con) handlePoll(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, ok := c.async.get(id)
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no request %q: unknown, or its result expired (results are kept %ds)", id, c.cfg.AsyncResultTTLSec))
	case res == nil:
		writeJSON(w, http.StatusOK, spec.PollReply{Status: "pending"})
	case res.Status == http.StatusOK:
		writeJSON(w, http.StatusOK, spec.PollReply{Status: "done", Result: string(res.Result)})
	default:
		writeJSON(w, http.StatusOK, spec.PollReply{Status: "error", Error: res.Error})
	}
}

func startStatus(err error) int {
	switch {
	case errors.Is(err, ErrNoDomain):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// invocation is the outcome of one invocation, as the API reports it.
type invocation struct {
	Status    int
	Result    []byte
	Error     string
	Node      core.ID // the node that served it
	Offloaded bool
}

// asyncResults keeps the results of asynchronous invocations for ttl after
// they complete; then they are dropped and polling them says so.
type asyncResults struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	pending map[string]*asyncEntry
}

type asyncEntry struct {
	res     *invocation // nil while running
	expires time.Time
}

func (a *asyncResults) add() (string, bool) {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expireLocked()
	if len(a.pending) >= a.max {
		return "", false
	}
	a.pending[id] = &asyncEntry{}
	return id, true
}

func (a *asyncResults) done(id string, res invocation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.pending[id]; e != nil {
		e.res, e.expires = &res, time.Now().Add(a.ttl)
	}
}

// get returns the result (nil while pending) and whether id is known.
func (a *asyncResults) get(id string) (*invocation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expireLocked()
	e, ok := a.pending[id]
	if !ok {
		return nil, false
	}
	return e.res, true
}

func (a *asyncResults) expireLocked() {
	now := time.Now()
	for id, e := range a.pending {
		if e.res != nil && now.After(e.expires) {
			delete(a.pending, id)
		}
	}
}
