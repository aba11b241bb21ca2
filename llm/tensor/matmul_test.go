package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// matmulCase is one product to check: the shape, the layout and whether C is added to.
type matmulCase struct {
	m, n, k                    int
	transA, transB, accumulate bool
}

func (tc matmulCase) String() string {
	layout := "A·B"
	switch {
	case tc.transA && tc.transB:
		layout = "Aᵀ·Bᵀ"
	case tc.transA:
		layout = "Aᵀ·B"
	case tc.transB:
		layout = "A·Bᵀ"
	}
	return fmt.Sprintf("%dx%dx%d/%s/acc=%v", tc.m, tc.n, tc.k, layout, tc.accumulate)
}

// matmulCases returns random shapes with every dimension in 1..70 (so every ragged edge of the 8×48
// and 6×16 tiles occurs), shapes that cross the kc and nc block edges and the threading threshold, and
// the matrix-vector shapes; each in all four layouts, with and without accumulate.
func matmulCases(rng *rand.Rand) []matmulCase {
	shapes := [][3]int{
		{1, 1, 1}, {8, 48, 8}, {8, 8, 1}, {1, 70, 33}, {2, 100, 9}, {70, 1, 40}, {3, 5, 7},
		{130, 200, 300}, {17, 1000, 520}, {40, 520, 513}, {64, 64, 64}, {9, 49, 257},
		// Widths 32 and 16 past a multiple of 48 (the AVX-512 kernel's narrow edge tiles), one of them
		// in the second column block (992 = 960 + 32), with depths that leave a k%4 tail.
		{16, 80, 37}, {24, 64, 130}, {8, 992, 9}, {17, 32, 6},
	}
	for range 40 {
		shapes = append(shapes, [3]int{1 + rng.IntN(70), 1 + rng.IntN(70), 1 + rng.IntN(70)})
	}
	var cases []matmulCase
	for _, s := range shapes {
		for layout := range 4 {
			for _, acc := range []bool{false, true} {
				cases = append(cases, matmulCase{s[0], s[1], s[2], layout&1 != 0, layout&2 != 0, acc})
			}
		}
	}
	return cases
}

func randomSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// reference computes op(A)·op(B) (+ C0) in float64, and Σ|terms| per element, which bounds the
// rounding error of any float32 summation order.
func reference(c0, a, b []float32, tc matmulCase) (want, mag []float64) {
	m, n, k := tc.m, tc.n, tc.k
	want = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, abs float64
			if tc.accumulate {
				s, abs = float64(c0[i*n+j]), math.Abs(float64(c0[i*n+j]))
			}
			for p := range k {
				av, bv := a[i*k+p], b[p*n+j]
				if tc.transA {
					av = a[p*m+i]
				}
				if tc.transB {
					bv = b[j*k+p]
				}
				t := float64(av) * float64(bv)
				s += t
				abs += math.Abs(t)
			}
			want[i*n+j], mag[i*n+j] = s, abs
		}
	}
	return want, mag
}

// guard fills the gaps between strided rows and the space past the end of C: a product that changes
// it wrote out of bounds.
const guard = float32(-12345.5)

// strided copies a rows×cols matrix into a buffer whose rows are ld apart, with guard values in the gaps
// and in a tail past the last row.
func strided(dense []float32, rows, cols, ld int) []float32 {
	buf := make([]float32, max(0, (rows-1)*ld+cols)+64)
	for i := range buf {
		buf[i] = guard
	}
	for r := range rows {
		copy(buf[r*ld:r*ld+cols], dense[r*cols:r*cols+cols])
	}
	return buf
}

// mulFunc runs one implementation on a product.
type mulFunc func(g gemmArgs)

var (
	viaMatMul = func(g gemmArgs) {
		MatMul(g.c, g.a, g.b, g.m, g.n, g.k, g.transA, g.transB, g.accumulate)
	}
	viaMatMulSerial = func(g gemmArgs) {
		MatMulSerial(g.c, g.a, g.b, g.m, g.n, g.k, g.transA, g.transB, g.accumulate)
	}
	viaMatMulStrided = func(g gemmArgs) {
		MatMulStrided(g.c, g.ldc, g.a, g.lda, g.b, g.ldb, g.m, g.n, g.k, g.transA, g.transB, g.accumulate)
	}
	viaMatMulStridedSerial = func(g gemmArgs) {
		MatMulStridedSerial(g.c, g.ldc, g.a, g.lda, g.b, g.ldb, g.m, g.n, g.k, g.transA, g.transB, g.accumulate)
	}
)

// checkMatMul runs mul on tc with random operands, their rows up to pad elements further apart than
// their length (0: dense), and compares every element with the float64 result, allowing the error
// float32 accumulation can make in any order: (k+1)·ε·Σ|terms|. It also checks that nothing outside C
// was written.
func checkMatMul(t *testing.T, rng *rand.Rand, tc matmulCase, pad int, mul mulFunc) {
	t.Helper()
	m, n, k := tc.m, tc.n, tc.k
	a, b := randomSlice(rng, m*k), randomSlice(rng, k*n)
	c0 := randomSlice(rng, m*n)
	g := denseArgs(nil, nil, nil, m, n, k, tc.transA, tc.transB, tc.accumulate)
	g.ldc += rng.IntN(pad + 1)
	g.lda += rng.IntN(pad + 1)
	g.ldb += rng.IntN(pad + 1)
	aRows, aCols, bRows, bCols := m, k, k, n
	if tc.transA {
		aRows, aCols = k, m
	}
	if tc.transB {
		bRows, bCols = n, k
	}
	g.a, g.b, g.c = strided(a, aRows, aCols, g.lda), strided(b, bRows, bCols, g.ldb), strided(c0, m, n, g.ldc)
	mul(g)

	want, mag := reference(c0, a, b, tc)
	const eps = 1.0 / (1 << 23)
	bad := 0
	for i := range m {
		for j := range n {
			got := g.c[i*g.ldc+j]
			tol := float64(k+1)*eps*mag[i*n+j] + 1e-30
			if d := math.Abs(float64(got) - want[i*n+j]); !(d <= tol) {
				if bad < 3 {
					t.Errorf("%v ld %d,%d,%d: C[%d,%d] = %g, want %g (|diff| %.3g > tolerance %.3g)",
						tc, g.ldc, g.lda, g.ldb, i, j, got, want[i*n+j], d, tol)
				}
				bad++
			}
		}
	}
	if bad > 3 {
		t.Errorf("%v: %d of %d elements wrong", tc, bad, m*n)
	}
	for i, v := range g.c {
		if inside := i/g.ldc < m && i%g.ldc < n; !inside && v != guard {
			t.Fatalf("%v ld %d: wrote outside C at offset %d", tc, g.ldc, i)
		}
	}
}

// Every entry point, dense and strided, threaded and serial, and the generic loops, against float64.
func TestMatMulMatchesFloat64Reference(t *testing.T) {
	t.Logf("kernel: %s", KernelName())
	for i, tc := range []struct {
		name string
		pad  int
		mul  mulFunc
	}{
		{"MatMul", 0, viaMatMul},
		{"MatMulSerial", 0, viaMatMulSerial},
		{"MatMulStrided", 5, viaMatMulStrided},
		{"MatMulStridedSerial", 5, viaMatMulStridedSerial},
		{"generic", 0, matmulGeneric},
		{"generic strided", 5, matmulGeneric},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(i)))
			for _, mc := range matmulCases(rng) {
				checkMatMul(t, rng, mc, tc.pad, tc.mul)
			}
		})
	}
}

// A zero inner dimension is an empty sum: C becomes zero, or is left as it was when accumulating.
func TestMatMulEmptyInnerDimension(t *testing.T) {
	for _, acc := range []bool{false, true} {
		c := []float32{1, 2, 3, 4, 5, 6}
		MatMul(c, nil, nil, 2, 3, 0, false, false, acc)
		for i, v := range c {
			want := float32(0)
			if acc {
				want = float32(i + 1)
			}
			if v != want {
				t.Errorf("accumulate=%v: C[%d] = %g, want %g", acc, i, v, want)
			}
		}
	}
}

// A small product worked by hand: [1 2; 3 4]·[5 6; 7 8] = [19 22; 43 50], in every layout.
func TestMatMulKnownProduct(t *testing.T) {
	a, at := []float32{1, 2, 3, 4}, []float32{1, 3, 2, 4}
	b, bt := []float32{5, 6, 7, 8}, []float32{5, 7, 6, 8}
	want := []float32{19, 22, 43, 50}
	for _, tc := range []struct {
		name           string
		a, b           []float32
		transA, transB bool
	}{
		{"A·B", a, b, false, false},
		{"Aᵀ·B", at, b, true, false},
		{"A·Bᵀ", a, bt, false, true},
		{"Aᵀ·Bᵀ", at, bt, true, true},
	} {
		c := make([]float32, 4)
		MatMul(c, tc.a, tc.b, 2, 2, 2, tc.transA, tc.transB, false)
		for i := range c {
			if c[i] != want[i] {
				t.Errorf("%s: C = %v, want %v", tc.name, c, want)
				break
			}
		}
	}
}

func TestMatMulRejectsShortSlices(t *testing.T) {
	for _, tc := range []struct {
		name       string
		c, a, b    int
		m, n, k    int
		wantsPanic bool
	}{
		{"exact lengths", 6, 8, 12, 2, 3, 4, false},
		{"short C", 5, 8, 12, 2, 3, 4, true},
		{"short A", 6, 7, 12, 2, 3, 4, true},
		{"short B", 6, 8, 11, 2, 3, 4, true},
		{"negative dimension", 6, 8, 12, -2, 3, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); (r != nil) != tc.wantsPanic {
					t.Errorf("panic = %v, want panic %v", r, tc.wantsPanic)
				}
			}()
			MatMul(make([]float32, tc.c), make([]float32, tc.a), make([]float32, tc.b), tc.m, tc.n, tc.k, false, false, false)
		})
	}
}

// BenchmarkMatMul reports GFLOP/s (2·m·n·k per product) for the model's shapes in its three layouts:
// AB is A·B, ABt is A·Bᵀ, AtB is Aᵀ·B (the names bench/sgemm.sh passes to OpenBLAS too).
func BenchmarkMatMul(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{768, 3072, 768}, {2048, 2048, 2048}, {512, 32000, 512}} {
		m, n, k := s[0], s[1], s[2]
		a, bb, c := randomSlice(rng, m*k), randomSlice(rng, k*n), make([]float32, m*n)
		for _, l := range []struct {
			name           string
			transA, transB bool
		}{{"AB", false, false}, {"ABt", false, true}, {"AtB", true, false}} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, k, l.name), func(b *testing.B) {
				for b.Loop() {
					MatMul(c, a, bb, m, n, k, l.transA, l.transB, false)
				}
				b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkMatVec reports the memory bandwidth of a one-row product over weights stored [out, in] (the
// output head and the projections at generation, batch 1): 4·n·k bytes of weights read per product.
func BenchmarkMatVec(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][2]int{{4096, 4096}, {32000, 512}} {
		n, k := s[0], s[1]
		x, w, y := randomSlice(rng, k), randomSlice(rng, n*k), make([]float32, n)
		b.Run(fmt.Sprintf("1x%dx%d/ABt", n, k), func(b *testing.B) {
			for b.Loop() {
				MatMul(y, x, w, 1, n, k, false, true, false)
			}
			b.ReportMetric(4*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

func TestMatMulStridedRejectsBadStrides(t *testing.T) {
	for _, tc := range []struct {
		name          string
		ldc, lda, ldb int
		lenC          int
		wantsPanic    bool
	}{
		{"strides at least the row lengths", 5, 4, 3, 9, false}, // C 2×3 with ldc 5 needs 5+3 elements
		{"ldc shorter than a row of C", 2, 4, 3, 9, true},
		{"lda shorter than a row of A", 5, 3, 3, 9, true},
		{"C too short for its stride", 5, 4, 3, 7, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); (r != nil) != tc.wantsPanic {
					t.Errorf("panic = %v, want panic %v", r, tc.wantsPanic)
				}
			}()
			// C (2×3) = A (2×4) · B (4×3)
			MatMulStrided(make([]float32, tc.lenC), tc.ldc, make([]float32, 8), tc.lda, make([]float32, 12), tc.ldb, 2, 3, 4, false, false, false)
		})
	}
}

// Each element of C is summed in the same order whichever worker computes it, so a product is
// bit-identical with one worker and with several: training resumed on the same machine repeats itself.
func TestMatMulSameBitsForAnyWorkerCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, tc := range []matmulCase{
		{130, 1000, 600, false, true, false},
		{64, 520, 513, true, false, true},
		{2, 5000, 300, false, false, false},
		{300, 1, 700, true, false, false},
	} {
		a, b := randomSlice(rng, tc.m*tc.k), randomSlice(rng, tc.k*tc.n)
		c0 := randomSlice(rng, tc.m*tc.n)
		results := make([][]float32, 0, 2)
		for _, procs := range []int{1, 4} {
			old := runtime.GOMAXPROCS(procs)
			c := append([]float32(nil), c0...)
			MatMul(c, a, b, tc.m, tc.n, tc.k, tc.transA, tc.transB, tc.accumulate)
			runtime.GOMAXPROCS(old)
			results = append(results, c)
		}
		for i := range results[0] {
			if math.Float32bits(results[0][i]) != math.Float32bits(results[1][i]) {
				t.Fatalf("%v: C[%d] = %g with 1 worker, %g with 4", tc, i, results[0][i], results[1][i])
			}
		}
	}
}

// BenchmarkMatMulTrainingStep runs the matrix products of one training step of the engine-speed
// issue's llama (dim 512, ffn 1376, vocabulary 32000, 8 layers, 512 tokens), each as often as a step
// runs it (forward A·Bᵀ, input gradient A·B, weight gradient Aᵀ·B added to), with the operands in cache
// between repetitions: the ceiling a step's products reach, to compare with `lathe bench train`.
func BenchmarkMatMulTrainingStep(b *testing.B) {
	const tokens, layers = 512, 8
	type product struct {
		m, n, k       int
		transA, trans bool
		times         int
		a, b, c       []float32
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var ps []product
	for _, s := range [][3]int{{512, 512, 4 * layers}, {512, 1376, 2 * layers}, {1376, 512, layers}, {512, 32000, 1}} {
		in, out, times := s[0], s[1], s[2]
		ps = append(ps,
			product{m: tokens, n: out, k: in, trans: true, times: times},
			product{m: tokens, n: in, k: out, times: times},
			product{m: out, n: in, k: tokens, transA: true, times: times})
	}
	var flop float64
	for i := range ps {
		p := &ps[i]
		p.a, p.b, p.c = randomSlice(rng, p.m*p.k), randomSlice(rng, p.k*p.n), make([]float32, p.m*p.n)
		flop += 2 * float64(p.m*p.n) * float64(p.k) * float64(p.times)
	}
	for b.Loop() {
		for _, p := range ps {
			for range p.times {
				MatMul(p.c, p.a, p.b, p.m, p.n, p.k, p.transA, p.trans, p.transA)
			}
		}
	}
	b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/step")
}
