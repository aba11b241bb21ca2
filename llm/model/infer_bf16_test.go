package model

import (
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// extendOneByOne feeds toks through a fresh cache one token per Extend (the decoding path, narrow
// products) and returns the logits after each token, [len(toks), Vocab].
func extendOneByOne(t *testing.T, m *Model, toks []int32) []float32 {
	t.Helper()
	V := m.Config().Vocab
	cache := m.NewKVCache(len(toks))
	out := make([]float32, len(toks)*V)
	for i, tk := range toks {
		if err := m.Extend([]*KVCache{cache}, [][]int32{{tk}}, out[i*V:(i+1)*V]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func storiesTokens(t *testing.T) (*Model, []int32) {
	m, tok := loadStories(t)
	ids := tok.Encode(storiesParagraphs[0]+" "+storiesParagraphs[1], true)
	toks := make([]int32, len(ids))
	for i, id := range ids {
		toks[i] = int32(id)
	}
	return m, toks
}

// roundMatricesBF16 rounds every two-dimensional weight (projections, embedding, head) to bfloat16 in
// place, so that UseBF16Weights changes no value and the bfloat16 model can be compared with a
// float32 model of the same weights.
func roundMatricesBF16(m *Model) {
	for _, tn := range m.Tensors() {
		if len(tn.Shape) == 2 {
			for i, v := range tn.Data {
				tn.Data[i] = half.BF16ToF32(half.F32ToBF16(v))
			}
		}
	}
}

// bfloat16 weights change the logits of stories260K (which span about ±10) by at most about 0.1 (the
// weights rounded to 8 mantissa bits; measured 0.09 over these 155 positions), and the most likely
// next token is the same at 97% of positions or more (measured 153 of 155: the two others are near
// ties).
func TestBF16LogitsCloseToFloat32(t *testing.T) {
	m32, toks := storiesTokens(t)
	m16, _ := storiesTokens(t)
	m16.UseBF16Weights()
	a, b := extendOneByOne(t, m32, toks), extendOneByOne(t, m16, toks)
	V := m32.Config().Vocab
	same := 0
	maxD := 0.0
	for i := range toks {
		la, lb := a[i*V:(i+1)*V], b[i*V:(i+1)*V]
		maxD = max(maxD, maxAbsDiff(la, lb))
		if argmax(la) == argmax(lb) {
			same++
		}
	}
	t.Logf("%d positions: max |Δlogit| %.4f, same argmax at %d", len(toks), maxD, same)
	if maxD > 0.2 {
		t.Errorf("max |Δlogit| = %.4f, want below 0.2", maxD)
	}
	if same*100 < 97*len(toks) {
		t.Errorf("argmax agrees at %d of %d positions, want 97%% or more", same, len(toks))
	}
}

// After UseBF16Weights, asking for the float32 tensors widens the base back: decoding then computes
// exactly what a float32 model of the same (already rounded) weights computes, and UseBF16Weights
// again gives back exactly the bfloat16 logits of before.
func TestBF16WeightsThawForTensors(t *testing.T) {
	m, toks := storiesTokens(t)
	toks = toks[:24] // past tensor.NarrowRows, and a prefill of more rows than that below
	roundMatricesBF16(m)
	ref, _ := storiesTokens(t)
	roundMatricesBF16(ref)
	m.UseBF16Weights()
	bf16 := extendOneByOne(t, m, toks)
	_ = m.Tensors()
	if m.BF16Weights() {
		t.Fatal("BF16Weights still true after Tensors widened the base")
	}
	if d := maxAbsDiff(extendOneByOne(t, m, toks), extendOneByOne(t, ref, toks)); d != 0 {
		t.Fatalf("after widening, logits differ from the float32 model's by %g", d)
	}
	m.UseBF16Weights()
	if d := maxAbsDiff(extendOneByOne(t, m, toks), bf16); d != 0 {
		t.Fatalf("bfloat16 again: logits differ from the first time by %g", d)
	}
	// A prompt longer than tensor.NarrowRows is prefilled through the widened layers; its last
	// logits stay close to the token-by-token ones.
	last := make([]float32, m.Config().Vocab)
	if err := m.Extend([]*KVCache{m.NewKVCache(len(toks))}, [][]int32{toks}, last); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(last, bf16[(len(toks)-1)*len(last):]); d > 0.2 {
		t.Fatalf("long prefill and token-by-token decoding differ by %g", d)
	}
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// A prompt longer than the narrow kernels take is multiplied by the packed bfloat16 GEMM where the CPU
// has AVX512_BF16 (the matrices widened a layer at a time elsewhere): its last logits stay as close to
// the float32 model's as decoding's are, and agree with decoding the same tokens one at a time on
// bfloat16 weights (the same weights and the same activation rounding, summed in another order).
func TestBF16PromptMatchesDecoding(t *testing.T) {
	m32, toks := storiesTokens(t)
	m16, _ := storiesTokens(t)
	m16.UseBF16Weights()
	V := m32.Config().Vocab
	if len(toks) <= 16 {
		t.Fatalf("the prompt has %d tokens, want more than the narrow kernels' 16", len(toks))
	}
	prefill := func(m *Model) []float32 {
		cache := m.NewKVCache(len(toks))
		out := make([]float32, V)
		if err := m.Extend([]*KVCache{cache}, [][]int32{toks}, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	p16, p32 := prefill(m16), prefill(m32)
	d16 := extendOneByOne(t, m16, toks)[(len(toks)-1)*V:]
	if d := maxAbsDiff(p16, p32); d > 0.2 {
		t.Errorf("bfloat16 prompt vs float32 prompt: max |Δlogit| = %.4f, want below 0.2", d)
	}
	// Summed in another order, an activation can round to the neighbouring bfloat16 (2⁻⁸ apart): the
	// logits then move by about a bfloat16 step of the largest. Bound: two such steps (float32 prompt
	// and decoding agree to 6e-6 on the same model; here 0.047 with the 1x1 AVX2 dot products, 0.072
	// with the 4x1 blocks, for logits up to 17.4).
	var top float32
	for _, v := range p32 {
		top = max(top, v, -v)
	}
	if d, bound := maxAbsDiff(p16, d16), 2*float64(top)/256; d > bound {
		t.Errorf("bfloat16 prompt vs bfloat16 decoding: max |Δlogit| = %.4f, want below %.4f", d, bound)
	}
	if argmax(p16) != argmax(p32) {
		t.Errorf("the prompt's next token: %d with bfloat16 weights, %d with float32", argmax(p16), argmax(p32))
	}
}
