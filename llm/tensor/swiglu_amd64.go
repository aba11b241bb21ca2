//go:build amd64 && !purego

package tensor

// swigluAVX512 and swigluBackwardAVX512 cover the first n entries (n a multiple of 16).
//
//go:noescape
func swigluAVX512(out, gate, up *float32, n int)

//go:noescape
func swigluBackwardAVX512(dgate, dup, dout, gate, up *float32, n int)

// swigluAVX2 and swigluBackwardAVX2 are the same on 8-float registers (n a multiple of 8), for CPUs
// with AVX2 and no AVX-512: the same values.
//
//go:noescape
func swigluAVX2(out, gate, up *float32, n int)

//go:noescape
func swigluBackwardAVX2(dgate, dup, dout, gate, up *float32, n int)

// swigluSIMD computes the longest prefix the kernel covers and returns its length.
func swigluSIMD(out, gate, up []float32) int {
	switch {
	case hasAVX512F && len(out) >= 16:
		body := len(out) &^ 15
		swigluAVX512(&out[0], &gate[0], &up[0], body)
		return body
	case hasAVX2 && len(out) >= 8:
		body := len(out) &^ 7
		swigluAVX2(&out[0], &gate[0], &up[0], body)
		return body
	}
	return 0
}

func swigluBackwardSIMD(dgate, dup, dout, gate, up []float32) int {
	switch {
	case hasAVX512F && len(dout) >= 16:
		body := len(dout) &^ 15
		swigluBackwardAVX512(&dgate[0], &dup[0], &dout[0], &gate[0], &up[0], body)
		return body
	case hasAVX2 && len(dout) >= 8:
		body := len(dout) &^ 7
		swigluBackwardAVX2(&dgate[0], &dup[0], &dout[0], &gate[0], &up[0], body)
		return body
	}
	return 0
}
