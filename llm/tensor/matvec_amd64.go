//go:build amd64 && !purego

package tensor

import "golang.org/x/sys/cpu"

// narrowAVX512: the narrow kernels use AVX-512 Foundation (16-float vectors, zero-extending word
// loads for the bfloat16 weights).
var narrowAVX512 = cpu.X86.HasAVX512F

// dot4F32AVX512 sets out[r] = Σ_{p<k} x[p]·w[r·ldw+p] for r = 0..3; k is a multiple of 16.
//
//go:noescape
func dot4F32AVX512(x, w *float32, ldw, k int, out *[4]float32)

// dot4BF16AVX512 is dot4F32AVX512 with w in bfloat16.
//
//go:noescape
func dot4BF16AVX512(x *float32, w *uint16, ldw, k int, out *[4]float32)

func narrowF32(c, a, b []float32, m, n, k, lo, hi int) {
	body := k &^ 15
	if !narrowAVX512 || body == 0 {
		narrowF32Generic(c, a, b, m, n, k, lo, hi)
		return
	}
	var out [4]float32
	j := lo
	for ; j+4 <= hi; j += 4 {
		w := b[j*k : (j+4)*k]
		for i := range m {
			x := a[i*k : (i+1)*k]
			dot4F32AVX512(&x[0], &w[0], k, body, &out)
			for r := range 4 {
				if body < k {
					out[r] += dotGeneric(x[body:], w[r*k+body:(r+1)*k])
				}
				c[i*n+j+r] = out[r]
			}
		}
	}
	narrowF32Generic(c, a, b, m, n, k, j, hi)
}

func narrowBF16(c, a []float32, b []uint16, m, n, k, lo, hi int) {
	body := k &^ 15
	if !narrowAVX512 || body == 0 {
		narrowBF16Generic(c, a, b, m, n, k, lo, hi)
		return
	}
	var out [4]float32
	var tail [1]float32
	j := lo
	for ; j+4 <= hi; j += 4 {
		w := b[j*k : (j+4)*k]
		for i := range m {
			x := a[i*k : (i+1)*k]
			dot4BF16AVX512(&x[0], &w[0], k, body, &out)
			for r := range 4 {
				if body < k {
					// The tail (k mod 16 weights) as a one-row, one-column product.
					narrowBF16Generic(tail[:], x[body:], w[r*k+body:(r+1)*k], 1, 1, k-body, 0, 1)
					out[r] += tail[0]
				}
				c[i*n+j+r] = out[r]
			}
		}
	}
	narrowBF16Generic(c, a, b, m, n, k, j, hi)
}
