package spec

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// specErrors flattens err (possibly an errors.Join) into its *Error values.
func specErrors(t *testing.T, err error) []*Error {
	t.Helper()
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("error %v (%T) is not a *spec.Error", err, err)
		}
		out = append(out, se)
	}
	if err != nil {
		walk(err)
	}
	return out
}

func wasmFunc(name string, mapping map[string]string) Function {
	return Function{
		Name: name,
		ClassSpecification: ClassSpec{
			ID: name, FunctionType: "RUST_WASM", Version: "0.1",
			Code: "../../functions/" + name + "/" + name + ".wasm", Outputs: []string{},
		},
		OutputMapping: mapping,
		Annotations:   map[string]string{},
	}
}

func TestParseWorkflowExamples(t *testing.T) {
	f := func(file string, want *Workflow) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseWorkflow(file, data)
		if err != nil {
			t.Fatalf("%s: unexpected error: %v", file, err)
		}
		want.File = file
		if !reflect.DeepEqual(got, want) {
			gj, _ := json.MarshalIndent(got, "", " ")
			wj, _ := json.MarshalIndent(want, "", " ")
			t.Fatalf("%s: got\n%s\nwant\n%s", file, gj, wj)
		}
	}

	ponger := wasmFunc("ponger", map[string]string{"ping": "pinger"})
	ponger.ClassSpecification.ID = "pong"
	ponger.ClassSpecification.Code = "../../functions/pong/pong.wasm"
	ponger.ClassSpecification.Outputs = []string{"ping"}
	pinger := wasmFunc("pinger", map[string]string{"ponger": "ponger"})
	pinger.ClassSpecification.ID = "ping"
	pinger.ClassSpecification.Code = "../../functions/ping/ping.wasm"
	pinger.ClassSpecification.Outputs = []string{"ponger"}
	f("ping_pong.json", &Workflow{
		Functions:   []Function{ponger, pinger},
		Resources:   []Resource{},
		Annotations: map[string]string{},
	})

	sensor := wasmFunc("sensor_simulator", map[string]string{"output": "filter_in_range"})
	sensor.ClassSpecification.Outputs = []string{"output"}
	sensor.Annotations = map[string]string{"init-payload": "period=100,min-value=-100,max-value=100,seed=42"}
	filter := wasmFunc("filter_in_range", map[string]string{"output": "moving_avg", "error": "file-log"})
	filter.ClassSpecification.Outputs = []string{"output", "error"}
	filter.Annotations = map[string]string{"init-payload": "0.0,100.0"}
	avg := wasmFunc("moving_avg", map[string]string{"output": "redis", "error": "file-log"})
	avg.ClassSpecification.Outputs = []string{"output", "error"}
	avg.Annotations = map[string]string{"init-payload": "10"}
	f("tutorial-01.json", &Workflow{
		Functions: []Function{sensor, filter, avg},
		Resources: []Resource{
			{Name: "file-log", ClassType: "file-log", OutputMapping: map[string]string{},
				Configurations: map[string]string{"filename": "reading-errors.log"}},
			{Name: "redis", ClassType: "redis", OutputMapping: map[string]string{},
				Configurations: map[string]string{"url": "redis://127.0.0.1:6379/", "key": "tutorial-01"}},
		},
		Annotations: map[string]string{},
	})

	sensor2 := wasmFunc("sensor_simulator", map[string]string{"output": "delay"})
	sensor2.ClassSpecification.Outputs = []string{"output"}
	sensor2.Annotations = map[string]string{"init-payload": "period=1000,min-value=0,max-value=20"}
	delay := Function{
		Name: "delay",
		ClassSpecification: ClassSpec{ID: "delay", FunctionType: "CONTAINER", Version: "0.1",
			Code: "container:python-function:latest", Outputs: []string{}},
		OutputMapping: map[string]string{"output": "my-log"},
		Annotations:   map[string]string{},
	}
	f("container-python.json", &Workflow{
		Functions: []Function{sensor2, delay},
		Resources: []Resource{{Name: "my-log", ClassType: "file-log", OutputMapping: map[string]string{},
			Configurations: map[string]string{"filename": "my-local-file.log", "add-timestamp": "true"}}},
		Annotations: map[string]string{},
	})

	f("http_ingress.json", &Workflow{
		Functions: []Function{wasmFunc("http_processor", map[string]string{})},
		Resources: []Resource{{Name: "http-ingress-1-1", ClassType: "http-ingress",
			OutputMapping:  map[string]string{"new_request": "http_processor"},
			Configurations: map[string]string{"host": "demo.edgeless.com", "methods": "POST"}}},
		Annotations: map[string]string{},
	})
}

func TestValidateExamples(t *testing.T) {
	f := func(file string, wantPaths ...string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		w, err := ParseWorkflow(file, data)
		if err != nil {
			t.Fatalf("%s: unexpected error: %v", file, err)
		}
		var got []string
		for _, e := range specErrors(t, w.Validate()) {
			got = append(got, e.Path)
		}
		if !reflect.DeepEqual(got, wantPaths) {
			t.Fatalf("%s: got error paths %q, want %q", file, got, wantPaths)
		}
	}
	f("ping_pong.json")
	f("tutorial-01.json")
	f("http_ingress.json")
	f("container-python.json")
}

// A minimal valid workflow, for building error cases.
const minimal = `{"functions":[{"name":"f","class_specification":{"id":"f","function_type":"RUST_WASM","version":"0.1","code":"f.wasm","outputs":[]},"output_mapping":{},"annotations":{}}],"resources":[],"annotations":{}}`

func TestParseWorkflowErrors(t *testing.T) {
	f := func(name string, in string, wantPath string, wantMsgContains string) {
		t.Helper()
		w, err := ParseWorkflow("wf.json", []byte(in))
		if err == nil {
			t.Fatalf("%s: no error, parsed %+v", name, w)
		}
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("%s: error %v is %T, want *spec.Error", name, err, err)
		}
		if se.File != "wf.json" || se.Path != wantPath || !strings.Contains(se.Msg, wantMsgContains) {
			t.Fatalf("%s: got file %q path %q msg %q; want path %q, msg containing %q", name, se.File, se.Path, se.Msg, wantPath, wantMsgContains)
		}
		if se.Line < 1 || se.Col < 1 {
			t.Fatalf("%s: error %v has no position", name, err)
		}
		if !strings.Contains(err.Error(), "wf.json:") || !strings.Contains(err.Error(), wantPath) {
			t.Fatalf("%s: error text %q does not name the file and path", name, err)
		}
	}
	// Malformed JSON.
	f("empty", ``, "", "unexpected end of input")
	f("truncated", `{"functions":[`, "functions", "unexpected end of input")
	f("bad literal", `{"functions":[tru]}`, "functions[0]", "invalid character")
	f("missing colon", `{"functions" []}`, "functions", "after object key")
	f("trailing comma", `{"functions":[],}`, "", "malformed JSON")
	f("trailing data", minimal+` {}`, "", "unexpected data after the workflow object")
	f("trailing garbage", minimal+`x`, "", "unexpected data after the workflow object")
	f("not an object", `[]`, "", "want an object, got an array")
	f("null document", `null`, "", "want an object, got null")

	// Unknown and duplicate fields.
	f("unknown function field", strings.Replace(minimal, `"name":"f"`, `"name":"f","nmae":"g"`, 1), "functions[0].nmae", "unknown field")
	f("unknown class field", strings.Replace(minimal, `"version":"0.1"`, `"version":"0.1","code_type":"x"`, 1), "functions[0].class_specification.code_type", "unknown field")
	f("unknown resource field", `{"functions":[],"resources":[{"name":"r","class_type":"file-log","config":{}}]}`, "resources[0].config", "unknown field")
	f("odd key quoted in path", `{"functions":[],"resources":[{"name":"r","class_type":"file-log","a b":1}]}`, `resources[0]["a b"]`, "unknown field")
	f("duplicate field", strings.Replace(minimal, `"name":"f"`, `"name":"f","name":"g"`, 1), "functions[0].name", "duplicate key")
	f("duplicate map key", strings.Replace(minimal, `"output_mapping":{}`, `"output_mapping":{"a":"f","a":"f"}`, 1), "functions[0].output_mapping.a", "duplicate key")

	// Missing required fields.
	f("missing functions", `{"resources":[],"annotations":{}}`, "functions", "missing required field")
	f("missing resources", `{"functions":[]}`, "resources", "missing required field")
	f("missing name", strings.Replace(minimal, `"name":"f",`, ``, 1), "functions[0].name", "missing required field")
	f("missing class_specification", `{"functions":[{"name":"f"}],"resources":[]}`, "functions[0].class_specification", "missing required field")
	f("missing function_type", `{"functions":[{"name":"a","class_specification":{"id":"a","function_type":"RUST_WASM","version":"1"}},{"name":"b","class_specification":{"id":"b","version":"1"}}],"resources":[]}`,
		"functions[1].class_specification.function_type", "missing required field")
	f("missing id", strings.Replace(minimal, `"id":"f",`, ``, 1), "functions[0].class_specification.id", "missing required field")
	f("missing version", strings.Replace(minimal, `,"version":"0.1"`, ``, 1), "functions[0].class_specification.version", "missing required field")
	f("missing class_type", `{"functions":[],"resources":[{"name":"r"}]}`, "resources[0].class_type", "missing required field")

	// Wrong types.
	f("functions not array", `{"functions":{},"resources":[]}`, "functions", "want an array, got an object")
	f("functions null", `{"functions":null,"resources":[]}`, "functions", "want an array, got null")
	f("function not object", `{"functions":[1],"resources":[]}`, "functions[0]", "want an object, got a number")
	f("name not string", strings.Replace(minimal, `"name":"f"`, `"name":7`, 1), "functions[0].name", "want a string, got a number")
	f("name null", strings.Replace(minimal, `"name":"f"`, `"name":null`, 1), "functions[0].name", "want a string, got null")
	f("version number", strings.Replace(minimal, `"version":"0.1"`, `"version":0.1`, 1), "functions[0].class_specification.version", "want a string, got a number")
	f("code number", strings.Replace(minimal, `"code":"f.wasm"`, `"code":1`, 1), "functions[0].class_specification.code", "want a string or null")
	f("mapping value not string", strings.Replace(minimal, `"output_mapping":{}`, `"output_mapping":{"out":true}`, 1), "functions[0].output_mapping.out", "want a string, got a boolean")
	f("annotations array", strings.Replace(minimal, `"annotations":{}}]`, `"annotations":[]}]`, 1), "functions[0].annotations", "want an object, got an array")
	f("outputs element", strings.Replace(minimal, `"outputs":[]`, `"outputs":["a",2]`, 1), "functions[0].class_specification.outputs[1]", "want a string, got a number")
	f("configurations value", `{"functions":[],"resources":[{"name":"r","class_type":"c","configurations":{"k":1}}]}`, "resources[0].configurations.k", "want a string")

	// Binary.
	f("binary byte too big", strings.Replace(minimal, `"code":"f.wasm"`, `"binary":[0,256]`, 1), "functions[0].class_specification.binary[1]", "want a byte value (0..255), got 256")
	f("binary negative", strings.Replace(minimal, `"code":"f.wasm"`, `"binary":[-1]`, 1), "functions[0].class_specification.binary[0]", "got -1")
	f("binary fraction", strings.Replace(minimal, `"code":"f.wasm"`, `"binary":[1.5]`, 1), "functions[0].class_specification.binary[0]", "got 1.5")
	f("binary string element", strings.Replace(minimal, `"code":"f.wasm"`, `"binary":["a"]`, 1), "functions[0].class_specification.binary[0]", "got a string")
	f("binary bad base64", strings.Replace(minimal, `"code":"f.wasm"`, `"binary":"!!!"`, 1), "functions[0].class_specification.binary", "invalid base64")
	f("binary object", strings.Replace(minimal, `"code":"f.wasm"`, `"binary":{}`, 1), "functions[0].class_specification.binary", "want an array of byte values or a base64 string")
}

func TestParseWorkflowPosition(t *testing.T) {
	f := func(name string, in string, wantLine, wantCol int) {
		t.Helper()
		_, err := ParseWorkflow("wf.json", []byte(in))
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("%s: got %v, want *spec.Error", name, err)
		}
		if se.Line != wantLine || se.Col != wantCol {
			t.Fatalf("%s: got %d:%d (%v), want %d:%d", name, se.Line, se.Col, err, wantLine, wantCol)
		}
	}
	f("syntax error", "{\n  \"functions\": [\n    x\n", 3, 5)
	f("unknown field", "{\n\t\"functions\": [],\n\t\"resources\": [{\"name\": \"r\", \"class_type\": \"x\",\n\t\"bogus\": 1}]\n}", 4, 2)
	f("wrong type", "{\"functions\": [], \"resources\": 3}", 1, 32)
	f("missing field reported at the object", "{\"functions\": [\n  {\"name\": \"f\"}\n], \"resources\": []}", 2, 3)
	f("end of input", "{\"functions\": [\n", 2, 1)
	f("trailing data", "{\"functions\": [], \"resources\": []}\n\n  }", 3, 3)
}

func TestParseWorkflowLenient(t *testing.T) {
	in := `{"functions":[{"name":"f","class_specification":{"id":"f","function_type":"RUST_WASM","version":"0.1","code":null,"binary":null}}],
		"resources":[{"name":"r","class_type":"file-log","output_mapping":null}]}`
	w, err := ParseWorkflow("wf.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Workflow{
		File: "wf.json",
		Functions: []Function{{Name: "f",
			ClassSpecification: ClassSpec{ID: "f", FunctionType: "RUST_WASM", Version: "0.1", Outputs: []string{}},
			OutputMapping:      map[string]string{}, Annotations: map[string]string{}}},
		Resources:   []Resource{{Name: "r", ClassType: "file-log", OutputMapping: map[string]string{}, Configurations: map[string]string{}}},
		Annotations: map[string]string{},
	}
	if !reflect.DeepEqual(w, want) {
		t.Fatalf("got %+v\nwant %+v", w, want)
	}
}

func TestBinary(t *testing.T) {
	f := func(name, binary string, want []byte) {
		t.Helper()
		in := strings.Replace(minimal, `"code":"f.wasm"`, `"binary":`+binary, 1)
		w, err := ParseWorkflow("wf.json", []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := w.Functions[0].ClassSpecification.Binary; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %v, want %v", name, got, want)
		}
	}
	f("edgeless array", `[0, 97, 115, 109, 255]`, []byte{0, 'a', 's', 'm', 255})
	f("empty array", `[]`, nil)
	f("empty base64", `""`, nil)
	f("base64", `"AGFzbf8="`, []byte{0, 'a', 's', 'm', 255})
	f("null", `null`, nil)

	// Marshalling writes base64, and the result parses back to the same workflow.
	in := strings.Replace(minimal, `"code":"f.wasm"`, `"binary":[0,97,115,109,255]`, 1)
	w, err := ParseWorkflow("wf.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"binary":"AGFzbf8="`) {
		t.Fatalf("binary not written as base64: %s", out)
	}
	if strings.Contains(string(out), `"code"`) || strings.Contains(string(out), `"File"`) {
		t.Fatalf("empty code or the file name written: %s", out)
	}
	back, err := ParseWorkflow("wf.json", out)
	if err != nil {
		t.Fatalf("cannot parse marshalled workflow %s: %v", out, err)
	}
	if !reflect.DeepEqual(back, w) {
		t.Fatalf("round trip changed the workflow:\n%+v\n%+v", back, w)
	}
}

func TestValidateErrors(t *testing.T) {
	f := func(name string, in string, wantPath string, wantMsgContains string) {
		t.Helper()
		w, err := ParseWorkflow("wf.json", []byte(in))
		if err != nil {
			t.Fatalf("%s: parse: %v", name, err)
		}
		errs := specErrors(t, w.Validate())
		for _, e := range errs {
			if e.File == "wf.json" && e.Path == wantPath && strings.Contains(e.Msg, wantMsgContains) {
				return
			}
		}
		t.Fatalf("%s: no error at %q containing %q; got %v", name, wantPath, wantMsgContains, errs)
	}
	fn := func(name, extra string) string {
		return `{"name":"` + name + `","class_specification":{"id":"x","function_type":"RUST_WASM","version":"0.1","code":"x.wasm"}` + extra + `}`
	}
	wf := func(functions, resources string) string {
		return `{"functions":[` + functions + `],"resources":[` + resources + `]}`
	}
	f("empty function name", wf(fn("", ""), ""), "functions[0].name", "empty name")
	f("empty resource name", wf("", `{"name":"","class_type":"file-log"}`), "resources[0].name", "empty name")
	f("duplicate function", wf(fn("a", "")+","+fn("a", ""), ""), "functions[1].name", `duplicate name "a" (also at functions[0].name)`)
	f("duplicate across kinds", wf(fn("a", ""), `{"name":"a","class_type":"file-log"}`), "resources[0].name", `duplicate name "a"`)
	f("empty channel", wf(fn("a", `,"output_mapping":{"":"a"}`), ""), `functions[0].output_mapping[""]`, "empty channel name")
	f("empty target", wf(fn("a", `,"output_mapping":{"out":""}`), ""), "functions[0].output_mapping.out", "empty target")
	f("unknown target", wf(fn("a", `,"output_mapping":{"out":"b"}`), ""), "functions[0].output_mapping.out", `unknown target "b"`)
	f("self target", wf(fn("a", `,"output_mapping":{"out":"self"}`), ""), "functions[0].output_mapping.out", `"self" without a mapping`)
	f("resource unknown target", wf("", `{"name":"r","class_type":"http-ingress","output_mapping":{"new_request":"nobody"}}`), "resources[0].output_mapping.new_request", `unknown target "nobody"`)
	f("resource empty channel", wf(fn("a", ""), `{"name":"r","class_type":"http-ingress","output_mapping":{"":"a"}}`), `resources[0].output_mapping[""]`, "empty channel name")
	f("unknown function type", strings.Replace(wf(fn("a", ""), ""), "RUST_WASM", "RUST_X86", 1), "functions[0].class_specification.function_type", `unknown function type "RUST_X86" (known: RUST_WASM, WASM, RUST_NATIVE, NATIVE, CONTAINER, python310, custom)`)
	f("empty function type", strings.Replace(wf(fn("a", ""), ""), "RUST_WASM", "", 1), "functions[0].class_specification.function_type", `unknown function type ""`)
	f("no code", strings.Replace(wf(fn("a", ""), ""), `,"code":"x.wasm"`, "", 1), "functions[0].class_specification", "neither code nor binary")
	f("empty class type", wf("", `{"name":"r","class_type":""}`), "resources[0].class_type", "empty class type")
	f("python310 without handler", strings.Replace(wf(fn("a", ""), ""), "RUST_WASM", "python310", 1), "functions[0].annotations", `a python310 function needs "handler"`)
	f("custom without image", strings.Replace(wf(fn("a", `,"annotations":{"handler":"m.h"}`), ""), "RUST_WASM", "custom", 1), "functions[0].annotations", `needs "custom_image"`)
	f("bad max_instances", wf(fn("a", `,"annotations":{"max_instances":"-1"}`), ""), "functions[0].annotations.max_instances", `bad value "-1"`)
	f("bad node id", wf(fn("a", `,"annotations":{"node_id_match_any":"nope"}`), ""), "functions[0].annotations.node_id_match_any", `"nope" is not a node UUID`)
	f("bad tee", wf(fn("a", `,"annotations":{"tee":"yes"}`), ""), "functions[0].annotations.tee", `want "required" or "not-required"`)
	f("bad resource requirement", wf("", `{"name":"r","class_type":"file-log","configurations":{"tpm":"maybe"}}`), "resources[0].configurations.tpm", `bad value "maybe"`)
}

func TestValidateReportsAll(t *testing.T) {
	in := `{"functions":[
		{"name":"","class_specification":{"id":"x","function_type":"JS","version":"1"},"output_mapping":{"o":"ghost"},"annotations":{"max_instances":"many"}},
		{"name":"r","class_specification":{"id":"x","function_type":"WASM","version":"1","binary":"AA=="}}],
		"resources":[{"name":"r","class_type":""}]}`
	w, err := ParseWorkflow("wf.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range specErrors(t, w.Validate()) {
		got = append(got, e.Path)
	}
	want := []string{
		"functions[0].name",
		"resources[0].name",
		"functions[0].class_specification.function_type",
		"functions[0].class_specification",
		"functions[0].output_mapping.o",
		"functions[0].annotations.max_instances",
		"resources[0].class_type",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got error paths\n%q\nwant\n%q", got, want)
	}
}

func TestFunctionTypes(t *testing.T) {
	f := func(in string, want string, wantOK bool) {
		t.Helper()
		got, ok := CanonicalFunctionType(in)
		if got != want || ok != wantOK || IsKnownFunctionType(in) != wantOK {
			t.Fatalf("CanonicalFunctionType(%q) = %q, %v; want %q, %v", in, got, ok, want, wantOK)
		}
	}
	f("RUST_WASM", "RUST_WASM", true)
	f("WASM", "RUST_WASM", true)
	f("RUST_NATIVE", "RUST_NATIVE", true)
	f("NATIVE", "RUST_NATIVE", true)
	f("rust_wasm", "", false)
	f("native", "", false)
	f("RUST_X86", "", false)
	f("CONTAINER", "CONTAINER", true)
	f("python310", "python310", true)
	f("custom", "custom", true)
	f("container", "", false)
	f("", "", false)
}

func TestLoadWorkflow(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, data string) string {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	code := "\x00asm\x01\x00\x00\x00"
	write("functions/ping/ping.wasm", code)
	write("functions/pong/pong.wasm", code+"pong")
	ping, err := os.ReadFile(filepath.Join("testdata", "ping_pong.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := write("examples/ping_pong/workflow.json", string(ping))

	w, err := LoadWorkflow(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.File != path {
		t.Fatalf("File = %q, want %q", w.File, path)
	}
	if got := string(w.Functions[0].ClassSpecification.Binary); got != code+"pong" {
		t.Fatalf("ponger binary = %q", got)
	}
	if got := string(w.Functions[1].ClassSpecification.Binary); got != code {
		t.Fatalf("pinger binary = %q", got)
	}

	// An inline binary wins over code, which is then not read.
	inline := strings.Replace(string(ping), `"code": "../../functions/pong/pong.wasm",`, `"code": "missing.wasm", "binary": [1, 2],`, 1)
	w, err = LoadWorkflow(write("examples/ping_pong/inline.json", inline))
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Functions[0].ClassSpecification.Binary; !reflect.DeepEqual(got, []byte{1, 2}) {
		t.Fatalf("inline binary = %v", got)
	}

	// An absolute code path is used as it is.
	abs := strings.Replace(string(ping), "../../functions/pong/pong.wasm", filepath.Join(dir, "functions/ping/ping.wasm"), 1)
	w, err = LoadWorkflow(write("examples/abs/abs.json", abs))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(w.Functions[0].ClassSpecification.Binary); got != code {
		t.Fatalf("absolute code binary = %q", got)
	}

	f := func(name string, in string, wantPath string, wantMsgContains string) {
		t.Helper()
		p := write("examples/bad/"+strings.ReplaceAll(name, " ", "_")+".json", in)
		_, err := LoadWorkflow(p)
		for _, e := range specErrors(t, err) {
			if e.File == p && e.Path == wantPath && strings.Contains(e.Msg, wantMsgContains) {
				return
			}
		}
		t.Fatalf("%s: no error at %q containing %q; got %v", name, wantPath, wantMsgContains, err)
	}
	missing := strings.Replace(string(ping), "../../functions/ping/ping.wasm", "nothere.wasm", 1)
	f("missing code", missing, "functions[1].class_specification.code", filepath.Join(dir, "examples/bad/nothere.wasm"))
	f("code is a directory", strings.Replace(string(ping), "../../functions/ping/ping.wasm", "../../functions/ping", 1),
		"functions[1].class_specification.code", "not a regular file")
	f("parse error", `{"functions":[],"resources":[{"name":"r","class_type":"file-log","x":1}]}`, "resources[0].x", "unknown field")
	f("validation error", strings.Replace(string(ping), `"ping": "pinger"`, `"ping": "pingr"`, 1), "functions[0].output_mapping.ping", `unknown target "pingr"`)

	_, err = LoadWorkflow(write("examples/bad/missing2.json", missing))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing code file: errors.Is(err, fs.ErrNotExist) is false for %v", err)
	}
	_, err = LoadWorkflow(filepath.Join(dir, "no-such.json"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no-such.json") {
		t.Fatalf("missing workflow file: got %v", err)
	}
}

func FuzzParseWorkflow(f *testing.F) {
	for _, name := range []string{"ping_pong.json", "tutorial-01.json", "container-python.json", "http_ingress.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWorkflow("fuzz.json", data)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Line < 1 || se.Col < 1 {
				t.Fatalf("error %v is not a positioned *spec.Error", err)
			}
			return
		}
		_ = w.Validate()
		// What parses must survive a marshal and parse unchanged.
		out, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseWorkflow("fuzz.json", out)
		if err != nil {
			t.Fatalf("cannot parse marshalled %s: %v", out, err)
		}
		if !reflect.DeepEqual(back, w) {
			t.Fatalf("round trip changed %q:\n%+v\n%+v", data, w, back)
		}
	})
}

// TestUnknownTopLevelFields: EDGELESS skips fields it does not know at the
// top of a workflow (users add a "description"), and so does ParseWorkflow,
// listing them for a warning.
func TestUnknownTopLevelFields(t *testing.T) {
	w, err := ParseWorkflow("w.json", []byte(`{"description":"a demo","functions":[],"resources":[],"annotations":{},"meta":{"a":[1,{"b":null}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(w.Ignored, ",") != "description,meta" {
		t.Fatalf("Ignored = %q, want description and meta", w.Ignored)
	}
}
