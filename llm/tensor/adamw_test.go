package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// adamwReference is AdamW in float64 from its textbook definition (Loshchilov & Hutter, with the bias
// corrections of Kingma & Ba), for the update at step t with learning rate lr and decay λ.
func adamwReference(theta, grad, m, v float64, t int, lr, b1, b2, eps, lambda, scale float64) (float64, float64, float64) {
	g := scale * grad
	m = b1*m + (1-b1)*g
	v = b2*v + (1-b2)*g*g
	mhat := m / (1 - math.Pow(b1, float64(t)))
	vhat := v / (1 - math.Pow(b2, float64(t)))
	return theta - lr*(mhat/(math.Sqrt(vhat)+eps)+lambda*theta), m, v
}

func TestAdamW(t *testing.T) { elementwisePaths(t, testAdamW) }

func testAdamW(t *testing.T) {
	cases := []struct {
		name                      string
		step                      int
		lr, lambda, scale, moment float64
	}{
		{"first step, no decay", 1, 1e-3, 0, 1, 0},
		{"tenth step with decay and clipping", 10, 3e-4, 0.1, 0.25, 1e-2},
		{"late step, large learning rate", 1000, 0.5, 0.01, 1, 1},
	}
	const b1, b2, eps = 0.9, 0.999, 1e-8
	rng := rand.New(rand.NewPCG(21, 22))
	for _, tc := range cases {
		for _, n := range vecLengths {
			theta, grad := offsetSlice(rng, n), offsetSlice(rng, n)
			m, v := offsetSlice(rng, n), offsetSlice(rng, n)
			for i := range m {
				m[i] *= float32(tc.moment)
				v[i] = v[i] * v[i] * float32(tc.moment)
			}
			if n > 2 {
				grad[1] = 0 // a parameter the batch did not touch still decays and moves with its moments
			}
			c := NewAdamWCoeffs(tc.step, tc.lr, b1, b2, eps, tc.lambda, tc.scale)
			th1, m1, v1 := append([]float32(nil), theta...), append([]float32(nil), m...), append([]float32(nil), v...)
			th2, m2, v2 := append([]float32(nil), theta...), append([]float32(nil), m...), append([]float32(nil), v...)
			AdamW(th1, grad, m1, v1, c)
			adamwGeneric(th2, grad, m2, v2, &c)
			for i := range n {
				if math.Float32bits(th1[i]) != math.Float32bits(th2[i]) || m1[i] != m2[i] || v1[i] != v2[i] {
					t.Fatalf("%s, length %d, entry %d: AdamW gives θ %g m %g v %g, the portable loop θ %g m %g v %g",
						tc.name, n, i, th1[i], m1[i], v1[i], th2[i], m2[i], v2[i])
				}
				wt, wm, wv := adamwReference(float64(theta[i]), float64(grad[i]), float64(m[i]), float64(v[i]),
					tc.step, tc.lr, b1, b2, eps, tc.lambda, tc.scale)
				// θ moves by at most about lr per step: compare the move, to float32's precision of θ.
				// m's two terms may cancel: its error is relative to their size.
				tol := 1e-6*math.Abs(wt) + 1e-5*tc.lr
				mtol := 1e-6 * (b1*math.Abs(float64(m[i])) + (1-b1)*tc.scale*math.Abs(float64(grad[i])))
				if math.Abs(float64(th1[i])-wt) > tol || math.Abs(float64(m1[i])-wm) > mtol+1e-12 ||
					math.Abs(float64(v1[i])-wv) > 1e-6*math.Abs(wv)+1e-12 {
					t.Fatalf("%s, length %d, entry %d: θ %g m %g v %g, want %g %g %g", tc.name, n, i, th1[i], m1[i], v1[i], wt, wm, wv)
				}
			}
		}
	}
}

func TestAdamWLengthMismatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AdamW with a gradient shorter than θ did not panic")
		}
	}()
	AdamW(make([]float32, 4), make([]float32, 3), make([]float32, 4), make([]float32, 4), NewAdamWCoeffs(1, 1e-3, 0.9, 0.999, 1e-8, 0, 1))
}

func TestSumSquares(t *testing.T) { elementwisePaths(t, testSumSquares) }

func testSumSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, n := range vecLengths {
		x := offsetSlice(rng, n)
		var want float64
		for _, v := range x {
			want += float64(v) * float64(v)
		}
		if got := SumSquares(x); math.Abs(got-want) > 1e-12*want {
			t.Errorf("SumSquares of length %d = %.17g, want %.17g", n, got, want)
		}
	}
	if got := SumSquares([]float32{3, 4, -12}); got != 169 {
		t.Errorf("SumSquares(3, 4, -12) = %g, want 169", got)
	}
}
