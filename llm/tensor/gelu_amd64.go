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

// geluSIMD computes the longest prefix the kernels cover and returns its length.
func geluSIMD(out, inp []float32, tanhApprox bool) int {
	body := len(out) &^ 15
	if !hasAVX512F || body == 0 {
		return 0
	}
	if tanhApprox {
		geluTanhAVX512(&out[0], &inp[0], body)
	} else {
		geluErfAVX512(&out[0], &inp[0], body)
	}
	return body
}

func geluBackwardSIMD(dinp, dout, inp []float32, tanhApprox bool) int {
	body := len(dout) &^ 15
	if !hasAVX512F || body == 0 {
		return 0
	}
	if tanhApprox {
		geluTanhBackwardAVX512(&dinp[0], &dout[0], &inp[0], body)
	} else {
		geluErfBackwardAVX512(&dinp[0], &dout[0], &inp[0], body)
	}
	return body
}
