package tensor

import "math"

// GELU sets out[i] = gelu(inp[i]) on the calling goroutine (callers split big arrays with Parallel):
// the exact form ½·x·(1 + erf(x/√2)), or with tanhApprox the tanh form ½·x·(1 + tanh(√(2/π)·(x +
// 0.044715·x³))) that transformers calls gelu_new / gelu_pytorch_tanh. The slices must have the same
// length; out may be inp.
func GELU(out, inp []float32, tanhApprox bool) {
	n := len(out)
	if len(inp) != n {
		panic("tensor.GELU: slices of different lengths")
	}
	body := geluSIMD(out, inp, tanhApprox)
	geluGeneric(out[body:], inp[body:], tanhApprox)
}

// GELUBackward sets dinp[i] = dout[i]·gelu'(inp[i]) from the forward's input. The slices must have the
// same length; dinp may be dout.
func GELUBackward(dinp, dout, inp []float32, tanhApprox bool) {
	n := len(dout)
	if len(dinp) != n || len(inp) != n {
		panic("tensor.GELUBackward: slices of different lengths")
	}
	body := geluBackwardSIMD(dinp, dout, inp, tanhApprox)
	geluBackwardGeneric(dinp[body:], dout[body:], inp[body:], tanhApprox)
}

const geluK = 0.7978845608028654 // √(2/π)

// The portable versions, in float64 inside; the SIMD ones (a rational erf and a polynomial e^x, a few
// ulp) are tested against them.

func geluGeneric(out, inp []float32, tanhApprox bool) {
	inp = inp[:len(out)]
	for i, v := range inp {
		x := float64(v)
		if tanhApprox {
			out[i] = float32(0.5 * x * (1 + math.Tanh(geluK*(x+0.044715*x*x*x))))
		} else {
			out[i] = float32(0.5 * x * (1 + math.Erf(x/math.Sqrt2)))
		}
	}
}

func geluBackwardGeneric(dinp, dout, inp []float32, tanhApprox bool) {
	dinp, inp = dinp[:len(dout)], inp[:len(dout)]
	for i, v := range inp {
		x := float64(v)
		var d float64
		if tanhApprox {
			t := math.Tanh(geluK * (x + 0.044715*x*x*x))
			d = 0.5*(1+t) + 0.5*x*(1-t*t)*geluK*(1+3*0.044715*x*x)
		} else {
			d = 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
		}
		dinp[i] = dout[i] * float32(d)
	}
}
