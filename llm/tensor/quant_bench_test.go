package tensor

import (
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// BenchmarkQuantMatMul is a 2048x2048 product per format at R=1 (decoding) and R=8 (batch 8).
func BenchmarkQuantMatMul(b *testing.B) {
	const N, C = 2048, 2048
	rng := rand.New(rand.NewPCG(1, 1))
	wf := make([]float32, N*C)
	for i := range wf {
		wf[i] = float32(rng.NormFloat64())
	}
	x := make([]float32, 8*C)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	out := make([]float32, 8*N)
	for _, typ := range []QuantType{QuantQ8_0, QuantQ4_0, QuantQ4_K, QuantQ6_K} {
		raw, _ := gguf.Quantize(quantGGUF[typ], wf)
		w, _ := NewQMatrix(typ, N, C, raw)
		for _, R := range []int{1, 8} {
			b.Run(typ.String()+"/R"+string(rune('0'+R)), func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				for range b.N {
					QuantMatMul(out, x, w, R)
				}
			})
		}
	}
}
