//go:build amd64 && !purego

package tensor

import (
	"fmt"
	"testing"
)

// BenchmarkBF16Kernel measures the bfloat16 micro-kernels on one core with their panels in cache (the
// ceiling of MatMulBF16, as BenchmarkKernel is MatMul's): an 8-row A panel of bf16KC/2 pairs against
// one B panel, or against eight in turn (a B block of bf16NC columns, from L2). GFLOP/s counts two
// FLOP per multiply-add, four per VDPBF16PS lane.
func BenchmarkBF16Kernel(b *testing.B) {
	for _, w := range []int{48, 32, 16} {
		for _, panels := range []int{1, 8} {
			b.Run(fmt.Sprintf("8x%d/%dB", w, panels), func(b *testing.B) {
				if !bf16Native {
					b.Skip("this CPU has no AVX512_BF16")
				}
				const kp = bf16KC / 2
				pa, pb := make([]uint32, 8*kp), make([]uint32, panels*w*kp)
				for i := range pa {
					pa[i] = 0x3f803f80 // (1, 1)
				}
				for i := range pb {
					pb[i] = 0x3c003c00 // (2⁻⁷, 2⁻⁷)
				}
				c := make([]float32, 8*w*10)
				for b.Loop() {
					for j := range 10 {
						bf16Kernel(w, kp, &pa[0], &pb[(j%panels)*w*kp], &c[j*w], 10*w, 1)
					}
				}
				b.ReportMetric(2*float64(8*w*2*kp*10)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
