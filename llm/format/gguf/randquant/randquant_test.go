package randquant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// The matrices are whole blocks of Q4_K_M's type for their name, and decode to small finite weights;
// the other tensors are ones (norms) or small values; an unknown name is an error.
func TestSourceGivesSmallFiniteQ4KMBlocks(t *testing.T) {
	shapes := map[string][]int{"blk.0.attn_v.weight": {64, 256}, "blk.0.ffn_up.weight": {512, 256}, "blk.0.attn_norm.weight": {256}}
	s := &Source{Shape: func(n string) ([]int, bool) { sh, ok := shapes[n]; return sh, ok }, Layers: 2, Rng: rand.New(rand.NewPCG(1, 2))}
	for _, name := range []string{"blk.0.attn_v.weight", "blk.0.ffn_up.weight"} {
		raw, typ, shape, err := s.RawTensor(name)
		if err != nil {
			t.Fatal(err)
		}
		want := gguf.Q4KM(name, shape[1], 2)
		if typ != want.String() {
			t.Fatalf("%s: type %s, Q4_K_M gives %s", name, typ, want)
		}
		w := make([]float32, shape[0]*shape[1])
		if err := gguf.Dequantize(want, raw, w); err != nil {
			t.Fatal(err)
		}
		for i, v := range w {
			// at most d·127·32 (Q6_K's int8 scales and codes) with d = 0.0005
			if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 0.0005*127*32 {
				t.Fatalf("%s: weight %d = %g", name, i, v)
			}
		}
	}
	norm, _, err := s.Tensor("blk.0.attn_norm.weight")
	if err != nil || norm[0] != 1 || norm[255] != 1 {
		t.Fatalf("norm: %v, %v", norm[:2], err)
	}
	if _, _, err := s.Tensor("nope"); err == nil {
		t.Fatal("an unknown tensor gave no error")
	}
	if _, _, _, err := s.RawTensor("blk.0.attn_norm.weight"); err == nil {
		t.Fatal("a vector as a matrix gave no error")
	}
}
