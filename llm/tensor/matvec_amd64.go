//go:build amd64 && !purego

package tensor

//go:generate python3 gen_matvec_amd64.py

import (
	"sync"

	"golang.org/x/sys/cpu"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// narrowAVX512: the narrow kernels use AVX-512 Foundation (16-float vectors, zero-extending word
// loads for the bfloat16 weights). narrowDP: the bfloat16 products use AVX-512 BF16's dot product.
var (
	narrowAVX512 = cpu.X86.HasAVX512F
	narrowDP     = narrowAVX512 && cpu.X86.HasAVX512BF16
)

// dot1F32AVX512 returns Σ_{p<k} x[p]·w[p]; k is a multiple of 16.
//
//go:noescape
func dot1F32AVX512(x, w *float32, k int) float32

// dot4x4F32AVX512 sets out[r·ldo+q] = Σ_{p<k} x[r·ldx+p]·w[q·ldw+p] for r, q = 0..3; k is a multiple
// of 16.
//
//go:noescape
func dot4x4F32AVX512(x *float32, ldx int, w *float32, ldw, k int, out *float32, ldo int)

// dot1x4BF16DPAVX512 sets out[r·ldo] = Σ_{p<k} x[r·ldx+p]·w[p] for r = 0..3, x and w in bfloat16; k
// is a multiple of 32.
//
//go:noescape
func dot1x4BF16DPAVX512(x *uint16, ldx int, w *uint16, k int, out *float32, ldo int)

// dot4x4BF16DPAVX512 sets out[r·ldo+q] = Σ_{p<k} x[r·ldx+p]·w[q·ldw+p] for r, q = 0..3, x and w in
// bfloat16; k is a multiple of 32.
//
//go:noescape
func dot4x4BF16DPAVX512(x *uint16, ldx int, w *uint16, ldw, k int, out *float32, ldo int)

// The same three with w in bfloat16.

//go:noescape
func dot1BF16AVX512(x *float32, w *uint16, k int) float32

//go:noescape
func dot4x4BF16AVX512(x *float32, ldx int, w *uint16, ldw, k int, out *float32, ldo int)

// dot1BF16AVX2 returns Σ_{p<k} x[p]·w[p], w in bfloat16; k is a multiple of 8. For CPUs with AVX2
// and no AVX-512 (Zen 3, Haswell to Comet Lake), which decoded through the Go loops at a third to a
// half of llama.cpp's speed.
//
//go:noescape
func dot1BF16AVX2(x *float32, w *uint16, k int) float32

// dot4xR{F32,BF16}AVX2 set out[r·ldo+q] = Σ_{p<k} x[r·ldx+p]·w[q·ldw+p] for r < R, q < 4 (four
// weight rows against R activation rows, all in registers); k is a multiple of 8.
//
//go:noescape
func dot4x1F32AVX2(x *float32, ldx int, w *float32, ldw, k int, out *float32, ldo int)

//go:noescape
func dot4x2F32AVX2(x *float32, ldx int, w *float32, ldw, k int, out *float32, ldo int)

//go:noescape
func dot4x3F32AVX2(x *float32, ldx int, w *float32, ldw, k int, out *float32, ldo int)

//go:noescape
func dot4x1BF16AVX2(x *float32, ldx int, w *uint16, ldw, k int, out *float32, ldo int)

//go:noescape
func dot4x2BF16AVX2(x *float32, ldx int, w *uint16, ldw, k int, out *float32, ldo int)

//go:noescape
func dot4x3BF16AVX2(x *float32, ldx int, w *uint16, ldw, k int, out *float32, ldo int)

// avx2Kernels are one weight type's AVX2 kernels: dot4x[R-1] multiplies four weight rows by R
// activation rows, dot1 one by one.
type avx2Kernels[W float32 | uint16] struct {
	dot4x [3]func(x *float32, ldx int, w *W, ldw, k int, out *float32, ldo int)
	dot1  func(x *float32, w *W, k int) float32
}

var (
	f32AVX2  = avx2Kernels[float32]{[3]func(*float32, int, *float32, int, int, *float32, int){dot4x1F32AVX2, dot4x2F32AVX2, dot4x3F32AVX2}, dotAVX2}
	bf16AVX2 = avx2Kernels[uint16]{[3]func(*float32, int, *uint16, int, int, *float32, int){dot4x1BF16AVX2, dot4x2BF16AVX2, dot4x3BF16AVX2}, dot1BF16AVX2}
)

// narrowAVX2 computes columns [lo, hi) of c = a·bᵀ with the AVX2 kernels: four weight rows at a time
// against three activation rows at a time (the rows beyond a multiple of three by the 4x2 or 4x1
// kernel), each four weight rows read from memory once and kept in L1 or L2 while every activation row
// meets them; the last hi-lo mod 4 weight rows one dot product at a time, and the k mod 8 last columns
// of every entry in Go.
func narrowAVX2[W float32 | uint16](kn avx2Kernels[W], c, a []float32, b []W, m, n, k, lo, hi int) {
	body := k &^ 7
	j := lo
	if body > 0 {
		for ; j+4 <= hi; j += 4 {
			w := &b[j*k]
			for i := 0; i < m; i += 3 {
				r := min(m-i, 3)
				kn.dot4x[r-1](&a[i*k], k, w, k, body, &c[i*n+j], n)
			}
		}
		for ; j < hi; j++ {
			for i := range m {
				c[i*n+j] = kn.dot1(&a[i*k], &b[j*k], body)
			}
		}
	}
	for ; j < hi; j++ { // body = 0
		for i := range m {
			c[i*n+j] = 0
		}
	}
	if body < k {
		for j := lo; j < hi; j++ {
			for i := range m {
				x, w := a[i*k+body:(i+1)*k], b[j*k+body:(j+1)*k]
				var s float32
				for p, v := range w {
					s += x[p] * widen(v)
				}
				c[i*n+j] += s
			}
		}
	}
}

// widen returns a weight as float32: itself, or a bfloat16 widened.
func widen[W float32 | uint16](v W) float32 {
	switch v := any(v).(type) {
	case uint16:
		return half.BF16ToF32(v)
	default:
		return v.(float32)
	}
}

// narrowKernels are one weight type's AVX-512 kernels for the narrow products.
type narrowKernels[W float32 | uint16] struct {
	dot4x4 func(x *float32, ldx int, w *W, ldw, k int, out *float32, ldo int)
	dot1   func(x *float32, w *W, k int) float32
	// generic computes columns [lo, hi) of c = a·bᵀ in Go: the shapes the kernels do not take, and
	// the k mod 16 tail of every entry (as 1x1 products).
	generic func(c, a []float32, b []W, m, n, k, lo, hi int)
	// avx2: the kernels used instead on CPUs with AVX2 and no AVX-512.
	avx2 avx2Kernels[W]
}

var (
	f32Narrow  = narrowKernels[float32]{dot4x4F32AVX512, dot1F32AVX512, narrowF32Generic, f32AVX2}
	bf16Narrow = narrowKernels[uint16]{dot4x4BF16AVX512, dot1BF16AVX512, narrowBF16Generic, bf16AVX2}
)

// narrowF32 computes columns [lo, hi) of c = a·bᵀ; narrowBF16 the same with bfloat16 weights.
func narrowF32(c, a, b []float32, m, n, k, lo, hi int) {
	narrowWith(f32Narrow, c, a, b, m, n, k, lo, hi)
}

func narrowBF16(c, a []float32, b []uint16, m, n, k, lo, hi int) {
	narrowWith(bf16Narrow, c, a, b, m, n, k, lo, hi)
}

// narrowWith computes columns [lo, hi) of c = a·bᵀ, four weight rows at a time against four
// activation rows at a time (every weight read from memory once, every activation row once per four
// weight rows), the activation rows beyond a multiple of four one weight row at a time.
func narrowWith[W float32 | uint16](kn narrowKernels[W], c, a []float32, b []W, m, n, k, lo, hi int) {
	body := k &^ 15
	if !narrowAVX512 && hasAVX2 {
		narrowAVX2(kn.avx2, c, a, b, m, n, k, lo, hi)
		return
	}
	if !narrowAVX512 || body == 0 {
		kn.generic(c, a, b, m, n, k, lo, hi)
		return
	}
	j := lo
	for ; j+4 <= hi; j += 4 {
		w := b[j*k : (j+4)*k]
		i := 0
		for ; i+4 <= m; i += 4 {
			kn.dot4x4(&a[i*k], k, &w[0], k, body, &c[i*n+j], n)
		}
		for ; i < m; i++ {
			for q := range 4 {
				c[i*n+j+q] = kn.dot1(&a[i*k], &w[q*k], body)
			}
		}
	}
	for ; j < hi; j++ {
		for i := range m {
			c[i*n+j] = kn.dot1(&a[i*k], &b[j*k], body)
		}
	}
	if body < k {
		var tail [1]float32
		for j := lo; j < hi; j++ {
			for i := range m {
				kn.generic(tail[:], a[i*k+body:(i+1)*k], b[j*k+body:(j+1)*k], 1, 1, k-body, 0, 1)
				c[i*n+j] += tail[0]
			}
		}
	}
}

// dot1BF16DPAVX512 returns Σ_{p<k} x[p]·w[p] with x and w in bfloat16; k is a multiple of 32.
//
//go:noescape
func dot1BF16DPAVX512(x, w *uint16, k int) float32

// narrowBF16DP computes columns [lo, hi) of c = ah·bᵀ, both in bfloat16, with the VDPBF16PS
// kernels: one weight row at a time (a sequential stream) against four activation rows at a time.
// With VDPBF16PS doing 32 columns per instruction this beats the 4x4 blocking that suits float32
// (233 against 195 tokens/s decoding 8 sequences of a 154M llama on one core).
func narrowBF16DP(c []float32, ah, b []uint16, m, n, k, lo, hi int) {
	body := k &^ 31
	j := lo
	if m >= 4 {
		// Four weight rows at a time against each four activation rows (a batch): each weight vector
		// loaded once feeds four products, each activation vector four.
		for ; j+4 <= hi; j += 4 {
			i := 0
			for ; i+4 <= m; i += 4 {
				dot4x4BF16DPAVX512(&ah[i*k], k, &b[j*k], k, body, &c[i*n+j], n)
			}
			for ; i < m; i++ {
				for q := range 4 {
					c[i*n+j+q] = dot1BF16DPAVX512(&ah[i*k], &b[(j+q)*k], body)
				}
			}
		}
	}
	for ; j < hi; j++ {
		i := 0
		for ; i+4 <= m; i += 4 {
			dot1x4BF16DPAVX512(&ah[i*k], k, &b[j*k], body, &c[i*n+j], n)
		}
		for ; i < m; i++ {
			c[i*n+j] = dot1BF16DPAVX512(&ah[i*k], &b[j*k], body)
		}
	}
	if body < k { // the k mod 32 last columns
		for j := lo; j < hi; j++ {
			for i := range m {
				var s float32
				for p := body; p < k; p++ {
					s += half.BF16ToF32(ah[i*k+p]) * half.BF16ToF32(b[j*k+p])
				}
				c[i*n+j] += s
			}
		}
	}
}

// bf16Rows holds activations rounded to bfloat16 for the DP kernels, reused across products.
var bf16Rows = sync.Pool{New: func() any { return new([]uint16) }}

func narrowAllBF16(c, a []float32, b []uint16, m, n, k int) {
	if !narrowDP || k < 32 {
		narrowAllBF16Widened(c, a, b, m, n, k)
		return
	}
	buf := bf16Rows.Get().(*[]uint16)
	if cap(*buf) < m*k {
		*buf = make([]uint16, m*k)
	}
	ah := (*buf)[:m*k]
	RoundBF16(ah, a[:m*k])
	narrowRun(m, n, k, func(lo, hi int) { narrowBF16DP(c, ah, b, m, n, k, lo, hi) })
	bf16Rows.Put(buf)
}
