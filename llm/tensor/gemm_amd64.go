//go:build amd64 && !purego

package tensor

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/cpu"

	"github.com/lathe-ml/lathe/llm/cpuinfo"
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

// sgemmKernel6x16AVX2 is the kernel of CPUs with AVX2 and FMA but no AVX-512: 12 of the 16 ymm
// registers hold the tile, so each k step's 2 B loads and 6 broadcasts feed 12 FMAs. next is the A
// panel of the tile that follows, which it prefetches.
//
//go:noescape
func sgemmKernel6x16AVX2(k int, a, b, c *float32, ldc int, accumulate int, next *float32)

// packTransAVX writes dst[p*dstStride+i] = src[i*lds+p] for i < 8*rows8, p < 8*cols8.
//
//go:noescape
func packTransAVX(dst *float32, dstStride int, src *float32, lds, rows8, cols8 int)

// packCopyAVX writes dst[p*8*width8+j] = src[p*lds+j] for p < rows, j < 8*width8.
//
//go:noescape
func packCopyAVX(dst, src *float32, lds, rows, width8 int)

// packTrans6AVX writes dst[p*6+i] = src[i*lds+p] for i < 6, p < 8*cols8 (the 6x16 kernel's A panels).
//
//go:noescape
func packTrans6AVX(dst, src *float32, lds, cols8 int)

// packCopy6AVX writes dst[p*6+j] = src[p*lds+j] for p < rows, j < 6.
//
//go:noescape
func packCopy6AVX(dst, src *float32, lds, rows int)

// gemmKernel is one SIMD micro-kernel and its register tile.
type gemmKernel struct {
	name   string
	mr, nr int // tile: mr rows of C (8 or 6) by nr columns (a multiple of 16)
}

var (
	kernelAVX512 = &gemmKernel{name: "avx512", mr: 8, nr: 48}
	kernelAVX2   = &gemmKernel{name: "avx2", mr: 6, nr: 16}
)

// run calls the kernel's assembly directly rather than through a func value, so that the compiler
// sees the pointers do not escape and the scratch tile of a ragged edge stays on the stack.
// next is the A panel of the tile after this one (a when there is none), for the AVX2 kernel to
// prefetch.
func (kn *gemmKernel) run(k int, a, b, c *float32, ldc int, accumulate int, next *float32) {
	if kn == kernelAVX512 {
		sgemmKernel8x48AVX512(k, a, b, c, ldc, accumulate)
	} else {
		sgemmKernel6x16AVX2(k, a, b, c, ldc, accumulate, next)
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

// Blocking. kc columns of A and rows of B are packed at a time: the 8×kc A micro-panel stays in L1
// while the kernel sweeps the kc×nc B block, from L2 (and L3: the 8×48 kernel reads 192 bytes of B per
// 384 multiply-adds, so the block may be larger than L2). A larger kc means fewer passes over C; a
// larger nc, fewer passes over the packed A slice and fewer hand-offs between workers. Both come from
// the caches of the CPU this runs on (gemmBlocking). The 6x16 AVX2 kernel uses the same sizes: on a
// Zen 3 (32 KiB L1d, 512 KiB L2: kc 512, nc 480) kc 256-512 and nc 192-960 were within the noise of
// a shared machine of each other (one worker's share of the sgemm table, 83-92 GFLOP/s a core).
var gemmKC, gemmNC = gemmBlocking(cpuinfo.Detect())

// gemmBlocking sizes the blocks for caches c: the A micro-panel takes half of L1d (kc = 512 for a
// 32 KiB L1d, 768 for 48 KiB), and the B block blockL2 times L2. nc is a multiple of every kernel's nr
// (48 and 16). A CPU that reports no caches gets the Zen 4 sizes the blocking was first tuned on
// (32 KiB L1d, 1 MiB L2).
func gemmBlocking(c cpuinfo.Caches) (kc, nc int) {
	l1, l2 := c.L1D, c.L2
	if l1 == 0 {
		l1 = 32 << 10
	}
	if l2 == 0 {
		l2 = 1 << 20
	}
	kc = min(max(l1/2/(8*4)/64*64, 256), 768)
	nc = min(max(int(float64(l2)*blockL2)/(kc*4)/48*48, 96), 1920)
	return kc, nc
}

// blockL2 is the B block's size over L2. Measured by BenchmarkBlocking: on Zen 4 (1 MiB L2) nc from
// 240 to 1920 were within 5% of each other at kc = 512, and 960 was kept.
const blockL2 = 1.875

// A product whose packed A slice would pass tallA floats (16 MiB: the output head's weight gradient,
// m = the vocabulary, packs 64 MiB) packs A in chunks of mcTall rows instead, each worker its own,
// inside the kernel phase: the whole slice went through memory twice (written, then read back by the
// kernel) and ran ~15% under the other products; a 512 KiB chunk stays in L2 for its tiles.
const (
	tallA  = 1 << 22
	mcTall = 256
)

// gemmCall is one product in progress: its operands, the packed panels and the current block. It
// lives in a pooled workspace so that a small product allocates nothing.
type gemmCall struct {
	gemmArgs
	kn      *gemmKernel
	pa, pb  []float32 // packed A slice (all row panels) and packed B block
	mPanels int
	// tall: A is packed by chunks of mcTall rows, into paw[worker] (see tallA).
	tall bool
	paw  [][]float32
	// next holds one task counter per phase of a threaded product; arrived counts the workers that
	// reached each phase barrier, in total (see gemmThreaded).
	next    []atomic.Int64
	arrived atomic.Int64
}

// gemmBlock is one kc×nc block of a product: rows p0..p0+kb-1 of op(B), columns from j0.
type gemmBlock struct {
	p0, kb, j0 int
	nPanels    int
	acc        int  // non-zero: add into C (0 or 1, as the kernels take it)
	packAWithB bool // the block that packs the A slice too (the first of its kc slice)
}

// blocks calls fn on each block of the product in order, with its number of packing and kernel tasks.
func (g *gemmCall) blocks(fn func(b gemmBlock, packTasks, tiles int)) {
	nr := g.kn.nr
	for p0 := 0; p0 < g.k; p0 += gemmKC {
		b := gemmBlock{p0: p0, kb: min(gemmKC, g.k-p0)}
		if g.accumulate || p0 > 0 {
			b.acc = 1
		}
		for b.j0 = 0; b.j0 < g.n; b.j0 += gemmNC {
			b.nPanels = (min(gemmNC, g.n-b.j0) + nr - 1) / nr
			// The A slice is packed once per kc slice, together with the first B block; a tall
			// product's kernel tasks are chunks of rows that pack their own A.
			b.packAWithB = b.j0 == 0 && !g.tall
			packTasks := b.nPanels
			if b.packAWithB {
				packTasks += g.mPanels
			}
			if g.tall {
				fn(b, packTasks, (g.m+mcTall-1)/mcTall)
				continue
			}
			fn(b, packTasks, g.mPanels*b.nPanels)
		}
	}
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

// KernelName says which matrix-multiplication kernel MatMul uses on this CPU and the blocking that
// this CPU's caches gave it: "avx512/kc512/nc480", "avx2/kc512/nc960" or "generic".
func KernelName() string {
	if activeKernel == nil {
		return "generic"
	}
	return fmt.Sprintf("%s/kc%d/nc%d", activeKernel.name, gemmKC, gemmNC)
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
	// Below about a million multiply-adds the goroutine hand-off costs more than it saves.
	threaded = threaded && Workers() > 1 && m*n*k >= 1<<20
	if threaded && gemmSplitThreads {
		gemmSplit(kn, args, Workers())
		return
	}
	g := workspaces.Get().(*gemmCall)
	defer func() {
		g.gemmArgs = gemmArgs{} // do not keep the caller's matrices alive
		workspaces.Put(g)
	}()
	mr, nr := kn.mr, kn.nr
	g.gemmArgs, g.kn = args, kn
	g.mPanels = (m + mr - 1) / mr
	g.tall = g.mPanels*mr*min(gemmKC, k) > tallA
	if g.tall {
		for len(g.paw) < Workers() {
			g.paw = append(g.paw, nil)
		}
		g.pa = g.pa[:0]
	} else {
		g.pa = grow(g.pa, g.mPanels*mr*min(gemmKC, k))
	}
	g.pb = grow(g.pb, min(gemmKC, k)*min(gemmNC, (n+nr-1)/nr*nr))

	if threaded {
		g.gemmThreaded()
		return
	}
	g.blocks(func(b gemmBlock, packTasks, tasks int) {
		g.pack(b, 0, packTasks)
		g.kernelTasks(b, 0, 0, tasks)
	})
}

// kernelTasks runs kernel tasks lo..hi-1 of the current block on the worker in slot: tiles, or for a
// tall product chunks of rows, each packing its A into the worker's own buffer first.
func (g *gemmCall) kernelTasks(b gemmBlock, slot, lo, hi int) {
	if !g.tall {
		g.tiles(b, g.pa, 0, lo, hi)
		return
	}
	mr, kb := g.kn.mr, b.kb
	per := mcTall / mr
	buf := grow(g.paw[slot], per*mr*gemmKC)
	g.paw[slot] = buf
	for c := lo; c < hi; c++ {
		ir0, ir1 := c*per, min(g.mPanels, (c+1)*per)
		g.packA(b, buf, ir0, ir1)
		g.tiles(b, buf[:(ir1-ir0)*mr*kb], ir0, 0, (ir1-ir0)*b.nPanels)
	}
}

// gemmThreaded runs the product on all workers in one call of Parallel: every worker walks the same
// blocks, takes packing tasks and then kernel tasks of each from a counter per phase, and waits for
// the others at the end of each phase (the kernels need the whole block packed; the next block's
// packing overwrites it). A hand-off to the pool per phase, instead, wakes a sleeping thread every
// time, which for a product deep in k (the output head's backward: 63 kc slices) left the second core
// idle for a large part of each short phase.
func (g *gemmCall) gemmThreaded() {
	w := Workers()
	phases := 0
	g.blocks(func(gemmBlock, int, int) { phases += 2 })
	if cap(g.next) < phases {
		g.next = make([]atomic.Int64, phases)
	}
	g.next = g.next[:phases]
	for i := range g.next {
		g.next[i].Store(0)
	}
	g.arrived.Store(0)
	// Parallel hands each goroutine a range of the w worker slots (one each, unless GOMAXPROCS has
	// shrunk since Workers was read): a goroutine arrives at the barriers for every slot it holds.
	Parallel(w, func(lo, hi int) {
		ph, slot, slots := 0, lo, hi-lo
		g.blocks(func(b gemmBlock, packTasks, tasks int) {
			g.phase(ph, w, slots, packTasks, func(lo, hi int) { g.pack(b, lo, hi) })
			g.phase(ph+1, w, slots, tasks, func(lo, hi int) { g.kernelTasks(b, slot, lo, hi) })
			ph += 2
		})
	})
}

// phase runs this worker's share of phase ph's tasks, in chunks of about 1/16 of a worker's share (on
// a machine shared with other programs a descheduled worker does not hold the others back), then
// waits until all w worker slots have finished the phase (this worker holds slots of them). A waiting
// worker yields its thread, so a worker that has not started yet can run on it.
func (g *gemmCall) phase(ph, w, slots, tasks int, fn func(lo, hi int)) {
	chunk := max(1, tasks/(16*w))
	next := &g.next[ph]
	for {
		hi := int(next.Add(int64(chunk)))
		lo := hi - chunk
		if lo >= tasks {
			break
		}
		fn(lo, min(hi, tasks))
	}
	target := int64(w * (ph + 1))
	for g.arrived.Add(int64(slots)); g.arrived.Load() < target; {
		runtime.Gosched()
	}
}

// pack packs panels lo..hi-1 of the current block: the A row panels first when this block packs A,
// then the B column panels.
func (g *gemmCall) pack(b gemmBlock, lo, hi int) {
	mr, nr, kb := g.kn.mr, g.kn.nr, b.kb
	if b.packAWithB {
		if lo < g.mPanels {
			g.packA(b, g.pa[lo*mr*kb:], lo, min(hi, g.mPanels))
		}
		lo, hi = max(lo, g.mPanels)-g.mPanels, max(hi, g.mPanels)-g.mPanels
	}
	for jr := lo; jr < hi; jr++ {
		j := b.j0 + jr*nr
		dst := g.pb[jr*nr*kb : (jr+1)*nr*kb]
		if g.transB { // B is stored n×k: transpose.
			packTrans(dst, nr, g.b[j*g.ldb+b.p0:], g.ldb, min(nr, g.n-j), kb)
		} else {
			packCopy(dst, nr, g.b[b.p0*g.ldb+j:], g.ldb, kb, min(nr, g.n-j))
		}
	}
}

// packA packs row panels ir0..ir1-1 of the current kc slice of op(A) into dst, from its start.
func (g *gemmCall) packA(b gemmBlock, dst []float32, ir0, ir1 int) {
	mr, kb := g.kn.mr, b.kb
	if g.transA {
		// A is stored k×m: each packed column is a contiguous run of one row of A, mr floats (32
		// bytes) of a row that is lda apart from the next. Panel by panel, a 512-row slice touches
		// 512 cache lines (and as many pages at lda = 2048) to use half of each; by chunks of
		// 64 rows, the next panels use the other halves while the lines are still in L1.
		const rows = 64
		for p := 0; p < kb; p += rows {
			pr := min(rows, kb-p)
			for ir := ir0; ir < ir1; ir++ {
				i0 := ir * mr
				d := dst[(ir-ir0)*mr*kb+p*mr : (ir-ir0+1)*mr*kb]
				packCopy(d, mr, g.a[(b.p0+p)*g.lda+i0:], g.lda, pr, min(mr, g.m-i0))
			}
		}
		return
	}
	for ir := ir0; ir < ir1; ir++ { // A is stored m×k: transpose.
		i0 := ir * mr
		d := dst[(ir-ir0)*mr*kb : (ir-ir0+1)*mr*kb]
		packTrans(d, mr, g.a[i0*g.lda+b.p0:], g.lda, min(mr, g.m-i0), kb)
	}
}

// tiles runs the kernel on tiles lo..hi-1 of the current block, whose row panels from ir0 on are
// packed in pa. Tiles are numbered row-panel-major so that consecutive tiles share their A
// micro-panel; with few row panels a split falls inside a row and every worker still helps.
func (g *gemmCall) tiles(b gemmBlock, pa []float32, ir0, lo, hi int) {
	kn, c, n, ldc, kb := g.kn, g.c, g.n, g.ldc, b.kb
	mr, nr := kn.mr, kn.nr
	var edge [8 * 48]float32
	for t := lo; t < hi; t++ {
		ir, jr := ir0+t/b.nPanels, t%b.nPanels
		i0, j := ir*mr, b.j0+jr*nr
		ap, bp := &pa[(ir-ir0)*mr*kb], &g.pb[jr*nr*kb]
		next := ap
		if jr == b.nPanels-1 && t+1 < hi {
			next = &pa[(ir+1-ir0)*mr*kb]
		}
		rows, cols := min(mr, g.m-i0), min(nr, n-j)
		if rows == mr && cols == nr {
			kn.run(kb, ap, bp, &c[i0*ldc+j], ldc, b.acc, next)
			continue
		}
		if rows == mr && kn == kernelAVX512 && cols%16 == 0 {
			if cols == 32 {
				sgemmKernel8x32AVX512(kb, ap, bp, &c[i0*ldc+j], ldc, b.acc)
			} else {
				sgemmKernel8x16AVX512(kb, ap, bp, &c[i0*ldc+j], ldc, b.acc)
			}
			continue
		}
		// A ragged tile: compute the whole tile into a scratch and keep the part inside C.
		kn.run(kb, ap, bp, &edge[0], nr, 0, next)
		for i := 0; i < rows; i++ {
			ci := c[(i0+i)*ldc+j : (i0+i)*ldc+j+cols]
			ei := edge[i*nr : i*nr+cols]
			if b.acc != 0 {
				for x := range ci {
					ci[x] += ei[x]
				}
			} else {
				copy(ci, ei)
			}
		}
	}
}

// packCopy sets dst[p*width+j] = src[p*lds+j] for p < rows, j < cols, and zero for cols <= j < width.
func packCopy(dst []float32, width int, src []float32, lds, rows, cols int) {
	switch {
	case rows == 0:
		return
	case cols == width && width%8 == 0:
		_ = dst[rows*width-1]
		_ = src[(rows-1)*lds+cols-1]
		packCopyAVX(&dst[0], &src[0], lds, rows, width/8)
		return
	case cols == 6 && width == 6:
		_ = dst[rows*width-1]
		_ = src[(rows-1)*lds+cols-1]
		packCopy6AVX(&dst[0], &src[0], lds, rows)
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
	if width == 6 && rows == 6 && cols8 > 0 { // a full A panel of the 6x16 kernel
		_ = dst[cols8*8*6-1]
		_ = src[5*lds+cols8*8-1]
		packTrans6AVX(&dst[0], &src[0], lds, cols8)
		for i := 0; i < 6; i++ {
			s := src[i*lds : i*lds+cols]
			for p := cols8 * 8; p < cols; p++ {
				dst[p*width+i] = s[p]
			}
		}
		return
	}
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
