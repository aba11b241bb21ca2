package tensor

import (
	"sync"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// MatMulBF16 computes C (+)= op(A)·op(B) as MatMul does (same layouts and shapes), with B given in
// bfloat16 (the bits, as uint16) and A rounded to bfloat16 (nearest even): every product is of two
// bfloat16 values, exact in float32, and the sums are float32. It is the product of a frozen
// bfloat16 weight: x·Wᵀ forward (transB) and dY·W backward.
//
// Where the CPU has AVX512_BF16 (BF16Native) the kernels multiply pairs of bfloat16 with VDPBF16PS,
// twice the multiply-adds of a float32 FMA per instruction and half the bytes of B to read; elsewhere
// the operands are widened into float32 copies and MatMul runs on them, which gives the same products
// (only the order of the float32 sums may differ).
func MatMulBF16(c, a []float32, b []uint16, m, n, k int, transA, transB, accumulate bool) {
	matmulBF16(c, n, operand{f: a, ld: dense(m, k, transA), trans: transA}, operand{h: b, ld: dense(k, n, transB), trans: transB}, m, n, k, accumulate, true)
}

// MatMulBF16Serial is MatMulBF16 on the calling goroutine only (see MatMulSerial).
func MatMulBF16Serial(c, a []float32, b []uint16, m, n, k int, transA, transB, accumulate bool) {
	matmulBF16(c, n, operand{f: a, ld: dense(m, k, transA), trans: transA}, operand{h: b, ld: dense(k, n, transB), trans: transB}, m, n, k, accumulate, false)
}

// MatMulRoundBF16 is MatMulBF16 with both operands in float32, each rounded to bfloat16 as it is
// packed: the products of bfloat16 mixed-precision training, where the float32 weights stay the
// master copy.
func MatMulRoundBF16(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) {
	matmulBF16(c, n, operand{f: a, ld: dense(m, k, transA), trans: transA}, operand{f: b, ld: dense(k, n, transB), trans: transB}, m, n, k, accumulate, true)
}

// MatMulRoundBF16Serial is MatMulRoundBF16 on the calling goroutine only (see MatMulSerial).
func MatMulRoundBF16Serial(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) {
	matmulBF16(c, n, operand{f: a, ld: dense(m, k, transA), trans: transA}, operand{f: b, ld: dense(k, n, transB), trans: transB}, m, n, k, accumulate, false)
}

// BF16Native reports whether the MatMul*BF16 products run on bfloat16 arithmetic (AVX512_BF16); when
// false they widen their operands and run the float32 kernels, no faster than MatMul.
func BF16Native() bool { return bf16Native }

// dense is the row stride of a gap-free rows×cols matrix, or of its transpose when trans.
func dense(rows, cols int, trans bool) int {
	if trans {
		return rows
	}
	return cols
}

// operand is one factor of a bfloat16 product as stored: f (float32, rounded when packed) or h
// (bfloat16 bits), with row stride ld; trans says it is stored transposed (see MatMul).
type operand struct {
	f     []float32
	h     []uint16
	ld    int
	trans bool
}

// stored returns the operand's shape as stored, given op's shape rows×cols.
func (o operand) stored(rows, cols int) (int, int) {
	if o.trans {
		return cols, rows
	}
	return rows, cols
}

// fits reports whether every element of a stored rows×cols matrix lies inside the slice.
func (o operand) fits(rows, cols int) bool {
	if rows == 0 || cols == 0 {
		return true
	}
	if o.ld < cols {
		panic("tensor.MatMulBF16: leading dimension shorter than a row")
	}
	n := len(o.f)
	if o.h != nil {
		n = len(o.h)
	}
	return n >= (rows-1)*o.ld+cols
}

// bits returns op's element (r, c) as bfloat16 bits.
func (o operand) bits(r, c int) uint16 {
	if o.trans {
		r, c = c, r
	}
	if o.h != nil {
		return o.h[r*o.ld+c]
	}
	return half.F32ToBF16(o.f[r*o.ld+c])
}

func matmulBF16(c []float32, ldc int, a, b operand, m, n, k int, accumulate, threaded bool) {
	if m < 0 || n < 0 || k < 0 {
		panic("tensor.MatMulBF16: negative dimension")
	}
	ar, ac := a.stored(m, k)
	br, bc := b.stored(k, n)
	if !a.fits(ar, ac) || !b.fits(br, bc) || (m > 0 && n > 0 && len(c) < (m-1)*ldc+n) {
		panic("tensor.MatMulBF16: slice shorter than its shape")
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !accumulate {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	if bf16Native {
		matmulBF16Native(c, ldc, a, b, m, n, k, accumulate, threaded)
		return
	}
	matmulBF16Widened(c, ldc, a, b, m, n, k, accumulate, threaded)
}

// widenScratch holds the float32 copies of the fallback.
var widenScratch = sync.Pool{New: func() any { return new([]float32) }}

// matmulBF16Widened is the fallback: each operand as float32 holding its bfloat16 value (widened, or
// rounded), then the float32 GEMM.
func matmulBF16Widened(c []float32, ldc int, a, b operand, m, n, k int, accumulate, threaded bool) {
	ar, ac := a.stored(m, k)
	br, bc := b.stored(k, n)
	buf := widenScratch.Get().(*[]float32)
	defer widenScratch.Put(buf)
	if cap(*buf) < ar*ac+br*bc {
		*buf = make([]float32, ar*ac+br*bc)
	}
	*buf = (*buf)[:ar*ac+br*bc]
	aw, bw := (*buf)[:ar*ac], (*buf)[ar*ac:]
	a.widenInto(aw, ar, ac)
	b.widenInto(bw, br, bc)
	if threaded {
		MatMulStrided(c, ldc, aw, ac, bw, bc, m, n, k, a.trans, b.trans, accumulate)
	} else {
		MatMulStridedSerial(c, ldc, aw, ac, bw, bc, m, n, k, a.trans, b.trans, accumulate)
	}
	clear(*buf) // no stale operand values in the pool
}

// widenInto writes the stored rows×cols operand into dst (gap-free) as float32 holding its bfloat16 values.
func (o operand) widenInto(dst []float32, rows, cols int) {
	for r := range rows {
		d := dst[r*cols : r*cols+cols]
		if o.h != nil {
			for j, v := range o.h[r*o.ld : r*o.ld+cols] {
				d[j] = half.BF16ToF32(v)
			}
			continue
		}
		for j, v := range o.f[r*o.ld : r*o.ld+cols] {
			d[j] = half.BF16ToF32(half.F32ToBF16(v))
		}
	}
}
