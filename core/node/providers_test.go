package node

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/wire"
)

func TestAvailableResources(t *testing.T) {
	cfg := Default()
	cfg.Resources.FilePusherProvider = FilePusher{Directory: "files", Provider: "file-pusher-1"}
	cfg.Resources.MetricsCollectorProvider.Provider = "metrics-collector-1"
	cfg.Resources.RedisProvider = "" // disabled
	cfg.Resources.KafkaEgressProvider = "kafka-egress-1"
	cfg.Resources.ServerlessProvider = []Serverless{{}, {ClassType: "double", Version: "0.1", FunctionURL: "http://127.0.0.1:5000/", Provider: "double-1"}}
	var out bytes.Buffer
	if err := WriteAvailableResources(&out, cfg, true); err != nil {
		t.Fatal(err)
	}
	var list []AvailableResource
	if err := json.Unmarshal(out.Bytes(), &list); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var got []string
	for _, a := range list {
		got = append(got, a.Provider+":"+a.ClassType)
	}
	want := "double-1:double file-log-1:file-log file-pusher-1:file-pusher http-egress-1:http-egress http-ingress-1:http-ingress " +
		"http-poster-1:http-poster kafka-egress-1:kafka-egress metrics-collector-1:metrics-collector sqlx-1:sqlx"
	if strings.Join(got, " ") != want {
		t.Fatalf("providers %q, want %q", got, want)
	}
	if list[4].Outputs[0] != "new_request" || list[4].Configurations["wf_id"] == "" {
		t.Fatalf("http-ingress spec %+v lacks its output or keys", list[4])
	}
	out.Reset()
	if err := WriteAvailableResources(&out, cfg, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"http-ingress (version 2.1), provider http-ingress-1", "outputs: new_request", "  period-ms "} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("text listing lacks %q:\n%s", s, out.String())
		}
	}
}

func TestResourcesValidate(t *testing.T) {
	f := func(mutate func(*Resources), want string) {
		t.Helper()
		cfg := Default()
		mutate(&cfg.Resources)
		err := cfg.Validate()
		if want == "" {
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	}
	f(func(r *Resources) {}, "")
	f(func(r *Resources) { r.HTTPIngressURL = wire.Addr{} }, "resources.http_ingress_url: must be set")
	f(func(r *Resources) { r.HTTPIngressURL = wire.Addr{}; r.HTTPIngressProvider = "" }, "")
	f(func(r *Resources) { r.HTTPIngressMaxBodyBytes = -1 }, "resources.http_ingress_max_body_bytes")
	f(func(r *Resources) { r.FilePusherProvider.Provider = "fp" }, "resources.file_pusher_provider.directory")
	f(func(r *Resources) {
		r.MetricsCollectorProvider.Provider = "mc"
		r.MetricsCollectorProvider.CollectorType = "Kafka"
	},
		"only Redis")
	f(func(r *Resources) { r.RedisProvider = "file-log-1" }, `provider id "file-log-1" is used twice`)
}
