package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportGraph enforces the package graph of ARCHITECTURE.md (and
// docs/design.md, where it differs): which of
// our packages may import which, and that the shared vocabulary stays free of
// third-party code.
func TestImportGraph(t *testing.T) {
	const mod = "github.com/edgeless-go/edgeless"
	allowed := map[string][]string{
		"":                             {"core/cli", "core/controller", "core/orc", "core/node", "core/inabox", "bench"},
		"core":                         {},
		"core/spec":                    {"core"},
		"wire":                         {"core"},
		"sandbox":                      {"core"},
		"native":                       {"core"},
		"container":                    {"core", "container/guestapi"},
		"container/guestapi":           {},
		"container/function":           {"container/guestapi"},
		"examples/container/double_go": {"container/function"},
		"resources":                    {"core", "internal/fastserve"},
		"core/controller":              {"core", "core/spec", "core/telemetry", "internal/fastserve", "wire"},
		"core/orc":                     {"core", "core/proxyschema", "core/spec", "core/telemetry", "wire"},
		"core/proxyschema":             {"core"},
		"core/node":                    {"core", "core/spec", "core/telemetry", "core/node/ebpf", "wire", "sandbox", "native", "container", "resources"},
		"core/node/ebpf":               {},
		"core/telemetry":               {"core"},
		"internal/redistest":           {},
		"internal/dockertest":          {},
		"internal/testutil":            {},
		"internal/fastserve":           {"core"},
		"core/inabox":                  {"core", "core/cli", "core/controller", "core/orc", "core/node", "core/spec", "wire"},
		"core/cli":                     {"core", "core/controller", "core/proxyschema", "core/spec", "wire"},
		"bench/ingress":                {"core/inabox", "core/spec"},
		"bench":                        {"core", "core/spec", "wire", "core/inabox"},
		"deploy":                       {}, // tests only: containers driven through the docker CLI
	}
	// go-redis stays in the parts that talk to Redis: the orchestrator's
	// proxy, the nodes' state and resources, the controllers' shared
	// asynchronous results, and the CLI and bench that read the proxy.
	redisUsers := []string{"core/orc", "core/node", "core/controller", "resources", "core/cli", "bench"}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], mod), "/")
		ok, known := allowed[pkg]
		if !known {
			t.Errorf("package %q is not in the import graph; add it to this test and to the architecture", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				if pkg == "core" && strings.Contains(imp, ".") {
					t.Errorf("core imports %s: it must use the standard library only", imp)
				}
				if strings.HasPrefix(imp, "github.com/redis/go-redis/") && !slices.Contains(redisUsers, pkg) {
					t.Errorf("%s imports %s; only %v may", fields[0], imp, redisUsers)
				}
				continue
			}
			dep := strings.TrimPrefix(strings.TrimPrefix(imp, mod), "/")
			if !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s, which the architecture does not allow", fields[0], imp)
			}
		}
	}
}
