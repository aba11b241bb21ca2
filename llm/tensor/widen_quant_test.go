package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// WidenRows gives gguf.Dequantize's floats bit for bit (on a CPU with its kernels), for whole
// matrices and row ranges, with zero rows, outliers and negative scales among the blocks.
func TestWidenRowsMatchesDequantize(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	const N, C = 9, 512
	wf := make([]float32, N*C)
	for i := range wf {
		wf[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(5)-3)))
	}
	clear(wf[C : 2*C])
	wf[3*C+7] = -300
	for _, typ := range []QuantType{QuantQ8_0, QuantQ4_0, QuantQ4_K, QuantQ6_K} {
		raw, err := gguf.Quantize(quantGGUF[typ], wf)
		if err != nil {
			t.Fatal(err)
		}
		q, err := NewQMatrix(typ, N, C, raw)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, N*C)
		if err := gguf.Dequantize(quantGGUF[typ], raw, want); err != nil {
			t.Fatal(err)
		}
		for _, rr := range [][2]int{{0, N}, {2, 5}, {8, 9}, {4, 4}} {
			got := make([]float32, (rr[1]-rr[0])*C)
			if !q.WidenRows(got, rr[0], rr[1]) {
				if typ != QuantQ4_0 && quantAVX2 {
					t.Fatalf("%s: WidenRows declined on a CPU with its kernel", typ)
				}
				t.Logf("%s: no kernel here (gguf dequantizes)", typ)
				break
			}
			for i, v := range got {
				if w := want[rr[0]*C+i]; math.Float32bits(v) != math.Float32bits(w) {
					t.Fatalf("%s rows [%d, %d): value %d = %g, gguf gives %g", typ, rr[0], rr[1], i, v, w)
				}
			}
		}
	}
}
