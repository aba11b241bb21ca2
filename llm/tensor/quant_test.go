package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

var quantGGUF = map[QuantType]gguf.TensorType{QuantQ8_0: gguf.Q8_0, QuantQ4_0: gguf.Q4_0, QuantQ4_K: gguf.Q4_K, QuantQ6_K: gguf.Q6_K}

// TestQuantMatMul checks every format's product against the float64 product of the dequantized
// weights (llm/format/gguf's decoder, which matches ggml bit for bit) with the float32 activations.
// The kernels round the activations to int8 blocks (scale d = amax/127), which moves each by at most
// d/2, so output o of row r may differ by Σ_blocks (d_b/2)·Σ_{i∈b}|w_oi|; 32-value blocks keep d in
// float16 as ggml's q8_0 does (127·2⁻¹¹·d more per value); float32 accumulation adds a relative 1e-5
// of Σ|w·x|.
func TestQuantMatMul(t *testing.T) { quantKernelPaths(t, testQuantMatMul) }

func testQuantMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, typ := range []QuantType{QuantQ8_0, QuantQ4_0, QuantQ4_K, QuantQ6_K} {
		for _, sh := range []struct{ R, N, C int }{{1, 7, 256}, {3, 200, 512}, {17, 40, 768}, {2, 130, 1024}} {
			t.Run(fmt.Sprintf("%s/R%d_N%d_C%d", typ, sh.R, sh.N, sh.C), func(t *testing.T) {
				wf := make([]float32, sh.N*sh.C)
				for i := range wf {
					wf[i] = float32(rng.NormFloat64()) * 0.05
				}
				for i := range sh.C { // a row of zeros and a row with one outlier per block
					wf[i] = 0
					if sh.N > 1 {
						wf[sh.C+i] = 0.001 * float32(i%7)
					}
				}
				raw, err := gguf.Quantize(quantGGUF[typ], wf)
				if err != nil {
					t.Fatal(err)
				}
				w, err := NewQMatrix(typ, sh.N, sh.C, raw)
				if err != nil {
					t.Fatal(err)
				}
				deq := make([]float32, len(wf))
				if err := gguf.Dequantize(quantGGUF[typ], raw, deq); err != nil {
					t.Fatal(err)
				}
				x := make([]float32, sh.R*sh.C)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				x[5] = 40 // an outlier coarsens its block's scale
				out := make([]float32, sh.R*sh.N)
				QuantMatMul(out, x, w, sh.R)
				blk := 32
				if typ == QuantQ4_K || typ == QuantQ6_K {
					blk = 256
				}
				var worst float64
				for r := range sh.R {
					for o := range sh.N {
						var want, abs, bound float64
						for b := 0; b < sh.C; b += blk {
							var amax, wabs float64
							for i := b; i < b+blk; i++ {
								xi, wi := float64(x[r*sh.C+i]), float64(deq[o*sh.C+i])
								want += xi * wi
								abs += math.Abs(xi * wi)
								amax = max(amax, math.Abs(xi))
								wabs += math.Abs(wi)
							}
							step := amax / 127 / 2
							if blk == 32 { // the scale is rounded to float16 too
								step += amax / 127 * 127 / 2048
							}
							bound += step * wabs
						}
						bound += 1e-5*abs + 1e-6
						got := float64(out[r*sh.N+o])
						if e := math.Abs(got - want); e > bound {
							t.Fatalf("row %d out %d: %g, dequantized product %g (error %g > bound %g)", r, o, got, want, e, bound)
						} else if bound > 0 {
							worst = max(worst, e/bound)
						}
					}
				}
				t.Logf("largest error %.2f of the bound", worst)
			})
		}
	}
}

// A row's product does not depend on the rows computed with it (each is quantized on its own, and
// the multi-row kernels add in the order the one-row kernels do): decoding a sequence gives the same
// logits whichever sequences share its steps.
func TestQuantMatMulRowsIndependent(t *testing.T) { quantKernelPaths(t, testQuantRowsIndependent) }

func testQuantRowsIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const R, N, C = 11, 64, 512
	wf := make([]float32, N*C)
	for i := range wf {
		wf[i] = float32(rng.NormFloat64())
	}
	x := make([]float32, R*C)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, typ := range []QuantType{QuantQ8_0, QuantQ4_0, QuantQ4_K, QuantQ6_K} {
		raw, err := gguf.Quantize(quantGGUF[typ], wf)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := NewQMatrix(typ, N, C, raw)
		all := make([]float32, R*N)
		QuantMatMul(all, x, w, R)
		one := make([]float32, N)
		for r := range R {
			QuantMatMul(one, x[r*C:(r+1)*C], w, 1)
			for o := range N {
				if math.Float32bits(one[o]) != math.Float32bits(all[r*N+o]) {
					t.Fatalf("%s row %d out %d: %g among %d rows, %g alone", typ, r, o, all[r*N+o], R, one[o])
				}
			}
		}
	}
}

func TestNewQMatrixChecksSizes(t *testing.T) {
	if _, err := NewQMatrix(QuantQ4_K, 2, 128, make([]byte, 144)); err == nil {
		t.Error("Q4_K rows of 128 values accepted")
	}
	if _, err := NewQMatrix(QuantQ8_0, 2, 64, make([]byte, 100)); err == nil {
		t.Error("a short Q8_0 matrix accepted")
	}
	if _, err := NewQMatrix(QuantQ8_0, 2, 64, make([]byte, 136)); err != nil {
		t.Error(err)
	}
}
