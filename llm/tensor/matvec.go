package tensor

import (
	"sync"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// The narrow products serve generation, where a step multiplies a few rows of activations (one per
// sequence in the batch) by every weight matrix. That is memory-bound: each weight is used m times
// per read, so the work is to stream the weights once at the memory's speed. MatMul's packing of the
// weight operand costs about as much as the product itself at small m; these read the rows of the
// [n, k] row-major weight directly, four rows at a time against every activation row while the four
// rows are in L1, split over the workers by output rows.

// NarrowRows is the largest m for which MatMulNarrow beats MatMul's packed kernels.
const NarrowRows = 16

// narrowSerialSize is the weight size (elements) below which a narrow product runs on the calling
// thread: handing work to another thread costs a few microseconds, more than a small matrix takes.
const narrowSerialSize = 1 << 16

// MatMulNarrow sets c[m, n] = a[m, k]·bᵀ where b is [n, k] row-major (a linear layer's weight):
// c[i·n+j] = Σ_p a[i·k+p]·b[j·k+p]. Meant for m up to NarrowRows; it is correct for any m.
func MatMulNarrow(c, a, b []float32, m, n, k int) {
	checkNarrow(len(c), len(a), len(b), m, n, k)
	narrowRun(m, n, k, func(lo, hi int) { narrowF32(c, a, b, m, n, k, lo, hi) })
}

// MatMulNarrowBF16 is MatMulNarrow with b in bfloat16 (the upper 16 bits of a float32): half the
// bytes to read. Each weight is widened to float32 exactly, so the only rounding beyond float32's is
// that of the weights themselves.
func MatMulNarrowBF16(c, a []float32, b []uint16, m, n, k int) {
	checkNarrow(len(c), len(a), len(b), m, n, k)
	narrowRun(m, n, k, func(lo, hi int) { narrowBF16(c, a, b, m, n, k, lo, hi) })
}

// MatMulNarrowAllBF16 is MatMulNarrowBF16 with a rounded to bfloat16 as well (to nearest even), as
// llama.cpp computes with bfloat16 weights: the products are then exact in float32, and on CPUs with
// AVX-512 BF16 one VDPBF16PS multiplies 32 weights, so a product costs a third of the instructions of
// widening the weights. The rounding of a changes the results by about 2⁻⁹ relative per term; the
// same function is computed (up to the order of the sums) on CPUs without the instruction.
func MatMulNarrowAllBF16(c, a []float32, b []uint16, m, n, k int) {
	checkNarrow(len(c), len(a), len(b), m, n, k)
	narrowAllBF16(c, a, b, m, n, k)
}

// narrowRoundedRows returns a's first m·k values rounded to bfloat16 and widened back, for the
// CPUs without bfloat16 dot products.
func narrowRoundedRows(a []float32, m, k int) []float32 {
	return roundRows(make([]float32, m*k), a)
}

// roundRows sets r[i] = a[i] rounded to bfloat16 and widened back, for i < len(r), and returns r.
func roundRows(r, a []float32) []float32 {
	for i, v := range a[:len(r)] {
		r[i] = half.BF16ToF32(half.F32ToBF16(v))
	}
	return r
}

// roundedRows holds the rounded activations of narrowAllBF16Widened, reused across products.
var roundedRows = sync.Pool{New: func() any { return new([]float32) }}

// narrowAllBF16Widened is MatMulNarrowAllBF16 on CPUs without bfloat16 dot products: a rounded to
// bfloat16 and widened back, then the product with bfloat16 weights.
func narrowAllBF16Widened(c, a []float32, b []uint16, m, n, k int) {
	buf := roundedRows.Get().(*[]float32)
	if cap(*buf) < m*k {
		*buf = make([]float32, m*k)
	}
	ar := roundRows((*buf)[:m*k], a)
	narrowRun(m, n, k, func(lo, hi int) { narrowBF16(c, ar, b, m, n, k, lo, hi) })
	roundedRows.Put(buf)
}

func checkNarrow(lc, la, lb, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || lc < m*n || la < m*k || lb < n*k {
		panic("tensor.MatMulNarrow: slices shorter than the shapes")
	}
}

// narrowRun splits the n output columns into blocks of four, over the workers when the weight is
// large enough to pay for it: in rangesPerWorker·workers ranges that the workers take in turn, so that one
// slowed down (its core shared with another process, or a slower core) is helped by the others
// rather than waited for.
func narrowRun(m, n, k int, fn func(lo, hi int)) {
	if m == 0 || n == 0 {
		return
	}
	w := Workers()
	if n*k < narrowSerialSize || w == 1 {
		fn(0, n)
		return
	}
	blocks := (n + 3) / 4
	ParallelRanges(blocks, blocks/(rangesPerWorker*w), func(lo, hi int) { fn(lo*4, min(hi*4, n)) })
}

// rangesPerWorker is the number of ranges per worker of a threaded narrow or quantized product: more
// balance the workers better, fewer start the weight streams anew less often.
const rangesPerWorker = 8

// narrowF32Generic computes columns [lo, hi) of c = a·bᵀ, one dot product at a time.
func narrowF32Generic(c, a, b []float32, m, n, k, lo, hi int) {
	for j := lo; j < hi; j++ {
		w := b[j*k : (j+1)*k]
		for i := range m {
			c[i*n+j] = dotGeneric(a[i*k:(i+1)*k], w)
		}
	}
}

// narrowBF16Generic is narrowF32Generic over bfloat16 weights.
func narrowBF16Generic(c, a []float32, b []uint16, m, n, k, lo, hi int) {
	for j := lo; j < hi; j++ {
		w := b[j*k : (j+1)*k]
		for i := range m {
			x := a[i*k : (i+1)*k]
			var s0, s1 float32
			p := 0
			for ; p+2 <= k; p += 2 {
				s0 += x[p] * half.BF16ToF32(w[p])
				s1 += x[p+1] * half.BF16ToF32(w[p+1])
			}
			if p < k {
				s0 += x[p] * half.BF16ToF32(w[p])
			}
			c[i*n+j] = s0 + s1
		}
	}
}
