package controller

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// Who may call Serverledge's paths without a token (serverledge_auth).
const (
	// ServerledgeAuthLoopback lets clients on 127.0.0.1 and ::1 through
	// without a token: serverledge-cli on the controller's host.
	ServerledgeAuthLoopback = "loopback"
	// ServerledgeAuthToken wants a token from everyone.
	ServerledgeAuthToken = "token"
	// ServerledgeAuthNone lets anyone through: anyone who reaches the API
	// may run code on the nodes.
	ServerledgeAuthNone = "none"
)

// qosHighPerformance is Serverledge's QoS class whose calls jump the queue.
const qosHighPerformance = 1

// serverledgePaths are the roots of Serverledge's API, the only paths a
// plain-HTTP connection to an HTTPS API may use.
var serverledgePaths = []string{"/create", "/update", "/invoke/", "/poll/", "/delete", "/function", "/status", "/prewarm",
	"/workflow/create", "/workflow/import", "/workflow/invoke/", "/workflow/resume/", "/workflow/delete", "/workflow/list"}

// serverledgeRoutes adds Serverledge's API at the root of the controller's
// address, so that serverledge-cli pointed at the controller works as it is.
func (c *Con) serverledgeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /create", c.tokenless(RoleDeployer, c.bounded(slText, c.slCreate)))
	mux.HandleFunc("POST /update", c.tokenless(RoleDeployer, c.bounded(slText, c.slCreate)))
	mux.HandleFunc("POST /delete", c.tokenless(RoleDeployer, c.slDelete))
	mux.HandleFunc("POST /prewarm", c.tokenless(RoleDeployer, c.slPrewarm))
	mux.HandleFunc("POST /invoke/{fun}", c.tokenless(RoleInvoker, c.slInvoke))
	mux.HandleFunc("GET /poll/{reqId}", c.tokenless(RoleInvoker, c.slPoll))
	mux.HandleFunc("GET /function", c.tokenless(RoleInvoker, c.slList))
	mux.HandleFunc("GET /status", c.tokenless(RoleInvoker, c.slStatus))
	mux.HandleFunc("POST /workflow/create", c.tokenless(RoleDeployer, c.slWorkflowCreate))
	mux.HandleFunc("POST /workflow/delete", c.tokenless(RoleDeployer, c.slWorkflowDelete))
	mux.HandleFunc("POST /workflow/invoke/{workflow}", c.tokenless(RoleInvoker, c.slWorkflowInvoke))
	mux.HandleFunc("POST /workflow/import", c.tokenless(RoleDeployer, c.slWorkflowImport))
	mux.HandleFunc("POST /workflow/resume/{workflow}", c.tokenless(RoleInvoker, c.slWorkflowResume))
	mux.HandleFunc("GET /workflow/list", c.tokenless(RoleInvoker, c.slWorkflowList))
}

// plainOnlyServerledge refuses plain-HTTP requests on an HTTPS API except on
// Serverledge's paths: a token must never travel in clear to /api/v1.
func (c *Con) plainOnlyServerledge(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.https && r.TLS == nil && !isServerledgePath(r.URL.Path) {
			writeError(w, http.StatusBadRequest, errPlainHTTP)
			return
		}
		h.ServeHTTP(w, r)
	})
}

const errPlainHTTP = "this address speaks HTTPS; plain HTTP serves only Serverledge's API (/create, /invoke/NAME, …)"

func isServerledgePath(p string) bool {
	for _, root := range serverledgePaths {
		if p == root || strings.HasSuffix(root, "/") && strings.HasPrefix(p, root) {
			return true
		}
	}
	return false
}

// tokenless wraps h so that a request without a token runs it when
// serverledge_auth allows that client; any other request needs a token with
// role need, as on /api/v1.
func (c *Con) tokenless(need Role, h http.HandlerFunc) http.HandlerFunc {
	guarded := c.guard(need, h)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && c.mayGoWithoutToken(remoteIP(r.RemoteAddr)) {
			h(w, r)
			return
		}
		guarded(w, r)
	}
}

// mayGoWithoutToken says whether serverledge_auth lets the client at ip go
// without a token.
func (c *Con) mayGoWithoutToken(ip net.IP) bool {
	switch c.cfg.ServerledgeAuth {
	case ServerledgeAuthNone:
		return true
	case ServerledgeAuthLoopback:
		// Exactly the loopback addresses, not all of 127.0.0.0/8: other
		// addresses of that range are how containers and namespaces on the
		// host are sometimes given their own.
		return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
	}
	return false
}

// remoteIP is the address of a net/http request's RemoteAddr, or nil.
func remoteIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

// slText answers as Serverledge does with a bare string.
func slText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

func (c *Con) slCreate(w http.ResponseWriter, r *http.Request) {
	var f spec.ServerledgeFunction
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(c.cfg.MaxWorkflowMB)<<20)).Decode(&f); err != nil {
		slText(w, http.StatusBadRequest, "bad function: "+err.Error())
		return
	}
	update := r.URL.Path == "/update" // creates, or replaces what exists
	if !update && c.findFunction(f.Name) != nil {
		slText(w, http.StatusConflict, "")
		return
	}
	if f.MemoryMB < 1 {
		slText(w, http.StatusUnprocessableEntity, "Invalid memory limit")
		return
	}
	req, err := serverledgeCreate(&f)
	if errors.Is(err, spec.ErrUnknownRuntime) {
		writeJSON(w, http.StatusNotFound, "Invalid runtime.")
		return
	}
	if err != nil {
		slText(w, http.StatusBadRequest, err.Error())
		return
	}
	if old := c.findFunction(f.Name); update && old != nil {
		// Only a valid replacement stops what runs.
		if _, err := req.Workflow(); err == nil {
			c.stopWorkflow(old.ID)
		}
	}
	if _, status, err := c.createFunction(r.Context(), req); err != nil {
		if errors.Is(err, spec.ErrUnknownRuntime) {
			writeJSON(w, http.StatusNotFound, "Invalid runtime.")
			return
		}
		if status == http.StatusConflict {
			err = nil // Serverledge says it with the status alone
		}
		slText(w, status, errString(err))
		return
	}
	writeJSON(w, http.StatusOK, struct{ Created string }{f.Name})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// serverledgeCreate maps Serverledge's function onto ours. Serverledge's
// functions scale to zero: min_instances is 0 unless the operator prewarms.
func serverledgeCreate(f *spec.ServerledgeFunction) (*spec.FunctionCreate, error) {
	archive, err := base64.StdEncoding.DecodeString(f.TarFunctionCode)
	if err != nil {
		return nil, fmt.Errorf("function %q: TarFunctionCode is not base64: %w", f.Name, err)
	}
	// serverledge-cli sends a --src that is a URL as it is, for the node to
	// fetch; the controller does not fetch code from where a client says.
	if u, err := url.ParseRequestURI(string(archive)); err == nil && u.Scheme != "" && u.Host != "" {
		return nil, fmt.Errorf("function %q: TarFunctionCode holds a URL (%s), not a tar archive: the controller does not fetch code; give --src a file or a directory", f.Name, core.Redact(string(archive)))
	}
	req := &spec.FunctionCreate{Name: f.Name, Runtime: f.Runtime, MemoryMB: int(f.MemoryMB),
		Annotations: map[string]string{spec.KeyMinInstances: "0"}}
	switch f.Runtime {
	case "wasm", "native":
		// The node loads one module or shared object: the tar's only
		// file, or its only one with the runtime's extension.
		ext := map[string]string{"wasm": ".wasm", "native": ".so"}[f.Runtime]
		req.Code, err = codeFromTar(archive, ext)
		if err != nil {
			return nil, fmt.Errorf("function %q: %w", f.Name, err)
		}
	default:
		// Language runtimes unpack the archive themselves and call the
		// handler it names.
		req.Code = archive
		if f.Handler != "" {
			req.Annotations["handler"] = f.Handler
		}
		if f.CustomImage != "" {
			req.Annotations["custom_image"] = f.CustomImage
		}
	}
	return req, nil
}

// codeFromTar returns the only regular file of a tar archive, or its only one
// whose name ends in ext.
func codeFromTar(archive []byte, ext string) ([]byte, error) {
	tr := tar.NewReader(bytes.NewReader(archive))
	var files, matching [][]byte
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("TarFunctionCode is not a tar archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s from TarFunctionCode: %w", h.Name, err)
		}
		files = append(files, data)
		names = append(names, h.Name)
		if path.Ext(h.Name) == ext {
			matching = append(matching, data)
		}
	}
	switch {
	case len(matching) == 1:
		return matching[0], nil
	case len(files) == 1:
		return files[0], nil
	case len(files) == 0:
		return nil, errors.New("TarFunctionCode holds no file")
	}
	return nil, fmt.Errorf("TarFunctionCode holds %d files (%s) and not exactly one *%s: which is the code?", len(files), strings.Join(names, ", "), ext)
}

func (c *Con) slDelete(w http.ResponseWriter, r *http.Request) {
	var f spec.ServerledgeFunction
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(c.cfg.MaxWorkflowMB)<<20)).Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		slText(w, http.StatusBadRequest, "bad request: "+err.Error())
		return
	}
	wf := c.findFunction(f.Name)
	if wf == nil {
		slText(w, http.StatusNotFound, "Unknown function")
		return
	}
	if err := c.stopWorkflow(wf.ID); err != nil {
		slText(w, http.StatusNotFound, "Unknown function")
		return
	}
	writeJSON(w, http.StatusOK, struct{ Deleted string }{f.Name})
}

func (c *Con) slInvoke(w http.ResponseWriter, r *http.Request) {
	c.invokeServerledge(r.Context(), w, r.PathValue("fun"), r.Body)
}

// slInvocation is Serverledge's invocation body as the front reads it (see
// apiInvocation).
type slInvocation struct {
	spec.ServerledgeInvocation
	Params json.RawMessage // shadows ServerledgeInvocation's
}

// invokeServerledge serves Serverledge's POST /invoke/NAME, of function
// name with body, once the request was admitted: from the mux, or from
// fastInvoke.
func (c *Con) invokeServerledge(ctx context.Context, w http.ResponseWriter, name string, body io.ReadCloser) {
	wf := c.functionNamed(name)
	if wf == nil {
		slText(w, http.StatusNotFound, "Function unknown")
		return
	}
	var req slInvocation
	if err := c.readJSON(w, body, &req); err != nil {
		slText(w, http.StatusBadRequest, "could not parse request: "+err.Error())
		return
	}
	payload, err := paramsPayload(req.Params)
	if err != nil {
		slText(w, http.StatusBadRequest, "bad parameters: "+err.Error())
		return
	}
	q := slQoS(req.QoSClass, req.QoSMaxRespT, req.CanDoOffloading)
	if req.Async {
		id, ok := c.invokeAsync(wf, name, payload, q)
		if !ok {
			slText(w, http.StatusTooManyRequests, "")
			return
		}
		writeJSON(w, http.StatusOK, spec.ServerledgeAsync{ReqId: id})
		return
	}
	res := c.invoke(ctx, wf, name, payload, q)
	switch res.Status {
	case http.StatusOK:
		writeJSON(w, http.StatusOK, serverledgeResponse(&res))
	case http.StatusTooManyRequests:
		slText(w, http.StatusTooManyRequests, "")
	default:
		slText(w, http.StatusInternalServerError, res.Error)
	}
}

// serverledgeResponse is Serverledge's report of an invocation. A failed one
// (polled) says Success false with the reason as its Result.
func serverledgeResponse(res *invocation) spec.ServerledgeResponse {
	if res.Status != http.StatusOK {
		return spec.ServerledgeResponse{ServerledgeReport: spec.ServerledgeReport{Result: res.Error}}
	}
	action := ""
	switch {
	case res.Cloud:
		action = "OC"
	case res.Offloaded:
		action = "O"
	}
	return spec.ServerledgeResponse{Success: true, ServerledgeReport: spec.ServerledgeReport{
		Result:         string(res.Result),
		ResponseTime:   seconds(res.ResponseNS),
		IsWarmStart:    !res.Cold,
		InitTime:       seconds(res.InitNS),
		OffloadLatency: seconds(res.OffloadNS),
		Duration:       seconds(res.RunNS),
		SchedAction:    action,
	}}
}

func seconds(ns int64) float64 { return float64(ns) / 1e9 }

func (c *Con) slPoll(w http.ResponseWriter, r *http.Request) {
	res, ok := c.async.get(r.PathValue("reqId"))
	switch {
	case !ok || res == nil:
		slText(w, http.StatusNotFound, "")
	case res.Composition:
		writeJSON(w, http.StatusOK, serverledgeWorkflowResponse(res.Result))
	default:
		writeJSON(w, http.StatusOK, serverledgeResponse(res))
	}
}

// serverledgeWorkflowResponse turns a composition's reply into Serverledge's
// answer to a workflow invocation: reports by state.
func serverledgeWorkflowResponse(data []byte) spec.ServerledgeWorkflowResponse {
	var reply spec.CompositionReply
	json.Unmarshal(data, &reply) // ours, from runComposition
	out := spec.ServerledgeWorkflowResponse{Success: reply.Success, Result: reply.Result, ResponseTime: reply.ResponseTime,
		Reports: make(map[string]spec.ServerledgeReport, len(reply.Reports))}
	for _, r := range reply.Reports {
		out.Reports[r.State] = r.ServerledgeReport
	}
	return out
}

func (c *Con) slWorkflowCreate(w http.ResponseWriter, r *http.Request) {
	var req spec.ServerledgeWorkflowCreate
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, "could not parse the request: "+err.Error())
		return
	}
	src, err := base64.StdEncoding.DecodeString(req.ASLSrc)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, "ASLSrc is not base64: "+err.Error())
		return
	}
	m, err := spec.ParseStateMachine(src)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, "ASL parsing failed: "+err.Error())
		return
	}
	c.slAddWorkflow(w, req.Name, &spec.Composition{StateMachine: m})
}

func (c *Con) slWorkflowDelete(w http.ResponseWriter, r *http.Request) {
	var req spec.ServerledgeWorkflowCreate
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, "could not parse the request: "+err.Error())
		return
	}
	if !c.removeComposition(req.Name) {
		writeJSON(w, http.StatusNotFound, "the request function workflow to delete does not exist")
		return
	}
	writeJSON(w, http.StatusOK, struct{ Deleted string }{req.Name})
}

func (c *Con) slWorkflowList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.compositionNames())
}

// slWorkflowRequest returns the function workflow a request names, with its
// body decoded into req (an empty body leaves req as it is), or answers the
// error as Serverledge does and returns nil.
func (c *Con) slWorkflowRequest(w http.ResponseWriter, r *http.Request, req any) *spec.Composition {
	name := r.PathValue("workflow")
	m := c.composition(name)
	if m == nil {
		writeJSON(w, http.StatusNotFound, "function workflow '"+name+"' does not exist")
		return nil
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(c.cfg.MaxWorkflowMB)<<20)).Decode(req); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusInternalServerError, "failed to parse workflow invocation request: "+err.Error())
		return nil
	}
	return m
}

func (c *Con) slWorkflowInvoke(w http.ResponseWriter, r *http.Request) {
	var req spec.ServerledgeWorkflowInvocation
	m := c.slWorkflowRequest(w, r, &req)
	if m == nil {
		return
	}
	var params any = req.Params
	if req.Params == nil {
		params = map[string]any{}
	}
	q := slQoS(req.QoS.Class, req.QoS.MaxRespT, req.CanDoOffloading)
	c.answerWorkflow(w, r, req.Async, func(ctx context.Context, id string) invocation { return c.runComposition(ctx, m, params, q, id) })
}

func (c *Con) slList(w http.ResponseWriter, r *http.Request) {
	names := []string{}
	for _, wf := range c.listWorkflows() {
		if name := wf.Spec.Annotations[spec.AnnotationFunction]; name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	writeJSON(w, http.StatusOK, names)
}

func (c *Con) slPrewarm(w http.ResponseWriter, r *http.Request) {
	var req spec.ServerledgePrewarm
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		slText(w, http.StatusBadRequest, "could not parse request: "+err.Error())
		return
	}
	wf := c.findFunction(req.Function)
	if wf == nil {
		slText(w, http.StatusNotFound, "Function unknown")
		return
	}
	resp, status, err := c.prewarm(r.Context(), wf, req.Function, int(min(req.Instances, 1<<20)))
	if err != nil {
		slText(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{ Prewarmed int64 }{int64(resp.Started)})
}

func (c *Con) slStatus(w http.ResponseWriter, r *http.Request) {
	st := spec.ServerledgeStatus{Url: "http://" + c.httpAddr, AvailableWarmContainers: map[string]int{}, LoadAvg: loadAvg(),
		Coordinates: spec.ServerledgeCoordinate{Vec: []float64{}}}
	st.AvailableMemMB, st.UsedMemMB = memoryMB()
	c.mu.Lock()
	for _, d := range c.domains {
		if d.ready {
			st.AvailableCPUs += float64(d.cores)
		}
	}
	c.mu.Unlock()
	for _, wf := range c.listWorkflows() {
		name := wf.Spec.Annotations[spec.AnnotationFunction]
		if name == "" {
			continue
		}
		if wi := c.info(r.Context(), wf, true); len(wi.Components) > 0 {
			st.AvailableWarmContainers[name] = len(wi.Components[0].Instances)
		}
	}
	writeJSON(w, http.StatusOK, st)
}

// loadAvg returns the host's load averages, or -1s as Serverledge does when
// they cannot be read.
func loadAvg() []float64 {
	out := []float64{-1, -1, -1}
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	for i, f := range strings.Fields(string(data)) {
		if i == len(out) {
			break
		}
		if v, err := strconv.ParseFloat(f, 64); err == nil {
			out[i] = v
		}
	}
	return out
}

// memoryMB returns the host's available and used memory, or -1s.
func memoryMB() (avail, used int64) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1, -1
	}
	kb := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			kb[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	total, free, ok := kb["MemTotal"], kb["MemAvailable"], kb["MemAvailable"] > 0
	if !ok {
		return -1, -1
	}
	return free >> 10, (total - free) >> 10
}
