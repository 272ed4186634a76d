package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// StateMachine is a function composition in the subset of AWS Step
// Functions' Amazon States Language that edgeless runs: Task (a standalone
// function, named by Resource), Choice, Parallel, Pass, Succeed and Fail,
// with InputPath, Parameters, ResultPath and OutputPath of the form "$" or
// "$.a.b".
type StateMachine struct {
	Comment string            `json:"Comment,omitempty"`
	StartAt string            `json:"StartAt"`
	States  map[string]*State `json:"States"`
}

// State is one state of a StateMachine; which fields count depends on Type.
type State struct {
	Type       string          `json:"Type"`
	Next       string          `json:"Next,omitempty"`
	End        bool            `json:"End,omitempty"`
	Resource   string          `json:"Resource,omitempty"` // Task: the function
	InputPath  string          `json:"InputPath,omitempty"`
	Parameters map[string]any  `json:"Parameters,omitempty"` // keys ending in ".$" take a path of the input
	ResultPath string          `json:"ResultPath,omitempty"`
	OutputPath string          `json:"OutputPath,omitempty"`
	Result     json.RawMessage `json:"Result,omitempty"`   // Pass
	Choices    []ChoiceRule    `json:"Choices,omitempty"`  // Choice
	Default    string          `json:"Default,omitempty"`  // Choice
	Branches   []*StateMachine `json:"Branches,omitempty"` // Parallel
	Error      string          `json:"Error,omitempty"`    // Fail
	Cause      string          `json:"Cause,omitempty"`    // Fail
}

// ChoiceRule is one rule of a Choice state: a comparison of the value at
// Variable, or And/Or/Not of rules, and the state to go to when it holds.
type ChoiceRule struct {
	Variable                 string       `json:"Variable,omitempty"`
	StringEquals             *string      `json:"StringEquals,omitempty"`
	NumericEquals            *float64     `json:"NumericEquals,omitempty"`
	NumericLessThan          *float64     `json:"NumericLessThan,omitempty"`
	NumericGreaterThan       *float64     `json:"NumericGreaterThan,omitempty"`
	NumericLessThanEquals    *float64     `json:"NumericLessThanEquals,omitempty"`
	NumericGreaterThanEquals *float64     `json:"NumericGreaterThanEquals,omitempty"`
	BooleanEquals            *bool        `json:"BooleanEquals,omitempty"`
	And                      []ChoiceRule `json:"And,omitempty"`
	Or                       []ChoiceRule `json:"Or,omitempty"`
	Not                      *ChoiceRule  `json:"Not,omitempty"`
	Next                     string       `json:"Next,omitempty"`
}

// ParseStateMachine reads and validates an ASL document.
func ParseStateMachine(data []byte) (*StateMachine, error) {
	var m StateMachine
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cannot read the state machine: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate reports every problem of the state machine at once: unknown
// state types, transitions to states that do not exist, states that neither
// go on nor end, paths edgeless cannot evaluate.
func (m *StateMachine) Validate() error {
	var errs []error
	m.validate("", &errs)
	return errors.Join(errs...)
}

func (m *StateMachine) validate(where string, errs *[]error) {
	bad := func(state, format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("state %q%s: %s", state, where, fmt.Sprintf(format, args...)))
	}
	if _, ok := m.States[m.StartAt]; !ok {
		*errs = append(*errs, fmt.Errorf("StartAt%s: no state %q", where, m.StartAt))
	}
	names := make([]string, 0, len(m.States))
	for name := range m.States {
		names = append(names, name)
	}
	slices.Sort(names)
	to := func(name, next string) {
		if _, ok := m.States[next]; !ok {
			bad(name, "goes to %q, which is no state", next)
		}
	}
	for _, name := range names {
		s := m.States[name]
		if s == nil {
			bad(name, "empty")
			continue
		}
		for _, p := range []string{s.InputPath, s.ResultPath, s.OutputPath} {
			if _, err := splitPath(p); err != nil {
				bad(name, "%v", err)
			}
		}
		switch s.Type {
		case "Task", "Pass", "Parallel":
			switch {
			case s.End && s.Next != "":
				bad(name, "has both Next and End")
			case s.Next != "":
				to(name, s.Next)
			case !s.End:
				bad(name, "has neither Next nor End")
			}
			if s.Type == "Task" && s.Resource == "" {
				bad(name, "a Task needs a Resource: the function's name")
			}
			if s.Type == "Parallel" {
				if len(s.Branches) == 0 {
					bad(name, "a Parallel state needs Branches")
				}
				for i, b := range s.Branches {
					b.validate(fmt.Sprintf(" (branch %d of %q%s)", i, name, where), errs)
				}
			}
		case "Choice":
			if len(s.Choices) == 0 {
				bad(name, "a Choice state needs Choices")
			}
			for _, r := range s.Choices {
				if r.Next == "" {
					bad(name, "a choice rule without Next")
				} else {
					to(name, r.Next)
				}
				if err := r.check(); err != nil {
					bad(name, "%v", err)
				}
			}
			if s.Default != "" {
				to(name, s.Default)
			}
		case "Succeed", "Fail":
		default:
			bad(name, "type %q: want Task, Choice, Parallel, Pass, Succeed or Fail", s.Type)
		}
	}
}

// check reports a rule that compares nothing or more than one thing.
func (r *ChoiceRule) check() error {
	n := 0
	for _, set := range []bool{r.StringEquals != nil, r.NumericEquals != nil, r.NumericLessThan != nil, r.NumericGreaterThan != nil,
		r.NumericLessThanEquals != nil, r.NumericGreaterThanEquals != nil, r.BooleanEquals != nil, r.And != nil, r.Or != nil, r.Not != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("a choice rule needs exactly one comparison (or And, Or, Not), it has %d", n)
	}
	if _, err := splitPath(r.Variable); err != nil {
		return err
	}
	for _, sub := range append(slices.Clone(r.And), r.Or...) {
		if err := sub.check(); err != nil {
			return err
		}
	}
	if r.Not != nil {
		return r.Not.check()
	}
	return nil
}

// Matches evaluates the rule on a state's input.
func (r *ChoiceRule) Matches(input any) bool {
	switch {
	case r.And != nil:
		for i := range r.And {
			if !r.And[i].Matches(input) {
				return false
			}
		}
		return true
	case r.Or != nil:
		for i := range r.Or {
			if r.Or[i].Matches(input) {
				return true
			}
		}
		return false
	case r.Not != nil:
		return !r.Not.Matches(input)
	}
	v, ok := Select(input, r.Variable)
	if !ok {
		return false
	}
	switch {
	case r.StringEquals != nil:
		s, ok := v.(string)
		return ok && s == *r.StringEquals
	case r.BooleanEquals != nil:
		b, ok := v.(bool)
		return ok && b == *r.BooleanEquals
	}
	f, ok := v.(float64)
	if !ok {
		return false
	}
	switch {
	case r.NumericEquals != nil:
		return f == *r.NumericEquals
	case r.NumericLessThan != nil:
		return f < *r.NumericLessThan
	case r.NumericGreaterThan != nil:
		return f > *r.NumericGreaterThan
	case r.NumericLessThanEquals != nil:
		return f <= *r.NumericLessThanEquals
	case r.NumericGreaterThanEquals != nil:
		return f >= *r.NumericGreaterThanEquals
	}
	return false
}

// splitPath returns the field names of a path "$" or "$.a.b" ("" is "$").
func splitPath(p string) ([]string, error) {
	if p == "" || p == "$" {
		return nil, nil
	}
	rest, ok := strings.CutPrefix(p, "$.")
	if !ok || rest == "" || slices.Contains(strings.Split(rest, "."), "") {
		return nil, fmt.Errorf("path %q: want $ or $.field.field…", p)
	}
	return strings.Split(rest, "."), nil
}

// Select returns the value at path p of v (decoded JSON).
func Select(v any, p string) (any, bool) {
	fields, err := splitPath(p)
	if err != nil {
		return nil, false
	}
	for _, f := range fields {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[f]; !ok {
			return nil, false
		}
	}
	return v, true
}

// Place returns v with the value at path p replaced by x ("$" replaces v);
// missing objects on the way are created. v's maps are copied, not changed.
func Place(v any, p string, x any) (any, error) {
	fields, err := splitPath(p)
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return x, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v != nil {
			return nil, fmt.Errorf("path %q: the input is not an object", p)
		}
		m = map[string]any{}
	}
	out := make(map[string]any, len(m)+1)
	for k, e := range m {
		out[k] = e
	}
	inner, err := Place(out[fields[0]], "$"+strings.TrimPrefix(p, "$."+fields[0]), x)
	if err != nil {
		return nil, err
	}
	out[fields[0]] = inner
	return out, nil
}

// Parameters returns the object built from tmpl on input: a key ending in
// ".$" takes the value at its path (the key loses the suffix); others are
// copied.
func Parameters(tmpl map[string]any, input any) (map[string]any, error) {
	out := make(map[string]any, len(tmpl))
	for k, v := range tmpl {
		name, isPath := strings.CutSuffix(k, ".$")
		if !isPath {
			out[k] = v
			continue
		}
		p, _ := v.(string)
		x, ok := Select(input, p)
		if !ok {
			return nil, fmt.Errorf("parameter %q: the input has nothing at %q", name, p)
		}
		out[name] = x
	}
	return out, nil
}
