// Package deploy holds no code: its tests run the images of `make images` as
// separate hosts (containers on a private Docker network they create) and
// break them as real networks and machines break.
package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// refresh is subscription_refresh_interval_sec of deploy/config: a lost node's
// instances must be back elsewhere within 2×refresh + 1 s.
const refresh = time.Second

// bin is the edgeless binary of this tree, for `edgeless cert` on the host.
var bin string

func TestMain(m *testing.M) {
	if err := exec.Command("docker", "image", "inspect", "edgeless:latest", "edgeless-redis:latest").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "deploy: the images are missing (make images) or no Docker daemon answers, and CI needs them:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "deploy: skipping the multi-host tests: no edgeless image (make images) or no Docker daemon")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "edgeless-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bin, err = testutil.Binary(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runs is how many times each scenario repeats in one test (MULTIHOST_RUNS),
// for medians; 1 by default.
func runs() int {
	if n, err := strconv.Atoi(os.Getenv("MULTIHOST_RUNS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// hosts is a cluster of containers: Redis, a controller, an orchestrator and
// three nodes, configured by deploy/config as compose.yaml configures them.
type hosts struct {
	t      *testing.T
	dir    string
	prefix string // of container names, and the network's name
	apiURL string // https://127.0.0.1:PORT
	http   *http.Client
	redis  *redis.Client
	nodeID map[string]string // node1 → its node_id
	// sources of each number read by lines, when the log names them.
	sources map[int][]string
}

func docker(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (h *hosts) docker(args ...string) string {
	h.t.Helper()
	out, err := docker(args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// newHosts starts the cluster and waits until the controller sees three
// nodes; everything is removed when the test ends. slow names nodes that
// others reach through a relay delaying each direction by the duration.
func newHosts(t *testing.T, slow map[string]time.Duration) *hosts {
	h := &hosts{t: t, dir: t.TempDir(), prefix: fmt.Sprintf("edgeless-test-%d", time.Now().UnixNano()%1e9), nodeID: map[string]string{}, sources: map[int][]string{}}
	cfg, err := filepath.Abs("config")
	if err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(h.dir, "tls")
	cmd := exec.Command(bin, "cert", "init", "-dir", tlsDir, "-nodes", "3", "-host", "controller")
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+h.dir) // not the user's cli.toml
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cert init: %v\n%s", err, out)
	}
	t.Cleanup(h.remove)
	h.docker("network", "create", h.prefix)
	user := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()) // who may read the keys
	ro := func(host, inside string) []string { return []string{"-v", host + ":" + inside + ":ro"} }
	run := func(name string, publish []string, mounts []string, args ...string) {
		a := []string{"run", "-d", "--name", h.prefix + "-" + name, "--hostname", name, "--network", h.prefix,
			"--network-alias", name, "--user", user}
		for _, p := range publish {
			a = append(a, "-p", "127.0.0.1::"+p)
		}
		h.docker(append(append(a, mounts...), args...)...)
	}
	certs := func(role, file string) []string {
		return slices.Concat(ro(filepath.Join(tlsDir, "ca.pem"), "/etc/edgeless/tls/ca.pem"),
			ro(filepath.Join(tlsDir, file+".pem"), "/etc/edgeless/tls/"+role+".pem"),
			ro(filepath.Join(tlsDir, file+".key"), "/etc/edgeless/tls/"+role+".key"))
	}
	run("redis", []string{"6379"}, nil, "edgeless-redis:latest")
	run("controller", []string{"7001"}, slices.Concat(certs("controller", "controller"),
		ro(filepath.Join(tlsDir, "tokens"), "/etc/edgeless/tls/tokens"), ro(filepath.Join(cfg, "controller.toml"), "/etc/edgeless/controller.toml")),
		"edgeless:latest", "con", "-c", "/etc/edgeless/controller.toml")
	run("orchestrator", nil, slices.Concat(certs("orchestrator", "orchestrator"), ro(filepath.Join(cfg, "orchestrator.toml"), "/etc/edgeless/orchestrator.toml")),
		"edgeless:latest", "orc", "-c", "/etc/edgeless/orchestrator.toml")
	nodeConf, err := os.ReadFile(filepath.Join(cfg, "node.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, file := range []string{"node", "node-2", "node-3"} {
		name := fmt.Sprintf("node%d", i+1)
		h.nodeID[name] = certID(t, filepath.Join(tlsDir, file+".pem"))
		conf := filepath.Join(cfg, "node.toml")
		if d, ok := slow[name]; ok {
			relay := name + "-slow"
			run(relay, nil, nil, relayImage(t), ":7006", name+":7006", d.String())
			conf = filepath.Join(h.dir, name+".toml")
			announce := strings.Replace(string(nodeConf), "[general]\n", fmt.Sprintf("[general]\ninvocation_url_announced = %q\n", relay+":7006"), 1)
			if err := os.WriteFile(conf, []byte(announce), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run(name, []string{"7008"}, slices.Concat(certs("node", file), ro(conf, "/etc/edgeless/node.toml")),
			"edgeless:latest", "node", "-c", "/etc/edgeless/node.toml")
	}
	h.apiURL = "https://" + h.published("controller", "7001")
	h.http = apiClient(t, tlsDir)
	h.redis = redis.NewClient(&redis.Options{Addr: h.published("redis", "6379")})
	t.Cleanup(func() { h.redis.Close() })
	h.waitNodes(3, 30*time.Second)
	return h
}

// relayImage builds the image of testdata/delayrelay once and returns its
// name: a static binary FROM scratch.
func relayImage(t *testing.T) string {
	const name = "edgeless-test-delayrelay:latest"
	_, err := testutil.Once(name, func() (struct{}, error) {
		dir, err := os.MkdirTemp("", "delayrelay-")
		if err != nil {
			return struct{}{}, err
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "delayrelay"), "./testdata/delayrelay")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return struct{}{}, fmt.Errorf("go build delayrelay: %v: %s", err, out)
		}
		df := "FROM scratch\nCOPY delayrelay /delayrelay\nUSER 65532:65532\nENTRYPOINT [\"/delayrelay\"]\n"
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			return struct{}{}, err
		}
		cmd := exec.Command("docker", "build", "-q", "-t", name, dir)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return struct{}{}, fmt.Errorf("docker build delayrelay: %v: %s", err, out)
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// refresh re-reads the published ports after a container restarted: Docker
// picks new ones.
func (h *hosts) refresh() {
	h.apiURL = "https://" + h.published("controller", "7001")
}

// remove deletes the containers and the network, showing the logs of a
// failed test.
func (h *hosts) remove() {
	out, _ := docker("ps", "-aq", "--filter", "name="+h.prefix)
	for _, id := range strings.Fields(out) {
		if h.t.Failed() {
			name, _ := docker("inspect", "-f", "{{.Name}}", id)
			logs, _ := docker("logs", "--tail", "60", id)
			h.t.Logf("log of %s:\n%s", name, logs)
		}
		docker("rm", "-f", "-v", id)
	}
	docker("network", "rm", h.prefix)
}

// certID returns the id a certificate names.
func certID(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject.CommonName
}

// apiClient trusts the cluster's CA and sends the admin token.
func apiClient(t *testing.T, tlsDir string) *http.Client {
	ca, err := os.ReadFile(filepath.Join(tlsDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(tlsDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return testutil.APIClient(ca, strings.TrimSpace(string(tok)), 30*time.Second)
}

// published returns the host address a container's port is published on.
func (h *hosts) published(name, port string) string {
	h.t.Helper()
	out := h.docker("port", h.prefix+"-"+name, port+"/tcp")
	return strings.Fields(out)[0]
}

// api sends a request to the controller and decodes a JSON reply into v.
func (h *hosts) api(method, path string, body []byte, v any) error {
	req, err := http.NewRequest(method, h.apiURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if v != nil {
		return json.Unmarshal(data, v)
	}
	return nil
}

func (h *hosts) waitNodes(n int, within time.Duration) {
	h.t.Helper()
	testutil.Eventually(h.t, within, fmt.Sprintf("the controller to see %d nodes", n), func() bool {
		var l spec.DomainList
		return h.api(http.MethodGet, "/api/v1/domains", nil, &l) == nil && len(l.Domains) == 1 && l.Domains[0].Ready && l.Domains[0].Nodes == n
	})
}

// start starts a workflow given as JSON whose functions name their code by
// path, and returns its id.
func (h *hosts) start(wf string) string {
	h.t.Helper()
	file := filepath.Join(h.dir, fmt.Sprintf("wf-%d.json", time.Now().UnixNano()))
	if err := os.WriteFile(file, []byte(wf), 0o644); err != nil {
		h.t.Fatal(err)
	}
	w, err := spec.LoadWorkflow(file)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := range w.Functions {
		w.Functions[i].ClassSpecification.Code = "" // inlined by LoadWorkflow
	}
	body, _ := json.Marshal(w)
	var reply spec.StartReply
	if err := h.api(http.MethodPost, "/api/v1/workflows", body, &reply); err != nil {
		h.t.Fatal(err)
	}
	return reply.WorkflowID
}

// where returns the container name of the node running a component's
// (first) instance, or "".
func (h *hosts) where(id, component string) string {
	var wi spec.WorkflowInfo
	if err := h.api(http.MethodGet, "/api/v1/workflows/"+id, nil, &wi); err != nil {
		return ""
	}
	for _, c := range wi.Components {
		if c.Name == component && len(c.Instances) > 0 {
			for name, nid := range h.nodeID {
				if nid == c.Instances[0].Node {
					return name
				}
			}
		}
	}
	return ""
}

func (h *hosts) logical(id, component string) string {
	h.t.Helper()
	var wi spec.WorkflowInfo
	if err := h.api(http.MethodGet, "/api/v1/workflows/"+id, nil, &wi); err != nil {
		h.t.Fatal(err)
	}
	for _, c := range wi.Components {
		if c.Name == component {
			return c.LogicalID
		}
	}
	h.t.Fatalf("no component %s", component)
	return ""
}

// state returns a function's synced state in Redis as a number, or -1.
func (h *hosts) state(logical string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := h.redis.Get(ctx, "edgeless:state:"+logical).Int()
	if err != nil {
		return -1
	}
	return v
}

// lines returns the numbers in file (under /data) of every node, which may
// hold none; it reads stopped and paused containers too.
func (h *hosts) lines(file string) []int {
	var out []int
	h.sources = map[int][]string{}
	for name := range h.nodeID {
		raw, err := exec.Command("docker", "cp", h.prefix+"-"+name+":/data/"+file, "-").Output()
		if err != nil {
			continue // no such file on that node
		}
		tr := tar.NewReader(bytes.NewReader(raw))
		if _, err := tr.Next(); err != nil {
			h.t.Fatalf("docker cp %s of %s: %v", file, name, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			h.t.Fatal(err)
		}
		// A line is the number, or the sender's instance and the number.
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				h.t.Fatalf("%s of %s holds %q, not a number", file, name, l)
			}
			if len(f) > 1 {
				h.sources[n] = append(h.sources[n], f[0])
			}
			out = append(out, n)
		}
	}
	return out
}

// tally counts a sequence of numbers that should each appear once.
type tally struct {
	sent, delivered, duplicated, lost int
}

func (c tally) String() string {
	return fmt.Sprintf("sent %d, delivered %d, duplicated %d, lost %d", c.sent, c.delivered, c.duplicated, c.lost)
}

// count tallies got against the numbers 1..sent.
func count(got []int, sent int) tally {
	seen := map[int]int{}
	for _, n := range got {
		seen[n]++
	}
	c := tally{sent: sent}
	for n := 1; n <= sent; n++ {
		switch k := seen[n]; {
		case k == 0:
			c.lost++
		default:
			c.delivered++
			c.duplicated += k - 1
		}
	}
	return c
}

// median of durations.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
