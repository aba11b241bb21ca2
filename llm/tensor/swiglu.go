package tensor

import "math"

// SwiGLU sets out[i] = silu(gate[i])·up[i], silu(g) = g·σ(g) = g/(1+e^−g): the gated activation of a
// llama feed-forward block, one pass over the three arrays on the calling goroutine (callers split big
// arrays with Parallel). The slices must have the same length.
func SwiGLU(out, gate, up []float32) {
	n := len(out)
	if len(gate) != n || len(up) != n {
		panic("tensor.SwiGLU: slices of different lengths")
	}
	body := swigluSIMD(out, gate, up)
	swigluGeneric(out[body:], gate[body:], up[body:])
}

// SwiGLUBackward is SwiGLU's backward, from the forward's inputs: with s = σ(gate),
// dgate = dout·up·s·(1 + gate·(1−s)) and dup = dout·gate·s (both overwritten). The slices must have the
// same length.
func SwiGLUBackward(dgate, dup, dout, gate, up []float32) {
	n := len(dout)
	if len(dgate) != n || len(dup) != n || len(gate) != n || len(up) != n {
		panic("tensor.SwiGLUBackward: slices of different lengths")
	}
	body := swigluBackwardSIMD(dgate, dup, dout, gate, up)
	swigluBackwardGeneric(dgate[body:], dup[body:], dout[body:], gate[body:], up[body:])
}

// The portable versions, in float64 inside; the SIMD ones (a polynomial e^x, about 2 ulp) are tested
// against them.

func swigluGeneric(out, gate, up []float32) {
	gate, up = gate[:len(out)], up[:len(out)]
	for i := range out {
		g := float64(gate[i])
		out[i] = float32(g/(1+math.Exp(-g))) * up[i]
	}
}

func swigluBackwardGeneric(dgate, dup, dout, gate, up []float32) {
	dgate, dup, gate, up = dgate[:len(dout)], dup[:len(dout)], gate[:len(dout)], up[:len(dout)]
	for i, d := range dout {
		g := float64(gate[i])
		s := 1 / (1 + math.Exp(-g))
		dgate[i] = d * up[i] * float32(s*(1+g*(1-s)))
		dup[i] = d * float32(g*s)
	}
}
