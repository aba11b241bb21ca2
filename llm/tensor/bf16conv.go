package tensor

import "github.com/lathe-ml/lathe/llm/format/half"

// WidenBF16 sets dst[i] to the float32 value of the bfloat16 src[i] (exact): a frozen bfloat16 layer
// widened for the float32 kernels, every layer of every step of a LoRA run on a CPU without
// AVX512_BF16. The slices must have the same length.
func WidenBF16(dst []float32, src []uint16) {
	if len(dst) != len(src) {
		panic("tensor.WidenBF16: slices of different lengths")
	}
	body := widenBF16SIMD(dst, src)
	for i := body; i < len(src); i++ {
		dst[i] = half.BF16ToF32(src[i])
	}
}

// RoundBF16 sets dst[i] to src[i] rounded to bfloat16 as half.F32ToBF16 does (nearest even, NaN kept
// a quiet NaN). The slices must have the same length.
func RoundBF16(dst []uint16, src []float32) {
	if len(dst) != len(src) {
		panic("tensor.RoundBF16: slices of different lengths")
	}
	body := roundBF16SIMD(dst, src)
	for i := body; i < len(src); i++ {
		dst[i] = half.F32ToBF16(src[i])
	}
}
