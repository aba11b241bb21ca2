package t5

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/llm/model"
)

// TestLoRAGradients checks the adapters' backward against finite differences in float64, on every
// target T5 has (the attention's q, k, v, o in all three attention kinds, and the feed-forward), and
// that the frozen base gets no projection gradient.
func TestLoRAGradients(t *testing.T) {
	for _, gated := range []bool{true, false} {
		ff := "relu"
		if gated {
			ff = "gated-gelu"
		}
		cfg := tinyConfig(ff, !gated)
		m := newNet[float64](cfg)
		m.w.initRandom(cfg, 7)
		targets := []model.Target{model.TargetQ, model.TargetK, model.TargetV, model.TargetO, model.TargetUp, model.TargetDown}
		if gated {
			targets = append(targets, model.TargetGate)
		}
		lo, err := newLoRAAdapters[float64](cfg, model.LoRAConfig{Rank: 2, Alpha: 3, Targets: targets}, 5)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(9, 9))
		for i := range lo.slab { // B non-zero, so that A's gradient is too
			if lo.slab[i] == 0 {
				lo.slab[i] = 0.2 * rng.NormFloat64()
			}
		}
		m.lora, m.hook, m.frozen = lo, lo, true
		m.g = newWeights[float64](cfg)
		b := tinyBatch()
		m.forward(&b, true, 1)
		m.backward(&b)
		loss := func() float64 { return m.forward(&b, false, 0) }
		for _, ad := range lo.order {
			name := cfg.moduleName(ad.s)
			checkGrad(t, name+".lora_A", ad.a, ad.ga, rng.Perm(len(ad.a))[:min(8, len(ad.a))], loss)
			checkGrad(t, name+".lora_B", ad.b, ad.gb, rng.Perm(len(ad.b))[:min(8, len(ad.b))], loss)
		}
		for _, s := range cfg.sites() {
			if g := m.g.weightOf(s); slices.ContainsFunc(g, func(v float64) bool { return v != 0 }) {
				t.Fatalf("frozen %s got a gradient", cfg.moduleName(s))
			}
		}
	}
}

// TestLoRAAttachAndMerge: attaching adapters leaves the model's outputs as they were (B = 0); after
// training-like changes to B, merging them into the base gives the adapted model's logits, and the
// adapter tensors carry PEFT's names.
func TestLoRAAttachAndMerge(t *testing.T) {
	cfg := tinyConfig("gated-gelu", false)
	m, err := NewRandom(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	b := tinyBatch()
	before, err := m.Logits(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AttachLoRA(model.LoRAConfig{Rank: 4, Alpha: 8, Targets: []model.Target{model.TargetQ, model.TargetV}}, 1); err != nil {
		t.Fatal(err)
	}
	attached, _ := m.Logits(b)
	if d := maxAbsDiff(before, attached); d != 0 {
		t.Fatalf("attaching adapters changed the logits by %g", d)
	}
	ads := m.Adapters()
	// q and v of the encoder's self-attention, the decoder's self- and cross-attention, A and B each.
	if want := 2 * 2 * (cfg.EncoderLayers + 2*cfg.DecoderLayers); len(ads) != want {
		t.Fatalf("%d adapter tensors, want %d", len(ads), want)
	}
	if ads[0].Name != "encoder.block.0.layer.0.SelfAttention.q.lora_A.weight" ||
		ads[len(ads)-1].Name != fmt.Sprintf("decoder.block.%d.layer.1.EncDecAttention.v.lora_B.weight", cfg.DecoderLayers-1) {
		t.Fatalf("adapter names %s ... %s", ads[0].Name, ads[len(ads)-1].Name)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for _, a := range ads {
		for i := range a.Data {
			a.Data[i] += float32(0.05 * rng.NormFloat64())
		}
	}
	adapted, _ := m.Logits(b)
	if d := maxAbsDiff(before, adapted); d < 1e-4 {
		t.Fatalf("changed adapters moved the logits by only %g", d)
	}
	if n := len(m.Trainable()); n != len(ads) {
		t.Fatalf("%d trainable tensors with adapters, want the %d adapters", n, len(ads))
	}
	tb := tinyBatch()
	if _, err := m.ForwardBackward(tb, 1); err != nil {
		t.Fatal(err)
	}
	if m.n.g.slab != nil {
		t.Fatalf("a LoRA step allocated %d base gradients", len(m.n.g.slab))
	}
	if !slices.ContainsFunc(ads[len(ads)-1].Grad, func(v float32) bool { return v != 0 }) {
		t.Fatal("the adapters got no gradient")
	}
	m.MergeLoRA()
	merged, _ := m.Logits(b)
	if d := maxAbsDiff(adapted, merged); d > 1e-5 {
		t.Fatalf("merged model's logits differ from the adapted model's by %g", d)
	}
	if _, has := m.LoRA(); has {
		t.Fatal("adapters still attached after MergeLoRA")
	}
	if err := m.AttachLoRA(model.LoRAConfig{Rank: 4, Alpha: 8, Targets: []model.Target{model.TargetGate}}, 1); err != nil {
		t.Fatalf("gate (wi_0) is a target of a gated model: %v", err)
	}
	relu, _ := NewRandom(tinyConfig("relu", true), 1)
	if err := relu.AttachLoRA(model.LoRAConfig{Rank: 4, Alpha: 8, Targets: []model.Target{model.TargetGate}}, 1); err == nil {
		t.Fatal("a model without a gated feed-forward accepted a gate adapter")
	}
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// TestLoRAFrozenBF16: with FrozenBF16 the projections move to bfloat16 (the float32 weights shrink to
// the embedding, head, norms and biases), the model computes what its bfloat16-rounded self computes,
// the fingerprint does not change, and merging restores float32 weights equal to the adapted model.
func TestLoRAFrozenBF16(t *testing.T) {
	cfg := tinyConfig("gated-gelu", false)
	m, err := NewRandom(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	b := tinyBatch()
	before, _ := m.Logits(b)
	fp := m.Fingerprint()
	full := len(m.n.w.slab)
	lc := model.LoRAConfig{Rank: 4, Alpha: 8, Targets: []model.Target{model.TargetQ, model.TargetV}, FrozenBF16: true}
	if err := m.AttachLoRA(lc, 1); err != nil {
		t.Fatal(err)
	}
	if m.n.bf16 == nil || len(m.n.w.slab) >= full {
		t.Fatalf("float32 weights %d of %d after freezing", len(m.n.w.slab), full)
	}
	if got := m.Fingerprint(); got != fp {
		t.Fatalf("fingerprint %s after freezing, %s before", got, fp)
	}
	frozen, err := m.Logits(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(before, frozen); d > 0.05 || d == 0 {
		t.Fatalf("bfloat16 base moved the logits by %g (want a rounding's worth, not 0)", d)
	}
	for _, a := range m.Adapters() {
		for i := range a.Data {
			a.Data[i] += 0.01
		}
	}
	if _, err := m.ForwardBackward(b, 1); err != nil {
		t.Fatal(err)
	}
	adapted, _ := m.Logits(b)
	m.MergeLoRA()
	merged, _ := m.Logits(b)
	if d := maxAbsDiff(adapted, merged); d > 1e-4 {
		t.Fatalf("merged logits differ from the adapted model's by %g", d)
	}
	for _, ts := range m.Tensors() {
		if ts.Data == nil {
			t.Fatalf("%s has no float32 data after merging", ts.Name)
		}
	}
}
