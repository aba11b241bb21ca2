package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The float32 attention runs on tensor's strided SIMD products; the float64 one, on plain loops, is the
// one the finite-difference tests check. They must agree to float32 precision, forward and backward,
// with several row blocks per head (T > 64), grouped-query heads and a sliding window.
func TestAttentionFloat32MatchesFloat64(t *testing.T) {
	for _, tc := range []struct{ B, T, NH, NKV, HD, W int }{
		{2, 70, 4, 2, 16, 0},
		{1, 130, 2, 2, 64, 0},
		{2, 70, 4, 1, 8, 20},
	} {
		t.Run(fmt.Sprintf("B%d T%d NH%d NKV%d HD%d W%d", tc.B, tc.T, tc.NH, tc.NKV, tc.HD, tc.W), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, uint64(tc.T)))
			N, QD, KVD := tc.B*tc.T, tc.NH*tc.HD, tc.NKV*tc.HD
			q, k, v := randSlice(rng, N*QD, 1), randSlice(rng, N*KVD, 1), randSlice(rng, N*KVD, 1)
			dout := randSlice(rng, N*QD, 1)
			want := runAttention(q, k, v, dout, tc.B, tc.T, tc.NH, tc.NKV, tc.HD, tc.W)
			got := runAttention(to32(q), to32(k), to32(v), to32(dout), tc.B, tc.T, tc.NH, tc.NKV, tc.HD, tc.W)
			for i, name := range []string{"out", "dq", "dk", "dv"} {
				var worst float64
				for j := range want[i] {
					worst = max(worst, math.Abs(float64(got[i][j])-want[i][j]))
				}
				if worst > 2e-5 {
					t.Errorf("%s: float32 differs from float64 by up to %g", name, worst)
				}
			}
		})
	}
}

// runAttention returns out, dq, dk, dv of attention over q, k, v with upstream gradient dout.
func runAttention[F float](q, k, v, dout []F, B, T, NH, NKV, HD, W int) [4][]F {
	count := &carver[F]{}
	newAttnScratch(count, B, T, NH, NKV)
	sc := newAttnScratch(&carver[F]{slab: make([]F, count.off)}, B, T, NH, NKV)
	out, dq := make([]F, len(q)), make([]F, len(q))
	dk, dv := make([]F, len(k)), make([]F, len(v))
	attentionForward(out, q, k, v, sc, B, T, NH, NKV, HD, W, nil)
	attentionBackward(dq, dk, dv, dout, out, q, k, v, sc, B, T, NH, NKV, HD, W, nil)
	return [4][]F{out, dq, dk, dv}
}

func to32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}
