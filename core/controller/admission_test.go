package controller

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// workflowJSON returns a workflow of functions "name:TYPE" and resources
// "name:class[:host]", each function with inline code.
func workflowJSON(functions []string, resources []string) string {
	var fs, rs []string
	for _, f := range functions {
		name, typ, _ := strings.Cut(f, ":")
		fs = append(fs, `{"name":"`+name+`","class_specification":{"id":"`+name+`","function_type":"`+typ+`","version":"0.1","binary":[0,97,115,109],"outputs":[]},"output_mapping":{},"annotations":{}}`)
	}
	for _, r := range resources {
		parts := strings.SplitN(r, ":", 3)
		conf := `{}`
		if len(parts) == 3 {
			conf = `{"host":"` + parts[2] + `"}`
		}
		rs = append(rs, `{"name":"`+parts[0]+`","class_type":"`+parts[1]+`","output_mapping":{},"configurations":`+conf+`}`)
	}
	return `{"functions":[` + strings.Join(fs, ",") + `],"resources":[` + strings.Join(rs, ",") + `],"annotations":{}}`
}

func parseWorkflow(t *testing.T, functions, resources []string) *spec.Workflow {
	t.Helper()
	w, err := spec.ParseWorkflow("test", []byte(workflowJSON(functions, resources)))
	if err == nil {
		err = w.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPickDomain: a workflow goes to the first ready domain, by name, that
// offers every function type and resource class it names; otherwise the
// refusal says what each domain lacks.
func TestPickDomain(t *testing.T) {
	c := newTestCon(t, nil)
	c.domains = map[string]*domain{
		"b-wasm":   {id: "b-wasm", nodes: 2, ready: true, runtimes: []string{"RUST_WASM"}, resources: []string{"file-log", "http-ingress"}},
		"a-native": {id: "a-native", nodes: 1, ready: true, runtimes: []string{"RUST_WASM", "RUST_NATIVE"}, resources: []string{"file-log"}},
		"0-reset":  {id: "0-reset", nodes: 9, ready: false, runtimes: []string{"RUST_WASM", "RUST_NATIVE", "CONTAINER"}, resources: []string{"file-log", "http-ingress", "redis"}},
	}
	f := func(functions, resources []string, want string) {
		t.Helper()
		d, err := c.pickDomain(parseWorkflow(t, functions, resources), false)
		got := ""
		if err != nil {
			if !errors.Is(err, ErrNoDomain) {
				t.Fatalf("%v %v: %v is not ErrNoDomain", functions, resources, err)
			}
			got = err.Error()
		} else {
			got = d.id
		}
		if !strings.Contains(got, want) {
			t.Fatalf("%v %v: got %q, want %q", functions, resources, got, want)
		}
	}
	f([]string{"f:RUST_WASM"}, nil, "a-native")                                  // both can: the first by name
	f([]string{"f:WASM"}, []string{"log:file-log"}, "a-native")                  // an alias of RUST_WASM
	f([]string{"f:RUST_WASM"}, []string{"in:http-ingress"}, "b-wasm")            // only b has the class
	f([]string{"f:NATIVE", "g:RUST_WASM"}, []string{"log:file-log"}, "a-native") // only a has the runtime
	f([]string{"f:RUST_NATIVE"}, []string{"in:http-ingress"},
		`no domain can run this workflow: domain a-native (1 nodes) lacks [resource class http-ingress (resource "in")]`+"\n"+
			`domain b-wasm (2 nodes) lacks [function type RUST_NATIVE (function "f")]`)
	f([]string{"f:CONTAINER"}, nil, `lacks [function type CONTAINER (function "f")]`) // the reset domain has it, but is not ready
	f(nil, []string{"r:redis"}, `resource class redis (resource "r")`)
	f(nil, []string{"d:dda"}, `resource class dda (resource "d"): EDGELESS's dda class (Data Distribution Agent sidecar) is not offered by edgeless`)

	c.domains = map[string]*domain{"0-reset": c.domains["0-reset"]}
	f([]string{"f:RUST_WASM"}, nil, "no domain can run this workflow: no orchestration domain is registered")
}

// TestIngressHostClaims: an http-ingress host belongs to one workflow at a
// time; a second workflow naming it is refused (409), and the host is free
// again once its owner lets go.
func TestIngressHostClaims(t *testing.T) {
	c := newTestCon(t, nil)
	wf := func(hosts ...string) *workflow {
		var rs []string
		for i, h := range hosts {
			rs = append(rs, "in"+string(rune('a'+i))+":http-ingress:"+h)
		}
		return &workflow{ID: core.NewID(), Spec: parseWorkflow(t, nil, append(rs, "log:file-log"))}
	}
	hosts := func(w *workflow) string { return strings.Join(ingressHosts(w), " ") }
	if got := hosts(wf("Example.COM:8080", "", " api.example.com ")); got != "example.com * api.example.com" {
		t.Fatalf("hosts %q: want lower case, no port, * for none", got)
	}

	claim := func(w *workflow, want string) {
		t.Helper()
		c.mu.Lock()
		err := c.claimLocked(w)
		c.mu.Unlock()
		switch {
		case want == "" && err != nil:
			t.Fatalf("claim of %s: %v", hosts(w), err)
		case want != "" && (err == nil || !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), want) || startStatus(err) != http.StatusConflict):
			t.Fatalf("claim of %s: %v, want a conflict (409) naming %q", hosts(w), err, want)
		}
	}
	owner := wf("example.com", "*")
	claim(owner, "")
	claim(owner, "") // claiming again what it owns
	other := wf("api.example.com", "EXAMPLE.com")
	claim(other, `http-ingress host "example.com" belongs to workflow `+owner.ID.String())
	claim(wf(""), `http-ingress host "*" belongs to workflow `+owner.ID.String())
	if c.hosts["api.example.com"] == other.ID {
		t.Fatal("a refused claim kept one of its hosts")
	}
	c.mu.Lock()
	c.releaseLocked(other) // not the owner: nothing changes
	c.mu.Unlock()
	claim(other, "belongs to workflow "+owner.ID.String())
	c.mu.Lock()
	c.releaseLocked(owner)
	c.mu.Unlock()
	claim(other, "")
	if len(c.hosts) != 2 || c.hosts["example.com"] != other.ID {
		t.Fatalf("hosts after the hand-over: %v", c.hosts)
	}
}

// TestAdmission: what POST /api/v1/workflows answers before anything is
// deployed: the workflow's own faults (400), what no domain can run (503),
// a host another workflow owns (409).
func TestAdmission(t *testing.T) {
	c := newTestCon(t, nil)
	c.domains = map[string]*domain{"d": {id: "d", nodes: 1, ready: true, runtimes: []string{"RUST_WASM"}, resources: []string{"http-ingress", "file-log"}}}
	ownerID := core.NewID()
	c.hosts["taken.example"] = ownerID
	api := httptest.NewServer(c.routes())
	defer api.Close()
	f := func(body string, status int, reason string) {
		t.Helper()
		resp, err := http.Post(api.URL+"/api/v1/workflows", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e spec.ErrorReply
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != status || !strings.Contains(e.Error, reason) {
			t.Fatalf("%s\n= %d %q, want %d and %q", body, resp.StatusCode, e.Error, status, reason)
		}
	}
	f(`{"functions":`, http.StatusBadRequest, "request")
	f(strings.Replace(workflowJSON([]string{"f:RUST_WASM"}, nil), `"binary":[0,97,115,109]`, `"code":"f.wasm"`, 1), http.StatusBadRequest,
		"function f: no code: the request must carry the code bytes in class_specification.binary")
	f(workflowJSON([]string{"f:COBOL"}, nil), http.StatusBadRequest, "COBOL")
	f(workflowJSON([]string{"f:RUST_NATIVE"}, nil), http.StatusServiceUnavailable, `domain d (1 nodes) lacks [function type RUST_NATIVE (function "f")]`)
	f(workflowJSON([]string{"f:RUST_WASM"}, []string{"in:http-ingress:Taken.Example"}), http.StatusConflict,
		`conflict: http-ingress host "taken.example" belongs to workflow `+ownerID.String())
	if started, failed := c.started.Get(), c.failed.Get(); started != 0 || failed != 2 {
		t.Fatalf("starts counted: %d ok, %d failed; want 0 and 2 (the 503 and the 409)", started, failed)
	}
	if len(c.workflows) != 0 || len(c.hosts) != 1 {
		t.Fatalf("a refused workflow left %d workflows and hosts %v", len(c.workflows), c.hosts)
	}
}

// TestSourceAnnotations: a function nothing sends events to runs one
// instance unless min_instances asks for more, since each instance would
// produce every event.
func TestSourceAnnotations(t *testing.T) {
	c := newTestCon(t, nil)
	f := func(ann map[string]string, want string) {
		t.Helper()
		got := c.sourceAnnotations(core.NewID(), spec.Function{Name: "src", Annotations: ann})
		if got[spec.KeyMinInstances] != want {
			t.Fatalf("%v: min_instances %q, want %q", ann, got[spec.KeyMinInstances], want)
		}
	}
	f(map[string]string{spec.KeyMaxInstances: "4"}, "1")
	f(map[string]string{spec.KeyMaxInstances: "4", spec.KeyMinInstances: "3"}, "3")
	f(map[string]string{spec.KeyMaxInstances: "4", spec.KeyMinInstances: "0"}, "0") // scale to zero stays
	f(map[string]string{spec.KeyMaxInstances: "1"}, "")
	f(map[string]string{}, "")
	orig := map[string]string{spec.KeyMaxInstances: "4"}
	c.sourceAnnotations(core.NewID(), spec.Function{Name: "src", Annotations: orig})
	if _, ok := orig[spec.KeyMinInstances]; ok {
		t.Fatal("the workflow's own annotations were changed")
	}
}
