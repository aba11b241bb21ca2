package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/half"
	"github.com/lathe-ml/lathe/llm/tensor"
)

// A LoRA model whose frozen base is held in bfloat16 computes what the float32 model computes with
// the same weights rounded to bfloat16: in training, generation, after a rotary layout change and
// after merging; and its gradients are those of that model. With WidenFrozen (and on a CPU without
// AVX512_BF16) it does so to the bit; with the base's products in bfloat16, where the CPU has them,
// the activations are rounded too, and the loss and gradients agree to bfloat16 precision.
func TestFrozenBF16Base(t *testing.T) {
	for _, widen := range []bool{true, false} {
		t.Run(fmt.Sprintf("widen=%v", widen), func(t *testing.T) { testFrozenBF16Base(t, widen) })
	}
}

func testFrozenBF16Base(t *testing.T, widen bool) {
	exact := widen || !tensor.BF16Native()
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
	bfc.FrozenBF16, bfc.WidenFrozen = true, widen
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
	if exact && sb != sr || math.Abs(sb-sr) > 2e-3*math.Abs(sr) {
		t.Fatalf("loss %g with a bfloat16 base, %g with the rounded float32 base", sb, sr)
	}
	for i := range bp {
		if !exact {
			// bfloat16 activations: each gradient within a few bfloat16 steps of the exact one, as a
			// whole (an element near zero can differ by more than its own size).
			var d2, r2 float64
			for j, g := range bp[i].Grad {
				d := float64(g - rp[i].Grad[j])
				d2, r2 = d2+d*d, r2+float64(rp[i].Grad[j])*float64(rp[i].Grad[j])
			}
			if math.Sqrt(d2) > 0.02*math.Sqrt(r2) {
				t.Fatalf("%s gradient differs by %.3g of its norm", bp[i].Name, math.Sqrt(d2/r2))
			}
			continue
		}
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

// FromCheckpointBF16 loads the block matrices straight into bfloat16: the model is the one
// FromCheckpoint + a FrozenBF16 LoRA makes (same fingerprint, same logits and training step to the
// bit), without a float32 copy of the matrices ever held, and it thaws to the rounded weights.
func TestFromCheckpointBF16(t *testing.T) {
	open := func() format.Checkpoint {
		ck, err := format.Open(storiesPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ck.Close() })
		return ck
	}
	direct, err := FromCheckpointBF16(open())
	if err != nil {
		t.Fatal(err)
	}
	if direct.n.frozen == nil || direct.n.w.layers[0].wq != nil {
		t.Fatal("block matrices held in float32")
	}
	via, err := FromCheckpoint(open())
	if err != nil {
		t.Fatal(err)
	}
	lc := LoRAConfig{Rank: 2, Alpha: 4, Targets: []Target{TargetQ, TargetV, TargetDown}, FrozenBF16: true}
	if direct.Fingerprint() != via.Fingerprint() {
		t.Fatal("fingerprints differ")
	}
	for _, m := range []*Model{direct, via} {
		if err := m.AttachLoRA(lc, 3); err != nil {
			t.Fatal(err)
		}
	}
	tokens := []int32{1, 400, 300, 17, 99, 260, 5, 411}
	a, _ := direct.Logits(tokens, 1, len(tokens))
	b, _ := via.Logits(tokens, 1, len(tokens))
	if !slices.Equal(a, b) {
		t.Fatal("logits differ between the direct bfloat16 load and freezing after a float32 load")
	}
	batch := PackBatch([]Example{{Tokens: tokens, PromptLen: 1}}, len(tokens)-1, 0)
	la, _ := direct.ForwardBackward(batch, 1, 7)
	lb, _ := via.ForwardBackward(batch, 1, 7)
	ga, gb := direct.Trainable(), via.Trainable()
	if la != lb || !slices.Equal(ga[0].Grad, gb[0].Grad) {
		t.Fatalf("training step differs: loss %g vs %g", la, lb)
	}
	for i, ts := range direct.Tensors() {
		if want := via.Tensors()[i]; !slices.Equal(ts.Data, want.Data) {
			t.Fatalf("%s thaws to other values", ts.Name)
		}
	}
}
