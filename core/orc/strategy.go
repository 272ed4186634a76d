package orc

import "math/rand/v2"

// weightedRandom picks a node at random, weighted by its processing capacity
// as EDGELESS's Random strategy does: max(cores, cpus) × clock frequency.
func weightedRandom(nodes []*node) *node {
	weights := make([]float64, len(nodes))
	total := 0.0
	for i, n := range nodes {
		w := float64(max(n.caps.NumCores, n.caps.NumCPUs))
		if n.caps.ClockFreqMHz > 0 {
			w *= n.caps.ClockFreqMHz
		}
		if w <= 0 {
			w = 1
		}
		weights[i] = w
		total += w
	}
	x := rand.Float64() * total
	for i, w := range weights {
		if x < w {
			return nodes[i]
		}
		x -= w
	}
	return nodes[len(nodes)-1]
}
