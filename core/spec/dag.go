package spec

import (
	"errors"
	"fmt"
)

// DAG is a function composition as a graph: a node invokes its function once
// every node it comes after has finished, so nodes after the same one run at
// once (fan-out) and a node after several waits for all (fan-in).
type DAG struct {
	Nodes []DAGNode `json:"nodes"`
	// Result names the node whose output is the composition's result; when
	// empty, the only node nothing comes after.
	Result string `json:"result,omitempty"`
}

// DAGNode is one function invocation of a DAG. Its input is the
// composition's parameters when it comes after no node, else an object of
// the outputs of the nodes it comes after, by name. Parameters, when set,
// build the function's parameters from that input as ASL's do (keys ending
// in ".$" take a path); otherwise the input is passed as it is.
type DAGNode struct {
	Name       string         `json:"name"`
	Function   string         `json:"function"`
	After      []string       `json:"after,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// Validate reports every problem of the graph at once: unnamed or repeated
// nodes, nodes without a function, edges from nodes that do not exist,
// cycles, and a result that is not a node or not one node.
func (d *DAG) Validate() error {
	var errs []error
	byName := map[string]*DAGNode{}
	for i := range d.Nodes {
		n := &d.Nodes[i]
		switch {
		case n.Name == "":
			errs = append(errs, fmt.Errorf("node %d: no name", i))
		case byName[n.Name] != nil:
			errs = append(errs, fmt.Errorf("node %q: the name is used twice", n.Name))
		}
		byName[n.Name] = n
		if n.Function == "" {
			errs = append(errs, fmt.Errorf("node %q: no function", n.Name))
		}
	}
	waiting := map[string]int{}
	later := map[string][]string{}
	for _, n := range d.Nodes {
		for _, a := range n.After {
			if byName[a] == nil {
				errs = append(errs, fmt.Errorf("node %q: comes after %q, which is no node", n.Name, a))
				continue
			}
			waiting[n.Name]++
			later[a] = append(later[a], n.Name)
		}
	}
	// Kahn's order: what it cannot reach lies on a cycle.
	var ready []string
	for _, n := range d.Nodes {
		if waiting[n.Name] == 0 {
			ready = append(ready, n.Name)
		}
	}
	done := 0
	for len(ready) > 0 {
		name := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		done++
		for _, l := range later[name] {
			if waiting[l]--; waiting[l] == 0 {
				ready = append(ready, l)
			}
		}
	}
	if done < len(d.Nodes) && len(errs) == 0 {
		errs = append(errs, errors.New("the nodes' after lists form a cycle"))
	}
	if d.Result != "" && byName[d.Result] == nil {
		errs = append(errs, fmt.Errorf("result: %q is no node", d.Result))
	}
	if d.Result == "" && len(d.sinks()) != 1 {
		errs = append(errs, fmt.Errorf("result: %d nodes come last (%q); name the one whose output is the result", len(d.sinks()), d.sinks()))
	}
	if len(d.Nodes) == 0 {
		errs = append(errs, errors.New("no nodes"))
	}
	return errors.Join(errs...)
}

// sinks returns the nodes no node comes after.
func (d *DAG) sinks() []string {
	first := map[string]bool{}
	for _, n := range d.Nodes {
		for _, a := range n.After {
			first[a] = true
		}
	}
	var out []string
	for _, n := range d.Nodes {
		if !first[n.Name] {
			out = append(out, n.Name)
		}
	}
	return out
}

// ResultNode returns the node whose output is the result.
func (d *DAG) ResultNode() string {
	if d.Result != "" {
		return d.Result
	}
	if s := d.sinks(); len(s) == 1 {
		return s[0]
	}
	return ""
}
