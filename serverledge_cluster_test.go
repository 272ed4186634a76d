package main

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
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

// TestServerledgeAsyncSurvivesRestart: the results of asynchronous
// invocations are kept with the controller's persistence file; after a
// kill -9 and a restart, a finished one polls as before and one that was
// running is reported lost.
func TestServerledgeAsyncSurvivesRestart(t *testing.T) {
	c := newCluster(t, 1, "")
	code, err := os.ReadFile("functions/busy/busy.wasm")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "busy.wasm", Mode: 0o644, Size: int64(len(code)), Typeflag: tar.TypeReg})
	tw.Write(code)
	tw.Close()
	fn := map[string]any{"Name": "busy", "Runtime": "wasm", "MemoryMB": 32, "TarFunctionCode": base64.StdEncoding.EncodeToString(buf.Bytes())}
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
	eventuallyT(t, 20*time.Second, "the async result", func() bool {
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
