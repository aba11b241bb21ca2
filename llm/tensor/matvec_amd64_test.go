//go:build amd64 && !purego

package tensor

import "testing"

// The AVX2 narrow products (CPUs without AVX-512) give the reference's results on every shape, on
// an AVX-512 machine too.
func TestMatMulNarrowAVX2(t *testing.T) {
	if !hasAVX2 {
		t.Skip("this CPU has no AVX2")
	}
	defer func(v bool) { narrowAVX512 = v }(narrowAVX512)
	narrowAVX512 = false
	runNarrowShapes(t)
}
