package spec

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

type testGeneral struct {
	NodeID          core.ID       `toml:"node_id" comment:"UUID of this node."`
	AgentURL        string        `toml:"agent_url" comment:"Where the orchestrator reaches the node.\nUse a reachable address in a real deployment."`
	RefreshSec      int           `toml:"subscription_refresh_interval_sec" comment:"Seconds between registration refreshes."`
	HandlerTimeout  time.Duration `toml:"handler_timeout" comment:"CPU budget of one handler call."`
	Unset           *int          `toml:"unset"`
	internalCounter int
}

type testTelemetry struct {
	MetricsURL         string  `toml:"metrics_url" comment:"Prometheus endpoint; \"\" disables it."`
	PerformanceSamples bool    `toml:"performance_samples"`
	Ratio              float64 `toml:"ratio"`
	Whole              float64 `toml:"whole"`
	Small              float32 `toml:"small"`
}

type testServerless struct {
	ClassType   string `toml:"class_type"`
	FunctionURL string `toml:"function_url"`
}

type testDataset struct {
	Path   string `toml:"dataset_path"`
	Append bool   `toml:"append"`
}

type testProxy struct {
	ProxyType string      `toml:"proxy_type" comment:"None or Redis."`
	Dataset   testDataset `toml:"dataset_settings" comment:"Where to write datasets."`
}

type testCommon struct {
	Name string `toml:"name" comment:"Embedded fields are flattened."`
}

type testConfig struct {
	testCommon
	General    testGeneral       `toml:"general" comment:"Node identity and addresses."`
	Telemetry  testTelemetry     `toml:"telemetry"`
	Labels     []string          `toml:"labels" comment:"Labels for placement."`
	NoLabels   []string          `toml:"no_labels"`
	Ports      []int             `toml:"ports"`
	Env        map[string]string `toml:"env" comment:"Extra settings."`
	NoEnv      map[string]string `toml:"no_env"`
	Odd        string            `toml:"odd key"`
	Skipped    string            `toml:"-"`
	Big        uint16            `toml:"big"`
	Proxy      testProxy         `toml:"proxy"`
	Serverless []testServerless  `toml:"serverless_provider" comment:"OpenFaaS-style functions."`
	NoServer   []testServerless  `toml:"no_serverless"`
}

func testDefaults() testConfig {
	return testConfig{
		testCommon: testCommon{Name: "node-0"},
		General: testGeneral{
			NodeID:         core.ID{0xfd, 0xa6, 0xce, 0x79, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
			AgentURL:       "http://127.0.0.1:7004",
			RefreshSec:     2,
			HandlerTimeout: 1500 * time.Millisecond,
		},
		Telemetry: testTelemetry{MetricsURL: "http://127.0.0.1:7006", PerformanceSamples: true, Ratio: 0.25, Whole: 3, Small: 0.1},
		Labels:    []string{"gpu", `quote"d`, "tab\there", "ctl\x01", "ünïcode"},
		Ports:     []int{7000, -1},
		Env:       map[string]string{"b": "2", "a key": "1"},
		Odd:       "x",
		Big:       math.MaxUint16,
		Proxy:     testProxy{ProxyType: "None", Dataset: testDataset{Append: true}},
		Serverless: []testServerless{
			{ClassType: "double", FunctionURL: "http://127.0.0.1:8080"},
			{ClassType: "incr", FunctionURL: "http://127.0.0.1:8081"},
		},
	}
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTemplateRoundTrip(t *testing.T) {
	def := testDefaults()
	var buf bytes.Buffer
	if err := WriteTemplate(&buf, &def); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, "node.toml", buf.String())

	// Into a zero value: everything comes from the template.
	var got testConfig
	if err := LoadConfig(p, &got); err != nil {
		t.Fatalf("cannot load template:\n%s\n%v", buf.String(), err)
	}
	if !reflect.DeepEqual(got, def) {
		t.Fatalf("template does not load back to the defaults:\n%s\ngot  %+v\nwant %+v", buf.String(), got, def)
	}

	// Into the defaults: nothing changes either.
	got = testDefaults()
	if err := LoadConfig(p, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, def) {
		t.Fatalf("loading the template over the defaults changed them:\ngot  %+v\nwant %+v", got, def)
	}
}

func TestTemplateText(t *testing.T) {
	var buf bytes.Buffer
	def := testDefaults()
	if err := WriteTemplate(&buf, def); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	f := func(want string) {
		t.Helper()
		if !strings.Contains(text, want) {
			t.Fatalf("template lacks\n%s\nin\n%s", want, text)
		}
	}
	f("# Embedded fields are flattened.\nname = \"node-0\"\n")
	f("# Labels for placement.\nlabels = [\"gpu\", \"quote\\\"d\", \"tab\\there\", \"ctl\\u0001\", \"ünïcode\"]\n")
	f("# no_labels = []\n")
	f("ports = [7000, -1]\n")
	f("# Extra settings.\nenv = { \"a key\" = \"1\", b = \"2\" }\n")
	f("# no_env = {}\n")
	f("\"odd key\" = \"x\"\n")
	f("big = 65535\n")
	f("\n# Node identity and addresses.\n[general]\n# UUID of this node.\nnode_id = \"fda6ce79-0102-0304-0506-0708090a0b0c\"\n")
	f("# Where the orchestrator reaches the node.\n# Use a reachable address in a real deployment.\nagent_url = \"http://127.0.0.1:7004\"\n")
	f("handler_timeout = \"1.5s\"\n")
	f("# unset = 0\n")
	f("\n[telemetry]\n# Prometheus endpoint; \"\" disables it.\nmetrics_url = \"http://127.0.0.1:7006\"\nperformance_samples = true\nratio = 0.25\nwhole = 3.0\nsmall = 0.1\n")
	f("\n[proxy]\n# None or Redis.\nproxy_type = \"None\"\n\n# Where to write datasets.\n[proxy.dataset_settings]\ndataset_path = \"\"\nappend = true\n")
	f("\n# OpenFaaS-style functions.\n[[serverless_provider]]\nclass_type = \"double\"\n")
	f("\n# [[no_serverless]]\n# class_type = \"\"\n# function_url = \"\"\n")
	f("function_url = \"http://127.0.0.1:8080\"\n\n[[serverless_provider]]\nclass_type = \"incr\"\n")
	if strings.Contains(text, "Skipped") || strings.Contains(text, "internalCounter") {
		t.Fatalf("template has skipped or unexported fields:\n%s", text)
	}
	// Plain keys of the top-level table come before the first table header.
	if strings.Index(text, "big = ") > strings.Index(text, "[general]") {
		t.Fatalf("a top-level key follows a table header:\n%s", text)
	}
}

func TestWriteTemplateErrors(t *testing.T) {
	f := func(name string, cfg any, wantContains string) {
		t.Helper()
		err := WriteTemplate(&bytes.Buffer{}, cfg)
		if err == nil || !strings.Contains(err.Error(), wantContains) {
			t.Fatalf("%s: got %v, want an error containing %q", name, err, wantContains)
		}
	}
	f("not a struct", 3, "int is not a struct")
	f("channel", struct {
		C chan int `toml:"c"`
	}{C: make(chan int)}, "key c: unsupported type chan int")
	f("map with int keys", struct {
		M map[int]string `toml:"m"`
	}{M: map[int]string{1: "a"}}, "not a string")
	f("uint too big", struct {
		U uint64 `toml:"u"`
	}{U: math.MaxUint64}, "does not fit")
}

func TestLoadConfigErrors(t *testing.T) {
	f := func(name string, in string, wantPath string, wantMsgContains string) {
		t.Helper()
		p := writeFile(t, "node.toml", in)
		cfg := testDefaults()
		err := LoadConfig(p, &cfg)
		for _, e := range specErrors(t, err) {
			if e.File == p && e.Path == wantPath && strings.Contains(e.Msg, wantMsgContains) {
				if !strings.Contains(err.Error(), p) {
					t.Fatalf("%s: error %q does not name the file", name, err)
				}
				return
			}
		}
		t.Fatalf("%s: no error at %q containing %q; got %v", name, wantPath, wantMsgContains, err)
	}
	f("unknown top key", "nmae = \"x\"\n", "nmae", "unknown key")
	f("unknown nested key", "[general]\nagent_ulr = \"x\"\n", "general.agent_ulr", "unknown key")
	f("unknown table", "[generl]\nnode_id = \"x\"\n", "generl", "unknown key")
	f("several unknown keys", "a = 1\n[general]\nb = 2\n", "general.b", "unknown key")
	f("unknown key in array of tables", "[[serverless_provider]]\nclass = \"x\"\n", "serverless_provider.class", "unknown key")
	f("syntax error", "[general\n", "", "")
	f("bad node id", "[general]\nnode_id = \"not-a-uuid\"\n", "general.node_id", "not a UUID")
	f("bad duration", "[general]\nhandler_timeout = \"soon\"\n", "general.handler_timeout", "soon")
	f("wrong type", "[general]\nsubscription_refresh_interval_sec = \"2\"\n", "", "incompatible types")

	// Every unknown key is reported, and keys inside an unknown table only once.
	p := writeFile(t, "node.toml", "a = 1\nb = 2\n[x]\nc = 3\n[x.y]\nd = 4\n")
	cfg := testDefaults()
	var got []string
	for _, e := range specErrors(t, LoadConfig(p, &cfg)) {
		got = append(got, e.Path)
	}
	if want := []string{"a", "b", "x"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("unknown keys reported as %q, want %q", got, want)
	}

	// A syntax error carries its position.
	p = writeFile(t, "node.toml", "name = \"a\"\nlabels = [1,\n")
	err := LoadConfig(p, &cfg)
	var se []*Error = specErrors(t, err)
	if len(se) != 1 || se[0].Line != 2 || se[0].Col < 1 {
		t.Fatalf("syntax error: got %v (line %d)", err, se[0].Line)
	}
}

func TestLoadConfigPartial(t *testing.T) {
	p := writeFile(t, "node.toml", "labels = []\nenv = { c = \"3\" }\n[general]\nagent_url = \"http://10.0.0.1:7004\"\nhandler_timeout = \"2s\"\n")
	got := testDefaults()
	if err := LoadConfig(p, &got); err != nil {
		t.Fatal(err)
	}
	want := testDefaults()
	want.General.AgentURL = "http://10.0.0.1:7004"
	want.General.HandlerTimeout = 2 * time.Second
	want.Labels = []string{}
	want.Env["c"] = "3" // maps merge into the defaults
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	if err := LoadConfig(filepath.Join(t.TempDir(), "none.toml"), &got); err == nil || !strings.Contains(err.Error(), "none.toml") {
		t.Fatalf("missing file: got %v", err)
	}
}
