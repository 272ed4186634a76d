package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/edgeless-go/edgeless/core/spec"
)

// generator makes the workflows of one workflow type. next returns the
// request for workflow number n (0, 1, …), drawing its random parameters
// from rng; nil means the type starts nothing (none).
type generator interface {
	next(rng *rand.Rand, n int) (*spec.Workflow, error)
}

// workflowTypes lists the --wf-type names, for help and errors.
const workflowTypes = "none, single;<function.json>;<code>, vector-mul-chain[;<params.json>|;template], " +
	"matrix-mul-chain[;…], map-reduce[;…], json-spec;<workflow.json>"

// parseWorkflowType parses --wf-type. When the value asks for a template
// (NAME;template) it returns the template's JSON and no generator. nodes,
// when known, are the node ids that a "spread" chain alternates over.
func parseWorkflowType(s string, nodes []string) (generator, []byte, error) {
	name, rest, _ := strings.Cut(s, ";")
	params := func(def any) ([]byte, error) {
		switch {
		case rest == "template":
			return json.MarshalIndent(def, "", "  ")
		case rest == "":
			return nil, nil
		}
		data, err := os.ReadFile(rest)
		if err != nil {
			return nil, fmt.Errorf("cannot read the %s parameters: %w", name, err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(def); err != nil {
			return nil, fmt.Errorf("cannot parse the %s parameters %s: %w", name, rest, err)
		}
		return nil, nil
	}
	switch name {
	case "none":
		return noneType{}, nil, nil
	case "single":
		class, code, ok := strings.Cut(rest, ";")
		if !ok {
			return nil, nil, errors.New("single: want single;<function.json>;<code file>")
		}
		return loadSingle(class, code)
	case "vector-mul-chain":
		p := defaultVectorMul()
		tmpl, err := params(&p)
		if tmpl != nil || err != nil {
			return nil, tmpl, err
		}
		p.nodes = nodes
		return &p, nil, p.validate()
	case "matrix-mul-chain":
		p := defaultMatrixMul()
		tmpl, err := params(&p)
		if tmpl != nil || err != nil {
			return nil, tmpl, err
		}
		p.nodes = nodes
		return &p, nil, p.validate()
	case "map-reduce":
		p := defaultMapReduce()
		tmpl, err := params(&p)
		if tmpl != nil || err != nil {
			return nil, tmpl, err
		}
		return &p, nil, p.validate()
	case "json-spec":
		if rest == "" || rest == "template" {
			return nil, nil, errors.New("json-spec: want json-spec;<workflow.json>")
		}
		return loadJSONSpec(rest)
	}
	return nil, nil, fmt.Errorf("unknown workflow type %q (want %s)", name, workflowTypes)
}

type noneType struct{}

func (noneType) next(*rand.Rand, int) (*spec.Workflow, error) { return nil, nil }

// draw returns a uniform integer in [lo, hi].
func draw(rng *rand.Rand, lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + rng.IntN(hi-lo+1)
}

// classOf returns the class specification of a code file: a .so is a
// native function, anything else WASM.
func classOf(id, path string, outputs []string) (spec.ClassSpec, error) {
	code, err := os.ReadFile(path)
	if err != nil {
		return spec.ClassSpec{}, fmt.Errorf("cannot read function code: %w", err)
	}
	ft := spec.FunctionTypeWASM
	if strings.HasSuffix(path, ".so") {
		ft = spec.FunctionTypeNative
	}
	return spec.ClassSpec{ID: id, FunctionType: ft, Version: "0.1", Binary: code, Outputs: outputs}, nil
}

func newWorkflow() *spec.Workflow {
	return &spec.Workflow{Resources: []spec.Resource{}, Annotations: map[string]string{}}
}

// single is one function named "single", as EDGELESS's single type.
type single struct{ class spec.ClassSpec }

func loadSingle(classFile, codeFile string) (generator, []byte, error) {
	data, err := os.ReadFile(classFile)
	if err != nil {
		return nil, nil, fmt.Errorf("single: cannot read the function class: %w", err)
	}
	var cs spec.ClassSpec
	if err := json.Unmarshal(data, &cs); err != nil {
		return nil, nil, fmt.Errorf("single: cannot parse the function class %s: %w", classFile, err)
	}
	if cs.Binary, err = os.ReadFile(codeFile); err != nil {
		return nil, nil, fmt.Errorf("single: cannot read the function code: %w", err)
	}
	cs.Code = ""
	return &single{class: cs}, nil, nil
}

func (s *single) next(*rand.Rand, int) (*spec.Workflow, error) {
	w := newWorkflow()
	w.Functions = []spec.Function{{Name: "single", ClassSpecification: s.class,
		OutputMapping: map[string]string{}, Annotations: map[string]string{}}}
	return w, nil
}

// vectorMul is the vector-mul-chain type: a ring client → f0 → … → client
// of vector_mul functions, the client running a closed loop of Window
// transactions. Window and Spread go beyond EDGELESS.
type vectorMul struct {
	MinChainLength int    `json:"min_chain_length"`
	MaxChainLength int    `json:"max_chain_length"`
	MinInputSize   int    `json:"min_input_size"`
	MaxInputSize   int    `json:"max_input_size"`
	FunctionPath   string `json:"function_wasm_path"`
	// Window is how many transactions the client keeps in flight.
	Window int `json:"window"`
	// Spread places stage i on node i mod len(nodes), so that every hop
	// crosses nodes; it needs the node ids (--inabox or --node-ids).
	Spread bool `json:"spread"`

	nodes []string
	code  spec.ClassSpec
}

func defaultVectorMul() vectorMul {
	return vectorMul{MinChainLength: 5, MaxChainLength: 5, MinInputSize: 1000, MaxInputSize: 2000,
		FunctionPath: "functions/vector_mul/vector_mul.wasm", Window: 1}
}

func (p *vectorMul) validate() error {
	var errs []error
	if p.MinChainLength < 1 || p.MaxChainLength < p.MinChainLength || p.MaxChainLength > 64 {
		errs = append(errs, fmt.Errorf("vector-mul-chain: chain length must be 1 <= min <= max <= 64, got %d..%d",
			p.MinChainLength, p.MaxChainLength))
	}
	if p.MinInputSize < 1 || p.MaxInputSize < p.MinInputSize || p.MaxInputSize > 4096 {
		errs = append(errs, fmt.Errorf("vector-mul-chain: input size must be 1 <= min <= max <= 4096, got %d..%d",
			p.MinInputSize, p.MaxInputSize))
	}
	if p.Window < 1 || p.Window > 4096 {
		errs = append(errs, fmt.Errorf("vector-mul-chain: window must be in 1..4096, got %d", p.Window))
	}
	if p.Spread && len(p.nodes) < 2 {
		errs = append(errs, errors.New("vector-mul-chain: spread needs two or more node ids (--inabox with --nodes, or --node-ids)"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	var err error
	p.code, err = classOf("vector_mul", p.FunctionPath, []string{"metric", "out"})
	return err
}

func (p *vectorMul) next(rng *rand.Rand, n int) (*spec.Workflow, error) {
	chain := draw(rng, p.MinChainLength, p.MaxChainLength)
	size := draw(rng, p.MinInputSize, p.MaxInputSize)
	w := newWorkflow()
	name := func(i int) string {
		if i%chain == 0 {
			return "client"
		}
		return "f" + strconv.Itoa(i-1)
	}
	for i := range chain {
		ann := map[string]string{spec.KeyInitPayload: fmt.Sprintf("seed=%d,is_client=%t,input_size=%d,window=%d",
			i, i == 0, size, p.Window)}
		if p.Spread {
			ann[spec.KeyNodeIDMatchAny] = p.nodes[i%len(p.nodes)]
		}
		w.Functions = append(w.Functions, spec.Function{Name: name(i), ClassSpecification: p.code,
			OutputMapping: map[string]string{"out": name(i + 1)}, Annotations: ann})
	}
	return w, nil
}

// matrixMul is the matrix-mul-chain type: f0 → … → fn of matrix_mul
// functions, circular when TransactionInterval is 0. The matrix size is
// drawn once per workflow: every stage multiplies what the previous one
// sends by its own matrix, and drops a product of another size.
type matrixMul struct {
	MinChainLength      int    `json:"min_chain_length"`
	MaxChainLength      int    `json:"max_chain_length"`
	MinMatrixSize       int    `json:"min_matrix_size"`
	MaxMatrixSize       int    `json:"max_matrix_size"`
	TransactionInterval int    `json:"transaction_interval"`
	FunctionPath        string `json:"function_wasm_path"`
	Spread              bool   `json:"spread"`

	nodes []string
	code  spec.ClassSpec
}

func defaultMatrixMul() matrixMul {
	return matrixMul{MinChainLength: 5, MaxChainLength: 5, MinMatrixSize: 10, MaxMatrixSize: 20,
		FunctionPath: "functions/matrix_mul/matrix_mul.wasm"}
}

func (p *matrixMul) validate() error {
	var errs []error
	if p.MinChainLength < 1 || p.MaxChainLength < p.MinChainLength || p.MaxChainLength > 64 {
		errs = append(errs, fmt.Errorf("matrix-mul-chain: chain length must be 1 <= min <= max <= 64, got %d..%d",
			p.MinChainLength, p.MaxChainLength))
	}
	if p.MinMatrixSize < 1 || p.MaxMatrixSize < p.MinMatrixSize || p.MaxMatrixSize > 1024 {
		errs = append(errs, fmt.Errorf("matrix-mul-chain: matrix size must be 1 <= min <= max <= 1024, got %d..%d",
			p.MinMatrixSize, p.MaxMatrixSize))
	}
	if p.TransactionInterval < 0 {
		errs = append(errs, fmt.Errorf("matrix-mul-chain: transaction_interval must not be negative, got %d", p.TransactionInterval))
	}
	if p.Spread && len(p.nodes) < 2 {
		errs = append(errs, errors.New("matrix-mul-chain: spread needs two or more node ids (--inabox with --nodes, or --node-ids)"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	outputs := []string{"metric"}
	for k := range 20 {
		outputs = append(outputs, "out-"+strconv.Itoa(k))
	}
	var err error
	p.code, err = classOf("matrix_mul", p.FunctionPath, outputs)
	return err
}

func (p *matrixMul) next(rng *rand.Rand, n int) (*spec.Workflow, error) {
	chain := draw(rng, p.MinChainLength, p.MaxChainLength)
	size := draw(rng, p.MinMatrixSize, p.MaxMatrixSize)
	w := newWorkflow()
	for i := range chain {
		last := i == chain-1
		out := map[string]string{}
		switch {
		case !last:
			out["out-0"] = "f" + strconv.Itoa(i+1)
		case p.TransactionInterval == 0 && chain > 1:
			out["out-0"] = "f0"
		}
		outputs := "0"
		if len(out) == 0 {
			outputs = ""
		}
		ann := map[string]string{spec.KeyInitPayload: fmt.Sprintf(
			"seed=%d,inter_arrival=%d,is_first=%t,is_last=%t,matrix_size=%d,outputs=%s",
			i, p.TransactionInterval, i == 0, last, size, outputs)}
		if p.Spread {
			ann[spec.KeyNodeIDMatchAny] = p.nodes[i%len(p.nodes)]
		}
		w.Functions = append(w.Functions, spec.Function{Name: "f" + strconv.Itoa(i), ClassSpecification: p.code,
			OutputMapping: out, Annotations: ann})
	}
	return w, nil
}

// mapReduce is the map-reduce type: trigger → s0 → {p0-j} → s1 → … → sN.
type mapReduce struct {
	MinInterval   int    `json:"min_transaction_interval_ms"`
	MaxInterval   int    `json:"max_transaction_interval_ms"`
	MinInputSize  int    `json:"min_input_size"`
	MaxInputSize  int    `json:"max_input_size"`
	MinStages     int    `json:"min_num_stages"`
	MaxStages     int    `json:"max_num_stages"`
	MinFanOut     int    `json:"min_fan_out"`
	MaxFanOut     int    `json:"max_fan_out"`
	MinFibonacci  int    `json:"min_fibonacci"`
	MaxFibonacci  int    `json:"max_fibonacci"`
	MinMemory     int    `json:"min_memory_bytes"`
	MaxMemory     int    `json:"max_memory_bytes"`
	FunctionsPath string `json:"functions_path"`
	// RedisURL is accepted so that EDGELESS parameter files load; it is not
	// used, since the latency comes from the transaction marks.
	RedisURL string `json:"redis_url"`
	// Extension is "wasm" (default) or "so" for the native builds.
	Extension string `json:"extension"`

	trigger, stage, process spec.ClassSpec
}

func defaultMapReduce() mapReduce {
	return mapReduce{MinInterval: 100, MaxInterval: 100, MinInputSize: 1000, MaxInputSize: 1000,
		MinStages: 1, MaxStages: 2, MinFanOut: 2, MaxFanOut: 3, MinFibonacci: 1000, MaxFibonacci: 10000,
		FunctionsPath: "functions", Extension: "wasm"}
}

func (p *mapReduce) validate() error {
	var errs []error
	check := func(what string, lo, hi, lower, upper int) {
		if lo < lower || hi < lo || hi > upper {
			errs = append(errs, fmt.Errorf("map-reduce: %s must be %d <= min <= max <= %d, got %d..%d", what, lower, upper, lo, hi))
		}
	}
	check("transaction interval", p.MinInterval, p.MaxInterval, 1, 3_600_000)
	check("input size", p.MinInputSize, p.MaxInputSize, 0, 16<<20)
	check("stages", p.MinStages, p.MaxStages, 1, 16)
	check("fan-out", p.MinFanOut, p.MaxFanOut, 1, 64)
	check("fibonacci", p.MinFibonacci, p.MaxFibonacci, 0, 1<<40)
	check("memory", p.MinMemory, p.MaxMemory, 0, 256<<20)
	if p.Extension != "wasm" && p.Extension != "so" {
		errs = append(errs, fmt.Errorf("map-reduce: extension must be wasm or so, got %q", p.Extension))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	path := func(f string) string { return filepath.Join(p.FunctionsPath, f, f+"."+p.Extension) }
	var err error
	if p.trigger, err = classOf("trigger", path("trigger"), []string{"out"}); err != nil {
		return err
	}
	if p.stage, err = classOf("bench_mapreduce", path("bench_mapreduce"), []string{"metric"}); err != nil {
		return err
	}
	p.process, err = classOf("bench_process", path("bench_process"), []string{"out"})
	return err
}

func (p *mapReduce) next(rng *rand.Rand, n int) (*spec.Workflow, error) {
	w := newWorkflow()
	interval := draw(rng, p.MinInterval, p.MaxInterval)
	size := draw(rng, p.MinInputSize, p.MaxInputSize)
	stages := draw(rng, p.MinStages, p.MaxStages)
	w.Functions = append(w.Functions, spec.Function{Name: "trigger", ClassSpecification: p.trigger,
		OutputMapping: map[string]string{"out": "s0"},
		Annotations: map[string]string{spec.KeyInitPayload: fmt.Sprintf(
			"out_type=rand_vec,use_base64=true,size=%d,arrival=c(%d),seed=%d", size, interval, n)}})
	var inputs []string
	for stage := 0; stage <= stages; stage++ {
		last := stage == stages
		var outputs []string
		if !last {
			for j := range draw(rng, p.MinFanOut, p.MaxFanOut) {
				outputs = append(outputs, strconv.Itoa(j))
			}
		}
		s := "s" + strconv.Itoa(stage)
		mapping := map[string]string{}
		for _, j := range outputs {
			mapping["out-"+j] = "p" + strconv.Itoa(stage) + "-" + j
		}
		class := p.stage
		class.Outputs = append([]string{"metric"}, func() []string {
			var o []string
			for _, j := range outputs {
				o = append(o, "out-"+j)
			}
			return o
		}()...)
		w.Functions = append(w.Functions, spec.Function{Name: s, ClassSpecification: class, OutputMapping: mapping,
			Annotations: map[string]string{spec.KeyInitPayload: fmt.Sprintf(
				"is_first=%t,is_last=%t,use_base64=true,inputs=%s,outputs=%s",
				stage == 0, last, strings.Join(inputs, ":"), strings.Join(outputs, ":"))}})
		for _, j := range outputs {
			w.Functions = append(w.Functions, spec.Function{Name: "p" + strconv.Itoa(stage) + "-" + j,
				ClassSpecification: p.process,
				OutputMapping:      map[string]string{"out": "s" + strconv.Itoa(stage+1)},
				Annotations: map[string]string{spec.KeyInitPayload: fmt.Sprintf("forward=true,fibonacci=%d,allocate=%d",
					draw(rng, p.MinFibonacci, p.MaxFibonacci), draw(rng, p.MinMemory, p.MaxMemory))}})
		}
		inputs = outputs
	}
	return w, nil
}

// jsonSpec is any workflow file; "@WF_ID" in it becomes the workflow
// number, and code paths are relative to the file, as for `workflow start`.
type jsonSpec struct {
	file string
	text string
}

func loadJSONSpec(file string) (generator, []byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("json-spec: %w", err)
	}
	g := &jsonSpec{file: file, text: string(data)}
	_, err = g.next(nil, 0) // fail now rather than at the first arrival
	return g, nil, err
}

func (g *jsonSpec) next(_ *rand.Rand, n int) (*spec.Workflow, error) {
	data := []byte(strings.ReplaceAll(g.text, "@WF_ID", strconv.Itoa(n)))
	w, err := spec.ParseWorkflow(g.file, data)
	if err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Dir(g.file)
	for i := range w.Functions {
		cs := &w.Functions[i].ClassSpecification
		if cs.Code == "" || len(cs.Binary) > 0 {
			continue
		}
		path := cs.Code
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if cs.Binary, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("json-spec: function %s: %w", w.Functions[i].Name, err)
		}
		cs.Code = ""
	}
	return w, nil
}
