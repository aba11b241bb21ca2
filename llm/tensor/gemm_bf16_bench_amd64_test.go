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

// BenchmarkMatMulBF16Frozen measures the products of a LoRA step's frozen bfloat16 base at
// TinyLlama-1.1B's shape, on one core: 256 tokens against the down projection's weight (2048x5632),
// forward (x·Wᵀ, B stored transposed) and backward (dY·W), cycling through 8 copies of the weight
// (185 MB) so that, as in a step over 22 layers, every product streams its weight from memory.
func BenchmarkMatMulBF16Frozen(b *testing.B) {
	if !bf16Native {
		b.Skip("this CPU has no AVX512_BF16")
	}
	const tokens, out, in, copies = 256, 2048, 5632, 8
	w := make([]uint16, copies*out*in)
	for i := range w {
		w[i] = 0x3c00 + uint16(i%7)
	}
	x := make([]float32, tokens*max(in, out))
	for i := range x {
		x[i] = float32(i%13) / 16
	}
	c := make([]float32, tokens*max(in, out))
	for _, dir := range []string{"forward", "backward"} {
		b.Run(dir, func(b *testing.B) {
			i := 0
			for b.Loop() {
				wi := w[(i%copies)*out*in : (i%copies+1)*out*in]
				i++
				if dir == "forward" { // [tokens,in]·Wᵀ, W stored [out,in]
					MatMulBF16Serial(c[:tokens*out], x[:tokens*in], wi, tokens, out, in, false, true, false)
				} else { // [tokens,out]·W
					MatMulBF16Serial(c[:tokens*in], x[:tokens*out], wi, tokens, in, out, false, false, false)
				}
			}
			b.ReportMetric(2*float64(tokens*out*in)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
