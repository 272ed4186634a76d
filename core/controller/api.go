package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// routes is the HTTP API under /api/v1.
func (c *Con) routes() http.Handler {
	mux := http.NewServeMux()
	// Workflows and functions carry code: their bodies count against the
	// body budget.
	mux.HandleFunc("POST /api/v1/workflows", c.guard(RoleDeployer, c.bounded(writeError, c.handleStart)))
	mux.HandleFunc("GET /api/v1/workflows", c.guard(RoleDeployer, c.handleList))
	mux.HandleFunc("GET /api/v1/workflows/{id}", c.guard(RoleDeployer, c.handleInspect))
	mux.HandleFunc("DELETE /api/v1/workflows/{id}", c.guard(RoleDeployer, c.handleStop))
	mux.HandleFunc("POST /api/v1/workflows/{id}/migrate", c.guard(RoleAdmin, c.handleMigrate))
	mux.HandleFunc("GET /api/v1/domains", c.guard(RoleDeployer, c.handleDomains))
	mux.HandleFunc("POST /api/v1/functions", c.guard(RoleDeployer, c.bounded(writeError, c.handleCreateFunction)))
	mux.HandleFunc("GET /api/v1/functions", c.guard(RoleInvoker, c.handleListFunctions))
	mux.HandleFunc("DELETE /api/v1/functions/{name}", c.guard(RoleDeployer, c.handleDeleteFunction))
	mux.HandleFunc("POST /api/v1/functions/{name}/prewarm", c.guard(RoleDeployer, c.handlePrewarm))
	mux.HandleFunc("POST /api/v1/invoke/{name}", c.guard(RoleInvoker, c.handleInvoke))
	mux.HandleFunc("GET /api/v1/poll/{id}", c.guard(RoleInvoker, c.handlePoll))
	mux.HandleFunc("POST /api/v1/compositions", c.guard(RoleDeployer, c.handleCreateComposition))
	mux.HandleFunc("GET /api/v1/compositions", c.guard(RoleInvoker, c.handleListCompositions))
	mux.HandleFunc("DELETE /api/v1/compositions/{name}", c.guard(RoleDeployer, c.handleDeleteComposition))
	mux.HandleFunc("POST /api/v1/compositions/{name}/invoke", c.guard(RoleInvoker, c.handleInvokeComposition))
	c.serverledgeRoutes(mux)
	return c.plainOnlyServerledge(mux)
}

func (c *Con) handleDomains(w http.ResponseWriter, r *http.Request) {
	list := spec.DomainList{Domains: []spec.DomainInfo{}}
	c.mu.Lock()
	for _, d := range c.domains {
		list.Domains = append(list.Domains, spec.DomainInfo{
			ID: d.id, Nodes: d.nodes, Ready: d.ready, Runtimes: d.runtimes, Resources: d.resources, Cloud: d.cloud,
		})
	}
	c.mu.Unlock()
	slices.SortFunc(list.Domains, func(a, b spec.DomainInfo) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, list)
}

func (c *Con) handleStart(w http.ResponseWriter, r *http.Request) {
	limit := int64(c.cfg.MaxWorkflowMB) << 20
	// With the length known, one allocation instead of ReadAll's doublings,
	// which hold up to twice the body.
	body := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), limit)+bytes.MinRead))
	_, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	data := body.Bytes()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "workflow larger than max_workflow_mb")
			return
		}
		writeError(w, http.StatusBadRequest, "cannot read the request: "+err.Error())
		return
	}
	wf, err := spec.ParseWorkflow("request", data)
	if err == nil {
		err = wf.Validate()
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(wf.Ignored) > 0 {
		c.log.Warn("workflow fields ignored", "fields", wf.Ignored)
	}
	for _, f := range wf.Functions {
		if len(f.ClassSpecification.Binary) == 0 {
			writeError(w, http.StatusBadRequest, "function "+f.Name+": no code: the request must carry the code bytes in class_specification.binary")
			return
		}
	}
	id, err := c.startWorkflow(r.Context(), wf)
	if err != nil {
		writeError(w, startStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, spec.StartReply{WorkflowID: id.String()})
}

func (c *Con) handleList(w http.ResponseWriter, r *http.Request) {
	list := spec.WorkflowList{Workflows: []spec.WorkflowInfo{}}
	for _, wf := range c.listWorkflows() {
		list.Workflows = append(list.Workflows, c.info(r.Context(), wf, false))
	}
	writeJSON(w, http.StatusOK, list)
}

func (c *Con) handleInspect(w http.ResponseWriter, r *http.Request) {
	id, err := core.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "workflow id: "+err.Error())
		return
	}
	c.mu.Lock()
	wf := c.workflows[id]
	c.mu.Unlock()
	if wf == nil {
		writeError(w, http.StatusNotFound, ErrNotFound.Error()+": "+id.String())
		return
	}
	writeJSON(w, http.StatusOK, c.info(r.Context(), wf, true))
}

func (c *Con) handleStop(w http.ResponseWriter, r *http.Request) {
	id, err := core.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "workflow id: "+err.Error())
		return
	}
	if err := c.stopWorkflow(id); err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, spec.ErrorReply{Error: msg})
}

// handleMigrate moves a workflow's components to other nodes of its domain,
// or the whole workflow to another domain.
func (c *Con) handleMigrate(w http.ResponseWriter, r *http.Request) {
	id, err := core.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "workflow id: "+err.Error())
		return
	}
	var req spec.MigrateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad migrate request: "+err.Error())
		return
	}
	if req.Domain != "" {
		if req.Component != "" {
			writeError(w, http.StatusBadRequest, "moving one component to another domain needs EDGELESS's inter-domain portals, which edgeless does not have; migrate the whole workflow")
			return
		}
		if err := c.migrateDomain(r.Context(), id, req.Domain); err != nil {
			status := startStatus(err)
			if errors.Is(err, ErrNotFound) {
				status = http.StatusNotFound
			}
			writeError(w, status, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var nodes []core.ID
	for _, s := range req.Nodes {
		n, err := core.ParseID(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "node: "+err.Error())
			return
		}
		nodes = append(nodes, n)
	}
	c.mu.Lock()
	wf := c.workflows[id]
	var d *domain
	if wf != nil && wf.running {
		d = c.domains[wf.Domain]
	}
	c.mu.Unlock()
	switch {
	case wf == nil:
		writeError(w, http.StatusNotFound, ErrNotFound.Error()+": "+id.String())
		return
	case d == nil:
		writeError(w, http.StatusServiceUnavailable, "workflow "+id.String()+" is not running: its domain was lost")
		return
	}
	names := []string{req.Component}
	if req.Component == "" {
		names = names[:0]
		for name := range wf.Logical {
			names = append(names, name)
		}
	}
	for _, name := range names {
		lid, ok := wf.Logical[name]
		if !ok {
			writeError(w, http.StatusNotFound, "workflow "+id.String()+" has no component "+strconv.Quote(name))
			return
		}
		if _, err := wire.Call[wire.Migrate, wire.Empty](r.Context(), d.client, wire.MethodOrcMigrate, &wire.Migrate{Logical: lid, Nodes: nodes}); err != nil {
			writeError(w, http.StatusConflict, "cannot migrate "+strconv.Quote(name)+": "+err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
