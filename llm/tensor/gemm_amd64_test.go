//go:build amd64 && !purego

package tensor

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/lathe-ml/lathe/llm/cpuinfo"
)

// Each SIMD kernel the CPU supports runs the packed GEMM directly (whichever one MatMul picked), on
// every shape, including those MatMul would send to the matrix-vector path.
func TestPackedKernelsMatchFloat64Reference(t *testing.T) {
	for _, kc := range []struct {
		kernel    *gemmKernel
		supported bool
	}{{kernelAVX512, hasAVX512}, {kernelAVX2, hasAVX2}} {
		t.Run(kc.kernel.name, func(t *testing.T) {
			if !kc.supported {
				t.Skipf("this CPU has no %s", kc.kernel.name)
			}
			rng := rand.New(rand.NewPCG(7, 8))
			mul := func(g gemmArgs) { gemmPacked(kc.kernel, g, true) }
			for _, tc := range matmulCases(rng) {
				checkMatMul(t, rng, tc, 0, mul)
				checkMatMul(t, rng, tc, 5, mul)
			}
		})
	}
}

// The SIMD kernels and the generic loops agree with each other to within float32 rounding.
func TestPackedKernelsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, kn := range []*gemmKernel{kernelAVX512, kernelAVX2} {
		if (kn == kernelAVX512 && !hasAVX512) || (kn == kernelAVX2 && !hasAVX2) {
			continue
		}
		for _, tc := range matmulCases(rng)[:200] {
			a, b := randomSlice(rng, tc.m*tc.k), randomSlice(rng, tc.k*tc.n)
			c0 := randomSlice(rng, tc.m*tc.n)
			want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
			matmulGeneric(denseArgs(want, a, b, tc.m, tc.n, tc.k, tc.transA, tc.transB, tc.accumulate))
			gemmPacked(kn, denseArgs(got, a, b, tc.m, tc.n, tc.k, tc.transA, tc.transB, tc.accumulate), true)
			_, mag := reference(c0, a, b, tc)
			for i := range got {
				tol := 2*float32(tc.k+1)/(1<<23)*float32(mag[i]) + 1e-30
				if d := got[i] - want[i]; d > tol || -d > tol {
					t.Fatalf("%s %v: C[%d] = %g, generic %g", kn.name, tc, i, got[i], want[i])
				}
			}
		}
	}
}

// The threaded product's workers meet at a barrier after every phase; with more workers than cores
// (some waiting for a thread) and products of several kc slices and nc blocks, every element is still
// right and nothing outside C is written.
func TestPackedKernelThreadedMoreWorkersThanCores(t *testing.T) {
	if activeKernel == nil {
		t.Skip("this CPU has no SIMD kernel")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer func(v bool) { gemmSplitThreads = v }(gemmSplitThreads)
	for _, split := range []bool{false, true} {
		gemmSplitThreads = split
		for _, procs := range []int{3, 5, 6} {
			runtime.GOMAXPROCS(procs)
			for _, tc := range []matmulCase{
				{m: 40, n: 1000, k: 1100}, {m: 24, n: 2000, k: 600, transA: true, accumulate: true},
				{m: 17, n: 1936, k: 530, transB: true}, {m: 1100, n: 40, k: 700, transA: true, transB: true},
			} {
				checkMatMul(t, rng, tc, 3, func(g gemmArgs) { gemmPacked(activeKernel, g, true) })
			}
		}
	}
}

// Splitting C between the workers (gemmSplit) gives each worker a block of rows or columns that
// is an independent product: the blocks tile C exactly, and each element comes out bit-identical to
// the single-threaded product, whichever grid the cost model picks (row bands for a tall C, column
// bands for a wide one, both for 6 workers), in every layout, strided and accumulating.
func TestGemmSplitMatchesSerialBitForBit(t *testing.T) {
	if activeKernel == nil {
		t.Skip("this CPU has no SIMD kernel")
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for _, w := range []int{2, 3, 6, 100} { // 100: more workers than maxParts blocks
		for _, tc := range []matmulCase{
			{m: 768, n: 3072 / 4, k: 300}, {m: 3000, n: 40, k: 200, transA: true},
			{m: 64, n: 2000, k: 130, transB: true, accumulate: true}, {m: 9, n: 33, k: 5},
			{m: 260, n: 520, k: 70, transA: true, transB: true, accumulate: true},
		} {
			a, b := randomSlice(rng, tc.m*tc.k), randomSlice(rng, tc.k*tc.n)
			ldc := tc.n + 3
			c0 := randomSlice(rng, tc.m*ldc)
			want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
			args := func(c []float32) gemmArgs {
				g := denseArgs(c, a, b, tc.m, tc.n, tc.k, tc.transA, tc.transB, tc.accumulate)
				g.ldc = ldc
				return g
			}
			gemmPacked(activeKernel, args(want), false)
			gemmSplit(activeKernel, args(got), w)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					tm, tn := gemmGrid(activeKernel, tc.m, tc.n, tc.k, w)
					t.Fatalf("%d workers (%dx%d grid) %+v: C[%d] = %g, serial %g", w, tm, tn, tc, i, got[i], want[i])
				}
			}
		}
	}
}

// The grid follows the shape: a wide C is cut into column bands (each worker packs all of the small
// A), a tall one into row bands, and a 512-wide C with 512 rows on 2 workers into two bands of 256,
// whichever way costs less padding.
func TestGemmGridFollowsShape(t *testing.T) {
	if activeKernel != kernelAVX512 {
		t.Skip("the cost model's widths are the 8x48 kernel's")
	}
	for _, tc := range []struct {
		m, n, k, w, tm, tn int
	}{
		{768, 3072, 768, 2, 1, 2},
		{32000, 512, 512, 2, 2, 1},
		{512, 32000, 512, 2, 1, 2},
		{4096, 4096, 64, 4, 2, 2},
		{8, 5000, 100, 4, 1, 4},
	} {
		tm, tn := gemmGrid(activeKernel, tc.m, tc.n, tc.k, tc.w)
		if tm != tc.tm || tn != tc.tn {
			t.Errorf("%dx%dx%d on %d workers: grid %dx%d, want %dx%d", tc.m, tc.n, tc.k, tc.w, tm, tn, tc.tm, tc.tn)
		}
	}
}

// A tall product (its A slice is packed by chunks of rows, see tallA) in every layout, threaded and
// serial, strided: two kc slices, a ragged last chunk, a ragged last row panel and a narrow edge tile.
func TestMatMulTall(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m, n, k := 8236, 36, 520
	if m*k <= tallA {
		t.Fatalf("%dx%d is not past tallA = %d", m, k, tallA)
	}
	for layout := range 4 {
		tc := matmulCase{m, n, k, layout&1 != 0, layout&2 != 0, layout%3 == 0}
		checkMatMul(t, rng, tc, 0, viaMatMul)
		checkMatMul(t, rng, tc, 5, viaMatMulStridedSerial)
	}
}

// The blocking follows the caches: a 32 KiB L1d gives kc = 512 and a 48 KiB one 768; nc grows with
// L2, stays a multiple of both kernels' nr, and a CPU that reports nothing gets Zen 4's sizes.
func TestGemmBlockingFollowsCaches(t *testing.T) {
	for _, tc := range []struct {
		c      cpuinfo.Caches
		kc, nc int
	}{
		{cpuinfo.Caches{L1D: 32 << 10, L2: 1 << 20}, 512, 960},
		{cpuinfo.Caches{L1D: 32 << 10, L2: 512 << 10}, 512, 480},
		{cpuinfo.Caches{L1D: 48 << 10, L2: 2 << 20}, 768, 1248},
		{cpuinfo.Caches{}, 512, 960},
		{cpuinfo.Caches{L1D: 8 << 10, L2: 64 << 10}, 256, 96},
		{cpuinfo.Caches{L1D: 1 << 20, L2: 64 << 20}, 768, 1920},
	} {
		kc, nc := gemmBlocking(tc.c)
		if kc != tc.kc || nc != tc.nc || nc%48 != 0 {
			t.Errorf("%s: kc %d nc %d, want %d %d", tc.c, kc, nc, tc.kc, tc.nc)
		}
	}
}

// Every blocking a CPU can be given computes the same product: the smallest and largest kc and nc,
// threaded (both ways) and serial, with several kc slices and nc blocks and ragged edges.
func TestPackedKernelUnderEveryBlocking(t *testing.T) {
	if activeKernel == nil {
		t.Skip("this CPU has no SIMD kernel")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	defer func(kc, nc int) { gemmKC, gemmNC = kc, nc }(gemmKC, gemmNC)
	defer func(v bool) { gemmSplitThreads = v }(gemmSplitThreads)
	for _, bl := range [][2]int{{256, 96}, {768, 1920}, {384, 1248}} {
		gemmKC, gemmNC = bl[0], bl[1]
		for _, split := range []bool{false, true} {
			gemmSplitThreads = split
			for _, tc := range []matmulCase{
				{m: 40, n: 2000, k: 1700}, {m: 300, n: 500, k: 800, transA: true, accumulate: true},
				{m: 17, n: 1936, k: 530, transB: true}, {m: 1100, n: 40, k: 900, transA: true, transB: true},
			} {
				checkMatMul(t, rng, tc, 3, func(g gemmArgs) { gemmPacked(activeKernel, g, true) })
			}
		}
	}
}

// The bfloat16 B block takes three quarters of L2, within the panel array's bound.
func TestBF16BlockingFollowsCaches(t *testing.T) {
	for _, tc := range []struct {
		l2, nc int
	}{{512 << 10, 384}, {1 << 20, 768}, {2 << 20, 1536}, {32 << 20, bf16MaxNC}, {64 << 10, 96}, {0, 384}} {
		if nc := bf16Blocking(cpuinfo.Caches{L2: tc.l2}); nc != tc.nc || nc%48 != 0 {
			t.Errorf("L2 %d: nc %d, want %d", tc.l2, nc, tc.nc)
		}
	}
}

// The bfloat16 products are exact under the smallest and the largest block a CPU can be given.
func TestMatMulBF16UnderEveryBlocking(t *testing.T) {
	defer func(nc int) { bf16NC = nc }(bf16NC)
	for _, nc := range []int{96, bf16MaxNC} {
		bf16NC = nc
		runBF16Cases(t)
	}
}

// The packing routines give every panel width the kernels use (6 and 8 for A, 16 and 48 for B)
// exactly what the plain loops give: full and partial panels, depths with and without a tail past
// a multiple of 8, a source stride wider than the panel, and zeros in the padding.
func TestPackingMatchesLoops(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, width := range []int{6, 8, 16, 48} {
		for _, depth := range []int{1, 7, 8, 9, 64, 70} {
			for _, part := range []int{width, width - 1, 1} {
				lds := max(width, depth) + 5
				src := randomSlice(rng, max(width, depth)*lds)
				// packTrans: part rows of src, depth columns each.
				got, want := randomSlice(rng, depth*width), make([]float32, depth*width)
				for p := range depth {
					for i := range part {
						want[p*width+i] = src[i*lds+p]
					}
				}
				packTrans(got, width, src, lds, part, depth)
				for x := range want {
					if got[x] != want[x] {
						t.Fatalf("packTrans width %d, %d rows, depth %d: dst[%d] = %g, want %g", width, part, depth, x, got[x], want[x])
					}
				}
				// packCopy: depth rows of src, part columns each.
				got, want = randomSlice(rng, depth*width), make([]float32, depth*width)
				for p := range depth {
					copy(want[p*width:p*width+part], src[p*lds:p*lds+part])
				}
				packCopy(got, width, src, lds, depth, part)
				for x := range want {
					if got[x] != want[x] {
						t.Fatalf("packCopy width %d, %d columns, depth %d: dst[%d] = %g, want %g", width, part, depth, x, got[x], want[x])
					}
				}
			}
		}
	}
}
