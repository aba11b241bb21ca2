package format

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// Llama 3.1 8B's rope_scaling gives factors 1 for high frequencies, 8 for low ones and a smooth
// ramp between; the values are from transformers' llama3 formula evaluated in Python.
func TestLlama3RopeFactors(t *testing.T) {
	var hc HFConfig
	if err := json.Unmarshal([]byte(llama31Config), &hc); err != nil {
		t.Fatal(err)
	}
	cfg, err := hc.ModelConfig()
	if err != nil {
		t.Fatal(err)
	}
	f, err := Llama3RopeFactors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]float32{0: 1, 28: 1, 29: 1.2074838876724243, 30: 1.5534145832061768, 32: 2.6945297718048096,
		34: 5.257326602935791, 35: 8, 63: 8}
	if len(f) != 64 {
		t.Fatalf("%d factors", len(f))
	}
	for i, w := range want {
		if d := f[i] - w; d > 1e-6 || d < -1e-6 {
			t.Errorf("factor %d = %.9g, want %.9g", i, f[i], w)
		}
	}
	if none, _ := Llama3RopeFactors(ModelConfig{RopeDim: 8}); none != nil {
		t.Error("factors without llama3 scaling")
	}
}

// A llama-3-scaled model written to GGUF carries rope_freqs.weight, as llama.cpp expects, and
// reading it back gives the same factors; config.json keeps rope_scaling instead.
func TestRopeFreqsThroughGGUF(t *testing.T) {
	cfg := ModelConfig{Architecture: "llama", Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 8, FFN: 8, Vocab: 4,
		NormEps: 1e-5, RopeTheta: 500000, RopeDim: 8, ContextLength: 64, Layout: LayoutHF, Rope: RopeHalf, BOS: -1, Pad: -1,
		RopeScaling: &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 16}}
	want, _ := Llama3RopeFactors(cfg)
	tensors := []NamedTensor{{Name: "token_embd.weight", Shape: []int{4, 16}, Data: make([]float32, 64)}, {Name: "output_norm.weight", Shape: []int{16}, Data: make([]float32, 16)}}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(path, cfg, tensors, GGUFOptions{}); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got, err := RopeFreqFactors(g)
	if err != nil || len(got) != 4 {
		t.Fatalf("factors %v err %v", got, err)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("factor %d: %g, want %g", i, got[i], want[i])
		}
	}
	dir := t.TempDir()
	var all []NamedTensor
	for _, n := range g.Names() {
		d, s, _ := g.Tensor(n)
		all = append(all, NamedTensor{Name: n, Shape: s, Data: d})
	}
	gc := g.Config()
	gc.RopeScaling = cfg.RopeScaling // GGUF has only the tensor; the caller knows the scaling
	if err := WriteHF(dir, gc, all, HFOptions{}); err != nil {
		t.Fatal(err)
	}
	hf, err := OpenHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	fromHF, _ := RopeFreqFactors(hf)
	for i := range fromHF {
		if fromHF[i] != want[i] {
			t.Errorf("HF factor %d: %g, want %g", i, fromHF[i], want[i])
		}
	}
}
