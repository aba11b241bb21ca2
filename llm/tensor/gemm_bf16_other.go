//go:build !amd64 || purego

package tensor

// bf16Native is false in this build: the MatMul*BF16 products widen their operands to float32.
var bf16Native = false

func matmulBF16Native(c []float32, ldc int, a, b operand, m, n, k int, accumulate, threaded bool) {
	matmulBF16Widened(c, ldc, a, b, m, n, k, accumulate, threaded)
}
