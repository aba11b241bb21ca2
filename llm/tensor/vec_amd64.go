//go:build amd64 && !purego

package tensor

import "math"

// dotAVX2 returns Σ_{i<n} a[i]·b[i]; axpyAVX2 adds alpha·x to y: the one-row forms of the kernels below.
func dotAVX2(a, b *float32, n int) float32 {
	var s float32
	dotRowsAVX2(&s, a, b, n, 1, n)
	return s
}

func axpyAVX2(alpha float32, x, y *float32, n int) { axpyRowsAVX2(y, &alpha, x, n, 1, n) }

//go:noescape
func scaleAVX2(alpha float32, x *float32, n int)

//go:noescape
func addAVX2(dst, x *float32, n int)

//go:noescape
func dotRowsAVX2(out, x, m *float32, n, rows, stride int)

//go:noescape
func axpyRowsAVX2(y, a, m *float32, n, rows, stride int)

// The callers (Dot, Axpy, Scale, Add, DotRows, AxpyRows) have checked that the lengths agree and are
// not zero.

func dotRows(out, x, m []float32, stride int) {
	if !hasAVX2 {
		dotRowsGeneric(out, x, m, stride)
		return
	}
	dotRowsAVX2(&out[0], &x[0], &m[0], len(x), len(out), stride)
}

func axpyRows(y, a, m []float32, stride int) {
	if !hasAVX2 {
		axpyRowsGeneric(y, a, m, stride)
		return
	}
	axpyRowsAVX2(&y[0], &a[0], &m[0], len(y), len(a), stride)
}

func dot(a, b []float32) float32 {
	if !hasAVX2 {
		return dotGeneric(a, b)
	}
	return dotAVX2(&a[0], &b[0], len(a))
}

func axpy(alpha float32, x, y []float32) {
	if !hasAVX2 {
		axpyGeneric(alpha, x, y)
		return
	}
	axpyAVX2(alpha, &x[0], &y[0], len(x))
}

func scale(alpha float32, x []float32) {
	if !hasAVX2 {
		scaleGeneric(alpha, x)
		return
	}
	scaleAVX2(alpha, &x[0], len(x))
}

func add(dst, x []float32) {
	if !hasAVX2 {
		addGeneric(dst, x)
		return
	}
	addAVX2(&dst[0], &x[0], len(x))
}

//go:noescape
func maxAVX2(x *float32, n int) float32

// expSubAVX2 sets x[i] = exp(x[i] − mx) for the first n&^7 entries and returns their sum.
//
//go:noescape
func expSubAVX2(x *float32, n int, mx float32) float32

func maxOf(x []float32) float32 {
	if !hasAVX2 || len(x) < 8 {
		return maxGeneric(x)
	}
	m := maxAVX2(&x[0], len(x)&^7)
	if tail := x[len(x)&^7:]; len(tail) > 0 {
		m = max(m, maxGeneric(tail))
	}
	return m
}

func expSub(x []float32, mx float32) float64 {
	if !hasAVX2 {
		return expSubGeneric(x, mx)
	}
	var sum float64
	body := len(x) &^ 7
	if body > 0 {
		sum = float64(expSubAVX2(&x[0], body, mx))
	}
	// The last len%8 entries go through the vector kernel too, padded with −Inf (exp gives 0 there):
	// math.Exp one at a time cost attention, whose rows are short and of every length, a tenth of
	// its softmax time.
	if tail := x[body:]; len(tail) > 0 {
		pad := [8]float32{}
		for i := range pad {
			pad[i] = float32(math.Inf(-1))
		}
		copy(pad[:], tail)
		sum += float64(expSubAVX2(&pad[0], 8, mx))
		copy(tail, pad[:len(tail)])
	}
	return sum
}
