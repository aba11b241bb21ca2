//go:build amd64 && !purego

package tensor

import "golang.org/x/sys/cpu"

// hasAVX512F: the element-wise kernels of this file and activation_amd64.s need AVX-512 Foundation only.
var hasAVX512F = cpu.X86.HasAVX512F

// adamwAVX512 updates the first n entries (n a multiple of 16); c points at an AdamWCoeffs.
//
//go:noescape
func adamwAVX512(theta, grad, m, v *float32, n int, c *AdamWCoeffs)

// sumSquaresAVX512 returns Σ x[i]² over the first n entries (n a multiple of 16), in float64.
//
//go:noescape
func sumSquaresAVX512(x *float32, n int) float64

// adamwAVX2 and sumSquaresAVX2 are the same on 8-float registers (n a multiple of 8, 16 for the sum),
// for CPUs with AVX2 and no AVX-512, where the portable loop took a tenth of a training step.
//
//go:noescape
func adamwAVX2(theta, grad, m, v *float32, n int, c *AdamWCoeffs)

//go:noescape
func sumSquaresAVX2(x *float32, n int) float64

// adamwSIMD updates the longest prefix the kernel covers and returns its length.
func adamwSIMD(theta, grad, m, v []float32, c *AdamWCoeffs) int {
	switch {
	case hasAVX512F && len(theta) >= 16:
		body := len(theta) &^ 15
		adamwAVX512(&theta[0], &grad[0], &m[0], &v[0], body, c)
		return body
	case hasAVX2 && len(theta) >= 8:
		body := len(theta) &^ 7
		adamwAVX2(&theta[0], &grad[0], &m[0], &v[0], body, c)
		return body
	}
	return 0
}

func sumSquaresSIMD(x []float32) partialSum {
	body := len(x) &^ 15
	switch {
	case body == 0:
		return partialSum{}
	case hasAVX512F:
		return partialSum{n: body, sum: sumSquaresAVX512(&x[0], body)}
	case hasAVX2:
		return partialSum{n: body, sum: sumSquaresAVX2(&x[0], body)}
	}
	return partialSum{}
}
