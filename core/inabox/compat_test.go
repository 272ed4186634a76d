package inabox

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/edgeless-go/edgeless/core/cli"
	"github.com/edgeless-go/edgeless/core/node"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// logLines returns the lines of a file-log file without their timestamps.
func logLines(t *testing.T, file string) []string {
	t.Helper()
	data, _ := os.ReadFile(file)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		if _, v, ok := strings.Cut(l, " "); ok {
			l = v
		}
		out = append(out, l)
	}
	return out
}

// TestServerlessExample runs EDGELESS's serverless example against a real
// HTTP server playing the OpenFaaS function: it doubles what it is POSTed,
// except 3, which it refuses; replies go to my-out.log, the failure to
// my-err.log.
func TestServerlessExample(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, err := strconv.Atoi(string(body))
		if r.Method != http.MethodPost || err != nil || n == 3 {
			http.Error(w, "cannot double "+string(body), http.StatusBadRequest)
			return
		}
		io.WriteString(w, strconv.Itoa(2*n))
	}))
	t.Cleanup(fn.Close)
	b := startBox(t, 1, func(c *Config) {
		c.Node.Resources.ServerlessProvider = []node.Serverless{{ClassType: "double", Version: "0.1", FunctionURL: fn.URL, Provider: "double-1"}}
	})
	out, errLog := filepath.Join(b.dir, "my-out.log"), filepath.Join(b.dir, "my-err.log")
	b.mustStart("serverless/workflow-serverless.json", func(w *spec.Workflow) {
		setInit(w, "counter", "period=20")
		w.Resources[1].Configurations["filename"] = out
		w.Resources[2].Configurations["filename"] = errLog
	})
	testutil.Eventually(t, 10*time.Second, "five doubled values", func() bool { return len(logLines(t, out)) >= 5 })
	if got := strings.Join(logLines(t, out)[:4], ","); got != "2,4,8,10" {
		t.Fatalf("my-out.log starts %q, want 2,4,8,10 (3 refused)", got)
	}
	errs := logLines(t, errLog)
	if len(errs) != 1 || !strings.Contains(errs[0], "400 Bad Request") || !strings.Contains(errs[0], "cannot double 3") {
		t.Fatalf("my-err.log = %q, want the refusal of 3", errs)
	}
}

// TestSqlxExample runs EDGELESS's sqlx example on a real SQLite file: the
// function inserts its row, then reads and updates it for every reading.
func TestSqlxExample(t *testing.T) {
	b := startBox(t, 1, nil)
	db := filepath.Join(b.dir, "sqlite.db")
	id := b.mustStart("sqlx/workflow.json", func(w *spec.Workflow) {
		setInit(w, "sensor_simulator", "period=20,min-value=0,max-value=20")
		w.Resources[0].Configurations["url"] = "sqlite://" + db
	})
	testutil.Eventually(t, 10*time.Second, "three updates of the row", func() bool {
		return b.logs.count("sqlx_test", `bar\":\"subsequent`) >= 3
	})
	if b.logs.count("sqlx_test", `{\"id\":\"`+id+`\",\"metadata\":{\"bar\":\"initial\",\"foo\":42.0}}`) != 1 {
		t.Fatalf("no SELECT reply with the inserted row:\n%s", b.logs)
	}
	if b.logs.count("sqlx_test", "rows_affected: 1, last_insert_rowid: 1.") < 3 {
		t.Fatalf("fewer than three statement replies:\n%s", b.logs)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("database file: %v", err)
	}
}

// TestKafkaEgressExample runs EDGELESS's kafka_egress example against a
// Kafka-protocol cluster started in this process: the counter's values
// arrive in topic test, in order.
func TestKafkaEgressExample(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := strings.Join(c.ListenAddrs(), ",")
	b := startBox(t, 1, func(c *Config) { c.Node.Resources.KafkaEgressProvider = "kafka-egress-1" })
	b.mustStart("kafka_egress/workflow.json", func(w *spec.Workflow) {
		setInit(w, "counter", "period=20")
		w.Resources[0].Configurations["brokers"] = brokers
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("test"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < 5 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) < 5 || strings.Join(got[:5], ",") != "1,2,3,4,5" {
		t.Fatalf("records of topic test: %q, want 1,2,3,4,5 first", got)
	}
}

// TestNotOfferedClasses: a workflow using EDGELESS's dda or ollama class is
// refused with a message naming the class and saying it is not offered.
func TestNotOfferedClasses(t *testing.T) {
	b := startBox(t, 1, nil)
	for class, want := range map[string]string{
		"dda":    "resource class dda (resource \"r\"): EDGELESS's dda class (Data Distribution Agent sidecar) is not offered by edgeless",
		"ollama": "resource class ollama (resource \"r\"): EDGELESS's ollama class (chat with an Ollama server) is not offered by edgeless",
	} {
		w := workflow(fn(t, "f", "noop", map[string]string{"out": "r"}, ""))
		w.Resources = []spec.Resource{{Name: "r", ClassType: class, OutputMapping: map[string]string{}, Configurations: map[string]string{}}}
		if _, err := b.startSpec(w); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", class, err, want)
		}
	}
}

// TestDomainVerbsAndMigrate: with two orchestration domains, domain list and
// inspect print them in EDGELESS's format, workflow inspect all inspects
// every workflow, and workflow migrate ID DOMAIN moves a workflow to the
// other domain's node.
func TestDomainVerbsAndMigrate(t *testing.T) {
	b := startBox(t, 1, nil)
	_, n := b.addDomain("domain-b", nil)
	dom := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := cli.Domain(context.Background(), append(b.cliFlags(), args...), &out); err != nil {
			t.Fatalf("domain %v: %v", args, err)
		}
		return out.String()
	}
	testutil.Eventually(t, 10*time.Second, "two domains of one node each", func() bool {
		return dom("list") == "domain domain-7000 (1 nodes)\ndomain domain-b (1 nodes)\n"
	})
	if out := dom("inspect", "domain-b"); !strings.HasPrefix(out, "domain domain-b\n  nodes 1\n  ready true\n  runtimes ") || strings.Contains(out, "domain-7000") {
		t.Fatalf("domain inspect domain-b:\n%s", out)
	}
	if out := dom("inspect", "all"); strings.Count(out, "\n  nodes 1\n") != 2 {
		t.Fatalf("domain inspect all:\n%s", out)
	}

	id1 := b.mustStart("noop/workflow.json", nil)
	id2 := b.mustStart("noop/workflow.json", nil)
	out, err := b.cli("inspect", "all")
	if err != nil || !strings.Contains(out, "workflow "+id1) || !strings.Contains(out, "workflow "+id2) {
		t.Fatalf("inspect all: %v\n%s", err, out)
	}
	// The global flag after the verb, as EDGELESS users write it.
	var mig bytes.Buffer
	if err := cli.Workflow(context.Background(), append(b.cliFlags(), "migrate", id1, "-controller-url", b.ControllerURL(), "domain-b"), &mig); err != nil {
		t.Fatal(err)
	}
	if mig.String() != "Workflow "+id1+" migrated to domain domain-b\n" {
		t.Fatalf("migrate printed %q", mig.String())
	}
	wi := b.inspect(id1)
	if wi.Domain != "domain-b" || len(wi.Components[0].Instances) != 1 || wi.Components[0].Instances[0].Node != n.ID().String() {
		t.Fatalf("after migrate: %+v, want domain-b on node %s", wi, n.ID())
	}
	testutil.Eventually(t, 5*time.Second, "the old instance gone", func() bool { return len(b.Nodes[0].Instances()) == 1 })
	if _, err := b.cli("migrate", id1, "nowhere"); err == nil || !strings.Contains(err.Error(), `no ready domain "nowhere"`) {
		t.Fatalf("migrate to an unknown domain: %v", err)
	}
}
