//go:build amd64 && !purego

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// elementwisePaths runs fn with each element-wise kernel set this CPU can run forced in turn:
// AVX-512, AVX2 (also on an AVX-512 machine) and the portable loops.
func elementwisePaths(t *testing.T, fn func(t *testing.T)) {
	avx512, avx2 := hasAVX512F, hasAVX2
	defer func() { hasAVX512F, hasAVX2 = avx512, avx2 }()
	if avx512 {
		t.Run("AVX512", fn)
	} else {
		t.Log("no AVX-512 here: its kernels are not tested")
	}
	hasAVX512F = false
	if avx2 {
		t.Run("AVX2", fn)
	}
	hasAVX2 = false
	t.Run("portable", fn)
}

// The AVX2 kernels do what the AVX-512 ones do, operation for operation: the same bits, so a model
// trains to the same weights on either kind of CPU.
func TestElementwiseAVX2MatchesAVX512(t *testing.T) {
	if !hasAVX512F || !hasAVX2 {
		t.Skip("needs a CPU with both AVX-512 and AVX2 (the AVX2 kernels are checked against float64 by TestSwiGLU, TestGELUMatchesDefinition, TestAdamW and TestSumSquares)")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	const n = 4099
	gate, up, dout := swigluGates(rng, n), offsetSlice(rng, n), offsetSlice(rng, n)
	theta, grad, m, v := offsetSlice(rng, n), offsetSlice(rng, n), offsetSlice(rng, n), offsetSlice(rng, n)
	for i := range v {
		v[i] *= v[i]
	}
	c := NewAdamWCoeffs(7, 1e-3, 0.9, 0.999, 1e-8, 0.01, 0.5)
	type result struct {
		out, dgate, dup, theta, m, v, gelu, dgelu, geluT, dgeluT []float32
		ss                                                       float64
	}
	run := func() result {
		r := result{out: make([]float32, n), dgate: make([]float32, n), dup: make([]float32, n),
			theta: append([]float32(nil), theta...), m: append([]float32(nil), m...), v: append([]float32(nil), v...),
			gelu: make([]float32, n), dgelu: make([]float32, n), geluT: make([]float32, n), dgeluT: make([]float32, n)}
		SwiGLU(r.out, gate, up)
		SwiGLUBackward(r.dgate, r.dup, dout, gate, up)
		GELU(r.gelu, gate, false)
		GELUBackward(r.dgelu, dout, gate, false)
		GELU(r.geluT, gate, true)
		GELUBackward(r.dgeluT, dout, gate, true)
		AdamW(r.theta, grad, r.m, r.v, c)
		r.ss = SumSquares(grad)
		return r
	}
	want := run()
	hasAVX512F = false
	defer func() { hasAVX512F = true }()
	got := run()
	if math.Float64bits(got.ss) != math.Float64bits(want.ss) {
		t.Errorf("SumSquares: AVX2 %.17g, AVX-512 %.17g", got.ss, want.ss)
	}
	for name, pair := range map[string][2][]float32{"SwiGLU": {got.out, want.out}, "dgate": {got.dgate, want.dgate},
		"dup": {got.dup, want.dup}, "θ": {got.theta, want.theta}, "m": {got.m, want.m}, "v": {got.v, want.v},
		"GELU": {got.gelu, want.gelu}, "GELU'": {got.dgelu, want.dgelu},
		"GELU tanh": {got.geluT, want.geluT}, "GELU tanh'": {got.dgeluT, want.dgeluT}} {
		for i := range n {
			if math.Float32bits(pair[0][i]) != math.Float32bits(pair[1][i]) {
				t.Fatalf("%s[%d]: AVX2 %g, AVX-512 %g", name, i, pair[0][i], pair[1][i])
			}
		}
	}
}
