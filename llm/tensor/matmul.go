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
	matmul(denseArgs(c, a, b, m, n, k, transA, transB, accumulate), true)
}

// MatMulSerial is MatMul on the calling goroutine only, for products small enough to be run many at a
// time inside Parallel (one attention head per worker, say), where MatMul's own use of the pool would
// nest.
func MatMulSerial(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) {
	matmul(denseArgs(c, a, b, m, n, k, transA, transB, accumulate), false)
}

// MatMulStrided is MatMul over matrices whose rows are ld apart in their slices: element (i, j) of C
// is c[i*ldc+j], row r of A as stored (m×k, or k×m when transA) starts at a[r*lda], and row r of B as
// stored at b[r*ldb]. One attention head's queries in a [T, H·D] activation, say, are
// q[h*D:] with lda = H·D. Each ld must be at least the stored row's length.
func MatMulStrided(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int, transA, transB, accumulate bool) {
	matmul(gemmArgs{c, a, b, ldc, lda, ldb, m, n, k, transA, transB, accumulate}, true)
}

// MatMulStridedSerial is MatMulStrided on the calling goroutine only (see MatMulSerial).
func MatMulStridedSerial(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int, transA, transB, accumulate bool) {
	matmul(gemmArgs{c, a, b, ldc, lda, ldb, m, n, k, transA, transB, accumulate}, false)
}

// gemmArgs is one product C (+)= op(A)·op(B) with its row strides.
type gemmArgs struct {
	c, a, b                    []float32
	ldc, lda, ldb              int
	m, n, k                    int
	transA, transB, accumulate bool
}

// denseArgs describes a product of matrices stored without gaps between rows.
func denseArgs(c, a, b []float32, m, n, k int, transA, transB, accumulate bool) gemmArgs {
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	return gemmArgs{c, a, b, n, lda, ldb, m, n, k, transA, transB, accumulate}
}

// check panics unless every element the product touches lies inside its slice.
func (g gemmArgs) check() {
	if g.m < 0 || g.n < 0 || g.k < 0 {
		panic("tensor.MatMul: negative dimension")
	}
	aRows, aCols := g.m, g.k
	if g.transA {
		aRows, aCols = aCols, aRows
	}
	bRows, bCols := g.k, g.n
	if g.transB {
		bRows, bCols = bCols, bRows
	}
	fits := func(s []float32, rows, cols, ld int) bool {
		if rows == 0 || cols == 0 {
			return true
		}
		if ld < cols {
			panic("tensor.MatMul: leading dimension shorter than a row")
		}
		return len(s) >= (rows-1)*ld+cols
	}
	if !fits(g.c, g.m, g.n, g.ldc) || !fits(g.a, aRows, aCols, g.lda) || !fits(g.b, bRows, bCols, g.ldb) {
		panic("tensor.MatMul: slice shorter than its shape")
	}
}

func matmul(g gemmArgs, threaded bool) {
	g.check()
	switch {
	case g.m == 0 || g.n == 0:
		return
	case g.n == 1 && g.m > 1 && g.ldc == 1 && (g.transB || g.ldb == 1):
		// A contiguous column of C is a row of Cᵀ = op(B)ᵀ·op(A)ᵀ: b holds that 1×k row whichever way
		// it is stored, and A read as the right-hand operand is transposed exactly when it was not.
		matmulRows(gemmArgs{g.c, g.b, g.a, g.m, g.k, g.lda, 1, g.m, g.k, false, !g.transA, g.accumulate}, threaded)
	case g.m <= 3:
		matmulRows(g, threaded)
	case g.m*g.n*g.k < 256:
		// Tiny: the plain loops finish before packing would.
		matmulGenericRows(g, 0, g.m)
	case matmulSIMD(g, threaded):
	case threaded:
		matmulGeneric(g)
	default:
		matmulGenericRows(g, 0, g.m)
	}
}

// matmulRows computes C one row at a time, each row being a matrix-vector product over B: dot products
// with B's rows when B is stored n×k, scaled row sums (Axpy) when it is stored k×n. Columns are split
// between the workers.
func matmulRows(g gemmArgs, threaded bool) {
	a, b, c, n, k := g.a, g.b, g.c, g.n, g.k
	var gathered []float32
	if g.transA && g.lda != 1 {
		gathered = make([]float32, k)
	}
	for i := 0; i < g.m; i++ {
		var ai []float32
		switch {
		case !g.transA:
			ai = a[i*g.lda : i*g.lda+k]
		case g.lda == 1: // a column of a k×1 matrix
			ai = a[i : i+k]
		default:
			for p := range gathered {
				gathered[p] = a[p*g.lda+i]
			}
			ai = gathered
		}
		ci := c[i*g.ldc : i*g.ldc+n]
		rowsRun(n, k, threaded, func(lo, hi int) {
			if g.transB {
				for j := lo; j < hi; j++ {
					d := Dot(ai, b[j*g.ldb:j*g.ldb+k])
					if g.accumulate {
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
				if !g.accumulate {
					clear(cj)
				}
				for p, av := range ai {
					if av != 0 {
						Axpy(av, b[p*g.ldb+j0:p*g.ldb+j1], cj)
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
func matmulGeneric(g gemmArgs) {
	Parallel(g.m, func(lo, hi int) { matmulGenericRows(g, lo, hi) })
}

// matmulGenericRows computes rows lo..hi-1 of C with the portable loops.
func matmulGenericRows(g gemmArgs, lo, hi int) {
	a, b, n := g.a, g.b, g.n
	for i := lo; i < hi; i++ {
		row := g.c[i*g.ldc : i*g.ldc+n]
		if !g.accumulate {
			clear(row)
		}
		for p := 0; p < g.k; p++ {
			var av float32
			if g.transA {
				av = a[p*g.lda+i]
			} else {
				av = a[i*g.lda+p]
			}
			if av == 0 {
				continue
			}
			if g.transB {
				for j := range row {
					row[j] += av * b[j*g.ldb+p]
				}
			} else {
				bp := b[p*g.ldb : p*g.ldb+n]
				for j := range row {
					row[j] += av * bp[j]
				}
			}
		}
	}
}
