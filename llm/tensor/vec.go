package tensor

// Dot returns Σ a[i]·b[i]. The slices must have the same length.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("tensor.Dot: slices of different lengths")
	}
	if len(a) == 0 {
		return 0
	}
	return dot(a, b)
}

// Axpy adds alpha·x to y (y[i] += alpha·x[i]). The slices must have the same length.
func Axpy(alpha float32, x, y []float32) {
	if len(x) != len(y) {
		panic("tensor.Axpy: slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	axpy(alpha, x, y)
}

// Scale multiplies x by alpha in place.
func Scale(alpha float32, x []float32) {
	if len(x) == 0 {
		return
	}
	scale(alpha, x)
}

// Add adds x to dst (dst[i] += x[i]), as in a residual connection. The slices must have the same length.
func Add(dst, x []float32) {
	if len(dst) != len(x) {
		panic("tensor.Add: slices of different lengths")
	}
	if len(x) == 0 {
		return
	}
	add(dst, x)
}

// DotRows sets out[s] = Dot(x, m[s·stride:s·stride+len(x)]) for every s < len(out): a query against
// a window of cached keys, rows stride apart, in one call (the same sums as Dot's).
func DotRows(out, x, m []float32, stride int) {
	if len(out) == 0 || len(x) == 0 {
		clear(out)
		return
	}
	if stride < len(x) || len(m) < (len(out)-1)*stride+len(x) {
		panic("tensor.DotRows: rows outside m")
	}
	dotRows(out, x, m, stride)
}

// AxpyRows adds a[s]·m[s·stride:s·stride+len(y)] to y for s = 0, 1, …, len(a)−1 in turn (the same
// result as that many Axpy calls): attention's weighted sum of a window of cached values.
func AxpyRows(y, a, m []float32, stride int) {
	if len(a) == 0 || len(y) == 0 {
		return
	}
	if stride < len(y) || len(m) < (len(a)-1)*stride+len(y) {
		panic("tensor.AxpyRows: rows outside m")
	}
	axpyRows(y, a, m, stride)
}

func dotRowsGeneric(out, x, m []float32, stride int) {
	for s := range out {
		out[s] = dotGeneric(x, m[s*stride:s*stride+len(x)])
	}
}

func axpyRowsGeneric(y, a, m []float32, stride int) {
	for s, alpha := range a {
		axpyGeneric(alpha, m[s*stride:s*stride+len(y)], y)
	}
}

// The portable versions, unrolled by four with independent sums so the compiler can overlap them; the
// SIMD versions are tested against these.

func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyGeneric(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scaleGeneric(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

func addGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] += v
	}
}
