//go:build amd64 && !purego

package tensor

// swigluAVX512 and swigluBackwardAVX512 cover the first n entries (n a multiple of 16).
//
//go:noescape
func swigluAVX512(out, gate, up *float32, n int)

//go:noescape
func swigluBackwardAVX512(dgate, dup, dout, gate, up *float32, n int)

// swigluSIMD computes the longest prefix the kernel covers and returns its length.
func swigluSIMD(out, gate, up []float32) int {
	body := len(out) &^ 15
	if !hasAVX512F || body == 0 {
		return 0
	}
	swigluAVX512(&out[0], &gate[0], &up[0], body)
	return body
}

func swigluBackwardSIMD(dgate, dup, dout, gate, up []float32) int {
	body := len(dout) &^ 15
	if !hasAVX512F || body == 0 {
		return 0
	}
	swigluBackwardAVX512(&dgate[0], &dup[0], &dout[0], &gate[0], &up[0], body)
	return body
}
