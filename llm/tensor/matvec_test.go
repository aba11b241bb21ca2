package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// narrowRef is c = a·bᵀ in float64 with b given as float64 values.
func narrowRef(a []float32, b []float64, m, n, k int) []float64 {
	c := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				s += float64(a[i*k+p]) * b[j*k+p]
			}
			c[i*n+j] = s
		}
	}
	return c
}

// The shapes cover k below, at and between the kernels' 16 and 32 steps, n with and without a
// remainder of four rows, small products (run serially) and large ones (split over the workers).
var narrowShapes = []struct{ m, n, k int }{
	{1, 1, 1}, {1, 4, 16}, {1, 5, 17}, {2, 7, 15}, {3, 8, 32}, {1, 12, 48}, {4, 33, 100},
	{1, 256, 64}, {8, 172, 64}, {1, 64, 172}, {16, 300, 257}, {1, 1024, 512}, {5, 513, 300}, {0, 4, 4}, {3, 0, 4},
}

func TestMatMulNarrow(t *testing.T) { runNarrowShapes(t) }

// runNarrowShapes checks every narrow product of narrowShapes against a float64 reference, through
// whichever kernels this CPU (or the test) selects.
func runNarrowShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range narrowShapes {
		a, b := make([]float32, s.m*s.k), make([]float32, s.n*s.k)
		b64 := make([]float64, len(b))
		for i := range a {
			a[i] = rng.Float32()*2 - 1
		}
		for i := range b {
			b[i] = rng.Float32()*2 - 1
			b64[i] = float64(b[i])
		}
		want := narrowRef(a, b64, s.m, s.n, s.k)
		c := make([]float32, s.m*s.n)
		for i := range c {
			c[i] = float32(math.NaN()) // every entry must be written
		}
		MatMulNarrow(c, a, b, s.m, s.n, s.k)
		checkNarrow64(t, "f32", s.m, s.n, s.k, c, want)

		// bfloat16 weights: the reference uses the rounded weights, so only float32 rounding remains.
		bh := make([]uint16, len(b))
		for i, v := range b {
			bh[i] = half.F32ToBF16(v)
			b64[i] = float64(half.BF16ToF32(bh[i]))
		}
		want = narrowRef(a, b64, s.m, s.n, s.k)
		for i := range c {
			c[i] = float32(math.NaN())
		}
		MatMulNarrowBF16(c, a, bh, s.m, s.n, s.k)
		checkNarrow64(t, "bf16", s.m, s.n, s.k, c, want)

		// Both operands in bfloat16: the reference rounds the activations too.
		want = narrowRef(narrowRoundedRows(a, s.m, s.k), b64, s.m, s.n, s.k)
		for i := range c {
			c[i] = float32(math.NaN())
		}
		MatMulNarrowAllBF16(c, a, bh, s.m, s.n, s.k)
		checkNarrow64(t, "all-bf16", s.m, s.n, s.k, c, want)
	}
}

// checkNarrow64 allows float32 rounding of a k-term sum of terms below 1 in magnitude.
func checkNarrow64(t *testing.T, kind string, m, n, k int, got []float32, want []float64) {
	t.Helper()
	tol := 1e-6 * float64(k+1)
	for i, w := range want {
		if d := math.Abs(float64(got[i]) - w); !(d <= tol) {
			t.Fatalf("%s m=%d n=%d k=%d: c[%d] = %v, want %v (tolerance %g)", kind, m, n, k, i, got[i], w, tol)
		}
	}
}

// The AVX-512 kernels and the portable code must agree on the same inputs (when this CPU has them).
func TestMatMulNarrowMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 6, 22, 80 // a group of four activation rows and two more; five blocks of four weight rows and two more
	a, b, bh := make([]float32, m*k), make([]float32, n*k), make([]uint16, n*k)
	for i := range a {
		a[i] = rng.Float32()*2 - 1
	}
	for i := range b {
		b[i] = rng.Float32()*2 - 1
		bh[i] = half.F32ToBF16(b[i])
	}
	c, g := make([]float32, m*n), make([]float32, m*n)
	narrowF32(c, a, b, m, n, k, 0, n)
	narrowF32Generic(g, a, b, m, n, k, 0, n)
	checkClose(t, "f32", c, g)
	narrowBF16(c, a, bh, m, n, k, 0, n)
	narrowBF16Generic(g, a, bh, m, n, k, 0, n)
	checkClose(t, "bf16", c, g)
}

func checkClose(t *testing.T, kind string, got, want []float32) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
			t.Fatalf("%s: kernel %v, portable %v at %d", kind, got[i], want[i], i)
		}
	}
}

func TestMatMulNarrowShortSlices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a weight shorter than n·k")
		}
	}()
	MatMulNarrow(make([]float32, 4), make([]float32, 4), make([]float32, 15), 1, 4, 4)
}

// BenchmarkMatMulNarrow reports the weight bytes read per second by a batch-1 and batch-8 product
// with a 64 MiB float32 weight (far beyond the caches), against MatMul on the same shapes; compare
// with BenchmarkMemoryBandwidth.
func BenchmarkMatMulNarrow(b *testing.B) {
	const n, k = 4096, 4096
	w := make([]float32, n*k)
	wh := make([]uint16, n*k)
	for i := range w {
		w[i] = float32(i%7) - 3
		wh[i] = half.F32ToBF16(w[i])
	}
	for _, m := range []int{1, 8} {
		a, c := make([]float32, m*k), make([]float32, m*n)
		run := func(name string, bytes int, f func()) {
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					f()
				}
				b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
		run("f32/m="+string(rune('0'+m)), 4*n*k, func() { MatMulNarrow(c, a, w, m, n, k) })
		run("bf16/m="+string(rune('0'+m)), 2*n*k, func() { MatMulNarrowBF16(c, a, wh, m, n, k) })
		run("allbf16/m="+string(rune('0'+m)), 2*n*k, func() { MatMulNarrowAllBF16(c, a, wh, m, n, k) })
		run("MatMul/m="+string(rune('0'+m)), 4*n*k, func() { MatMul(c, a, w, m, n, k, false, true, false) })
	}
}

// BenchmarkMemoryBandwidth is the machine's streaming read speed on all workers: each worker sums its
// part of a 256 MiB array with the SIMD dot product of the array with itself (bytes read once).
func BenchmarkMemoryBandwidth(b *testing.B) {
	x := make([]float32, 64<<20)
	for i := range x {
		x[i] = 1
	}
	for b.Loop() {
		Parallel(len(x)/(1<<16), func(lo, hi int) { Dot(x[lo<<16:hi<<16], x[lo<<16:hi<<16]) })
	}
	b.ReportMetric(float64(4*len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}
