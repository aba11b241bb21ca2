package tensor

// MatMul computes C = op(A)·op(B) (or C += op(A)·op(B) when accumulate is true), row-major:
//
//	C is m×n (ldc = n)
//	op(A) is m×k: A stored m×k, or k×m when transA
//	op(B) is k×n: B stored k×n, or n×k when transB
//
// The three layouts a transformer needs are A·B, A·Bᵀ (forward through weights stored [out, in]) and
// Aᵀ·B (weight gradients). It runs on the shared pool.
func MatMul(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) {
	if len(c) < m*n || len(a) < m*k || len(b) < k*n {
		panic("tensor.MatMul: slice shorter than its shape")
	}
	matmulGeneric(c, a, b, m, n, k, transA, transB, accumulate)
}

// matmulGeneric is the portable reference implementation; SIMD kernels are tested against it.
func matmulGeneric(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) {
	Parallel(m, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := c[i*n : i*n+n]
			if !accumulate {
				clear(row)
			}
			for p := 0; p < k; p++ {
				var av float32
				if transA {
					av = a[p*m+i]
				} else {
					av = a[i*k+p]
				}
				if av == 0 {
					continue
				}
				if transB {
					for j := range row {
						row[j] += av * b[j*k+p]
					}
				} else {
					bp := b[p*n : p*n+n]
					for j := range row {
						row[j] += av * bp[j]
					}
				}
			}
		}
	})
}
