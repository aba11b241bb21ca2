package model

import (
	"fmt"
	"testing"
)

// BenchmarkLoRAProducts measures an adapter's six products (forward and backward, rank 16) at
// TinyLlama-1.1B's shapes, 256 tokens: the attention projections (2048→2048) and the MLP's (2048→5632).
func BenchmarkLoRAProducts(b *testing.B) {
	const N, r = 256, 16
	for _, s := range [][2]int{{2048, 2048}, {2048, 5632}} {
		C, OC := s[0], s[1]
		fill := func(n int) []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i%11-5) / 16
			}
			return x
		}
		ad := &adapter[float32]{a: fill(r * C), b: fill(OC * r)}
		gad := &adapter[float32]{a: make([]float32, r*C), b: make([]float32, OC*r)}
		x, out, dout := fill(N*C), make([]float32, N*OC), fill(N*OC)
		hs, dh, dx := make([]float32, N*r), make([]float32, N*r), make([]float32, N*C)
		b.Run(fmt.Sprintf("%dx%d", C, OC), func(b *testing.B) {
			for b.Loop() {
				loraForward(out, hs, x, ad, 0.5, N, C, OC, r)
				loraBackward(dx, dh, gad, ad, dout, hs, x, 0.5, N, C, OC, r, true)
			}
			flop := 2 * float64(N*r) * float64(3*C+3*OC)
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
