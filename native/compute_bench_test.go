package native

import (
	"strconv"
	"testing"
)

// BenchmarkVectorMul is sandbox's BenchmarkVectorMul on the native build of
// vector_mul: the same C source, the same events.
func BenchmarkVectorMul(b *testing.B) {
	code := so(b, "vector_mul")
	for _, n := range []int{1000, 2000} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			i := start(b, newRuntime(b), code, nullHost{}, "input_size="+strconv.Itoa(n))
			event := make([]byte, 8+4*n)
			b.SetBytes(int64(4 * n * n))
			for b.Loop() {
				if err := i.Cast(srcID, event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
