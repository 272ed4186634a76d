package node

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// TestCastToAMovingTargetIsHeld: a resource's cast to an instance that is
// gone waits for the next patch of its outputs and reaches the new target;
// a function's cast is held without waiting and sent on the patch; a cast
// whose target never comes back is refused after the call timeout, counted.
func TestCastToAMovingTargetIsHeld(t *testing.T) {
	n := idleNode(t)
	n.cfg.General.CallTimeoutMS = 300
	sender := runResource(t, n, &upper{})
	gone := core.InstanceID{Node: n.id, Component: core.NewID()}
	sender.setOutputs(map[string][]core.InstanceID{"out": {gone}}, 0)
	target := &upper{}
	moved := runResource(t, n, target)

	result := make(chan error, 1)
	go func() { result <- resourceHost{sender}.Cast("out", []byte("held")) }()
	testutil.Eventually(t, 5*time.Second, "the cast to a moving target to be held", func() bool { return heldCount(sender.instance) == 1 })
	// A function-style cast (no waiting) from the same sender.
	if err := sender.castOutput([]byte("out"), []byte("queued"), 1, false, false); err != nil {
		t.Fatalf("a cast to a moving target without waiting: %v", err)
	}
	select {
	case err := <-result:
		t.Fatalf("the cast returned %v before its target moved", err)
	default:
	}
	sender.setOutputs(map[string][]core.InstanceID{"out": {moved.id}}, 0)
	if err := <-result; err != nil {
		t.Fatalf("the held cast: %v", err)
	}
	testutil.EventuallyDetail(t, 5*time.Second, "the new target to handle 2 casts", func() bool { return moved.handled.Load() == 2 },
		func() string { return fmt.Sprintf("handled %d", moved.handled.Load()) })
	target.mu.Lock()
	got := slices.Clone(target.casts)
	target.mu.Unlock()
	slices.Sort(got)
	if !slices.Equal(got, []string{"held", "queued"}) {
		t.Fatalf("the new target got %q", got)
	}

	sender.setOutputs(map[string][]core.InstanceID{"out": {gone}}, 0)
	before := n.dropped.Get()
	start := time.Now()
	err := resourceHost{sender}.Cast("out", []byte("lost"))
	if !errors.Is(err, errGaveUp) {
		t.Fatalf("a cast whose target never returns: %v, want %v", err, errGaveUp)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("gave up after %v, want the call timeout of 300ms", d)
	}
	if got := n.dropped.Get() - before; got != 1 {
		t.Fatalf("dropped events counted: %d, want 1", got)
	}
	if k := heldCount(sender.instance); k != 0 {
		t.Fatalf("%d casts still held after giving up", k)
	}
}

func heldCount(inst *instance) int {
	inst.held.mu.Lock()
	defer inst.held.mu.Unlock()
	return len(inst.held.list)
}

// TestCastToAReplacedTargetIsHeld: the orchestrator takes a lost target out
// of its senders' outputs until the replacement runs; a cast on that channel
// is held and reaches the replacement, while a channel never mapped is
// refused at once.
func TestCastToAReplacedTargetIsHeld(t *testing.T) {
	n := idleNode(t)
	sender := runResource(t, n, &upper{})
	first, second := runResource(t, n, &upper{}), runResource(t, n, &upper{})
	sender.setOutputs(map[string][]core.InstanceID{"out": {first.id}}, 1)
	sender.setOutputs(map[string][]core.InstanceID{}, 2) // first was lost
	if err := (resourceHost{sender}).Cast("other", []byte("x")); err == nil || !strings.Contains(err.Error(), `output "other" is not mapped`) {
		t.Fatalf("a cast on a channel never mapped: %v", err)
	}
	result := make(chan error, 1)
	go func() { result <- resourceHost{sender}.Cast("out", []byte("held")) }()
	testutil.Eventually(t, 5*time.Second, "the cast to a target being replaced to be held", func() bool { return heldCount(sender.instance) == 1 })
	sender.setOutputs(map[string][]core.InstanceID{"out": {second.id}}, 3)
	if err := <-result; err != nil {
		t.Fatalf("the held cast: %v", err)
	}
	testutil.EventuallyDetail(t, 5*time.Second, "the second target to handle the cast", func() bool { return second.handled.Load() == 1 },
		func() string {
			return fmt.Sprintf("handled: first %d, second %d", first.handled.Load(), second.handled.Load())
		})
	if first.handled.Load() != 0 {
		t.Fatalf("the replaced target handled %d casts, want 0", first.handled.Load())
	}
}
