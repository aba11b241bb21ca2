package model

import (
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// A LoRA model whose frozen base is held in bfloat16 computes what the float32 model computes with
// the same weights rounded to bfloat16: in training, generation, after a rotary layout change and
// after merging; and its gradients are those of that model.
func TestFrozenBF16Base(t *testing.T) {
	cfg := smallConfig()
	lc := LoRAConfig{Rank: 3, Alpha: 6, Targets: []Target{TargetQ, TargetK, TargetV, TargetO, TargetGate, TargetUp, TargetDown}}
	bf, _ := NewRandom(cfg, 20)
	ref, _ := NewRandom(cfg, 20)
	// the reference: the same weights, block matrices rounded to bfloat16 by hand
	for _, s := range cfg.tensorSpecs() {
		if isLayerMatrix(s) {
			w := *ref.n.w.ptr(s.layer, s.field)
			for i := range w {
				w[i] = half.BF16ToF32(half.F32ToBF16(w[i]))
			}
		}
	}
	fpBefore := bf.Fingerprint()
	bfc, refc := lc, lc
	bfc.FrozenBF16 = true
	if err := bf.AttachLoRA(bfc, 1); err != nil {
		t.Fatal(err)
	}
	ref.AttachLoRA(refc, 1)
	if bf.n.frozen == nil || bf.n.w.layers[0].wq != nil {
		t.Fatal("block matrices still held in float32")
	}
	if fp := bf.Fingerprint(); fp != fpBefore || fp != ref.Fingerprint() {
		t.Fatalf("fingerprints: before %s, frozen %s, rounded reference %s", fpBefore, fp, ref.Fingerprint())
	}
	rng := rand.New(rand.NewPCG(21, 21))
	bp, rp := bf.Trainable(), ref.Trainable()
	for i := range bp {
		for j := range bp[i].Data {
			v := float32(rng.NormFloat64() * 0.1)
			bp[i].Data[j] += v
			rp[i].Data[j] += v
		}
	}
	ex := []Example{{Tokens: randomTokens(22, 12, 50), PromptLen: 4}, {Tokens: randomTokens(23, 12, 50), PromptLen: 2}}
	batch := PackBatch(ex, 11, 0)
	sb, _ := bf.ForwardBackward(batch, 0.1, 5)
	sr, _ := ref.ForwardBackward(batch, 0.1, 5)
	if sb != sr {
		t.Fatalf("loss %g with a bfloat16 base, %g with the rounded float32 base", sb, sr)
	}
	for i := range bp {
		for j := range bp[i].Grad {
			if bp[i].Grad[j] != rp[i].Grad[j] {
				t.Fatalf("%s gradient [%d]: %g vs %g", bp[i].Name, j, bp[i].Grad[j], rp[i].Grad[j])
			}
		}
	}
	tokens := randomTokens(24, 10, 50)
	V := cfg.Vocab
	full, _ := ref.Logits(tokens, 1, 10)
	c := bf.NewKVCache(10)
	logits := make([]float32, V)
	if err := bf.Extend([]*KVCache{c}, [][]int32{tokens}, logits); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(logits, full[9*V:]); d > 1e-5 {
		t.Fatalf("generation with a bfloat16 base differs by %g", d)
	}
	bf.SetRopeLayout(RopeHalfSplit)
	ref.SetRopeLayout(RopeHalfSplit)
	if bf.n.frozen == nil {
		t.Fatal("layout change left the base in float32")
	}
	bf.MergeLoRA()
	ref.MergeLoRA()
	a, _ := bf.Logits(tokens, 1, 10)
	b, _ := ref.Logits(tokens, 1, 10)
	if d := maxAbsDiff(a, b); d != 0 {
		t.Fatalf("merged models differ by %g", d)
	}
	for i, tn := range bf.Tensors() {
		if rt := ref.Tensors()[i]; maxAbsDiff(tn.Data, rt.Data) != 0 {
			t.Fatalf("%s differs after merge", tn.Name)
		}
	}
}
