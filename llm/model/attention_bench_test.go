package model

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkAttention times the causal attention forward and backward of one layer of the
// engine-speed issue's llama (batch 4 × 128 tokens, 8 heads of 64), float32.
func BenchmarkAttention(b *testing.B) {
	const B, T, NH, NKV, HD = 4, 128, 8, 8, 64
	rng := rand.New(rand.NewPCG(1, 2))
	r := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	q, k, v, dout := r(B*T*NH*HD), r(B*T*NKV*HD), r(B*T*NKV*HD), r(B*T*NH*HD)
	out, dq, dk, dv := make([]float32, len(q)), make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
	cv := &carver[float32]{}
	newAttnScratch(cv, B, T, NH, NKV)
	cv = &carver[float32]{slab: make([]float32, cv.off)}
	sc := newAttnScratch(cv, B, T, NH, NKV)
	b.Run("forward", func(b *testing.B) {
		for b.Loop() {
			attentionForward(out, q, k, v, sc, B, T, NH, NKV, HD, 0, nil)
		}
	})
	b.Run("backward", func(b *testing.B) {
		for b.Loop() {
			attentionBackward(dq, dk, dv, dout, out, q, k, v, sc, B, T, NH, NKV, HD, 0, nil)
		}
	})
}
