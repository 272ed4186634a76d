package main

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

// slPost sends a Serverledge request over plain HTTP to the controller's API
// address from loopback, without a token, as serverledge-cli does.
func (c *cluster) slPost(path string, body any) (int, string) {
	c.t.Helper()
	data, _ := json.Marshal(body)
	return c.slDo(http.MethodPost, path, data)
}

func (c *cluster) slDo(method, path string, body []byte) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, strings.Replace(c.api, "https://", "http://", 1)+path, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}

// busyFunction is Serverledge's create request for functions/busy as a
// wasm function, its module in a tar archive as serverledge-cli sends it.
func busyFunction(t *testing.T) map[string]any {
	t.Helper()
	code, err := os.ReadFile("functions/busy/busy.wasm")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "busy.wasm", Mode: 0o644, Size: int64(len(code)), Typeflag: tar.TypeReg})
	tw.Write(code)
	tw.Close()
	return map[string]any{"Name": "busy", "Runtime": "wasm", "MemoryMB": 128, "TarFunctionCode": base64.StdEncoding.EncodeToString(buf.Bytes())}
}

// TestServerledgeAsyncSurvivesRestart: the results of asynchronous
// invocations are kept with the controller's persistence file; after a
// kill -9 and a restart, a finished one polls as before and one that was
// running is reported lost.
func TestServerledgeAsyncSurvivesRestart(t *testing.T) {
	c := newCluster(t, 1, "")
	fn := busyFunction(t)
	if status, body := c.slPost("/create", fn); status != http.StatusOK {
		t.Fatalf("create = %d %s", status, body)
	}
	reqID := func(params map[string]any) string {
		status, body := c.slPost("/invoke/busy", map[string]any{"Params": params, "Async": true})
		var acc struct{ ReqId string }
		if status != http.StatusOK || json.Unmarshal([]byte(body), &acc) != nil || acc.ReqId == "" {
			t.Fatalf("async invoke = %d %s", status, body)
		}
		return acc.ReqId
	}
	done := reqID(map[string]any{"work": 0})
	var before string
	testutil.Eventually(t, 20*time.Second, "the async result", func() bool {
		status, body := c.slDo(http.MethodGet, "/poll/"+done, nil)
		before = body
		return status == http.StatusOK
	})
	if !strings.Contains(before, `"Success":true`) || !strings.Contains(before, `"Result":"done"`) {
		t.Fatalf("poll = %s", before)
	}
	running := reqID(map[string]any{"work": 0, "sleep_ms": 5000})
	c.kill("con")
	c.start("con", "con", "-c", "controller.toml")
	c.waitNodes(1)
	if status, body := c.slDo(http.MethodGet, "/poll/"+done, nil); status != http.StatusOK || body != before {
		t.Fatalf("poll after restart = %d %s, want 200 %s", status, body, before)
	}
	status, body := c.slDo(http.MethodGet, "/poll/"+running, nil)
	if status != http.StatusOK || !strings.Contains(body, `"Success":false`) || !strings.Contains(body, "restarted while this invocation ran") {
		t.Fatalf("poll of the invocation cut by the restart = %d %s", status, body)
	}
}

// TestEdgeCloudDeadlines loads a function on two node processes, the second
// labelled cloud, with requests whose QoSMaxRespT is below the response time
// of the saturated edge: 8 clients at once, 20 ms per call, one edge
// instance. With the edge-only policy every request waits on the edge; with
// edge-cloud the orchestrator sends those the edge cannot serve in time to
// the cloud node, and the share of missed deadlines falls.
func TestEdgeCloudDeadlines(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const workers, each, deadline = 8, 40, 0.1
	run := func(policy string) (missed float64, actions map[string]int, took map[string][]time.Duration) {
		c := newCluster(t, 2, "")
		// Make node1 the cloud and select the policy: restart the
		// orchestrator and that node with the amended files.
		c.kill("orc")
		c.kill("node1")
		for name, extra := range map[string]string{
			"orchestrator.toml": "[scheduling]\npolicy = \"" + policy + "\"\n",
			"node1.toml":        "[user_node_capabilities]\nlabels = [\"cloud\"]\n",
		} {
			data, err := os.ReadFile(filepath.Join(c.dir, name))
			if err != nil {
				t.Fatal(err)
			}
			c.write(name, string(data)+extra)
		}
		orc := c.start("orc", "orc", "-c", "orchestrator.toml")
		c.start("node1", "node", "-c", "node1.toml")
		con := c.procs["con"]
		testutil.Eventually(t, 20*time.Second, "both nodes in the restarted orchestrator, and it in the controller", func() bool {
			return strings.Count(orc.String(), "node joined") == 2 && strings.Count(con.String(), "domain joined") == 2
		})
		c.waitNodes(2)
		fn := busyFunction(t)
		// Until the restarted orchestrator has registered, the controller
		// reaches for the one that is gone (502).
		testutil.Eventually(t, 20*time.Second, "the function created", func() bool {
			status, body := c.slPost("/create", fn)
			if status != http.StatusOK && status != http.StatusBadGateway && status != http.StatusServiceUnavailable {
				t.Fatalf("create = %d %s", status, body)
			}
			return status == http.StatusOK
		})
		call := map[string]any{"Params": map[string]any{"work": 0, "sleep_ms": 20}, "QoSMaxRespT": deadline, "CanDoOffloading": true}
		c.slPost("/invoke/busy", call) // the cold start, outside the measurement
		var mu sync.Mutex
		var wg sync.WaitGroup
		late := 0
		actions, took = map[string]int{}, map[string][]time.Duration{}
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					start := time.Now()
					status, body := c.slPost("/invoke/busy", call)
					d := time.Since(start)
					var r struct{ SchedAction string }
					json.Unmarshal([]byte(body), &r)
					mu.Lock()
					if status != http.StatusOK {
						actions["status "+strconv.Itoa(status)+": "+body]++
					} else {
						actions[r.SchedAction]++
						took[r.SchedAction] = append(took[r.SchedAction], d)
					}
					if d.Seconds() > deadline {
						late++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return float64(late) / (workers * each), actions, took
	}
	// p50 and p90 of the calls served where, as "p50/p90 ms".
	quantiles := func(took map[string][]time.Duration) map[string]string {
		out := map[string]string{}
		for where, l := range took {
			slices.Sort(l)
			out[where] = fmt.Sprintf("%.0f/%.0f ms", l[len(l)/2].Seconds()*1e3, l[len(l)*9/10].Seconds()*1e3)
		}
		return out
	}
	offMissed, offActions, offTook := run("edge-only")
	onMissed, onActions, onTook := run("edge-cloud")
	t.Logf("deadline %.0f ms, %d clients × %d calls of 20 ms: edge-only missed %.1f%% %v %v; edge-cloud missed %.1f%% %v %v",
		deadline*1e3, workers, each, offMissed*100, offActions, quantiles(offTook), onMissed*100, onActions, quantiles(onTook))
	if offActions["OC"] != 0 || offActions[""] != workers*each {
		t.Fatalf("edge-only: actions %v, want every call served on the edge", offActions)
	}
	if onActions["OC"] == 0 || onActions[""]+onActions["OC"] != workers*each {
		t.Fatalf("edge-cloud: actions %v, want calls served on the edge and in the cloud", onActions)
	}
	if onMissed >= offMissed/2 {
		t.Fatalf("edge-cloud missed %.1f%% of deadlines, edge-only %.1f%%: want under half", onMissed*100, offMissed*100)
	}
}
