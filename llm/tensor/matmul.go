package tensor

// MatMul computes C = op(A)·op(B) (or C += op(A)·op(B) when accumulate is true), row-major:
//
//	C is m×n (ldc = n)
//	op(A) is m×k: A stored m×k, or k×m when transA
//	op(B) is k×n: B stored k×n, or n×k when transB
//
// The three layouts a transformer needs are A·B, A·Bᵀ (forward through weights stored [out, in]) and
// Aᵀ·B (weight gradients). It runs on the shared pool: the caller must not be inside Parallel.
//
// On amd64 it uses an AVX-512 or AVX2 kernel over packed panels (KernelName says which); products with
// at most three rows or one column (a matrix-vector product, generation at batch 1) use Dot and Axpy
// instead, since packing would move as much memory as the product itself. Operands need no alignment.
func MatMul(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) {
	matmul(c, a, b, m, n, k, transA, transB, accumulate, true)
}

// MatMulSerial is MatMul on the calling goroutine only, for products small enough to be run many at a
// time inside Parallel (one attention head per worker, say), where MatMul's own use of the pool would
// nest.
func MatMulSerial(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) {
	matmul(c, a, b, m, n, k, transA, transB, accumulate, false)
}

func matmul(c, a, b []float32, m, n, k int, transA, transB, accumulate, threaded bool) {
	if m < 0 || n < 0 || k < 0 {
		panic("tensor.MatMul: negative dimension")
	}
	if len(c) < m*n || len(a) < m*k || len(b) < k*n {
		panic("tensor.MatMul: slice shorter than its shape")
	}
	switch {
	case m == 0 || n == 0:
		return
	case n == 1 && m > 1:
		// A column of C is a row of Cᵀ = op(B)ᵀ·op(A)ᵀ: b is that 1×k row whichever way it is stored,
		// and A read as the right-hand operand is transposed exactly when it was not.
		matmulRows(c, b, a, 1, m, k, false, !transA, accumulate, threaded)
	case m <= 3:
		matmulRows(c, a, b, m, n, k, transA, transB, accumulate, threaded)
	case m*n*k < 256:
		// Tiny: the plain loops finish before packing would.
		matmulGenericRows(c, a, b, m, n, k, transA, transB, accumulate, 0, m)
	case matmulSIMD(c, a, b, m, n, k, transA, transB, accumulate, threaded):
	case threaded:
		matmulGeneric(c, a, b, m, n, k, transA, transB, accumulate)
	default:
		matmulGenericRows(c, a, b, m, n, k, transA, transB, accumulate, 0, m)
	}
}

// matmulRows computes C one row at a time, each row being a matrix-vector product over B: dot products
// with B's rows when B is stored n×k, scaled row sums (Axpy) when it is stored k×n. Columns are split
// between the workers.
func matmulRows(c, a, b []float32, m, n, k int, transA, transB, accumulate, threaded bool) {
	var gathered []float32
	if transA && m > 1 {
		gathered = make([]float32, k)
	}
	for i := 0; i < m; i++ {
		ai := a[i*k : i*k+k]
		if transA {
			if m == 1 {
				ai = a[:k]
			} else {
				for p := range gathered {
					gathered[p] = a[p*m+i]
				}
				ai = gathered
			}
		}
		ci := c[i*n : i*n+n]
		rowsRun(n, k, threaded, func(lo, hi int) {
			if transB {
				for j := lo; j < hi; j++ {
					d := Dot(ai, b[j*k:j*k+k])
					if accumulate {
						ci[j] += d
					} else {
						ci[j] = d
					}
				}
				return
			}
			// Columns in chunks that stay in L1 while every row of B is added into them.
			const chunk = 2048
			for j0 := lo; j0 < hi; j0 += chunk {
				j1 := min(j0+chunk, hi)
				cj := ci[j0:j1]
				if !accumulate {
					clear(cj)
				}
				for p, av := range ai {
					if av != 0 {
						Axpy(av, b[p*n+j0:p*n+j1], cj)
					}
				}
			}
		})
	}
}

// rowsRun splits n columns of a matrix-vector product of depth k between the workers when threaded and
// big enough to pay for the hand-off.
func rowsRun(n, k int, threaded bool, fn func(lo, hi int)) {
	if threaded && Workers() > 1 && n*k >= 1<<16 {
		Parallel(n, fn)
		return
	}
	fn(0, n)
}

// matmulGeneric is the portable reference implementation; SIMD kernels are tested against it.
func matmulGeneric(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) {
	Parallel(m, func(lo, hi int) {
		matmulGenericRows(c, a, b, m, n, k, transA, transB, accumulate, lo, hi)
	})
}

// matmulGenericRows computes rows lo..hi-1 of C with the portable loops.
func matmulGenericRows(c, a, b []float32, m, n, k int, transA, transB, accumulate bool, lo, hi int) {
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
}
