package inabox

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/internal/redistest"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// The bodies serverledge-cli sends, field for field as its Go structs
// marshal them (internal/cli/cli.go of Serverledge), besides slFunction and
// slInvocation: an invocation from the CLI always has CanDoOffloading true
// and QoSMaxRespT -1 unless --resptime is given.
type (
	cliWorkflowInvocation struct {
		Params          map[string]any
		QoS             struct{ Class, MaxRespT float64 }
		CanDoOffloading bool
		Async           bool
	}
	cliResume struct {
		ReqId string
		cliWorkflowInvocation
		Plan struct{ ToExecute []string }
	}
	cliWorkflowReply struct {
		Success      bool
		Result       map[string]any
		Reports      map[string]slReport
		ResponseTime float64
	}
)

// cliTar archives src as serverledge-cli's --src does: a plain tar whose
// names are relative to src's parent directory, regular files only.
func cliTar(t *testing.T, src string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	parent := filepath.Dir(src)
	err := filepath.Walk(src, func(file string, fi fs.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		h, err := tar.FileInfoHeader(fi, fi.Name())
		if err != nil {
			return err
		}
		h.Name = strings.TrimPrefix(strings.Replace(file, parent, "", -1), string(filepath.Separator))
		data, err := os.ReadFile(file)
		if err == nil {
			err = tw.WriteHeader(h)
		}
		if err == nil {
			_, err = tw.Write(data)
		}
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// printable checks what the CLI does with every reply it prints: indent it
// as JSON.
func printable(t *testing.T, data []byte) {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "\t"); err != nil {
		t.Fatalf("serverledge-cli cannot print %q: %v", data, err)
	}
}

// TestServerledgeCLI replays serverledge-cli's commands with the bodies it
// builds and checks what it parses and prints: create from a file and from a
// directory, invoke with -p (strings), -j (JSON as is), -c performance,
// --resptime and -a, poll, list, status, delete.
func TestServerledgeCLI(t *testing.T) {
	b := startBox(t, 1, nil)
	sl := newSLClient(t, b, "")
	ok := func(method, path string, body any) []byte {
		t.Helper()
		data := sl.want(method, path, body, http.StatusOK, "")
		printable(t, data)
		return data
	}
	// create -f sum --runtime wasm --src functions/sum/sum.wasm (the CLI's
	// defaults: --memory 128, --cpu 0).
	ok(http.MethodPost, "/create", slFunction{Name: "sum", Runtime: "wasm", MemoryMB: 128, TarFunctionCode: cliTar(t, filepath.Join(root, "functions/sum/sum.wasm"))})
	// --src a directory: the module is dir/sum.wasm next to the C source.
	dir := t.TempDir()
	for _, f := range []string{"sum.wasm", "sum.c"} {
		data, _ := os.ReadFile(filepath.Join(root, "functions/sum", f))
		os.WriteFile(filepath.Join(dir, f), data, 0o644)
	}
	ok(http.MethodPost, "/create", slFunction{Name: "sumdir", Runtime: "wasm", MemoryMB: 128, TarFunctionCode: cliTar(t, dir)})
	// --src http://…: the CLI sends the URL itself.
	if status, data := sl.do(http.MethodPost, "/create", slFunction{Name: "u", Runtime: "wasm", MemoryMB: 128,
		TarFunctionCode: base64.StdEncoding.EncodeToString([]byte("https://example.com/f.tar"))}); status != http.StatusBadRequest || !strings.Contains(string(data), "holds a URL") {
		t.Fatalf("create from a URL = %d %q", status, data)
	}
	if got := string(ok(http.MethodGet, "/function", nil)); got != "[\"sum\",\"sumdir\"]\n" {
		t.Fatalf("list = %q", got)
	}

	// invoke -f sum -p a:2 -p b:3 (values are strings), then -j with
	// numbers, -c performance (class 1) and --resptime 5.
	r := sl.report(ok(http.MethodPost, "/invoke/sum", slInvocation{Params: map[string]any{"a": "2", "b": "3"}, QoSMaxRespT: -1, CanDoOffloading: true}), "5", false)
	if r.ResponseTime <= 0 {
		t.Fatalf("report %+v", r)
	}
	sl.report(ok(http.MethodPost, "/invoke/sum", slInvocation{Params: map[string]any{"a": 1.5, "b": 2}, QoSClass: 1, QoSMaxRespT: 5, CanDoOffloading: true, ReturnOutput: true}), "3.5", true)
	sl.report(ok(http.MethodPost, "/invoke/sumdir", slInvocation{Params: map[string]any{"a": "1", "b": "1"}, QoSMaxRespT: -1, CanDoOffloading: true}), "2", false)

	// invoke -a, then poll --request ID: 404 (an empty body) until done.
	var acc struct{ ReqId string }
	json.Unmarshal(ok(http.MethodPost, "/invoke/sum", slInvocation{Params: map[string]any{"a": "20", "b": "22"}, QoSMaxRespT: -1, CanDoOffloading: true, Async: true}), &acc)
	var polled []byte
	testutil.Eventually(t, 10*time.Second, "the async result", func() bool {
		status, data := sl.do(http.MethodGet, "/poll/"+acc.ReqId, nil)
		polled = data
		return status == http.StatusOK
	})
	printable(t, polled)
	sl.report(polled, "42", true)

	var st map[string]json.RawMessage
	json.Unmarshal(ok(http.MethodGet, "/status", nil), &st)
	for _, k := range []string{"Url", "AvailableWarmContainers", "AvailableMemMB", "AvailableCPUs", "Coordinates", "LoadAvg"} {
		if st[k] == nil {
			t.Fatalf("status lacks %s: %v", k, st)
		}
	}
	if string(st["Url"]) != `"http://`+b.Con.Addr()+`"` || string(st["AvailableWarmContainers"]) != `{"sum":1,"sumdir":1}` {
		t.Fatalf("status Url %s, warm %s", st["Url"], st["AvailableWarmContainers"])
	}
	if got := string(ok(http.MethodPost, "/delete", slFunction{Name: "sumdir"})); got != "{\"Deleted\":\"sumdir\"}\n" {
		t.Fatalf("delete = %q", got)
	}
}

// checkGraph is a task graph as Serverledge's /workflow/import takes it:
// add a and b; a sum above 10 passes, another fails; and a fan-out adding
// twice at once whose branches meet at a fan-in.
const checkGraph = `{
  "Name": "check",
  "Start": {"Id": "start", "Type": "StartTask", "Next": "add"},
  "End": {"Id": "end", "Type": "EndTask"},
  "Tasks": {
    "start": {"Id": "start", "Type": "StartTask", "Next": "add"},
    "add": {"Id": "add", "Type": "SimpleTask", "Func": "sum", "OutputTo": "big"},
    "big": {"Id": "big", "Type": "ChoiceTask", "Alternatives": ["keep", "small"], "Conditions": [
      {"Type": "Greater", "Find": [true, false], "Op": ["result", 10], "Sub": null},
      {"Type": "Const", "Find": [false], "Op": [true], "Sub": null}]},
    "keep": {"Id": "keep", "Type": "PassTask", "OutputTo": "end"},
    "small": {"Id": "small", "Type": "Fail", "Error": "TooSmall", "Cause": "the sum is 10 or less"},
    "end": {"Id": "end", "Type": "EndTask"}
  }
}`

const fanGraph = `{
  "Name": "fan",
  "Start": {"Id": "s", "Type": "StartTask", "Next": "out"},
  "End": {"Id": "e", "Type": "EndTask"},
  "Tasks": {
    "out": {"Id": "out", "Type": "FanOutTask", "OutputTo": ["x", "y"], "FanOutDegree": 2, "Mode": 0},
    "x": {"Id": "x", "Type": "SimpleTask", "Func": "sum", "OutputTo": "in"},
    "y": {"Id": "y", "Type": "FunctionTask", "Func": "sum", "NextTask": "in"},
    "in": {"Id": "in", "Type": "FanInTask", "OutputTo": "e", "FanInDegree": 2}
  }
}`

// TestServerledgeWorkflowImportResume imports Serverledge task graphs on
// two controllers sharing Redis, runs them, and resumes on the second a run
// that failed on the first: asynchronous results and run progress are
// shared, so either controller answers a poll or a resume.
func TestServerledgeWorkflowImportResume(t *testing.T) {
	rd := redistest.Start(t)
	shared := func(c *Config) { c.Controller.RedisURL = rd.URL() }
	boxes := []*box{startBox(t, 1, shared), startBox(t, 1, shared)}
	var cls []*slClient
	for _, b := range boxes {
		sl := newSLClient(t, b, "")
		sl.want(http.MethodPost, "/create", slFunction{Name: "sum", Runtime: "wasm", MemoryMB: 16, TarFunctionCode: cliTar(t, filepath.Join(root, "functions/sum/sum.wasm"))}, http.StatusOK, "")
		for _, g := range []string{checkGraph, fanGraph} {
			sl.want(http.MethodPost, "/workflow/import", json.RawMessage(g), http.StatusOK, "")
		}
		cls = append(cls, sl)
	}
	a, b := cls[0], cls[1]
	a.want(http.MethodPost, "/workflow/import", json.RawMessage(checkGraph), http.StatusConflict, `"workflow already exists"`)
	a.want(http.MethodPost, "/workflow/import", json.RawMessage(strings.Replace(strings.Replace(checkGraph, `"check"`, `"c1"`, 1), `"sum"`, `"nosuch"`, 1)), http.StatusBadRequest, `"workflow with non-existing function nosuch"`)
	if status, data := a.do(http.MethodPost, "/workflow/import", json.RawMessage(strings.Replace(strings.Replace(checkGraph, `"check"`, `"c2"`, 1), `"OutputTo": "big"`, `"OutputTo": "nowhere"`, 1))); status != http.StatusBadRequest || !strings.Contains(string(data), `hands its output to \"nowhere\", which is no task`) {
		t.Fatalf("a graph with a dangling edge = %d %s", status, data)
	}
	a.want(http.MethodGet, "/workflow/list", nil, http.StatusOK, `["check","fan"]`)

	reply := func(data []byte, want string, reports ...string) cliWorkflowReply {
		t.Helper()
		var r cliWorkflowReply
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		got, _ := json.Marshal(r.Result)
		if !r.Success || string(got) != want || len(r.Reports) != len(reports) || r.ResponseTime <= 0 {
			t.Fatalf("workflow reply %s, want result %s and %d reports", data, want, len(reports))
		}
		for _, name := range reports {
			if rep, ok := r.Reports[name]; !ok || rep.Result == "" || rep.Duration <= 0 {
				t.Fatalf("workflow reply %s: no report of %q", data, name)
			}
		}
		return r
	}
	inv := cliWorkflowInvocation{Params: map[string]any{"a": "4", "b": 7}, CanDoOffloading: true}
	inv.QoS.MaxRespT = 5
	reply(a.want(http.MethodPost, "/workflow/invoke/check", inv, http.StatusOK, ""), `{"result":11}`, "add")
	inv.Params = map[string]any{"a": 1, "b": 2}
	if status, data := a.do(http.MethodPost, "/workflow/invoke/check", inv); status != http.StatusInternalServerError || !strings.Contains(string(data), "TooSmall") {
		t.Fatalf("the Fail task = %d %s", status, data)
	}
	inv.Params = map[string]any{"a": 2, "b": 3}
	reply(b.want(http.MethodPost, "/workflow/invoke/fan", inv, http.StatusOK, ""), `{"0":{"result":5},"1":{"result":5}}`, "x", "y")

	// An async run that fails at its first task, polled on the other
	// controller, then resumed there: with new input and a plan of one task
	// it stops after it (no result yet); resumed again it ends.
	inv.Params, inv.Async = map[string]any{"a": "x", "b": 1}, true
	var acc struct{ ReqId string }
	json.Unmarshal(a.want(http.MethodPost, "/workflow/invoke/check", inv, http.StatusOK, ""), &acc)
	var polled []byte
	testutil.Eventually(t, 10*time.Second, "the failed run's result on the other controller", func() bool {
		status, data := b.do(http.MethodGet, "/poll/"+acc.ReqId, nil)
		polled = data
		return status == http.StatusOK
	})
	if !strings.Contains(string(polled), `"Success":false`) {
		t.Fatalf("the failed run polled: %s", polled)
	}
	resume := cliResume{ReqId: acc.ReqId}
	resume.Params = map[string]any{"a": 7, "b": 8}
	resume.Plan.ToExecute = []string{"add"}
	data := b.want(http.MethodPost, "/workflow/resume/check", resume, http.StatusOK, "")
	if r := (cliWorkflowReply{}); json.Unmarshal(data, &r) != nil || !r.Success || r.Result != nil || r.Reports["add"].Result != "15" {
		t.Fatalf("a resume that stops where its plan ends: %s", data)
	}
	reply(a.want(http.MethodPost, "/workflow/resume/check", cliResume{ReqId: acc.ReqId}, http.StatusOK, ""), `{"result":15}`, "add")
	// Finished runs leave nothing to resume.
	a.want(http.MethodPost, "/workflow/resume/check", cliResume{ReqId: acc.ReqId}, http.StatusNotFound, "")
	a.want(http.MethodPost, "/workflow/resume/nosuch", cliResume{ReqId: acc.ReqId}, http.StatusNotFound, "")

	// A function's async result, shared the same way.
	json.Unmarshal(a.want(http.MethodPost, "/invoke/sum", slInvocation{Params: map[string]any{"a": "20", "b": "22"}, Async: true}, http.StatusOK, ""), &acc)
	testutil.Eventually(t, 10*time.Second, "the async result on the other controller", func() bool {
		status, data := b.do(http.MethodGet, "/poll/"+acc.ReqId, nil)
		polled = data
		return status == http.StatusOK
	})
	b.report(polled, "42", true)
}
