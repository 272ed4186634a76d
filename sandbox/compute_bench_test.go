package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkVectorMul is one stage of EDGELESS's vector-mul-chain: an event
// of input_size floats multiplied by the stage's matrix, the product cast
// on. native's BenchmarkVectorMul runs the same C source built with gcc;
// their ratio is the cost of the sandbox on compute.
func BenchmarkVectorMul(b *testing.B) {
	code, err := os.ReadFile(filepath.Join("..", "functions", "vector_mul", "vector_mul.wasm"))
	if err != nil {
		b.Skip("make functions first:", err)
	}
	for _, n := range []int{1000, 2000} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			r := newRuntime(b, Config{})
			i := instantiate(b, r, load(b, r, code), nullHost{})
			if err := i.Init([]byte("input_size="+strconv.Itoa(n)), nil); err != nil {
				b.Fatal(err)
			}
			event := make([]byte, 8+4*n)
			b.SetBytes(int64(4 * n * n)) // the matrix, read once per event
			for b.Loop() {
				if err := i.Cast(srcID, event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
