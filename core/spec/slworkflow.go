package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// TaskGraph is a workflow as Serverledge stores and imports it
// (POST /workflow/import): a start task, an end task and the tasks between,
// by id, each naming the task(s) after it. Field names are Serverledge's.
type TaskGraph struct {
	Name  string
	Start *Task
	End   *Task
	Tasks map[string]*Task
}

// Task types of a TaskGraph, as Serverledge names them.
const (
	TaskStart    = "StartTask"
	TaskEnd      = "EndTask"
	TaskSimple   = "SimpleTask"
	TaskFunction = "FunctionTask" // the name newer Serverledge versions give a SimpleTask
	TaskChoice   = "ChoiceTask"
	TaskFanOut   = "FanOutTask"
	TaskFanIn    = "FanInTask"
	TaskPass     = "PassTask"
	TaskSucceed  = "SuccessTask"
	TaskFail     = "Fail"
)

// Task is one task of a TaskGraph. Which fields count depends on Type:
// Next (StartTask), OutputTo or NextTask (the others but ChoiceTask and
// FanOutTask), Func (SimpleTask), Alternatives and Conditions (ChoiceTask),
// the branches in OutputTo (FanOutTask, broadcast mode only), Error and
// Cause (Fail).
type Task struct {
	Id           string //nolint:revive // Serverledge's name
	Type         string
	Next         string
	OutputTo     Targets
	NextTask     string
	Func         string
	Alternatives []string
	Conditions   []Condition
	FanOutDegree int
	Mode         int // 0 broadcast: every branch gets the input
	FanInDegree  int
	Error, Cause string
}

// Targets is the task (or, for a FanOutTask, the tasks) a task hands its
// output to: Serverledge writes one id as a string, several as an array.
type Targets []string

// UnmarshalJSON reads a string or an array of strings; "" is none.
func (t *Targets) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*t = nil
		if one != "" {
			*t = Targets{one}
		}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("want a task id or a list of them: %w", err)
	}
	*t = many
	return nil
}

// After returns the tasks t hands its output to, in order.
func (t *Task) After() []string {
	switch t.Type {
	case TaskStart:
		return []string{t.Next}
	case TaskChoice:
		return t.Alternatives
	case TaskEnd:
		return nil
	}
	if t.NextTask != "" {
		return []string{t.NextTask}
	}
	return t.OutputTo
}

// Validate reports every problem of the graph at once: a missing name,
// start or end, tasks of unknown or unsupported types, functionless
// SimpleTasks, references to tasks that do not exist, choices whose
// conditions and alternatives differ in number, and conditions that cannot
// be evaluated.
func (g *TaskGraph) Validate() error {
	var errs []error
	if g.Name == "" {
		errs = append(errs, errors.New("Name: a workflow needs one"))
	}
	if g.Start == nil || g.Start.Type != TaskStart || g.Start.Next == "" {
		errs = append(errs, errors.New("Start: want a StartTask with its Next"))
	}
	if g.End == nil || g.End.Type != TaskEnd {
		errs = append(errs, errors.New("End: want an EndTask"))
	}
	if g.Start == nil || g.End == nil {
		return errors.Join(errs...)
	}
	known := func(id string) bool { return g.Tasks[id] != nil || id == g.End.Id || id == g.Start.Id }
	ids := make([]string, 0, len(g.Tasks))
	for id := range g.Tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if !known(g.Start.Next) {
		errs = append(errs, fmt.Errorf("Start: Next %q is no task", g.Start.Next))
	}
	for _, id := range ids {
		t := g.Tasks[id]
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("task %q: "+format, append([]any{id}, a...)...))
		}
		switch t.Type {
		case TaskStart, TaskEnd:
			continue // the graph's own Start and End, listed again
		case TaskSimple, TaskFunction:
			if t.Func == "" {
				bad("a %s needs its Func", t.Type)
			}
		case TaskChoice:
			if len(t.Alternatives) == 0 || len(t.Alternatives) != len(t.Conditions) {
				bad("%d Alternatives for %d Conditions: want one each, at least one", len(t.Alternatives), len(t.Conditions))
			}
			for i := range t.Conditions {
				if err := t.Conditions[i].check(); err != nil {
					bad("condition %d: %v", i, err)
				}
			}
		case TaskFanOut:
			if t.Mode != 0 {
				bad("FanOutTask Mode %d (scatter) is not supported; use 0 (broadcast)", t.Mode)
			}
			if len(t.OutputTo) == 0 {
				bad("a FanOutTask needs its branches in OutputTo")
			}
		case TaskFanIn, TaskPass, TaskSucceed, TaskFail:
		default:
			bad("Type %q: want SimpleTask, ChoiceTask, FanOutTask, FanInTask, PassTask, SuccessTask or Fail", t.Type)
			continue
		}
		after := t.After()
		if len(after) == 0 && t.Type != TaskFail {
			bad("names no task after it")
		}
		for _, a := range after {
			if !known(a) {
				bad("hands its output to %q, which is no task", a)
			}
		}
	}
	return errors.Join(errs...)
}

// Functions returns the functions the graph invokes, sorted, once each.
func (g *TaskGraph) Functions() []string {
	var fns []string
	for _, t := range g.Tasks {
		if t.Func != "" && !slices.Contains(fns, t.Func) {
			fns = append(fns, t.Func)
		}
	}
	slices.Sort(fns)
	return fns
}

// Condition is a ChoiceTask's test, as Serverledge writes it: Type names
// the operation, Op its operands, each read from the task's input by name
// when the Find at its index is true, and Sub the operands of And, Or and
// Not.
type Condition struct {
	Type string
	Find []bool
	Op   []any
	Sub  []Condition
}

// check reports a condition that cannot be evaluated, whatever the input.
func (c *Condition) check() error {
	switch c.Type {
	case "And", "Or":
		if len(c.Sub) == 0 {
			return fmt.Errorf("%s needs conditions in Sub", c.Type)
		}
	case "Not":
		if len(c.Sub) != 1 {
			return errors.New("Not needs exactly one condition in Sub")
		}
	case "Const", "IsNull", "IsPresent", "IsString", "IsBoolean", "IsNumeric":
		if len(c.Op) != 1 {
			return fmt.Errorf("%s needs one operand, got %d", c.Type, len(c.Op))
		}
	case "Eq", "Diff":
		if len(c.Op) < 2 {
			return fmt.Errorf("%s needs at least two operands, got %d", c.Type, len(c.Op))
		}
	case "Greater", "Smaller":
		if len(c.Op) != 2 {
			return fmt.Errorf("%s needs two operands, got %d", c.Type, len(c.Op))
		}
	default:
		return fmt.Errorf("Type %q: want And, Or, Not, Const, Eq, Diff, Greater, Smaller, IsNull, IsPresent, IsString, IsBoolean or IsNumeric", c.Type)
	}
	if len(c.Find) > len(c.Op) && len(c.Op) > 0 {
		return fmt.Errorf("%d Find flags for %d operands", len(c.Find), len(c.Op))
	}
	for i := range c.Sub {
		if err := c.Sub[i].check(); err != nil {
			return err
		}
	}
	for i, f := range c.Find {
		if _, ok := c.Op[i].(string); f && !ok {
			return fmt.Errorf("operand %d is read from the input, so it must be a name (a string), not %v", i, c.Op[i])
		}
	}
	return nil
}

// operands returns c's operands, those flagged in Find read from input by
// name (nil when absent).
func (c *Condition) operands(input map[string]any) []any {
	ops := make([]any, len(c.Op))
	for i, op := range c.Op {
		ops[i] = op
		if i < len(c.Find) && c.Find[i] {
			ops[i] = input[op.(string)]
		}
	}
	return ops
}

// number reads v as Serverledge compares it: a JSON number, or a string
// holding one.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// Matches evaluates c on input. Eq, Diff, Greater and Smaller compare
// numbers as numbers (numeric strings included, as parameters passed with
// serverledge-cli's -p are strings) and anything else as its JSON text.
func (c *Condition) Matches(input map[string]any) bool {
	ops := c.operands(input)
	switch c.Type {
	case "And":
		for i := range c.Sub {
			if !c.Sub[i].Matches(input) {
				return false
			}
		}
		return true
	case "Or":
		for i := range c.Sub {
			if c.Sub[i].Matches(input) {
				return true
			}
		}
		return false
	case "Not":
		return !c.Sub[0].Matches(input)
	case "Const":
		b, _ := ops[0].(bool)
		return b || ops[0] == "true"
	case "IsNull":
		return ops[0] == nil || ops[0] == "null"
	case "IsPresent":
		return ops[0] != nil && ops[0] != "null"
	case "IsString":
		_, ok := ops[0].(string)
		return ok
	case "IsBoolean":
		_, ok := ops[0].(bool)
		return ok
	case "IsNumeric":
		_, ok := number(ops[0])
		return ok
	case "Eq", "Diff":
		for i := 1; i < len(ops); i++ {
			if same(ops[0], ops[i]) != (c.Type == "Eq") {
				return false
			}
		}
		return true
	case "Greater", "Smaller":
		a, okA := number(ops[0])
		b, okB := number(ops[1])
		if !okA || !okB {
			sa, okA := ops[0].(string)
			sb, okB := ops[1].(string)
			if !okA || !okB || sa == "" || sb == "" {
				return false
			}
			return (sa > sb) == (c.Type == "Greater") && sa != sb
		}
		return (a > b) == (c.Type == "Greater") && a != b
	}
	return false
}

func same(a, b any) bool {
	x, okA := number(a)
	y, okB := number(b)
	if okA && okB {
		return x == y
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
