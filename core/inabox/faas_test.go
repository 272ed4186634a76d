package inabox

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/cli"
	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// fcli runs an `edgeless function` verb against the box.
func (b *box) fcli(args ...string) (string, error) {
	var out bytes.Buffer
	err := cli.Function(context.Background(), append(b.cliFlags(), args...), &out)
	return out.String(), err
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

// TestFunctionLifecycle: create, list, invoke (sync and async with poll),
// delete a standalone function, and each way an invocation can go wrong.
func TestFunctionLifecycle(t *testing.T) {
	native := allowNative(t)
	b := startBox(t, 1, func(c *Config) {
		c.Controller.AsyncResultTTLSec = 1
		native(c)
	})
	src := filepath.Join(root, "functions/sum/sum.wasm")
	if out, err := b.fcli("create", "-f", "sum", "--src", src, "--runtime", "wasm", "--memory", "16"); err != nil || out != "Function sum created\n" {
		t.Fatalf("create = %q, %v", out, err)
	}
	if _, err := b.fcli("create", "-f", "sum", "--src", src); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second create: %v, want that it exists", err)
	}
	if out, err := b.fcli("list"); err != nil || out != "sum\tRUST_WASM\n" {
		t.Fatalf("list = %q, %v", out, err)
	}
	if out, err := b.fcli("invoke", "-f", "sum", "-p", "a:2", "-p", "b:3"); err != nil || out != "5\n" {
		t.Fatalf("invoke = %q, %v; want 5", out, err)
	}
	// The same C source built as a native shared object.
	if _, err := b.fcli("create", "-f", "sum-native", "--src", filepath.Join(root, "functions/sum/sum.so"), "--runtime", "native"); err != nil {
		t.Fatal(err)
	}
	if out, err := b.fcli("invoke", "-f", "sum-native", "-p", "a:2", "-p", "b:3"); err != nil || out != "5\n" {
		t.Fatalf("native invoke = %q, %v; want 5", out, err)
	}
	if _, err := b.fcli("delete", "-f", "sum-native"); err != nil {
		t.Fatal(err)
	}
	params := filepath.Join(b.dir, "params.json")
	os.WriteFile(params, []byte(`{"a": 40, "b": 2.5}`), 0o644)
	if out, err := b.fcli("invoke", "-f", "sum", "--params_file", params); err != nil || out != "42.5\n" {
		t.Fatalf("invoke --params_file = %q, %v; want 42.5", out, err)
	}

	id, err := b.fcli("invoke", "-f", "sum", "-p", "a:20", "-p", "b:22", "--async")
	if err != nil || len(strings.TrimSpace(id)) != 32 {
		t.Fatalf("async invoke = %q, %v", id, err)
	}
	id = strings.TrimSpace(id)
	testutil.Eventually(t, 10*time.Second, "the async result", func() bool {
		out, err := b.fcli("poll", "--request", id)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return out == "42\n"
	})
	// Results are kept async_result_ttl_sec (1 s here), then dropped.
	testutil.Eventually(t, 10*time.Second, "the async result to expire", func() bool {
		_, err := b.fcli("poll", "--request", id)
		return err != nil
	})
	_, err = b.fcli("poll", "--request", id)
	wantErr(t, err, "no request", "expired")

	_, err = b.fcli("invoke", "-f", "nosuch", "-p", "a:1")
	wantErr(t, err, `no function "nosuch"`)
	_, err = b.fcli("invoke", "-f", "sum", "-p", "a:two", "-p", "b:3")
	wantErr(t, err, `function "sum" returned an error`, `"a":"two"`)
	_, err = b.fcli("invoke", "-f", "sum", "-p", "a")
	wantErr(t, err, `"a": want key:value`)
	os.WriteFile(params, []byte(`[1, 2]`), 0o644)
	_, err = b.fcli("invoke", "-f", "sum", "--params_file", params)
	wantErr(t, err, "want a JSON object")

	if _, err := b.fcli("create", "-f", "trapper", "--src", filepath.Join(root, "functions/trap/trap.wasm")); err != nil {
		t.Fatal(err)
	}
	_, err = b.fcli("invoke", "-f", "trapper")
	wantErr(t, err, `function "trapper" failed`, "unreachable")

	if out, err := b.fcli("delete", "-f", "sum"); err != nil || out != "Function sum deleted\n" {
		t.Fatalf("delete = %q, %v", out, err)
	}
	_, err = b.fcli("invoke", "-f", "sum", "-p", "a:1", "-p", "b:1")
	wantErr(t, err, `no function "sum"`)
	if out, _ := b.fcli("list"); out != "trapper\tRUST_WASM\n" {
		t.Fatalf("list after delete = %q", out)
	}
}

// TestInvokeParamsAsWritten: a function gets the params object its
// client wrote, numbers with every digit, on both invocation paths; params
// that are not an object are refused with a reason.
func TestInvokeParamsAsWritten(t *testing.T) {
	b := startBox(t, 1, nil)
	if _, err := b.fcli("create", "-f", "echo", "--src", filepath.Join(root, "functions/echo/echo.wasm")); err != nil {
		t.Fatal(err)
	}
	call := func(path, body string) (int, string) {
		t.Helper()
		resp, err := b.api(http.MethodPost, path, body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	const params = `{"id":12345678901234567890,"z":1,"a":"<&>"}`
	for body, want := range map[string]string{
		`{"params":` + params + `}`: params,
		`{"params":null}`:           "{}",
		`{}`:                        "{}",
		``:                          "{}",
	} {
		if status, got := call("/api/v1/invoke/echo", body); status != http.StatusOK || got != want {
			t.Fatalf("invoke with %q = %d %q, want %q", body, status, got, want)
		}
	}
	status, got := call("/invoke/echo", `{"Params":`+params+`}`)
	var report spec.ServerledgeResponse
	if err := json.Unmarshal([]byte(got), &report); status != http.StatusOK || err != nil || report.Result != params {
		t.Fatalf("Serverledge invoke = %d %q, want the result %q", status, got, params)
	}
	for body, want := range map[string]string{
		`{"params":[1,2]}`:  "want a JSON object, not an array",
		`{"params":"x"}`:    "want a JSON object, not a string",
		`{"params":{"a":}}`: "bad invocation",
	} {
		if status, got := call("/api/v1/invoke/echo", body); status != http.StatusBadRequest || !strings.Contains(got, want) {
			t.Fatalf("invoke with %q = %d %q, want 400 with %q", body, status, got, want)
		}
	}
	if status, got := call("/invoke/echo", `{"Params":true}`); status != http.StatusBadRequest || !strings.Contains(got, "not a boolean") {
		t.Fatalf("Serverledge invoke with boolean params = %d %q, want 400", status, got)
	}
}

// TestOverloadWithoutNeighbour: with one node and one instance allowed, an
// invocation burst queues up to the mailbox bound and the rest is refused
// with 429 and a clear reason; nothing is lost.
func TestOverloadWithoutNeighbour(t *testing.T) {
	b := startBox(t, 1, func(c *Config) { c.Node.General.MailboxSize = 4 })
	if _, err := b.fcli("create", "-f", "busy", "--src", filepath.Join(root, "functions/busy/busy.wasm"),
		"--annotation", "max_instances=1"); err != nil {
		t.Fatal(err)
	}
	const n = 40
	type result struct {
		status int
		body   string
	}
	results := make(chan result, n)
	for range n {
		go func() {
			resp, err := b.api(http.MethodPost, "/api/v1/invoke/busy", `{"params":{"work":"20"}}`)
			if err != nil {
				results <- result{status: -1, body: err.Error()}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, string(body)}
		}()
	}
	counts := map[int]int{}
	for range n {
		select {
		case r := <-results:
			counts[r.status]++
			switch r.status {
			case http.StatusOK:
				if r.body != "done" {
					t.Errorf("200 with body %q", r.body)
				}
			case http.StatusTooManyRequests:
				if !strings.Contains(r.body, "overloaded") {
					t.Errorf("429 without a reason: %q", r.body)
				}
			default:
				t.Errorf("status %d: %s", r.status, r.body)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("invocations unanswered; so far %v", counts)
		}
	}
	if counts[http.StatusOK] == 0 || counts[http.StatusTooManyRequests] == 0 {
		t.Fatalf("answers %v: want some served and some refused with 429", counts)
	}
	t.Logf("answers: %v", counts)
}

// TestRawCast sends EDGELESS's raw `function invoke cast` straight to a
// node's dataplane: the double function gets 21 and logs 42.
func TestRawCast(t *testing.T) {
	b := startBox(t, 1, nil)
	logFile := filepath.Join(b.dir, "raw.log")
	w := workflow(fn(t, "double", "double", map[string]string{"output": "log"}, ""))
	w.Resources = []spec.Resource{{Name: "log", ClassType: "file-log", OutputMapping: map[string]string{},
		Configurations: map[string]string{"filename": logFile}}}
	id := b.mustStartSpec(w)
	in := component(b.inspect(id), "double").Instances[0]
	out, err := b.fcli("invoke", "cast", "http://"+b.Nodes[0].Addr(), in.Node, in.Instance, "21")
	if err != nil || out != "event casted\n" {
		t.Fatalf("invoke cast = %q, %v", out, err)
	}
	testutil.Eventually(t, 10*time.Second, "42 in the log", func() bool {
		data, _ := os.ReadFile(logFile)
		return string(data) == "42\n"
	})
	_, err = b.fcli("invoke", "cast", "http://"+b.Nodes[0].Addr(), "not-a-uuid", in.Instance, "21")
	wantErr(t, err, "node id")
}

// TestScaleOutAndIn: a burst against a function whose one instance is
// overloaded starts a second instance on the other node; once invocations
// stop finding it overloaded, the extra instance is stopped again.
func TestScaleOutAndIn(t *testing.T) {
	b := startBox(t, 2, func(c *Config) {
		c.Node.Offload = node.Offload{Enabled: true, QueueThreshold: 1}
		c.Orchestrator.General.ScaleInAfterSec = 1
	})
	if _, err := b.fcli("create", "-f", "busy", "--src", filepath.Join(root, "functions/busy/busy.wasm"), "--annotation", "max_instances=2"); err != nil {
		t.Fatal(err)
	}
	var list spec.FunctionList
	resp, err := b.api(http.MethodGet, "/api/v1/functions", "")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Functions) != 1 {
		t.Fatalf("functions: %+v", list)
	}
	id := list.Functions[0].WorkflowID
	instances := func() int { return len(component(b.inspect(id), "busy").Instances) }
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 10 {
				r, err := b.api(http.MethodPost, "/api/v1/invoke/busy", `{"params":{"work":"0","sleep_ms":"5"}}`)
				if err == nil {
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
				}
			}
		}()
	}
	testutil.Eventually(t, 10*time.Second, "a second instance", func() bool { return instances() == 2 })
	for range 4 {
		<-done
	}
	testutil.Eventually(t, 10*time.Second, "the extra instance to be stopped", func() bool { return instances() == 1 })
}
