//go:build amd64 && !purego

package tensor

// gemmSplitThreads selects how a threaded product uses the workers: split C into one block per
// worker, each an independent single-threaded product (true), or share each packed block between
// the workers with a barrier per phase (gemmThreaded). Tests flip it to check both.
//
// The split is the default. Measured on an Intel Xeon (2 cores), the shared blocks kept the two
// cores busy only 73-86% of the time: every block ends at a barrier, and whichever worker finishes
// its share first waits there, about 16 times per 768x3072x768 product. A worker that owns its block
// of C from start to end never waits for the other until the product is done; the price is that
// both pack the operand they share (A when the columns are split, B when the rows are), which the
// grid choice below keeps to a few percent of the product.
var gemmSplitThreads = true

// packCost is what packing one element costs in multiply-adds of the kernel: a packed element is a
// load and a store at roughly a quarter of a cycle (memory-bound on L2/L3), where the 8x48 kernel
// does 32 multiply-adds a cycle on one core.
const packCost = 8

// gemmPart is one worker's block of C: rows i0..i1-1 and columns j0..j1-1, over all of k. Splitting
// k as well would need a reduction and would make the result depend on the number of threads; with
// rows and columns only, every element of C is summed in the same order as the single-threaded
// product, so results are bit-identical on any number of cores.
type gemmPart struct{ i0, i1, j0, j1 int }

// maxParts bounds the blocks one product is split into (and splitEven's cuts).
const maxParts = 64

// gemmSplit computes the product on w workers, one block of C each, chosen by gemmGrid.
func gemmSplit(kn *gemmKernel, g gemmArgs, w int) {
	w = min(w, maxParts) // more workers than that idle here rather than split C thinner
	tm, tn := gemmGrid(kn, g.m, g.n, g.k, w)
	rows := splitEven(g.m, tm, kn.mr)
	cols := splitEven(g.n, tn, 16)
	var parts [maxParts]gemmPart
	np := 0
	for a := 0; a < tm; a++ {
		for b := 0; b < tn; b++ {
			p := gemmPart{rows[a], rows[a+1], cols[b], cols[b+1]}
			if p.i1 > p.i0 && p.j1 > p.j0 && np < len(parts) {
				parts[np] = p
				np++
			}
		}
	}
	Parallel(np, func(lo, hi int) {
		for _, p := range parts[lo:hi] {
			gemmPacked(kn, g.sub(p), false)
		}
	})
}

// sub is the product that computes part p of C.
func (g gemmArgs) sub(p gemmPart) gemmArgs {
	s := g
	s.m, s.n = p.i1-p.i0, p.j1-p.j0
	s.c = g.c[p.i0*g.ldc+p.j0:]
	if g.transA { // A is stored k×m: the part's rows of op(A) are columns i0.. of A.
		s.a = g.a[p.i0:]
	} else {
		s.a = g.a[p.i0*g.lda:]
	}
	if g.transB { // B is stored n×k: the part's columns of op(B) are rows j0.. of B.
		s.b = g.b[p.j0*g.ldb:]
	} else {
		s.b = g.b[p.j0:]
	}
	return s
}

// gemmGrid picks tm×tn = w blocks (tm row bands by tn column bands) with the least estimated time for
// the slowest block: its kernel work, with the tile padding its width costs, plus packing both of its
// operands (a column split makes every worker pack all of A; a row split, all of B).
func gemmGrid(kn *gemmKernel, m, n, k, w int) (tm, tn int) {
	w = min(w, maxParts)
	best := -1
	for a := 1; a <= w; a++ {
		if w%a != 0 {
			continue
		}
		b := w / a
		rows := splitEven(m, a, kn.mr)
		cols := splitEven(n, b, 16)
		worst := 0
		for i := 0; i < a; i++ {
			for j := 0; j < b; j++ {
				r, c := rows[i+1]-rows[i], cols[j+1]-cols[j]
				if r == 0 || c == 0 {
					continue
				}
				cost := roundUp(r, kn.mr)*kn.tileWidthCost(c)*k + packCost*k*(r+c)
				worst = max(worst, cost)
			}
		}
		if best < 0 || worst < best {
			best, tm, tn = worst, a, b
		}
	}
	return tm, tn
}

// tileWidthCost is the number of columns the kernel computes for a block c columns wide: whole
// panels of nr, and a last partial panel at its own width when a narrower kernel covers it (16 or
// 32 columns of the 8x48 kernel), at a whole panel's cost otherwise.
func (kn *gemmKernel) tileWidthCost(c int) int {
	full, rest := c/kn.nr*kn.nr, c%kn.nr
	switch {
	case rest == 0:
		return full
	case kn == kernelAVX512 && rest%16 == 0:
		return full + rest
	}
	return full + kn.nr
}

// splitEven cuts [0, n) into parts ranges of nearly equal length, each boundary a multiple of align
// (the last one n): out[i]..out[i+1] is range i; ranges at the end may be empty.
func splitEven(n, parts, align int) (out [maxParts + 1]int) {
	for i := 1; i < parts; i++ {
		b := (n*i/parts + align/2) / align * align
		out[i] = min(max(b, out[i-1]), n)
	}
	out[parts] = n
	return out
}

func roundUp(x, to int) int { return (x + to - 1) / to * to }
