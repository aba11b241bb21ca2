package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// bf16Case is one product shape and layout.
type bf16Case struct {
	m, n, k        int
	transA, transB bool
}

// bf16Cases covers the layouts the model uses (A·Bᵀ forward, A·B for the input gradient, Aᵀ·B for the
// weight gradient of mixed precision) and Aᵀ·Bᵀ, at odd sizes: m not a multiple of the 8-row tile, k
// odd and deeper than one 512-deep slice, n with ragged, 16- and 32-wide last panels and wider than
// one 384-column block, products split between two workers by columns and (m > n) by rows.
func bf16Cases() []bf16Case {
	var cs []bf16Case
	for _, s := range [][3]int{{8, 48, 16}, {1, 1, 1}, {3, 5, 7}, {13, 37, 9}, {17, 80, 1025}, {40, 96, 64}, {9, 400, 33}, {64, 1040, 520}, {130, 260, 100}, {300, 40, 101}, {203, 64, 99}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				cs = append(cs, bf16Case{s[0], s[1], s[2], ta, tb})
			}
		}
	}
	return cs
}

// exactValue is a float32 whose bfloat16 rounding is an integer in [-8, 8] or a value near one (so a
// multiple of 2⁻⁷ of magnitude under 8.2), with the ties of round-to-nearest-even (1+2⁻⁸ rounds down
// to 1, 1+3·2⁻⁸ up to 1+2⁻⁶) and noise that rounding must drop. The tests multiply such values by
// integers (intValue): every product and every partial sum is then exact in float32, and the kernels'
// result must equal the float64 reference bit for bit.
func exactValue(rng *rand.Rand) float32 {
	v := float32(rng.IntN(17) - 8)
	switch rng.IntN(4) {
	case 0:
		return v * (1 + float32(rng.IntN(8))/8192) // less than half a bfloat16 step: rounds to v
	case 1:
		return v * (1 + 1.0/256)
	case 2:
		return v * (1 + 3.0/256)
	}
	return v
}

// intValue is a float32 whose bfloat16 rounding is an integer in [-8, 8].
func intValue(rng *rand.Rand) float32 {
	return float32(rng.IntN(17)-8) * (1 + float32(rng.Float64())/1024)
}

// bf16Ref is the float64 product of the operands rounded to bfloat16, plus c0 when accumulating.
func bf16Ref(c0, a []float32, b []uint16, tc bf16Case, accumulate bool) ([]float64, []float64) {
	m, n, k := tc.m, tc.n, tc.k
	ref, sumAbs := make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, sa float64
			if accumulate {
				s, sa = float64(c0[i*n+j]), math.Abs(float64(c0[i*n+j]))
			}
			for p := range k {
				ai := i*k + p
				if tc.transA {
					ai = p*m + i
				}
				bi := p*n + j
				if tc.transB {
					bi = j*k + p
				}
				t := float64(half.BF16ToF32(half.F32ToBF16(a[ai]))) * float64(half.BF16ToF32(b[bi]))
				s += t
				sa += math.Abs(t)
			}
			ref[i*n+j], sumAbs[i*n+j] = s, sa
		}
	}
	return ref, sumAbs
}

// runBF16Cases checks MatMulBF16 and MatMulRoundBF16, threaded and serial, overwriting and
// accumulating, on exact data (bit for bit) and random normal data (to float32 accumulation error).
func runBF16Cases(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range bf16Cases() {
		for _, exact := range []bool{true, false} {
			gen := func(n int, value func(*rand.Rand) float32) []float32 {
				s := make([]float32, n)
				for i := range s {
					if exact {
						s[i] = value(rng)
					} else {
						s[i] = float32(rng.NormFloat64())
					}
				}
				return s
			}
			a, bf := gen(tc.m*tc.k, exactValue), gen(tc.k*tc.n, intValue)
			bh := make([]uint16, len(bf))
			for i, v := range bf {
				bh[i] = half.F32ToBF16(v)
			}
			c0 := gen(tc.m*tc.n, func(r *rand.Rand) float32 { return float32(r.IntN(17) - 8) })
			for _, acc := range []bool{false, true} {
				ref, sumAbs := bf16Ref(c0, a, bh, tc, acc)
				for _, variant := range []string{"bf16", "bf16-serial", "round", "round-serial"} {
					name := fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v/acc=%v/exact=%v/%s", tc.m, tc.n, tc.k, tc.transA, tc.transB, acc, exact, variant)
					c := make([]float32, len(c0))
					copy(c, c0)
					switch variant {
					case "bf16":
						MatMulBF16(c, a, bh, tc.m, tc.n, tc.k, tc.transA, tc.transB, acc)
					case "bf16-serial":
						MatMulBF16Serial(c, a, bh, tc.m, tc.n, tc.k, tc.transA, tc.transB, acc)
					case "round":
						MatMulRoundBF16(c, a, bf, tc.m, tc.n, tc.k, tc.transA, tc.transB, acc)
					default:
						MatMulRoundBF16Serial(c, a, bf, tc.m, tc.n, tc.k, tc.transA, tc.transB, acc)
					}
					for i, got := range c {
						tol := 0.0
						if !exact {
							// float32 sums of k exact products: a few units of float32 rounding per
							// term of the largest partial sums, far below one bfloat16 step (2⁻⁸).
							tol = 4 * float64(tc.k+1) * 0x1p-24 * sumAbs[i]
						}
						if d := math.Abs(float64(got) - ref[i]); d > tol || math.IsNaN(float64(got)) {
							t.Fatalf("%s: C[%d] = %v, want %v (±%g)", name, i, got, ref[i], tol)
						}
					}
				}
			}
		}
	}
}

func TestMatMulBF16(t *testing.T) {
	if !BF16Native() {
		t.Log("this CPU has no AVX512_BF16: checking the widening fallback")
	}
	runBF16Cases(t)
}

// TestMatMulBF16Fallback runs the products the way a CPU without AVX512_BF16 does: the same results.
func TestMatMulBF16Fallback(t *testing.T) {
	defer func(v bool) { bf16Native = v }(bf16Native)
	bf16Native = false
	runBF16Cases(t)
}

// TestMatMulBF16Bounds checks that a product writes only its m×n block of C (the rest of each row
// and the rows past m keep their values) and that a bad shape panics naming the function.
func TestMatMulBF16Bounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m, n, k := 9, 50, 20
	a := randomSlice(rng, m*k)
	b := make([]uint16, k*n)
	for i := range b {
		b[i] = half.F32ToBF16(float32(rng.NormFloat64()))
	}
	c := make([]float32, m*n+7)
	for i := m * n; i < len(c); i++ {
		c[i] = 42
	}
	MatMulBF16(c, a, b, m, n, k, false, false, false)
	for i := m * n; i < len(c); i++ {
		if c[i] != 42 {
			t.Fatalf("c[%d] = %v past the product, want it untouched", i, c[i])
		}
	}
	defer func() {
		if r := recover(); r != "tensor.MatMulBF16: slice shorter than its shape" {
			t.Fatalf("short B: panic %v", r)
		}
	}()
	MatMulBF16(c, a, b[:len(b)-1], m, n, k, false, false, false)
}

// BenchmarkMatMulBF16 reports GFLOP/s of the bfloat16 products beside BenchmarkMatMul's float32 ones:
// a frozen bfloat16 weight (B) against float32 activations rounded as they are packed, and both
// operands float32 rounded (mixed-precision training), on the shapes of a LoRA step on the
// TinyLlama-1.1B shape (256 tokens; dim 2048, ffn 5632: forward, input gradient, and in AtB the
// weight gradient of mixed precision) and BenchmarkMatMul's.
func BenchmarkMatMulBF16(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{256, 5632, 2048}, {256, 2048, 5632}, {5632, 2048, 256}, {768, 3072, 768}, {2048, 2048, 2048}} {
		m, n, k := s[0], s[1], s[2]
		a, bf, c := randomSlice(rng, m*k), randomSlice(rng, k*n), make([]float32, m*n)
		bh := make([]uint16, len(bf))
		for i, v := range bf {
			bh[i] = half.F32ToBF16(v)
		}
		for _, l := range []struct {
			name           string
			transA, transB bool
		}{{"AB", false, false}, {"ABt", false, true}, {"AtB", true, false}} {
			for _, kind := range []string{"f32", "bf16", "round"} {
				b.Run(fmt.Sprintf("%dx%dx%d/%s/%s", m, n, k, l.name, kind), func(b *testing.B) {
					for b.Loop() {
						switch kind {
						case "f32":
							MatMul(c, a, bf, m, n, k, l.transA, l.transB, false)
						case "bf16":
							MatMulBF16(c, a, bh, m, n, k, l.transA, l.transB, false)
						default:
							MatMulRoundBF16(c, a, bf, m, n, k, l.transA, l.transB, false)
						}
					}
					b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
