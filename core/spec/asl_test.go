package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStateMachineValidate(t *testing.T) {
	f := func(doc string, want ...string) {
		t.Helper()
		_, err := ParseStateMachine([]byte(doc))
		if len(want) == 0 {
			if err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("%s: no error, want %q", doc, want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %q does not contain %q", doc, err, w)
			}
		}
	}
	f(`{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "f", "End": true}}}`)
	f(`{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}}`)
	f(`{"StartAt": "X", "States": {"A": {"Type": "Succeed"}}}`, `StartAt: no state "X"`)
	f(`{"StartAt": "A", "States": {"A": {"Type": "Task", "Next": "B"}}}`, `goes to "B"`, "needs a Resource")
	f(`{"StartAt": "A", "States": {"A": {"Type": "Pass"}}}`, "neither Next nor End")
	f(`{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Next": "A"}}}`, "both Next and End")
	f(`{"StartAt": "A", "States": {"A": {"Type": "Map", "End": true}}}`, `type "Map"`)
	f(`{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "ResultPath": "$..x"}}}`, `path "$..x"`)
	f(`{"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "A"}]}}}`, "exactly one comparison")
	f(`{"StartAt": "A", "States": {"A": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "Z", "States": {}}]}}}`, `StartAt (branch 0 of "A"): no state "Z"`)
	f(`[1]`, "cannot read the state machine")
}

func TestChoiceRule(t *testing.T) {
	input := map[string]any{"n": 5.0, "s": "x", "b": true, "o": map[string]any{"m": 1.0}}
	f := func(rule string, want bool) {
		t.Helper()
		var r ChoiceRule
		if err := json.Unmarshal([]byte(rule), &r); err != nil {
			t.Fatal(err)
		}
		if err := r.check(); err != nil {
			t.Fatalf("%s: %v", rule, err)
		}
		if got := r.Matches(input); got != want {
			t.Fatalf("%s on %v = %v, want %v", rule, input, got, want)
		}
	}
	f(`{"Variable": "$.n", "NumericGreaterThan": 4}`, true)
	f(`{"Variable": "$.n", "NumericLessThan": 5}`, false)
	f(`{"Variable": "$.n", "NumericLessThanEquals": 5}`, true)
	f(`{"Variable": "$.n", "NumericEquals": 5}`, true)
	f(`{"Variable": "$.o.m", "NumericGreaterThanEquals": 1}`, true)
	f(`{"Variable": "$.s", "StringEquals": "x"}`, true)
	f(`{"Variable": "$.s", "NumericEquals": 1}`, false)
	f(`{"Variable": "$.b", "BooleanEquals": false}`, false)
	f(`{"Variable": "$.missing", "StringEquals": "x"}`, false)
	f(`{"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Variable": "$.s", "StringEquals": "x"}]}`, true)
	f(`{"Or": [{"Variable": "$.n", "NumericEquals": 6}, {"Variable": "$.s", "StringEquals": "y"}]}`, false)
	f(`{"Not": {"Variable": "$.n", "NumericEquals": 6}}`, true)
}

func TestPlaceAndParameters(t *testing.T) {
	in := map[string]any{"a": 1.0, "o": map[string]any{"x": 2.0}}
	out, err := Place(in, "$.o.y", 3.0)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(out)
	if string(got) != `{"a":1,"o":{"x":2,"y":3}}` {
		t.Fatalf("Place = %s", got)
	}
	if orig, _ := json.Marshal(in); string(orig) != `{"a":1,"o":{"x":2}}` {
		t.Fatalf("Place changed its input: %s", orig)
	}
	if v, _ := Place(in, "$", "all"); v != "all" {
		t.Fatalf(`Place "$" = %v`, v)
	}
	if _, err := Place(5.0, "$.a", 1); err == nil {
		t.Fatal("Place into a number: no error")
	}
	p, err := Parameters(map[string]any{"a.$": "$.o.x", "b": "lit"}, in)
	if got, _ := json.Marshal(p); err != nil || string(got) != `{"a":2,"b":"lit"}` {
		t.Fatalf("Parameters = %s, %v", got, err)
	}
	if _, err := Parameters(map[string]any{"a.$": "$.nope"}, in); err == nil || !strings.Contains(err.Error(), `"$.nope"`) {
		t.Fatalf("Parameters of a missing path: %v", err)
	}
}

func FuzzParseStateMachine(f *testing.F) {
	f.Add([]byte(`{"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericGreaterThan": 1, "Next": "B"}], "Default": "B"},
	  "B": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "C", "States": {"C": {"Type": "Task", "Resource": "f", "End": true}}}]}}}`))
	f.Add([]byte(`{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "End": true}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseStateMachine(data)
		if err != nil {
			return
		}
		// What validates must survive a marshal and parse.
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseStateMachine(out); err != nil {
			t.Fatalf("%s validated, its re-marshalled form %s does not: %v", data, out, err)
		}
	})
}

func TestDAGValidate(t *testing.T) {
	f := func(d DAG, want ...string) {
		t.Helper()
		err := d.Validate()
		if len(want) == 0 {
			if err != nil {
				t.Fatalf("%+v: %v", d, err)
			}
			return
		}
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("%+v: error %v, want %q", d, err, w)
			}
		}
	}
	n := func(name, fn string, after ...string) DAGNode { return DAGNode{Name: name, Function: fn, After: after} }
	f(DAG{Nodes: []DAGNode{n("a", "f"), n("b", "f", "a"), n("c", "f", "a"), n("d", "f", "b", "c")}})
	f(DAG{Nodes: []DAGNode{n("a", "f"), n("b", "f", "a"), n("c", "f", "a")}}, "2 nodes come last")
	f(DAG{Nodes: []DAGNode{n("a", "f"), n("b", "f", "a"), n("c", "f", "a")}, Result: "b"})
	f(DAG{Nodes: []DAGNode{n("a", "f"), n("a", "")}}, `"a": the name is used twice`, `"a": no function`)
	f(DAG{Nodes: []DAGNode{n("a", "f", "zz")}}, `comes after "zz"`)
	f(DAG{Nodes: []DAGNode{n("a", "f", "b"), n("b", "f", "a"), n("c", "f")}}, "cycle")
	f(DAG{Nodes: []DAGNode{n("a", "f")}, Result: "q"}, `result: "q" is no node`)
	f(DAG{}, "no nodes")
}
