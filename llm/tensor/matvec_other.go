//go:build !amd64 || purego

package tensor

func narrowF32(c, a, b []float32, m, n, k, lo, hi int) { narrowF32Generic(c, a, b, m, n, k, lo, hi) }

func narrowBF16(c, a []float32, b []uint16, m, n, k, lo, hi int) {
	narrowBF16Generic(c, a, b, m, n, k, lo, hi)
}

func narrowAllBF16(c, a []float32, b []uint16, m, n, k int) {
	narrowAllBF16Widened(c, a, b, m, n, k)
}

// narrowDP: no bfloat16 dot-product instructions on this build.
const narrowDP = false
