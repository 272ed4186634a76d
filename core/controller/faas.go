package controller

import (
	"bytes"
	"context"
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

// functionNamed returns the workflow of the standalone function name: from
// the cached routes without a lock, else from the registry.
func (c *Con) functionNamed(name string) *workflow {
	if fr := c.direct.lookup(name); fr != nil {
		return fr.wf
	}
	return c.findFunction(name)
}

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
	id, status, err := c.createFunction(r.Context(), &req)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, spec.StartReply{WorkflowID: id.String()})
}

// createFunction starts the one-function workflow of req. On failure it
// returns the HTTP status that says why.
func (c *Con) createFunction(ctx context.Context, req *spec.FunctionCreate) (core.ID, int, error) {
	wf, err := req.Workflow()
	if err != nil {
		return core.ID{}, http.StatusBadRequest, err
	}
	c.faasMu.Lock() // one create at a time, so that names stay unique
	defer c.faasMu.Unlock()
	if c.findFunction(req.Name) != nil {
		return core.ID{}, http.StatusConflict, fmt.Errorf("function %q exists; delete it first", req.Name)
	}
	id, err := c.startWorkflow(ctx, wf)
	if err != nil {
		return core.ID{}, startStatus(err), err
	}
	return id, 0, nil
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
	c.invokeAPI(r.Context(), w, r.PathValue("name"), r.Body)
}

// invokeAPI serves POST /api/v1/invoke/NAME, of function name with body,
// once the request was admitted: from the mux, or from fastInvoke.
func (c *Con) invokeAPI(ctx context.Context, w http.ResponseWriter, name string, body io.ReadCloser) {
	var req apiInvocation
	if err := c.readJSON(w, body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad invocation: "+err.Error())
		return
	}
	wf := c.functionNamed(name)
	if wf == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no function %q", name))
		return
	}
	payload, err := paramsPayload(req.Params)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad parameters: "+err.Error())
		return
	}
	q := slQoS(req.QoSClass, req.QoSMaxRespT, req.CanDoOffloading)
	if !req.Async {
		res := c.invoke(ctx, wf, name, payload, q)
		if res.Status != http.StatusOK {
			writeError(w, res.Status, res.Error)
			return
		}
		// Where it was served, and whether the first choice was overloaded.
		setHeader(w, "Edgeless-Domain", res.Domain)
		setHeader(w, "Edgeless-Node", res.Node.String())
		setHeader(w, "Edgeless-Offloaded", strconv.FormatBool(res.Offloaded))
		setHeader(w, "Content-Type", "application/octet-stream")
		w.Write(res.Result)
		return
	}
	id, ok := c.invokeAsync(wf, name, payload, q)
	if !ok {
		writeError(w, http.StatusTooManyRequests, "too many asynchronous invocations pending")
		return
	}
	writeJSON(w, http.StatusAccepted, spec.InvokeAccepted{RequestID: id})
}

// decodeInvoke reads an invocation's body (none is an empty one); Params
// are never nil. On failure it has answered.
func (c *Con) decodeInvoke(w http.ResponseWriter, body io.ReadCloser) (*spec.InvokeRequest, bool) {
	var req spec.InvokeRequest
	if err := c.readJSON(w, body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad invocation: "+err.Error())
		return nil, false
	}
	if req.Params == nil {
		req.Params = map[string]any{}
	}
	return &req, true
}

// readJSON unmarshals a request's body, of at most max_workflow_mb, into v;
// an empty body leaves v as it is. The body is read whole into a pooled
// buffer: a json.Decoder would allocate its own for every invocation.
func (c *Con) readJSON(w http.ResponseWriter, body io.ReadCloser, v any) error {
	bp := invokeBodies.Get().(*[]byte)
	buf := bytes.NewBuffer((*bp)[:0])
	_, err := buf.ReadFrom(http.MaxBytesReader(w, body, int64(c.cfg.MaxWorkflowMB)<<20))
	if buf.Cap() <= 64<<10 { // a large one is not kept
		*bp = buf.Bytes()
		defer invokeBodies.Put(bp)
	}
	if err == nil && buf.Len() > 0 {
		if d, ok := v.(bodyDecoder); ok {
			err = d.decodeBody(buf.Bytes())
		} else {
			err = json.Unmarshal(buf.Bytes(), v)
		}
	}
	return err
}

// bodyDecoder is a body that decodes itself, as encoding/json would, only
// faster (see apiInvocation).
type bodyDecoder interface{ decodeBody(data []byte) error }

// paramsPayload is what a function receives for params: the JSON object the
// client wrote, as written (numbers keep every digit, and no map is built
// per invocation). None, or null, is {}. params came out of a body that
// was valid JSON (encoding/json or decodeBody checked it).
func paramsPayload(params json.RawMessage) ([]byte, error) {
	switch {
	case len(params) == 0 || string(params) == "null":
		return []byte("{}"), nil
	case params[0] != '{':
		return nil, fmt.Errorf("want a JSON object, not %s", jsonKind(params[0]))
	}
	return params, nil
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// invokeBodies holds buffers for invocation bodies.
var invokeBodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// invokeAsync starts an invocation whose result is kept for polling under
// the id it returns; false when too many are pending.
func (c *Con) invokeAsync(wf *workflow, name string, payload []byte, q qosRequest) (string, bool) {
	return c.runAsync(func(ctx context.Context) invocation { return c.invoke(ctx, wf, name, payload, q) })
}

// runAsync runs f in the background, bounded by request_timeout_sec, and
// keeps its result for polling under the id it returns; false when too many
// are pending.
func (c *Con) runAsync(f func(context.Context) invocation) (string, bool) {
	return c.runAsyncID(func(ctx context.Context, _ string) invocation { return f(ctx) })
}

// runAsyncID is runAsync for an f that needs the request's id.
func (c *Con) runAsyncID(f func(ctx context.Context, id string) invocation) (string, bool) {
	id, ok := c.async.add()
	if !ok {
		return "", false
	}
	started := c.group.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.cfg.RequestTimeoutSec)*time.Second)
		defer cancel()
		c.async.done(id, f(ctx, id))
	})
	if !started {
		c.async.done(id, invocation{Status: http.StatusServiceUnavailable, Error: "the controller is shutting down"})
	}
	return id, true
}

// qosRequest is what an invocation asks of its scheduling: a response time
// (0: none) and whether the orchestrator may offload it to the cloud to meet
// it.
type qosRequest struct {
	MaxResp    time.Duration
	CanOffload bool
	Urgent     bool // ahead of the instance's queue
}

// invoke calls the function: on a warm instance directly when its route is
// cached and the instance takes it, otherwise through the function's domain.
// Under the edge-cloud policy, an invocation that may be offloaded and that
// its edge domain cannot serve in time goes on to a cloud domain
// (invokeCloud).
func (c *Con) invoke(ctx context.Context, wf *workflow, name string, payload []byte, q qosRequest) invocation {
	arrived := time.Now()
	// One that may go to a cloud domain needs its edge domain's verdict on
	// the deadline first: the orchestrator's path.
	mayEscalate := q.CanOffload && c.cfg.Scheduling.Policy == spec.PolicyEdgeCloud
	if fr := c.direct.lookup(name); fr != nil && fr.wf == wf && !mayEscalate {
		resp, err := c.direct.invoke(ctx, fr, payload, q)
		if !errors.Is(err, errNoRoute) {
			c.invokedDirect.Inc()
			// The route's domain, which the refresher keeps current: no
			// lock of the controller's per invocation.
			return outcome(fr.domain, name, payload, resp, err, arrived)
		}
	}
	c.invokedOrc.Inc()
	d, escalate := c.route(wf, q)
	if d == nil {
		return invocation{Status: http.StatusServiceUnavailable, Error: fmt.Sprintf("function %q is not running: its domain was lost; it is being re-deployed", name)}
	}
	req := &wire.Invoke{Logical: wf.Logical[wf.Spec.Functions[0].Name], Payload: payload, MaxRespNS: q.MaxResp.Nanoseconds(),
		CanOffload: q.CanOffload, Urgent: q.Urgent, Escalate: escalate}
	resp, err := wire.Call[wire.Invoke, wire.InvokeResponse](ctx, d.client, wire.MethodOrcInvoke, req)
	if escalate && err == nil && resp.Overloaded {
		return c.invokeCloud(ctx, wf, name, req, arrived)
	}
	if err == nil && c.direct.lookup(name) == nil {
		// Its next invocations may go straight to the instance.
		c.direct.add(name, wf)
	}
	return outcome(d.id, name, payload, resp, err, arrived)
}

// outcome is the invocation with payload that domain's answer, resp or err,
// reports; arrived is when the controller received it.
func outcome(domain, name string, payload []byte, resp *wire.InvokeResponse, err error, arrived time.Time) invocation {
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
	return invocation{Status: http.StatusOK, Result: resp.Reply, Domain: domain, Node: resp.Node, Offloaded: resp.Offloaded, Cloud: resp.Cloud,
		Cold: resp.Cold, InitNS: resp.InitNS, RunNS: resp.RunNS, OffloadNS: resp.OffloadNS, ResponseNS: time.Since(arrived).Nanoseconds()}
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
	Domain    string  // the domain that served it
	Node      core.ID // the node that served it
	Offloaded bool
	Cloud     bool // offloaded to a cloud node or domain
	// Measurements, in nanoseconds (wire.InvokeResponse's), and the time
	// from the request's arrival at the controller to its result.
	Cold                                 bool
	Composition                          bool // Result is a spec.CompositionReply
	InitNS, RunNS, OffloadNS, ResponseNS int64
}

// handlePrewarm starts instances of a standalone function ahead of its
// invocations.
func (c *Con) handlePrewarm(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req spec.PrewarmRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad prewarm request: "+err.Error())
		return
	}
	wf := c.findFunction(name)
	if wf == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no function %q", name))
		return
	}
	resp, status, err := c.prewarm(r.Context(), wf, name, req.Instances)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, spec.PrewarmReply{Started: resp.Started, Instances: resp.Instances})
}

// prewarm asks the function's domain to run at least n instances of it.
func (c *Con) prewarm(ctx context.Context, wf *workflow, name string, n int) (*wire.PrewarmResponse, int, error) {
	if n < 0 {
		return nil, http.StatusBadRequest, fmt.Errorf("prewarm %q: %d instances is negative", name, n)
	}
	d := c.domainOf(wf)
	if d == nil {
		return nil, http.StatusServiceUnavailable, fmt.Errorf("function %q is not running: its domain was lost; it is being re-deployed", name)
	}
	req := &wire.Prewarm{Logical: wf.Logical[wf.Spec.Functions[0].Name], Instances: n}
	resp, err := wire.Call[wire.Prewarm, wire.PrewarmResponse](ctx, d.client, wire.MethodOrcPrewarm, req)
	if err != nil {
		return nil, http.StatusServiceUnavailable, fmt.Errorf("cannot prewarm %q: %w", name, err)
	}
	return resp, 0, nil
}

// domainOf returns the domain wf runs in, or nil while it is lost.
func (c *Con) domainOf(wf *workflow) *domain {
	d, _ := c.route(wf, qosRequest{})
	return d
}
