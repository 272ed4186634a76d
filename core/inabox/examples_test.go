package inabox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// TestEdgelessExamples takes every workflow of EDGELESS's examples/
// directory (testdata/edgeless/examples, unchanged), points its code paths at
// our builds, and checks that it parses, validates and needs only resource
// classes the box's node offers, then starts it in the box (through the CLI,
// with TLS and tokens), waits until every component is placed, and stops it.
// Resource instances start without their outside servers (Redis, Kafka, an
// HTTP server), so all but sqlx start here. The ESP32 classes, dda, ollama
// and CONTAINER functions are refused, with a message naming the class or
// function type.
func TestEdgelessExamples(t *testing.T) {
	examples := filepath.Join(root, "testdata", "edgeless", "examples")

	// EDGELESS's functions we do not ship (named by the directory of their
	// code path), and the function of ours that stands in for each; every
	// other function is ours under the same name.
	stand := map[string]string{
		"single_trigger":       "message_generator", // casts a message after delay_ms; ours casts one every period
		"load_balance":         "noop",              // round robin over out1…outN
		"sloppy_test":          "echo",              // casts on after delay_ms; echo at once
		"dup":                  "noop",              // casts to out1 and out2
		"check_temperature":    "noop",              // dda_demo, refused for dda
		"move_arm":             "noop",              // likewise
		"dda_com_test":         "noop",              // dda_test, refused for dda
		"dda_state_store_test": "noop",              // likewise
		"esp_test_fun":         "noop",              // esp32_resources, refused for its classes
		"http_extractor":       "noop",              // ollama, refused for ollama
	}

	// The serverless example's class "double", declared in node.toml as
	// EDGELESS declares it, calls this OpenFaaS-style function.
	double := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, _ := strconv.Atoi(string(body))
		io.WriteString(w, strconv.Itoa(2*n))
	}))
	t.Cleanup(double.Close)
	b := startBox(t, 1, func(c *Config) {
		r := &c.Node.Resources
		r.HTTPIngressAllowCatchAll = true // the async and multi examples claim every host
		r.KafkaEgressProvider = "kafka-egress-1"
		r.FilePusherProvider = node.FilePusher{Directory: t.TempDir(), Provider: "file-pusher-1"}
		r.MetricsCollectorProvider.Provider = "metrics-collector-1"
		r.ServerlessProvider = []node.Serverless{{ClassType: "double", Version: "0.1", FunctionURL: double.URL, Provider: "double-1"}}
	})
	offered := b.classes()

	const (
		runs    = iota // started in the box, every component placed, then stopped
		valid          // parses, validates, every class offered; not started, for the reason given
		refused        // refused, naming each class (or CONTAINER) given
	)
	seen, used := map[string]bool{}, map[string]bool{}
	f := func(file string, outcome int, names ...string) {
		t.Helper()
		seen[file] = true
		path := filepath.Join(examples, file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		w, err := spec.ParseWorkflow(path, data)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			return
		}
		container := false
		for i := range w.Functions {
			cs := &w.Functions[i].ClassSpecification
			if cs.FunctionType == "CONTAINER" {
				container = true
				continue
			}
			name := filepath.Base(filepath.Dir(cs.Code))
			ours := filepath.Join(root, "functions", name, name+".wasm")
			if _, err := os.Stat(ours); err != nil {
				if stand[name] == "" {
					t.Fatalf("%s: no function of ours for EDGELESS's %s: add one to the table", file, name)
				}
				ours = filepath.Join(root, "functions", stand[name], stand[name]+".wasm")
				used[name] = true
			}
			if cs.Code, err = filepath.Abs(ours); err != nil {
				t.Fatal(err)
			}
		}
		err = w.Validate()
		switch {
		case container && err != nil && !strings.Contains(err.Error(), `"CONTAINER"`):
			t.Errorf("%s: Validate() = %v, want CONTAINER refused", file, err)
		case !container && err != nil:
			t.Errorf("%s: %v", file, err)
			return
		}
		for _, r := range w.Resources {
			if !offered[r.ClassType] && !(outcome == refused && slices.Contains(names, r.ClassType)) {
				t.Errorf("%s: resource class %s is not offered", file, r.ClassType)
			}
		}
		if outcome == valid {
			if len(names) != 1 || names[0] == "" {
				t.Fatalf("%s: say why it is not started", file)
			}
			return
		}

		// Start it as a user would: the CLI reads the code from the paths.
		data, err = json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(b.dir, strings.ReplaceAll(file, "/", "-"))
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := b.cli("start", tmp)
		if outcome == refused {
			for _, n := range names {
				// A node runs containers only with Docker, and then
				// refuses EDGELESS's examples for their images, which
				// it never pulls; without Docker no node offers the type.
				want := "CONTAINER"
				if n != want {
					want = "resource class " + n + " (resource " + strconv.Quote(resourceOf(w, n)) + "): " + spec.NotOffered(n)
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: workflow start: %v, %s\nwant refused with %s", file, err, out, want)
				}
			}
			return
		}
		if err != nil {
			t.Errorf("%s: workflow start: %v\n%s", file, err, out)
			return
		}
		id := strings.TrimSpace(out)
		testutil.Eventually(t, 20*time.Second, file+" placed", func() bool {
			wi := b.inspect(id)
			if len(wi.Components) != len(w.Functions)+len(w.Resources) {
				return false
			}
			for _, c := range wi.Components {
				if len(c.Instances) == 0 {
					return false
				}
			}
			return true
		})
		if out, err := b.cli("stop", id); err != nil {
			t.Errorf("%s: workflow stop: %v\n%s", file, err, out)
		}
	}

	f("bench_mapreduce/workflow-mapreduce-only.json", runs)
	f("bench_mapreduce/workflow-mapreduce-process.json", runs)
	f("container/workflow-python.json", refused, "CONTAINER")
	f("container/workflow-rust.json", refused, "CONTAINER")
	f("dda_demo/workflow.json", refused, "dda")
	f("dda_test/workflow.json", refused, "dda")
	f("esp32_resources/workflow.json", refused, "scd30-sensor", "epaper-display")
	f("file_log/workflow.json", runs)
	f("file_pusher/workflow.json", runs)
	// http_requestor GETs 127.0.0.1:80 a second after it starts: stopped before, or refused there.
	f("http_egress/workflow.json", runs)
	f("http_ingress/workflow-async.json", runs)
	f("http_ingress/workflow-multi-1.json", runs)
	f("http_ingress/workflow-multi-2.json", runs)
	// Likewise the counter's first post to localhost:10000, and its first record to localhost:9092
	// (TestKafkaEgressExample runs that example against a Kafka-protocol cluster): their
	// instances start without the server.
	f("http_poster/workflow.json", runs)
	f("kafka_egress/workflow.json", runs)
	f("load_balance/workflow.json", runs)
	f("matrix_mul/workflow-chain.json", runs)
	f("matrix_mul/workflow-single.json", runs) // stopped before its first product, 2 s after it starts
	f("noop/workflow.json", runs)
	f("ollama/workflow.json", refused, "ollama")
	f("ping_pong_async/workflow.json", runs)
	f("redis/workflow-alt.json", runs) // Redis at 127.0.0.1:6379 may be down: writes wait for it (TestRedis)
	f("redis/workflow-state.json", runs)
	f("serverless/workflow-serverless.json", runs)
	f("serverless/workflow-wasm.json", runs)
	f("sgx_container/workflow.json", refused, "CONTAINER")
	f("sqlx/workflow.json", valid, "sqlite://sqlite.db is relative to the working directory, the source tree here; TestSqlxExample runs ours")
	f("vector_mul/workflow-chain.json", runs) // input_size=10000 is above ours' 4096: 1000 is used
	f("vector_mul/workflow-single.json", runs)

	files, _ := filepath.Glob(filepath.Join(examples, "*", "*.json"))
	for _, p := range files {
		if rel, _ := filepath.Rel(examples, p); !seen[filepath.ToSlash(rel)] {
			t.Errorf("%s is not in the table", rel)
		}
	}
	if len(files) != len(seen) {
		t.Errorf("%d fixtures, %d rows", len(files), len(seen))
	}
	for name := range stand {
		if !used[name] {
			t.Errorf("stand-in for %s never used: we ship it, or no example needs it", name)
		}
	}
	if n := b.logs.count("level=ERROR"); n > 0 {
		t.Errorf("%d errors logged", n)
	}
}

// classes returns the resource classes the box's domain offers.
func (b *box) classes() map[string]bool {
	b.t.Helper()
	resp, err := b.api(http.MethodGet, "/api/v1/domains", "")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list spec.DomainList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Domains) != 1 {
		b.t.Fatalf("domains: %s, %v, %+v", resp.Status, err, list)
	}
	m := map[string]bool{}
	for _, c := range list.Domains[0].Resources {
		m[c] = true
	}
	return m
}

// resourceOf names the first resource of class in w.
func resourceOf(w *spec.Workflow, class string) string {
	for _, r := range w.Resources {
		if r.ClassType == class {
			return r.Name
		}
	}
	return ""
}
