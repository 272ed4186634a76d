package inabox

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// aslDoc adds a and b; a total over 10 fans out to three branches (twice
// the total, the total plus one, a constant) whose results are the
// composition's result; a smaller total fails.
const aslDoc = `{"StartAt": "Add", "States": {
  "Add": {"Type": "Task", "Resource": "sum", "ResultPath": "$.total", "Next": "Big?"},
  "Big?": {"Type": "Choice", "Choices": [{"Variable": "$.total", "NumericGreaterThan": 10, "Next": "Fan"}], "Default": "Small"},
  "Small": {"Type": "Fail", "Error": "TooSmall", "Cause": "the sum is 10 or less"},
  "Fan": {"Type": "Parallel", "ResultPath": "$.fan", "OutputPath": "$.fan", "Next": "Done", "Branches": [
    {"StartAt": "Double", "States": {"Double": {"Type": "Task", "Resource": "sum", "Parameters": {"a.$": "$.total", "b.$": "$.total"}, "End": true}}},
    {"StartAt": "Inc", "States": {"Inc": {"Type": "Task", "Resource": "sum", "Parameters": {"a.$": "$.total", "b": 1}, "End": true}}},
    {"StartAt": "Const", "States": {"Const": {"Type": "Pass", "Result": "x", "End": true}}}]},
  "Done": {"Type": "Succeed"}}}`

// TestCompositionASL runs an ASL document with a Choice and a Parallel
// state, both ways through the Choice, synchronously and asynchronously.
func TestCompositionASL(t *testing.T) {
	b := startBox(t, 1, nil)
	if _, err := b.fcli("create", "-f", "sum", "--src", filepath.Join(root, "functions/sum/sum.wasm")); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string, status int) []byte {
		t.Helper()
		resp, err := b.api(method, path, body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, data, status)
		}
		return data
	}
	call("POST", "/api/v1/compositions", `{"name": "fan", "asl": `+aslDoc+`}`, http.StatusCreated)
	call("POST", "/api/v1/compositions", `{"name": "fan", "asl": `+aslDoc+`}`, http.StatusConflict)
	bad := call("POST", "/api/v1/compositions", `{"name": "bad", "asl": {"StartAt": "A", "States": {"A": {"Type": "Task", "Next": "B"}}}}`, http.StatusBadRequest)
	if !strings.Contains(string(bad), `goes to \"B\", which is no state`) || !strings.Contains(string(bad), "needs a Resource") {
		t.Fatalf("invalid document: %s", bad)
	}
	if got := strings.TrimSpace(string(call("GET", "/api/v1/compositions", "", http.StatusOK))); got != `["fan"]` {
		t.Fatalf("list = %s", got)
	}

	var reply spec.CompositionReply
	json.Unmarshal(call("POST", "/api/v1/compositions/fan/invoke", `{"params": {"a": 4, "b": 7}}`, http.StatusOK), &reply)
	if got, _ := json.Marshal(reply.Result); !reply.Success || string(got) != `[22,12,"x"]` {
		t.Fatalf("fan(4, 7) = %+v, want [22,12,\"x\"]", reply)
	}
	states := map[string]string{}
	for _, r := range reply.Reports {
		if r.Function != "sum" || !r.Success || r.Duration <= 0 {
			t.Fatalf("report %+v", r)
		}
		states[r.State] = r.Result
	}
	if len(reply.Reports) != 3 || states["Add"] != "11" || states["Double"] != "22" || states["Inc"] != "12" {
		t.Fatalf("reports %+v, want Add 11, Double 22, Inc 12", reply.Reports)
	}

	json.Unmarshal(call("POST", "/api/v1/compositions/fan/invoke", `{"params": {"a": 1, "b": 2}}`, http.StatusOK), &reply)
	if reply.Success || !strings.Contains(reply.Error, `state "Small" failed: TooSmall`) || len(reply.Reports) != 1 {
		t.Fatalf("fan(1, 2) = %+v, want the Fail state", reply)
	}

	var acc spec.InvokeAccepted
	json.Unmarshal(call("POST", "/api/v1/compositions/fan/invoke", `{"params": {"a": 10, "b": 10}, "async": true}`, http.StatusAccepted), &acc)
	testutil.Eventually(t, 10*time.Second, "the composition's async result", func() bool {
		var p spec.PollReply
		json.Unmarshal(call("GET", "/api/v1/poll/"+acc.RequestID, "", http.StatusOK), &p)
		if p.Status != "done" {
			return false
		}
		json.Unmarshal([]byte(p.Result), &reply)
		return true
	})
	if got, _ := json.Marshal(reply.Result); string(got) != `[40,21,"x"]` {
		t.Fatalf("async fan(10, 10) = %s", got)
	}
	call("DELETE", "/api/v1/compositions/fan", "", http.StatusNoContent)
	call("POST", "/api/v1/compositions/fan/invoke", `{}`, http.StatusNotFound)
}

// TestCompositionDAG runs a DAG with a fan-out and a fan-in: add, then
// double and inc at once, then their sum.
func TestCompositionDAG(t *testing.T) {
	b := startBox(t, 1, nil)
	if _, err := b.fcli("create", "-f", "sum", "--src", filepath.Join(root, "functions/sum/sum.wasm")); err != nil {
		t.Fatal(err)
	}
	post := func(path, body string, status int) []byte {
		t.Helper()
		resp, err := b.api("POST", path, body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			t.Fatalf("POST %s = %d %s, want %d", path, resp.StatusCode, data, status)
		}
		return data
	}
	post("/api/v1/compositions", `{"name": "diamond", "dag": {"nodes": [
	  {"name": "add", "function": "sum"},
	  {"name": "double", "function": "sum", "after": ["add"], "parameters": {"a.$": "$.add", "b.$": "$.add"}},
	  {"name": "inc", "function": "sum", "after": ["add"], "parameters": {"a.$": "$.add", "b": 1}},
	  {"name": "total", "function": "sum", "after": ["double", "inc"], "parameters": {"a.$": "$.double", "b.$": "$.inc"}}]}}`, http.StatusCreated)
	cycle := post("/api/v1/compositions", `{"name": "loop", "dag": {"nodes": [
	  {"name": "x", "function": "sum", "after": ["y"]}, {"name": "y", "function": "sum", "after": ["x"]}]}}`, http.StatusBadRequest)
	if !strings.Contains(string(cycle), "cycle") {
		t.Fatalf("a cyclic DAG: %s", cycle)
	}
	both := post("/api/v1/compositions", `{"name": "both", "dag": {"nodes": []}, "asl": `+aslDoc+`}`, http.StatusBadRequest)
	if !strings.Contains(string(both), "one document") {
		t.Fatalf("two documents: %s", both)
	}
	var reply spec.CompositionReply
	json.Unmarshal(post("/api/v1/compositions/diamond/invoke", `{"params": {"a": 4, "b": 7}}`, http.StatusOK), &reply)
	results := map[string]string{}
	for _, r := range reply.Reports {
		results[r.State] = r.Result
	}
	if got, _ := json.Marshal(reply.Result); !reply.Success || string(got) != "34" || len(reply.Reports) != 4 ||
		results["add"] != "11" || results["double"] != "22" || results["inc"] != "12" || results["total"] != "34" {
		t.Fatalf("diamond(4, 7) = %s, reports %v; want 34 from add 11, double 22, inc 12", got, results)
	}
	json.Unmarshal(post("/api/v1/compositions/diamond/invoke", `{"params": {"a": "x", "b": 7}}`, http.StatusOK), &reply)
	if reply.Success || !strings.Contains(reply.Error, `function "sum" returned an error`) || len(reply.Reports) != 1 {
		t.Fatalf("diamond(x, 7) = %+v, want add's failure and nothing after it", reply)
	}
}

// TestServerledgeWorkflow drives the same ASL document through Serverledge's
// workflow paths, over plain HTTP from loopback as its CLI does.
func TestServerledgeWorkflow(t *testing.T) {
	b := startBox(t, 1, nil)
	if _, err := b.fcli("create", "-f", "sum", "--src", filepath.Join(root, "functions/sum/sum.wasm")); err != nil {
		t.Fatal(err)
	}
	sl := newSLClient(t, b, "")
	create := map[string]string{"Name": "fan", "ASLSrc": base64.StdEncoding.EncodeToString([]byte(aslDoc))}
	sl.want(http.MethodPost, "/workflow/create", create, http.StatusOK, `{"Created":"fan"}`)
	sl.want(http.MethodPost, "/workflow/create", create, http.StatusConflict, `"workflow already exists"`)
	sl.want(http.MethodPost, "/workflow/create", map[string]string{"Name": "bad", "ASLSrc": base64.StdEncoding.EncodeToString([]byte(`{"StartAt": "nowhere"}`))}, http.StatusBadRequest, "")
	sl.want(http.MethodGet, "/workflow/list", nil, http.StatusOK, `["fan"]`)

	var resp struct {
		Success      bool
		Result       any
		Reports      map[string]slReport
		ResponseTime float64
	}
	check := func(data []byte, want string) {
		t.Helper()
		if err := json.Unmarshal(data, &resp); err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(resp.Result)
		if !resp.Success || string(got) != want || len(resp.Reports) != 3 || resp.ResponseTime <= 0 ||
			resp.Reports["Add"].Duration <= 0 || resp.Reports["Double"].Result == "" || resp.Reports["Inc"].Result == "" {
			t.Fatalf("workflow reply %s, want result %s and reports of Add, Double and Inc", data, want)
		}
	}
	check(sl.want(http.MethodPost, "/workflow/invoke/fan", slInvocation{Params: map[string]any{"a": 4, "b": 7}}, http.StatusOK, ""), `[22,12,"x"]`)
	if status, data := sl.do(http.MethodPost, "/workflow/invoke/fan", slInvocation{Params: map[string]any{"a": 1, "b": 2}}); status != http.StatusInternalServerError || !strings.Contains(string(data), "TooSmall") {
		t.Fatalf("the Fail state = %d %s", status, data)
	}
	var acc struct{ ReqId string }
	json.Unmarshal(sl.want(http.MethodPost, "/workflow/invoke/fan", slInvocation{Params: map[string]any{"a": 10, "b": 10}, Async: true}, http.StatusOK, ""), &acc)
	var polled []byte
	testutil.Eventually(t, 10*time.Second, "the workflow's async result", func() bool {
		status, data := sl.do(http.MethodGet, "/poll/"+acc.ReqId, nil)
		polled = data
		return status == http.StatusOK
	})
	check(polled, `[40,21,"x"]`)
	sl.want(http.MethodPost, "/workflow/invoke/nosuch", slInvocation{}, http.StatusNotFound, "")
	sl.want(http.MethodPost, "/workflow/delete", map[string]string{"Name": "fan"}, http.StatusOK, `{"Deleted":"fan"}`)
	sl.want(http.MethodPost, "/workflow/delete", map[string]string{"Name": "fan"}, http.StatusNotFound, "")
}
