package tensor

import "math"

// AdamWCoeffs are the scalars of one AdamW update, the bias corrections folded in, each computed in
// float64 and rounded once (NewAdamWCoeffs). The field order is the assembly kernel's.
type AdamWCoeffs struct {
	beta1, beta2  float32
	oneMinusBeta1 float32 // 1 − β1, rounded from float64: float32(1) − float32(0.999) is off by 1e-5
	oneMinusBeta2 float32
	stepSize      float32 // lr / (1 − β1ᵗ)
	invSqrtBC2    float32 // 1 / √(1 − β2ᵗ)
	eps           float32
	decay         float32 // lr·λ, the decoupled weight decay
	gradScale     float32
}

// NewAdamWCoeffs returns the coefficients of update number t (1 for the first) with learning rate lr,
// decay rates beta1 and beta2, epsilon eps, decoupled weight decay lambda (0 for none), and gradScale
// multiplying the gradient first (a clipping factor; 1 leaves it as it is).
func NewAdamWCoeffs(t int, lr, beta1, beta2, eps, lambda, gradScale float64) AdamWCoeffs {
	return AdamWCoeffs{
		beta1: float32(beta1), beta2: float32(beta2),
		oneMinusBeta1: float32(1 - beta1), oneMinusBeta2: float32(1 - beta2),
		stepSize:   float32(lr / (1 - math.Pow(beta1, float64(t)))),
		invSqrtBC2: float32(1 / math.Sqrt(1-math.Pow(beta2, float64(t)))),
		eps:        float32(eps), decay: float32(lr * lambda), gradScale: float32(gradScale),
	}
}

// AdamW applies one AdamW update to theta in place, with its moments m and v, from grad (read only),
// on the calling goroutine (callers split big tensors between workers with Parallel):
//
//	g ← gradScale·grad;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	θ ← θ − (lr/(1−β1ᵗ)·m / (√v/√(1−β2ᵗ) + ε) + lr·λ·θ)
//
// In one pass over the four arrays, so the update costs what moving them through memory costs. Every
// lane computes exactly the float32 operations written above in that order (no fused multiply-add), so
// the SIMD and portable versions agree bit for bit and an update does not depend on how the tensor was
// split. The slices must have the same length.
func AdamW(theta, grad, m, v []float32, c AdamWCoeffs) {
	n := len(theta)
	if len(grad) != n || len(m) != n || len(v) != n {
		panic("tensor.AdamW: slices of different lengths")
	}
	body := adamwSIMD(theta, grad, m, v, &c)
	adamwGeneric(theta[body:], grad[body:], m[body:], v[body:], &c)
}

// adamwGeneric is the portable AdamW. The float32 conversions round every product, which keeps a
// compiler from fusing them into multiply-adds (the Go specification's rule), as the SIMD version
// does not fuse either.
func adamwGeneric(theta, grad, m, v []float32, c *AdamWCoeffs) {
	b1, b2, ob1, ob2 := c.beta1, c.beta2, c.oneMinusBeta1, c.oneMinusBeta2
	grad, m, v = grad[:len(theta)], m[:len(theta)], v[:len(theta)]
	for j, th := range theta {
		g := grad[j] * c.gradScale
		mj := float32(b1*m[j]) + float32(ob1*g)
		vj := float32(b2*v[j]) + float32(float32(ob2*g)*g)
		m[j], v[j] = mj, vj
		denom := float32(float32(math.Sqrt(float64(vj)))*c.invSqrtBC2) + c.eps
		theta[j] = th - (float32(c.stepSize*mj)/denom + float32(c.decay*th))
	}
}

// SumSquares returns Σ x[i]², accumulated in float64 (in lanes, so the order of the additions is fixed
// by the length of x alone).
func SumSquares(x []float32) float64 {
	body := sumSquaresSIMD(x)
	s := body.sum
	for _, v := range x[body.n:] {
		s += float64(v) * float64(v)
	}
	return s
}

// partialSum is what a SIMD reduction covered: the first n entries, summing to sum.
type partialSum struct {
	n   int
	sum float64
}
