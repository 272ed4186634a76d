package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

// TestMemoryBudget: a node admits functions while their memory fits its
// budget, refuses the next one naming the node, the need and what is free,
// reports the free budget in its capabilities, and takes back what a
// stopped instance reserved.
func TestMemoryBudget(t *testing.T) {
	n := startNode(t, newCA(t), func(c *Config) {
		c.General.MemoryBudgetMB = 100
		c.WASM.MaxMemoryMB = 64
	})
	code, err := os.ReadFile(filepath.Join("..", "..", "functions", "noop", "noop.wasm"))
	if err != nil {
		t.Fatalf("%v (run make functions)", err)
	}
	start := func(memoryMB int) (core.ID, error) {
		id := core.NewID()
		s := wire.FunctionSpec{Logical: core.NewID(), Name: "noop", FunctionType: "RUST_WASM", Code: code}
		if memoryMB > 0 {
			s.Annotations = map[string]string{spec.KeyMemoryMB: fmt.Sprint(memoryMB)}
		}
		_, err := n.startFunction(context.Background(), &wire.StartFunction{Component: id, Spec: s})
		return id, err
	}
	free := func(want int) {
		t.Helper()
		c := n.capabilities()
		if c.MemBudgetMiB != 100 || c.MemFreeMiB != want {
			t.Fatalf("capabilities: budget %d MiB, free %d MiB; want 100, %d", c.MemBudgetMiB, c.MemFreeMiB, want)
		}
	}
	free(100)
	first, err := start(0) // the runtime's limit: 64
	if err != nil {
		t.Fatal(err)
	}
	free(36)
	_, err = start(0)
	if err == nil {
		t.Fatal("a second 64 MiB function fits a budget of 100 MiB with 64 taken")
	}
	for _, want := range []string{n.ID().String(), "needs 64 MiB", "36 MiB free", "100 MiB budget"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal %q does not say %q", err, want)
		}
	}
	free(36)
	if _, err := start(32); err != nil { // annotated below the free part
		t.Fatal(err)
	}
	free(4)
	if _, err := n.stopComponent(context.Background(), &wire.StopComponent{ID: first}); err != nil {
		t.Fatal(err)
	}
	free(68)
	if _, err := start(1000); err != nil { // held to the runtime's limit of 64
		t.Fatal(err)
	}
	free(4)
}
