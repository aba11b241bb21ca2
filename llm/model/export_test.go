package model

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/llm/format"
)

// A fine-tuned (LoRA, merged) stories260K written as GGUF and as a Hugging Face directory reloads
// with exactly the logits it had.
func TestExportReloadSameLogits(t *testing.T) {
	ck, err := format.Open(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	base := ck.Config()
	m, err := FromCheckpoint(ck)
	ck.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AttachLoRA(LoRAConfig{Rank: 2, Alpha: 4, Targets: []Target{TargetQ, TargetK, TargetDown}}, 1); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for _, p := range m.Trainable() {
		for i := range p.Data {
			p.Data[i] += float32(rng.NormFloat64() * 0.05)
		}
	}
	m.MergeLoRA()
	tokens := []int32{1, 400, 300, 17, 99, 260, 5, 411}
	want, err := m.Logits(tokens, 1, len(tokens))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ggufPath, hfDir := filepath.Join(dir, "model.gguf"), filepath.Join(dir, "hf")
	if err := format.WriteGGUF(ggufPath, m.ExportConfig(base), m.NamedTensors(), format.GGUFOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := format.WriteHF(hfDir, m.ExportConfig(base), m.NamedTensors(), format.HFOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{ggufPath, hfDir} {
		r, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := r.Logits(tokens, 1, len(tokens))
		scale := maxAbsDiff(want, make([]float32, len(want)))
		if d := maxAbsDiff(want, got); d > 1e-5*scale {
			t.Errorf("%s (rotary %v): logits differ by %g after reload", filepath.Base(path), r.Config().RopeLayout, d)
		}
	}
}
