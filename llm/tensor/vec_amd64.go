//go:build amd64 && !purego

package tensor

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func axpyAVX2(alpha float32, x, y *float32, n int)

//go:noescape
func scaleAVX2(alpha float32, x *float32, n int)

//go:noescape
func addAVX2(dst, x *float32, n int)

// The callers (Dot, Axpy, Scale, Add) have checked that the lengths agree and are not zero.

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
