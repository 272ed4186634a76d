package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/redistest"
	"github.com/edgeless-go/edgeless/internal/testutil"
	"github.com/edgeless-go/edgeless/wire"
)

// The attacks of the security issue, each against a real cluster of
// processes with the default settings, from a process that has no
// certificate of the cluster's CA unless the test says otherwise.

// creds loads credentials issued by the cluster's CA for id, made with
// `edgeless cert issue` as an insider (or a stolen certificate) would have.
func (c *cluster) creds(id wire.Identity) *wire.Credentials {
	c.t.Helper()
	name := "extra-" + strconv.Itoa(int(time.Now().UnixNano()%1e9))
	c.run("cert", "issue", "-role", id.Role, "-id", id.ID, "-out", name)
	cr, err := wire.LoadCredentials(filepath.Join(c.dir, "tls", "ca.pem"), filepath.Join(c.dir, "tls", name+".pem"), filepath.Join(c.dir, "tls", name+".key"))
	if err != nil {
		c.t.Fatal(err)
	}
	return cr
}

// strangerCreds are credentials from a CA the cluster does not trust.
func strangerCreds(t *testing.T, id wire.Identity) *wire.Credentials {
	t.Helper()
	ca, err := wire.NewCA("stranger", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := ca.Credentials(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

// callOnce sends one control request to addr and returns its error.
func callOnce[Req, Resp any](addr string, opts wire.ClientOptions, method string, req *Req) error {
	opts.DialTimeout = 3 * time.Second
	cl := wire.NewClient(addr, opts)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := wire.Call[Req, Resp](ctx, cl, method, req)
	return err
}

// nodeAddr returns the dataplane address of node i (from its configuration).
func (c *cluster) nodeAddr(i int) string {
	c.t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.toml", i)))
	if err != nil {
		c.t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "invocation_url = "); ok {
			return strings.Trim(v, `"`)
		}
	}
	c.t.Fatal("no invocation_url")
	return ""
}

// orcAddr and domainAddr return the orchestrator's and the controller's
// registration addresses.
func (c *cluster) confValue(file, key string) string {
	c.t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		c.t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, key+" = "); ok {
			return strings.Trim(v, `"`)
		}
	}
	c.t.Fatalf("no %s in %s", key, file)
	return ""
}

// startCounter starts the counter → incr → file-log workflow and returns its
// id and the log file, once the counter runs.
func (c *cluster) startCounter() (string, string) {
	c.t.Helper()
	logFile := filepath.Join(c.dir, "counter.log")
	id, err := c.cli("start", c.counterWorkflow(logFile))
	if err != nil {
		c.t.Fatalf("workflow start: %v: %s", err, id)
	}
	testutil.Eventually(c.t, 10*time.Second, "the counter to log", func() bool { return lastLogged(logFile) > 0 })
	return id, logFile
}

// stillRunning fails the test unless the counter's log advances.
func stillRunning(t *testing.T, logFile string) {
	t.Helper()
	before := lastLogged(logFile)
	testutil.Eventually(t, 5*time.Second, "the counter to advance", func() bool { return lastLogged(logFile) > before })
}

// TestAttackNativeCode: a native .so whose constructor writes a file, sent to
// the API without a token, then with a deployer's token to a cluster whose
// nodes keep native code off (the default): it never runs.
func TestAttackNativeCode(t *testing.T) {
	c := newCluster(t, 1, "")
	marker := filepath.Join(c.dir, "pwned")
	src := filepath.Join(c.dir, "evil.c")
	c.write("evil.c", fmt.Sprintf(`#include <stdio.h>
__attribute__((constructor)) static void evil(void) { FILE *f = fopen(%q, "w"); if (f) fclose(f); }
`, marker))
	so := filepath.Join(c.dir, "evil.so")
	if out, err := exec.Command("cc", "-shared", "-fPIC", "-o", so, src).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	code, err := os.ReadFile(so)
	if err != nil {
		t.Fatal(err)
	}
	wf := fmt.Sprintf(`{"functions":[{"name":"evil","class_specification":{"id":"evil","function_type":"RUST_NATIVE","version":"1","binary":%q,"outputs":[]},"output_mapping":{},"annotations":{}}],"resources":[],"annotations":{}}`,
		base64.StdEncoding.EncodeToString(code))
	post := func(client *http.Client) (int, string) {
		resp, err := client.Post(c.api+"/api/v1/workflows", "application/json", strings.NewReader(wf))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// No token: refused before the body is looked at.
	anon := c.clientWith("")
	if status, body := post(anon); status != http.StatusUnauthorized || !strings.Contains(body, "missing bearer token") {
		t.Fatalf("without a token: %d %s, want 401", status, body)
	}
	// A deployer's token: the nodes offer no native runtime.
	// Tokens added with `edgeless cert token` are taken up without a restart.
	tok := strings.TrimSpace(c.run("cert", "token", "-role", "deployer", "-name", "alice"))
	deployer := c.clientWith(tok)
	var status int
	var body string
	testutil.Eventually(t, 5*time.Second, "the new token to be known", func() bool {
		status, body = post(deployer)
		return status != http.StatusUnauthorized
	})
	if status < 400 || !strings.Contains(body, "RUST_NATIVE") {
		t.Fatalf("native code on default nodes: %d %s, want a refusal naming RUST_NATIVE", status, body)
	}
	// An invoker's token may not deploy at all.
	tok = strings.TrimSpace(c.run("cert", "token", "-role", "invoker", "-name", "bob"))
	testutil.Eventually(t, 5*time.Second, "the invoker's token to be known", func() bool {
		status, body = post(c.clientWith(tok))
		return status != http.StatusUnauthorized
	})
	if status != http.StatusForbidden {
		t.Fatalf("invoker deploying: %d %s, want 403", status, body)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the native constructor ran: %v", err)
	}
}

// TestAttackNodeControl: node.StartFunction and node.Reset sent straight to a
// node's port, without a certificate, with one from another CA, and with
// another node's certificate: all refused, and the node's instances go on.
func TestAttackNodeControl(t *testing.T) {
	c := newCluster(t, 1, "")
	_, logFile := c.startCounter()
	addr := c.nodeAddr(0)
	node := wire.Identity{Role: wire.RoleNode, ID: c.nodeIDs[0].String()}
	start := &wire.StartFunction{Component: core.NewID(), Spec: wire.FunctionSpec{Logical: core.NewID(), Name: "x", FunctionType: "RUST_WASM", Code: []byte("\x00asm")}}
	attempts := map[string]wire.ClientOptions{
		"plaintext":     {},
		"foreign CA":    {TLS: strangerCreds(t, wire.Identity{Role: wire.RoleOrchestrator, ID: "domain-test"}).ClientTLS(node)},
		"another node":  {TLS: c.creds(wire.Identity{Role: wire.RoleNode, ID: core.NewID().String()}).ClientTLS(node)},
		"a CLI's certs": {TLS: c.creds(wire.Identity{Role: wire.RoleClient, ID: "mallory"}).ClientTLS(node)},
		// The controller may invoke instances on a node, nothing else.
		"the controller's certs": {TLS: c.creds(wire.Identity{Role: wire.RoleController, ID: "controller"}).ClientTLS(node)},
	}
	for name, opts := range attempts {
		if err := callOnce[wire.StartFunction, wire.StartResponse](addr, opts, wire.MethodNodeStartFunction, start); err == nil {
			t.Errorf("%s: node.StartFunction accepted", name)
		}
		if err := callOnce[wire.Empty, wire.Empty](addr, opts, wire.MethodNodeReset, &wire.Empty{}); err == nil {
			t.Errorf("%s: node.Reset accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	stillRunning(t, logFile)
}

// TestAttackRogueRegistration: a process registering as a domain at the
// controller, or as a node at the orchestrator, without the cluster's
// certificates or with one that names someone else, is refused; the next
// workflow goes to the real domain.
func TestAttackRogueRegistration(t *testing.T) {
	c := newCluster(t, 1, "")
	domainAddr := c.confValue("controller.toml", "domain_register_url")
	orcAddr := c.confValue("orchestrator.toml", "orchestrator_url")
	dom := &wire.UpdateDomain{Domain: "rogue", Addr: "127.0.0.1:1", Nonce: 1, RefreshMS: 60000, Nodes: 5,
		Capabilities: wire.Capabilities{Runtimes: []string{"RUST_WASM"}}}
	con := wire.Identity{Role: wire.RoleController}
	for name, opts := range map[string]wire.ClientOptions{
		"plaintext":           {},
		"foreign CA":          {TLS: strangerCreds(t, wire.Identity{Role: wire.RoleOrchestrator, ID: "rogue"}).ClientTLS(con)},
		"a node's cert":       {TLS: c.creds(wire.Identity{Role: wire.RoleNode, ID: core.NewID().String()}).ClientTLS(con)},
		"another domain's id": {TLS: c.creds(wire.Identity{Role: wire.RoleOrchestrator, ID: "domain-other"}).ClientTLS(con)},
	} {
		if err := callOnce[wire.UpdateDomain, wire.UpdateDomainResponse](domainAddr, opts, wire.MethodConUpdateDomain, dom); err == nil {
			t.Errorf("%s: rogue domain registered", name)
		}
	}
	reg := &wire.UpdateNode{Node: core.NewID(), Addr: "127.0.0.1:1", Nonce: 1, RefreshMS: 60000, Capabilities: wire.Capabilities{Runtimes: []string{"RUST_WASM"}, NumCPUs: 64}}
	orc := wire.Identity{Role: wire.RoleOrchestrator, ID: "domain-test"}
	for name, opts := range map[string]wire.ClientOptions{
		"plaintext":         {},
		"foreign CA":        {TLS: strangerCreds(t, wire.Identity{Role: wire.RoleNode, ID: reg.Node.String()}).ClientTLS(orc)},
		"another node's id": {TLS: c.creds(wire.Identity{Role: wire.RoleNode, ID: core.NewID().String()}).ClientTLS(orc)},
		"a controller":      {TLS: c.creds(wire.Identity{Role: wire.RoleController, ID: "x"}).ClientTLS(orc)},
	} {
		if err := callOnce[wire.UpdateNode, wire.UpdateNodeResponse](orcAddr, opts, wire.MethodOrcUpdateNode, reg); err == nil {
			t.Errorf("%s: rogue node registered", name)
		}
	}
	var domains struct {
		Domains []struct {
			ID    string `json:"id"`
			Nodes int    `json:"nodes"`
		} `json:"domains"`
	}
	if err := c.get("/api/v1/domains", &domains); err != nil || len(domains.Domains) != 1 || domains.Domains[0].ID != "domain-test" || domains.Domains[0].Nodes != 1 {
		t.Fatalf("domains after the attempts: %+v, %v", domains, err)
	}
	id, _ := c.startCounter()
	wi := c.inspect(id)
	if wi.Domain != "domain-test" || findComponent(wi, "counter").Instances[0].Node != c.nodeIDs[0].String() {
		t.Fatalf("workflow placed at %s on %+v", wi.Domain, findComponent(wi, "counter").Instances)
	}
}

// TestAttackDuplicateNodeID: a second node process with a copy of a live
// node's configuration and certificate is refused with a clear log line, and
// the first keeps its instances.
func TestAttackDuplicateNodeID(t *testing.T) {
	c := newCluster(t, 1, "")
	_, logFile := c.startCounter()
	conf, err := os.ReadFile(filepath.Join(c.dir, "node0.toml"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	dup := strings.Replace(string(conf), c.nodeAddr(0), fmt.Sprintf("127.0.0.1:%d", port), 1)
	dup = strings.Replace(dup, c.ingress[0], fmt.Sprintf("127.0.0.1:%d", freePort(t)), 1)
	c.write("dup.toml", dup)
	c.start("dup", "node", "-c", "dup.toml")
	testutil.Eventually(t, 10*time.Second, "the orchestrator to refuse the copy", func() bool {
		return strings.Contains(c.procs["orc"].String(), "refusing a second node with the same node_id while the first is alive")
	})
	testutil.Eventually(t, 10*time.Second, "the copy to be told", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return strings.Contains(c.procs["dup"].String(), "node_id already in use by a live node")
	})
	stillRunning(t, logFile)
	if n := strings.Count(c.procs["orc"].String(), "node restarted; its instances are lost"); n != 0 {
		t.Fatalf("the orchestrator took the copy for a restart %d times", n)
	}
}

// TestAttackFileLogOutside: file-log paths outside the node's data directory
// are refused at workflow start with the reason, and nothing is written.
func TestAttackFileLogOutside(t *testing.T) {
	c := newCluster(t, 1, "")
	outside := t.TempDir()
	for _, name := range []string{filepath.Join(outside, "x"), "../x", "/etc/cron.d/edgeless-test"} {
		wf := fmt.Sprintf(`{"functions":[],"resources":[{"name":"log","class_type":"file-log","output_mapping":{},"configurations":{"filename":%q}}],"annotations":{}}`, name)
		c.write("outside.json", wf)
		out, err := c.cli("start", filepath.Join(c.dir, "outside.json"))
		if err == nil || !strings.Contains(out, "outside the node's data directory") {
			t.Fatalf("file-log %s: %v: %s", name, err, out)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("written outside: %v", entries)
	}
	if _, err := os.Stat("/etc/cron.d/edgeless-test"); err == nil {
		t.Fatal("/etc/cron.d/edgeless-test was written")
	}
}

// ingressWorkflow is a workflow whose http-ingress for host feeds a file-log.
func ingressWorkflow(host, logFile string) string {
	return fmt.Sprintf(`{"functions":[],"resources":[
 {"name":"in","class_type":"http-ingress","output_mapping":{"new_request":"log"},"configurations":{"host":%q,"async":"true"}},
 {"name":"log","class_type":"file-log","output_mapping":{},"configurations":{"filename":%q}}],"annotations":{}}`, host, logFile)
}

// TestAttackIngressHostClaim: a second workflow claiming a host that another
// owns is refused with 409 and the owner's id, and so is an empty (catch-all)
// host, which the node's operator has not allowed.
func TestAttackIngressHostClaim(t *testing.T) {
	c := newCluster(t, 1, "")
	c.write("a.json", ingressWorkflow("shop.example.com", filepath.Join(c.dir, "a.log")))
	owner, err := c.cli("start", filepath.Join(c.dir, "a.json"))
	if err != nil {
		t.Fatalf("%v: %s", err, owner)
	}
	for _, host := range []string{"shop.example.com", "SHOP.example.com:8080"} {
		resp, err := c.http.Post(c.api+"/api/v1/workflows", "application/json", strings.NewReader(ingressWorkflow(host, filepath.Join(c.dir, "b.log"))))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), owner) {
			t.Fatalf("second claim of %s: %s %s, want 409 naming %s", host, resp.Status, body, owner)
		}
	}
	c.write("any.json", ingressWorkflow("", filepath.Join(c.dir, "b.log")))
	if out, err := c.cli("start", filepath.Join(c.dir, "any.json")); err == nil || !strings.Contains(out, "http_ingress_allow_catch_all") {
		t.Fatalf("catch-all host: %v: %s", err, out)
	}
	// The owner still gets every request.
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodPost, "http://"+c.ingress[0]+"/", strings.NewReader("r"+strconv.Itoa(i)))
		req.Host = "shop.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request to the owner: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	testutil.Eventually(t, 5*time.Second, "five lines in the owner's log", func() bool {
		data, _ := os.ReadFile(filepath.Join(c.dir, "a.log"))
		return strings.Count(string(data), "\n") == 5
	})
}

// TestAttackSlowBodies: 2,000 connections from one address each send the
// headers of a large request and then a byte now and then, to the API and to
// http-ingress. Requests from elsewhere are still answered within 1 s and the
// workflows keep running.
func TestAttackSlowBodies(t *testing.T) {
	c := newCluster(t, 1, "")
	_, logFile := c.startCounter()
	c.write("in.json", ingressWorkflow("api.example.com", filepath.Join(c.dir, "in.log")))
	if out, err := c.cli("start", filepath.Join(c.dir, "in.json")); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	attacker := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 2 * time.Second}
	apiHost := strings.TrimPrefix(c.api, "https://")
	var conns []net.Conn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	const n = 2000
	var opened, refused int
	for i := range n {
		target, secure := c.ingress[0], false
		if i%2 == 0 {
			target, secure = apiHost, true
		}
		conn, err := attacker.Dial("tcp", target)
		if err != nil {
			refused++
			continue
		}
		if secure {
			tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
			tc.SetDeadline(time.Now().Add(2 * time.Second))
			if tc.Handshake() != nil {
				conn.Close()
				refused++
				continue
			}
			tc.SetDeadline(time.Time{})
			conn = tc
		}
		fmt.Fprintf(conn, "POST /api/v1/workflows HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 100000000\r\n\r\nx")
		conns = append(conns, conn)
		opened++
	}
	t.Logf("slow connections: %d opened, %d refused at once", opened, refused)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a byte now and then keeps each body "in progress"
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			for _, conn := range conns {
				conn.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				conn.Write([]byte("x"))
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	quick := &http.Client{Transport: c.http.Transport, Timeout: time.Second}
	for i := range 5 {
		resp, err := quick.Get(c.api + "/api/v1/workflows")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("API under attack, request %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		req, _ := http.NewRequest(http.MethodPost, "http://"+c.ingress[0]+"/", strings.NewReader("hello"))
		req.Host = "api.example.com"
		resp, err = (&http.Client{Timeout: time.Second}).Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("ingress under attack, request %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	stillRunning(t, logFile)
}

// rss returns a process's resident set size in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestAttackPartialFrames: 20 connections each announce a 63 MB frame and
// send most of it, without a certificate and then with a stolen node
// certificate. The node's memory stays bounded and it keeps serving.
func TestAttackPartialFrames(t *testing.T) {
	c := newCluster(t, 1, "")
	_, logFile := c.startCounter()
	addr := c.nodeAddr(0)
	pid := c.procs["node0"].cmd.Process.Pid
	insider := c.creds(wire.Identity{Role: wire.RoleNode, ID: core.NewID().String()})
	node := wire.Identity{Role: wire.RoleNode, ID: c.nodeIDs[0].String()}
	const size = 63 << 20
	chunk := make([]byte, 1<<20)
	var peak int64
	for _, withCert := range []bool{false, true} {
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var conn net.Conn
				var err error
				if withCert {
					conn, err = tls.Dial("tcp", addr, insider.ClientTLS(node))
				} else {
					conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
				}
				if err != nil {
					return
				}
				defer conn.Close()
				var prefix [4]byte
				binary.BigEndian.PutUint32(prefix[:], size)
				conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
				if _, err := conn.Write(prefix[:]); err != nil {
					return
				}
				for sent := 0; sent < size-len(chunk); sent += len(chunk) {
					if _, err := conn.Write(chunk); err != nil {
						return // closed by the node
					}
				}
				time.Sleep(time.Second) // hold the partial frame
			}()
		}
		wg.Wait()
		peak = max(peak, rss(t, pid))
	}
	t.Logf("node RSS after the partial frames: %d MB", peak>>20)
	if peak > 200<<20 {
		t.Fatalf("node RSS reached %d MB, want under 200 MB", peak>>20)
	}
	stillRunning(t, logFile)
}

// TestSecretsRedacted: a Redis password in the orchestrator's proxy URL, in a
// node's state URL and in a workflow's redis resource appears neither in any
// process's log nor in the API's replies.
func TestSecretsRedacted(t *testing.T) {
	const password = "s3cr3t-Pa55"
	srv := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	if err := rc.ConfigSet(context.Background(), "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	url := "redis://:" + password + "@" + srv.Addr()
	c := newCluster(t, 1, "")
	// Restart the orchestrator and the node with the password in their URLs.
	c.kill("orc")
	orcConf, _ := os.ReadFile(filepath.Join(c.dir, "orchestrator.toml"))
	c.write("orchestrator.toml", string(orcConf)+fmt.Sprintf("[proxy]\nproxy_type = \"Redis\"\nredis_url = %q\n", url))
	c.start("orc", "orc", "-c", "orchestrator.toml")
	c.kill("node0")
	nodeConf, _ := os.ReadFile(filepath.Join(c.dir, "node0.toml"))
	conf := strings.Replace(string(nodeConf), "[state]\n", fmt.Sprintf("[state]\nredis_url = %q\n", url), 1)
	c.write("node0.toml", strings.Replace(conf, `redis_provider = ""`, `redis_provider = "redis-0"`, 1))
	c.start("node0", "node", "-c", "node0.toml")
	testutil.Eventually(t, 10*time.Second, "the restarted orchestrator's domain to join", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return strings.Count(c.procs["con"].String(), "domain joined") >= 2
	})
	c.waitNodes(1)
	wf := fmt.Sprintf(`{"functions":[],"resources":[{"name":"r","class_type":"redis","output_mapping":{},"configurations":{"url":%q,"key":"k"}}],"annotations":{}}`, url)
	c.write("redis.json", wf)
	id, err := c.cli("start", filepath.Join(c.dir, "redis.json"))
	if err != nil {
		t.Fatalf("%v: %s", err, id)
	}
	resp, err := c.http.Get(c.api + "/api/v1/workflows/" + id)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), password) || !strings.Contains(string(body), "xxxxx@"+srv.Addr()) {
		t.Fatalf("inspect shows %s", body)
	}
	out, _ := c.cli("inspect", id)
	if strings.Contains(out, password) {
		t.Fatalf("workflow inspect shows the password:\n%s", out)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, p := range c.procs {
		if strings.Contains(p.String(), password) {
			t.Errorf("the log of %s shows the password", name)
		}
	}
	if !strings.Contains(c.procs["orc"].String(), "Redis proxy ready") {
		t.Fatalf("the proxy did not start:\n%s", c.procs["orc"])
	}
}
