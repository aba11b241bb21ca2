//go:build amd64 && !purego

package tensor

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

//go:generate python3 gen_gemm_amd64.py

// The micro-kernels compute one mr×nr tile of C from packed panels: a holds k columns of mr values of
// op(A) (a[p*mr+i]), b holds k rows of nr values of op(B) (b[p*nr+j]). C is written with row stride ldc,
// added to when accumulate is non-zero.

//go:noescape
func sgemmKernel8x48AVX512(k int, a, b, c *float32, ldc int, accumulate int)

// sgemmKernel8x32AVX512 and sgemmKernel8x16AVX512 compute the first 32 or 16 columns of a tile whose B
// panel is packed 48 wide: the last column panel of a product whose width is 32 or 16 past a multiple
// of 48 (every width of the llama shapes: 512, 1376 and 32000 are all 32 mod 48), which would
// otherwise spend a third or two thirds of its tile on padding and go through the scratch tile.
//
//go:noescape
func sgemmKernel8x32AVX512(k int, a, b, c *float32, ldc int, accumulate int)

//go:noescape
func sgemmKernel8x16AVX512(k int, a, b, c *float32, ldc int, accumulate int)

//go:noescape
func sgemmKernel8x8AVX2(k int, a, b, c *float32, ldc int, accumulate int)

// packTransAVX writes dst[p*dstStride+i] = src[i*lds+p] for i < 8*rows8, p < 8*cols8.
//
//go:noescape
func packTransAVX(dst *float32, dstStride int, src *float32, lds, rows8, cols8 int)

// packCopyAVX writes dst[p*8*width8+j] = src[p*lds+j] for p < rows, j < 8*width8.
//
//go:noescape
func packCopyAVX(dst, src *float32, lds, rows, width8 int)

// gemmKernel is one SIMD micro-kernel and its register tile.
type gemmKernel struct {
	name   string
	mr, nr int // tile: mr rows of C (a multiple of 8) by nr columns (a multiple of 8)
}

var (
	kernelAVX512 = &gemmKernel{name: "avx512", mr: 8, nr: 48}
	kernelAVX2   = &gemmKernel{name: "avx2", mr: 8, nr: 8}
)

// run calls the kernel's assembly directly rather than through a func value, so that the compiler
// sees the pointers do not escape and the scratch tile of a ragged edge stays on the stack.
func (kn *gemmKernel) run(k int, a, b, c *float32, ldc int, accumulate int) {
	if kn == kernelAVX512 {
		sgemmKernel8x48AVX512(k, a, b, c, ldc, accumulate)
	} else {
		sgemmKernel8x8AVX2(k, a, b, c, ldc, accumulate)
	}
}

// hasAVX512 and hasAVX2 say which kernels this CPU runs (the packing routines need AVX only, which both
// imply). AVX-512 also needs the OS to save the zmm state, which cpu.X86.HasAVX512F already checks.
var (
	hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)

// activeKernel is the fastest kernel the CPU supports, or nil for the portable loops.
var activeKernel = func() *gemmKernel {
	switch {
	case hasAVX512:
		return kernelAVX512
	case hasAVX2:
		return kernelAVX2
	}
	return nil
}()

// Blocking. kc columns of A and rows of B are packed at a time: the 8×kc A micro-panel (16 KiB) stays
// in L1 while the kernel sweeps the kc×nc B block (2 MiB, from L2 and L3: the 8×48 kernel needs only
// 8 bytes of B per cycle). A larger kc halves the passes over C; a larger nc means fewer hand-offs
// between the workers. nc is a multiple of every kernel's nr. Measured on Zen 5 (2 cores), kc from 256
// to 512 and nc from 240 to 1920 were all within 5% of each other.
const (
	gemmKC = 512
	gemmNC = 960
)

// gemmCall is one product in progress: its operands, the packed panels and the current block. It
// lives in a pooled workspace so that a small product allocates nothing.
type gemmCall struct {
	gemmArgs
	kn               *gemmKernel
	pa, pb           []float32 // packed A slice (all row panels) and packed B block
	p0, kb, j0       int       // the current block: rows p0..p0+kb-1 of op(B), columns from j0
	mPanels, nPanels int
	acc              int // non-zero: add into C (0 or 1, as the kernels take it)
	packAWithB       bool
}

var workspaces = sync.Pool{New: func() any { return new(gemmCall) }}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// matmulSIMD runs the packed SIMD GEMM when the CPU has a kernel; it reports false when it has none.
func matmulSIMD(g gemmArgs, threaded bool) bool {
	if activeKernel == nil {
		return false
	}
	gemmPacked(activeKernel, g, threaded)
	return true
}

// KernelName says which matrix-multiplication kernel MatMul uses on this CPU: "avx512", "avx2" or
// "generic".
func KernelName() string {
	if activeKernel == nil {
		return "generic"
	}
	return activeKernel.name
}

// gemmPacked computes C (+)= op(A)·op(B) with kernel kn, in the BLIS order: for each kc slice of k, pack
// the m×kc slice of op(A) once; for each nc block of columns, pack the kc×nc block of op(B) once (shared
// by all workers), then run the kernel over the tiles of that block, split between the workers with
// each keeping its A micro-panel in L1 while it sweeps the B block. threaded allows the shared pool.
func gemmPacked(kn *gemmKernel, args gemmArgs, threaded bool) {
	m, n, k := args.m, args.n, args.k
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !args.accumulate {
			for i := range m {
				clear(args.c[i*args.ldc : i*args.ldc+n])
			}
		}
		return
	}
	g := workspaces.Get().(*gemmCall)
	defer workspaces.Put(g)
	mr, nr := kn.mr, kn.nr
	g.gemmArgs, g.kn = args, kn
	g.mPanels = (m + mr - 1) / mr
	g.pa = grow(g.pa, g.mPanels*mr*min(gemmKC, k))
	g.pb = grow(g.pb, min(gemmKC, k)*min(gemmNC, (n+nr-1)/nr*nr))
	defer func() { g.gemmArgs = gemmArgs{} }() // do not keep the caller's matrices alive

	// Below about a million multiply-adds the goroutine hand-off costs more than it saves.
	threaded = threaded && Workers() > 1 && m*n*k >= 1<<20
	for g.p0 = 0; g.p0 < k; g.p0 += gemmKC {
		g.kb = min(gemmKC, k-g.p0)
		g.acc = 0
		if args.accumulate || g.p0 > 0 {
			g.acc = 1
		}
		for g.j0 = 0; g.j0 < n; g.j0 += gemmNC {
			g.nPanels = (min(gemmNC, n-g.j0) + nr - 1) / nr
			// The A slice is packed once per kc slice, together with the first B block.
			g.packAWithB = g.j0 == 0
			packTasks := g.nPanels
			if g.packAWithB {
				packTasks += g.mPanels
			}
			tiles := g.mPanels * g.nPanels
			if threaded {
				parallelDynamic(packTasks, g.pack)
				parallelDynamic(tiles, g.tiles)
			} else {
				g.pack(0, packTasks)
				g.tiles(0, tiles)
			}
		}
	}
}

// pack packs panels lo..hi-1 of the current block: the A row panels first when this block packs A,
// then the B column panels.
func (g *gemmCall) pack(lo, hi int) {
	mr, nr, kb := g.kn.mr, g.kn.nr, g.kb
	if g.packAWithB {
		for ir := lo; ir < min(hi, g.mPanels); ir++ {
			i0 := ir * mr
			dst := g.pa[ir*mr*kb : (ir+1)*mr*kb]
			if g.transA { // A is stored k×m: each packed column is a contiguous run of one row of A.
				packCopy(dst, mr, g.a[g.p0*g.lda+i0:], g.lda, kb, min(mr, g.m-i0))
			} else { // A is stored m×k: transpose.
				packTrans(dst, mr, g.a[i0*g.lda+g.p0:], g.lda, min(mr, g.m-i0), kb)
			}
		}
		lo, hi = max(lo, g.mPanels)-g.mPanels, max(hi, g.mPanels)-g.mPanels
	}
	for jr := lo; jr < hi; jr++ {
		j := g.j0 + jr*nr
		dst := g.pb[jr*nr*kb : (jr+1)*nr*kb]
		if g.transB { // B is stored n×k: transpose.
			packTrans(dst, nr, g.b[j*g.ldb+g.p0:], g.ldb, min(nr, g.n-j), kb)
		} else {
			packCopy(dst, nr, g.b[g.p0*g.ldb+j:], g.ldb, kb, min(nr, g.n-j))
		}
	}
}

// tiles runs the kernel on tiles lo..hi-1 of the current block. Tiles are numbered row-panel-major so
// that consecutive tiles share their A micro-panel; with few row panels a split falls inside a row and
// every worker still helps.
func (g *gemmCall) tiles(lo, hi int) {
	kn, c, n, ldc, kb := g.kn, g.c, g.n, g.ldc, g.kb
	mr, nr := kn.mr, kn.nr
	var edge [8 * 48]float32
	for t := lo; t < hi; t++ {
		ir, jr := t/g.nPanels, t%g.nPanels
		i0, j := ir*mr, g.j0+jr*nr
		ap, bp := &g.pa[ir*mr*kb], &g.pb[jr*nr*kb]
		rows, cols := min(mr, g.m-i0), min(nr, n-j)
		if rows == mr && cols == nr {
			kn.run(kb, ap, bp, &c[i0*ldc+j], ldc, g.acc)
			continue
		}
		if rows == mr && kn == kernelAVX512 && cols%16 == 0 {
			if cols == 32 {
				sgemmKernel8x32AVX512(kb, ap, bp, &c[i0*ldc+j], ldc, g.acc)
			} else {
				sgemmKernel8x16AVX512(kb, ap, bp, &c[i0*ldc+j], ldc, g.acc)
			}
			continue
		}
		// A ragged tile: compute the whole tile into a scratch and keep the part inside C.
		kn.run(kb, ap, bp, &edge[0], nr, 0)
		for i := 0; i < rows; i++ {
			ci := c[(i0+i)*ldc+j : (i0+i)*ldc+j+cols]
			ei := edge[i*nr : i*nr+cols]
			if g.acc != 0 {
				for x := range ci {
					ci[x] += ei[x]
				}
			} else {
				copy(ci, ei)
			}
		}
	}
}

// parallelDynamic runs fn over [0, tasks) on all workers, which take chunks of about 1/16 of their
// share at a time: on a machine shared with other programs a worker that is descheduled does not hold
// the others back at the end of the phase.
func parallelDynamic(tasks int, fn func(lo, hi int)) {
	w := Workers()
	chunk := max(1, tasks/(16*w))
	var next atomic.Int64
	Parallel(w, func(_, _ int) {
		for {
			hi := int(next.Add(int64(chunk)))
			lo := hi - chunk
			if lo >= tasks {
				return
			}
			fn(lo, min(hi, tasks))
		}
	})
}

// packCopy sets dst[p*width+j] = src[p*lds+j] for p < rows, j < cols, and zero for cols <= j < width.
func packCopy(dst []float32, width int, src []float32, lds, rows, cols int) {
	if cols == width {
		packCopyAVX(&dst[0], &src[0], lds, rows, width/8)
		return
	}
	for p := 0; p < rows; p++ {
		d := dst[p*width : p*width+width]
		copy(d, src[p*lds:p*lds+cols])
		clear(d[cols:])
	}
}

// packTrans sets dst[p*width+i] = src[i*lds+p] for i < rows, p < cols, and zero for rows <= i < width.
func packTrans(dst []float32, width int, src []float32, lds, rows, cols int) {
	rows8, cols8 := rows/8, cols/8
	if rows8 > 0 && cols8 > 0 {
		packTransAVX(&dst[0], width, &src[0], lds, rows8, cols8)
	}
	// The strips the 8×8 blocks did not cover: the last cols%8 columns of the full row groups, then
	// the last rows%8 rows, then the zero padding.
	for i := 0; i < rows8*8; i++ {
		s := src[i*lds : i*lds+cols]
		for p := cols8 * 8; p < cols; p++ {
			dst[p*width+i] = s[p]
		}
	}
	for i := rows8 * 8; i < rows; i++ {
		s := src[i*lds : i*lds+cols]
		for p, v := range s {
			dst[p*width+i] = v
		}
	}
	if rows < width {
		for p := 0; p < cols; p++ {
			clear(dst[p*width+rows : p*width+width])
		}
	}
}
