package inabox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/cli"
	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/orc"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

const root = "../.."

// TestMain builds the example functions the tests deploy, as `make test` does.
func TestMain(m *testing.M) {
	if _, err := testutil.Functions(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build the functions (run `make deps`):", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// logs records every log line of a box, for assertions.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

// count returns how many lines contain all of the given parts.
func (l *logs) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		n++
	}
	return n
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

type lineWriter struct{ l *logs }

func (w lineWriter) Write(p []byte) (int, error) { w.l.add(string(p)); return len(p), nil }

// box is an inabox on random loopback ports with its own directories.
type box struct {
	*Inabox
	t    testing.TB
	logs *logs
	dir  string
	http *http.Client // trusts the box's CA
	// extraNodes counts the nodes of domains added with addDomain.
	extraNodes int
}

func startBox(t testing.TB, nodes int, mutate func(*Config)) *box {
	t.Helper()
	dir := t.TempDir()
	cfg := Default()
	cfg.Nodes = nodes
	cfg.CredentialsDir = filepath.Join(dir, "tls")
	cfg.Ephemeral(true)
	cfg.Orchestrator.General.SubscriptionRefreshIntervalSec = 0.2
	cfg.Orchestrator.General.ReconcileIntervalMS = 100
	cfg.Node.General.SubscriptionRefreshIntervalSec = 0.2
	cfg.Node.WASM.CacheDir = filepath.Join(dir, "cache")
	cfg.Node.State.Dir = filepath.Join(dir, "state")
	// The tests name their files by absolute paths in their own directory.
	cfg.Node.Resources.DataDir = dir
	cfg.Node.Resources.AllowedDirs = []string{dir}
	// No spare containers unless a test asks: a box per test would start
	// and remove them for nothing.
	cfg.Node.Container.SpareContainers = 0
	if mutate != nil {
		mutate(&cfg)
	}
	l := &logs{}
	log := slog.New(slog.NewTextHandler(lineWriter{l}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v\n%s", err, l)
	}
	bx := &box{Inabox: b, t: t, logs: l, dir: dir, http: httpClient(b)}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("log of the box:\n%s", l)
		}
	})
	return bx
}

// addDomain starts another orchestration domain of the box's controller,
// id, with one node; mutate, when set, changes its orchestrator's
// configuration. Both stop when the test ends.
func (b *box) addDomain(id string, mutate func(*orc.Config)) (*orc.Orc, *node.Node) {
	b.t.Helper()
	ocfg := b.cfg.Orchestrator
	ocfg.General.DomainID = id
	ocfg.General.DomainRegisterURL = wire.MustAddr(b.Con.DomainAddr())
	var err error
	if ocfg.Credentials, err = b.CA().Credentials(wire.Identity{Role: wire.RoleOrchestrator, ID: id}, nil); err != nil {
		b.t.Fatal(err)
	}
	if mutate != nil {
		mutate(&ocfg)
	}
	o, err := orc.New(ocfg, b.log)
	b.run("orchestrator of "+id, o, err)
	b.extraNodes++
	ncfg, err := b.nodeConfig(len(b.Nodes)+b.extraNodes-1, o.NodeRegisterAddr())
	if err == nil {
		err = b.nodeCredentials(&ncfg)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	n, err := node.New(ncfg, b.log)
	b.run("node of "+id, n, err)
	return o, n
}

// part is a mode's running part: an orchestrator, a node.
type part interface {
	Start(context.Context) error
	Close() error
}

// run starts p, made with err by its New, failing the test if either
// failed, and closes it when the test ends.
func (b *box) run(what string, p part, err error) {
	b.t.Helper()
	if err == nil {
		err = p.Start(context.Background())
	}
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	b.t.Cleanup(func() { p.Close() })
}

// cli runs an `edgeless workflow` verb against the box and returns its output.
func (b *box) cli(args ...string) (string, error) {
	var out bytes.Buffer
	err := cli.Workflow(context.Background(), append(b.cliFlags(), args...), &out)
	return out.String(), err
}

// cliFlags point the CLI at the box, with its credentials.
func (b *box) cliFlags() []string {
	if p := b.CLIConfig(); p != "" {
		return []string{"-c", p}
	}
	return []string{"-controller-url", b.ControllerURL(), "-token", b.AdminToken()}
}

// api sends a request to the box's API with the admin token, trusting the
// box's CA.
func (b *box) api(method, path, body string) (*http.Response, error) {
	req, err := http.NewRequest(method, b.ControllerURL()+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := b.AdminToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return b.http.Do(req)
}

// httpClient returns a client that trusts the box's CA.
func httpClient(b *Inabox) *http.Client {
	var pem []byte
	if ca := b.CA(); ca != nil {
		pem = ca.PEM
	}
	return testutil.APIClient(pem, "", time.Minute)
}

// start loads an example workflow, lets mutate change it, and starts it
// through the CLI; it returns the workflow id.
func (b *box) start(example string, mutate func(*spec.Workflow)) (string, error) {
	b.t.Helper()
	w, err := spec.LoadWorkflow(filepath.Join(root, "examples", example))
	if err != nil {
		b.t.Fatal(err)
	}
	if mutate != nil {
		mutate(w)
	}
	return b.startSpec(w)
}

// startSpec starts a workflow through the CLI, from a file with inlined code.
func (b *box) startSpec(w *spec.Workflow) (string, error) {
	b.t.Helper()
	for i := range w.Functions {
		w.Functions[i].ClassSpecification.Code = "" // inlined already
	}
	data, err := json.Marshal(w)
	if err != nil {
		b.t.Fatal(err)
	}
	f, err := os.CreateTemp(b.dir, "workflow-*.json")
	if err != nil {
		b.t.Fatal(err)
	}
	f.Close()
	file := f.Name()
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.t.Fatal(err)
	}
	out, err := b.cli("start", file)
	return strings.TrimSpace(out), err
}

func (b *box) mustStart(example string, mutate func(*spec.Workflow)) string {
	b.t.Helper()
	id, err := b.start(example, mutate)
	if err != nil {
		b.t.Fatalf("workflow start %s: %v", example, err)
	}
	return id
}

// inspect returns the controller's view of a workflow.
func (b *box) inspect(id string) spec.WorkflowInfo {
	b.t.Helper()
	var wi spec.WorkflowInfo
	resp, err := b.api(http.MethodGet, "/api/v1/workflows/"+id, "")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&wi); err != nil || resp.StatusCode != http.StatusOK {
		b.t.Fatalf("inspect %s: %s, %v", id, resp.Status, err)
	}
	return wi
}

func component(wi spec.WorkflowInfo, name string) spec.ComponentInfo {
	for _, c := range wi.Components {
		if c.Name == name {
			return c
		}
	}
	return spec.ComponentInfo{}
}

// state returns the integer a function saved with sync(), or -1.
func (b *box) state(logical string) int {
	data, err := os.ReadFile(filepath.Join(b.dir, "state", logical))
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(string(data))
	if err != nil {
		b.t.Fatalf("state of %s is %q, not a number", logical, data)
	}
	return n
}

func setInit(w *spec.Workflow, function, payload string) {
	for i := range w.Functions {
		if w.Functions[i].Name == function {
			w.Functions[i].Annotations[spec.KeyInitPayload] = payload
		}
	}
}

// fn returns a workflow function running functions/<class>/<class>.wasm.
func fn(t *testing.T, name, class string, outputs map[string]string, init string) spec.Function {
	t.Helper()
	code, err := os.ReadFile(filepath.Join(root, "functions", class, class+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	f := spec.Function{
		Name:               name,
		ClassSpecification: spec.ClassSpec{ID: class, FunctionType: "RUST_WASM", Version: "0.1", Binary: code, Outputs: []string{}},
		OutputMapping:      outputs,
		Annotations:        map[string]string{},
	}
	if init != "" {
		f.Annotations[spec.KeyInitPayload] = init
	}
	return f
}

func workflow(fns ...spec.Function) *spec.Workflow {
	return &spec.Workflow{Functions: fns, Resources: []spec.Resource{}, Annotations: map[string]string{}}
}
