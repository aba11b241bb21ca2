//go:build amd64 && !purego

package tensor

import (
	"math/rand/v2"
	"runtime"
	"testing"
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
	for _, procs := range []int{3, 5} {
		runtime.GOMAXPROCS(procs)
		for _, tc := range []matmulCase{
			{m: 40, n: 1000, k: 1100}, {m: 24, n: 2000, k: 600, transA: true, accumulate: true},
			{m: 17, n: 1936, k: 530, transB: true},
		} {
			checkMatMul(t, rng, tc, 3, func(g gemmArgs) { gemmPacked(activeKernel, g, true) })
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
