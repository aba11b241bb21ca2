//go:build amd64 && !purego

package tensor

// The kernels of gelu_amd64.s cover the first n entries (n a multiple of 16).
//
//go:noescape
func geluErfAVX512(out, inp *float32, n int)

//go:noescape
func geluErfBackwardAVX512(dinp, dout, inp *float32, n int)

//go:noescape
func geluTanhAVX512(out, inp *float32, n int)

//go:noescape
func geluTanhBackwardAVX512(dinp, dout, inp *float32, n int)

// The AVX2 forms (n a multiple of 8), for CPUs with AVX2 and no AVX-512: the same operations, the same
// values.
//
//go:noescape
func geluErfAVX2(out, inp *float32, n int)

//go:noescape
func geluErfBackwardAVX2(dinp, dout, inp *float32, n int)

//go:noescape
func geluTanhAVX2(out, inp *float32, n int)

//go:noescape
func geluTanhBackwardAVX2(dinp, dout, inp *float32, n int)

// geluSIMD computes the longest prefix the kernels cover and returns its length.
func geluSIMD(out, inp []float32, tanhApprox bool) int {
	switch {
	case hasAVX512F && len(out) >= 16:
		body := len(out) &^ 15
		if tanhApprox {
			geluTanhAVX512(&out[0], &inp[0], body)
		} else {
			geluErfAVX512(&out[0], &inp[0], body)
		}
		return body
	case hasAVX2 && len(out) >= 8:
		body := len(out) &^ 7
		if tanhApprox {
			geluTanhAVX2(&out[0], &inp[0], body)
		} else {
			geluErfAVX2(&out[0], &inp[0], body)
		}
		return body
	}
	return 0
}

func geluBackwardSIMD(dinp, dout, inp []float32, tanhApprox bool) int {
	switch {
	case hasAVX512F && len(dout) >= 16:
		body := len(dout) &^ 15
		if tanhApprox {
			geluTanhBackwardAVX512(&dinp[0], &dout[0], &inp[0], body)
		} else {
			geluErfBackwardAVX512(&dinp[0], &dout[0], &inp[0], body)
		}
		return body
	case hasAVX2 && len(dout) >= 8:
		body := len(dout) &^ 7
		if tanhApprox {
			geluTanhBackwardAVX2(&dinp[0], &dout[0], &inp[0], body)
		} else {
			geluErfBackwardAVX2(&dinp[0], &dout[0], &inp[0], body)
		}
		return body
	}
	return 0
}
