package node

import (
	"fmt"
	"sync"
)

// memoryBudget bounds the memory the function instances of a node reserve
// together, in MiB. It is safe for concurrent use.
type memoryBudget struct {
	node  string
	total int // 0: no bound
	mu    sync.Mutex
	used  int
}

// newMemoryBudget returns the budget configured (MiB), or, for 0, three
// quarters of the machine's memory; no bound when that cannot be read.
func newMemoryBudget(node string, configured int) *memoryBudget {
	b := &memoryBudget{node: node, total: configured}
	if b.total == 0 {
		b.total = int(keyValues("/proc/meminfo")["MemTotal"] / 1024 * 3 / 4)
	}
	return b
}

// reserve takes need MiB for the function name, or says why it cannot.
func (b *memoryBudget) reserve(name string, need int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total > 0 && b.used+need > b.total {
		return fmt.Errorf("function %q needs %d MiB of instance memory but node %s has %d MiB free of its %d MiB budget (general.memory_budget_mb)",
			name, need, b.node, b.total-b.used, b.total)
	}
	b.used += need
	return nil
}

// release returns need MiB that reserve took.
func (b *memoryBudget) release(need int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= need
	if b.used < 0 {
		panic("BUG: node memory budget released more than it reserved")
	}
}

// free returns the budget and what of it is not reserved, in MiB; both 0
// without a bound.
func (b *memoryBudget) free() (total, free int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total == 0 {
		return 0, 0
	}
	return b.total, b.total - b.used
}
