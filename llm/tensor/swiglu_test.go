package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// swigluGates are random gates plus the saturated ends of σ and the points where its derivative term
// 1 + g·(1−σ(g)) changes sign (g ≈ −1.2785).
func swigluGates(rng *rand.Rand, n int) []float32 {
	g := offsetSlice(rng, n)
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, -1.2785, 8, -8, 20, -20, 87, -87, 88.7, -88.7, 100, -100, 1e-20, -1e-20}
	for i := range g {
		if i%3 == 0 {
			g[i] = special[(i/3)%len(special)]
		} else {
			g[i] *= 4
		}
	}
	return g
}

func TestSwiGLU(t *testing.T) { elementwisePaths(t, testSwiGLU) }

func testSwiGLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, n := range vecLengths {
		gate, up, dout := swigluGates(rng, n), offsetSlice(rng, n), offsetSlice(rng, n)
		out, dgate, dup := make([]float32, n), make([]float32, n), make([]float32, n)
		SwiGLU(out, gate, up)
		SwiGLUBackward(dgate, dup, dout, gate, up)
		for i := range n {
			g, u, d := float64(gate[i]), float64(up[i]), float64(dout[i])
			s := 1 / (1 + math.Exp(-g))
			wantOut, wantDup := g*s*u, d*g*s
			// the derivative's two terms may cancel: its error is relative to their size
			wantDgate, size := d*u*s*(1+g*(1-s)), math.Abs(d*u)*s*(1+math.Abs(g)*(1-s))
			const tol = 4e-6
			if math.Abs(float64(out[i])-wantOut) > tol*math.Abs(wantOut)+1e-30 ||
				math.Abs(float64(dup[i])-wantDup) > tol*math.Abs(wantDup)+1e-30 ||
				math.Abs(float64(dgate[i])-wantDgate) > tol*size+1e-30 {
				t.Fatalf("length %d, gate %g up %g dout %g: out %g dgate %g dup %g, want %g %g %g",
					n, g, u, d, out[i], dgate[i], dup[i], wantOut, wantDgate, wantDup)
			}
		}
	}
}

func TestSwiGLULengthMismatch(t *testing.T) {
	for name, f := range map[string]func(){
		"forward": func() { SwiGLU(make([]float32, 4), make([]float32, 4), make([]float32, 3)) },
		"backward": func() {
			SwiGLUBackward(make([]float32, 4), make([]float32, 4), make([]float32, 4), make([]float32, 5), make([]float32, 4))
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with slices of different lengths did not panic", name)
				}
			}()
			f()
		}()
	}
}
