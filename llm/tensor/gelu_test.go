package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The SIMD GELU (a rational erf, a polynomial e^x) agrees with the float64 definitions, in both forms,
// forward and backward, over the range activations take and beyond (saturation, tiny values, the
// scalar tail of lengths that are not a multiple of 16).
func TestGELUMatchesDefinition(t *testing.T) { elementwisePaths(t, testGELUMatchesDefinition) }

func testGELUMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var xs []float32
	for i := -2000; i <= 2000; i++ {
		xs = append(xs, float32(i)/200) // −10 … 10
	}
	for range 997 {
		xs = append(xs, float32(rng.NormFloat64()*3))
	}
	xs = append(xs, 0, 1e-8, -1e-8, 30, -30, 100, -100, 1e4, -1e4)
	dout := make([]float32, len(xs))
	for i := range dout {
		dout[i] = float32(rng.NormFloat64())
	}
	for _, tanhApprox := range []bool{false, true} {
		got, want := make([]float32, len(xs)), make([]float32, len(xs))
		GELU(got, xs, tanhApprox)
		geluGeneric(want, xs, tanhApprox)
		gotB, wantB := make([]float32, len(xs)), make([]float32, len(xs))
		GELUBackward(gotB, dout, xs, tanhApprox)
		geluBackwardGeneric(wantB, dout, xs, tanhApprox)
		for i, x := range xs {
			// A few float32 ulp of the larger of the value and x (gelu(x) ≈ x for large x).
			if tol := 4e-7*math.Max(1, math.Abs(float64(x))) + 1e-7; math.Abs(float64(got[i]-want[i])) > tol {
				t.Errorf("tanh=%v gelu(%g) = %g, want %g", tanhApprox, x, got[i], want[i])
			}
			if tol := 2e-6*math.Abs(float64(dout[i])) + 1e-7; math.Abs(float64(gotB[i]-wantB[i])) > tol {
				t.Errorf("tanh=%v gelu'(%g)·%g = %g, want %g", tanhApprox, x, dout[i], gotB[i], wantB[i])
			}
		}
	}
	// In place, as the engine calls it.
	in := []float32{-1, 0.5, 2}
	GELU(in, in, false)
	if math.Abs(float64(in[1])-0.5*0.5*(1+math.Erf(0.5/math.Sqrt2))) > 1e-7 {
		t.Errorf("in place: %v", in)
	}
}

func BenchmarkGELU(b *testing.B) {
	x := make([]float32, 1<<16)
	for i := range x {
		x[i] = float32(i%200-100) / 25
	}
	out := make([]float32, len(x))
	for _, tanhApprox := range []bool{false, true} {
		name := map[bool]string{false: "erf", true: "tanh"}[tanhApprox]
		b.Run(name+"/simd", func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				GELU(out, x, tanhApprox)
			}
		})
		b.Run(name+"/generic", func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				geluGeneric(out, x, tanhApprox)
			}
		})
		b.Run(name+"/backward-simd", func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				GELUBackward(out, x, x, tanhApprox)
			}
		})
	}
}
