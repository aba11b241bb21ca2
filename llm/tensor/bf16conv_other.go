//go:build !amd64 || purego

package tensor

func widenBF16SIMD(dst []float32, src []uint16) int { return 0 }
func roundBF16SIMD(dst []uint16, src []float32) int { return 0 }
