package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTaskGraphValidate(t *testing.T) {
	f := func(doc string, wantErr ...string) {
		t.Helper()
		var g TaskGraph
		if err := json.Unmarshal([]byte(doc), &g); err != nil {
			t.Fatal(err)
		}
		err := g.Validate()
		if len(wantErr) == 0 && err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		for _, w := range wantErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %v, want %q", doc, err, w)
			}
		}
	}
	const se = `"Start": {"Id": "s", "Type": "StartTask", "Next": "a"}, "End": {"Id": "e", "Type": "EndTask"}`
	f(`{"Name": "w", ` + se + `, "Tasks": {"a": {"Id": "a", "Type": "SimpleTask", "Func": "f", "OutputTo": "e"}}}`)
	f(`{"Name": "w", ` + se + `, "Tasks": {"a": {"Id": "a", "Type": "FunctionTask", "Func": "f", "NextTask": "e"}}}`)
	f(`{`+se+`, "Tasks": {"a": {"Id": "a", "Type": "SimpleTask", "OutputTo": "x"}}}`,
		"Name: a workflow needs one", `task "a": a SimpleTask needs its Func`, `task "a": hands its output to "x", which is no task`)
	f(`{"Name": "w", `+se+`, "Tasks": {"a": {"Id": "a", "Type": "ChoiceTask", "Alternatives": ["e"], "Conditions": [{"Type": "Near", "Op": [1]}, {"Type": "Eq", "Op": [1, 2]}]}}}`,
		"1 Alternatives for 2 Conditions", `condition 0: Type "Near"`)
	f(`{"Name": "w", `+se+`, "Tasks": {"a": {"Id": "a", "Type": "FanOutTask", "Mode": 1, "OutputTo": ["e"]}}}`, "scatter) is not supported")
	f(`{"Name": "w", `+se+`, "Tasks": {"a": {"Id": "a", "Type": "WaitNode", "OutputTo": "e"}}}`, `Type "WaitNode"`)
	f(`{"Name": "w", "Tasks": {}}`, "Start: want a StartTask", "End: want an EndTask")
}

func TestConditionMatches(t *testing.T) {
	f := func(cond string, input map[string]any, want bool) {
		t.Helper()
		var c Condition
		if err := json.Unmarshal([]byte(cond), &c); err != nil {
			t.Fatal(err)
		}
		if err := c.check(); err != nil {
			t.Fatalf("%s: %v", cond, err)
		}
		if got := c.Matches(input); got != want {
			t.Fatalf("%s on %v = %v, want %v", cond, input, got, want)
		}
	}
	in := map[string]any{"n": "12", "x": 3.0, "s": "abc", "b": true}
	f(`{"Type": "Greater", "Find": [true, false], "Op": ["n", 10]}`, in, true) // a -p string compares as a number
	f(`{"Type": "Smaller", "Find": [true, false], "Op": ["x", 3]}`, in, false)
	f(`{"Type": "Eq", "Find": [true, false], "Op": ["x", "3"]}`, in, true)
	f(`{"Type": "Diff", "Find": [true, false], "Op": ["s", "abd"]}`, in, true)
	f(`{"Type": "Greater", "Find": [true, false], "Op": ["s", "abb"]}`, in, true)
	f(`{"Type": "And", "Sub": [{"Type": "IsPresent", "Find": [true], "Op": ["s"]}, {"Type": "IsBoolean", "Find": [true], "Op": ["b"]}]}`, in, true)
	f(`{"Type": "Or", "Sub": [{"Type": "IsNull", "Find": [true], "Op": ["s"]}, {"Type": "IsNumeric", "Find": [true], "Op": ["s"]}]}`, in, false)
	f(`{"Type": "Not", "Sub": [{"Type": "IsString", "Find": [true], "Op": ["missing"]}]}`, in, true)
	f(`{"Type": "Const", "Find": [false], "Op": [true]}`, in, true)
}
