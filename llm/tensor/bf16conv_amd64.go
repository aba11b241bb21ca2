//go:build amd64 && !purego

package tensor

//go:noescape
func widenBF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func roundBF16AVX2(dst *uint16, src *float32, n int)

// widenBF16SIMD and roundBF16SIMD convert the longest prefix the kernels cover and return its length.
func widenBF16SIMD(dst []float32, src []uint16) int {
	body := len(src) &^ 15
	if !hasAVX2 || body == 0 {
		return 0
	}
	widenBF16AVX2(&dst[0], &src[0], body)
	return body
}

func roundBF16SIMD(dst []uint16, src []float32) int {
	body := len(src) &^ 15
	if !hasAVX2 || body == 0 {
		return 0
	}
	roundBF16AVX2(&dst[0], &src[0], body)
	return body
}
