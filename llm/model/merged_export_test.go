package model

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/gguf/randquant"
)

// falconConfigJSON is Falcon-7B's layout (multi-query, parallel attention, one norm) at a tiny width:
// its q, k and v are one fused tensor in both formats, and its Hugging Face rotary layout is
// half-split, so its GGUF export permutes Q and K.
const falconConfigJSON = `{"model_type": "falcon", "architectures": ["FalconForCausalLM"], "hidden_size": 64,
	"num_hidden_layers": 2, "num_attention_heads": 4, "multi_query": true, "parallel_attn": true, "bias": false,
	"alibi": false, "new_decoder_architecture": false, "layer_norm_epsilon": 1e-5, "vocab_size": 512,
	"bos_token_id": 11, "eos_token_id": 11}`

var allTargets = []Target{TargetQ, TargetK, TargetV, TargetO, TargetGate, TargetUp, TargetDown}

// writeExport writes tensors as dir/model.gguf and a Hugging Face directory dir/hf, as the fine-tuning
// export does.
func writeExport(t *testing.T, dir string, cfg format.ModelConfig, tensors []format.NamedTensor) {
	t.Helper()
	if err := format.WriteHF(filepath.Join(dir, "hf"), cfg, tensors, format.HFOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := format.WriteGGUF(filepath.Join(dir, "model.gguf"), cfg, tensors, format.GGUFOptions{Name: "export-test"}); err != nil {
		t.Fatal(err)
	}
}

// sameFiles fails unless dirs a and b hold the same files with the same bytes.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	read := func(root string) map[string][]byte {
		files := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			files[rel], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	fa, fb := read(a), read(b)
	if len(fa) != len(fb) || len(fa) == 0 {
		t.Fatalf("%d files against %d", len(fa), len(fb))
	}
	for name, x := range fa {
		if y, ok := fb[name]; !ok || !bytes.Equal(x, y) {
			t.Errorf("%s differs (%d bytes against %d)", name, len(x), len(y))
		}
	}
}

// greedyTokens decodes n tokens after prompt, always the most likely one.
func greedyTokens(t *testing.T, m *Model, prompt []int32, n int) []int32 {
	t.Helper()
	V := m.Config().Vocab
	cache := m.NewKVCache(len(prompt) + n)
	logits := make([]float32, V)
	if err := m.Extend([]*KVCache{cache}, [][]int32{prompt}, logits); err != nil {
		t.Fatal(err)
	}
	var out []int32
	for range n {
		next := int32(argmax(logits))
		out = append(out, next)
		if err := m.Extend([]*KVCache{cache}, [][]int32{{next}}, logits); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// trainedAdapters gives the adapters random values, as training would (B is zero when attached,
// which would make the merge a copy).
func trainedAdapters(m *Model, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	for _, a := range m.AdapterTensors() {
		for i := range a.Data {
			a.Data[i] = float32(rng.NormFloat64() * 0.05)
		}
	}
}

// An export of a fine-tuned model whose base is held quantized (QLoRA), frozen in bfloat16, or in
// float32 writes, through MergedTensors, the same files bit for bit as widening the base, merging
// the adapters into it and writing the widened weights (the path exports took before). The model is
// left as it was: still quantized or frozen, its adapters attached, generating the same tokens, and
// a second export writes the same files again.
func TestMergedTensorsExportLikeMergeLoRA(t *testing.T) {
	quant := quantTestModel(t, "Q8_0", "Q4_K_M")
	cases := []struct {
		name  string
		load  func(t *testing.T) (*Model, format.ModelConfig)
		lora  LoRAConfig
		check func(m *Model) bool // what the model must still be after export
	}{
		{"Q4_K_M base", loadQuant(quant["Q4_K_M"]), LoRAConfig{Rank: 4, Alpha: 8, FrozenBF16: true, Targets: allTargets},
			func(m *Model) bool { q, _ := m.QuantizedWeights(); return q }},
		{"Q8_0 base, some targets", loadQuant(quant["Q8_0"]), LoRAConfig{Rank: 2, Alpha: 16, FrozenBF16: true, Targets: []Target{TargetQ, TargetV, TargetDown}},
			func(m *Model) bool { q, _ := m.QuantizedWeights(); return q }},
		{"stories260K frozen in bfloat16", loadStoriesBF16, LoRAConfig{Rank: 4, Alpha: 8, FrozenBF16: true, Targets: allTargets},
			func(m *Model) bool { return m.BF16Weights() }},
		{"falcon float32 (fused qkv, half-split rotary)", loadFalcon, LoRAConfig{Rank: 4, Alpha: 8, Targets: []Target{TargetQ, TargetK, TargetV, TargetUp}},
			func(m *Model) bool { return !m.BF16Weights() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, mc := tc.load(t)
			if err := m.AttachLoRA(tc.lora, 3); err != nil {
				t.Fatal(err)
			}
			trainedAdapters(m, 4)
			if !tc.check(m) {
				t.Fatal("the base is not held as the case says")
			}
			prompt := randomTokens(5, 9, m.Config().Vocab)
			before := greedyTokens(t, m, prompt, 12)
			cfg := m.ExportConfig(mc)

			streamed, again, merged := t.TempDir(), t.TempDir(), t.TempDir()
			writeExport(t, streamed, cfg, m.MergedTensors())
			if !tc.check(m) {
				t.Error("export changed how the base is held")
			}
			if _, ok := m.LoRA(); !ok {
				t.Error("export removed the adapters")
			}
			if after := greedyTokens(t, m, prompt, 12); !slices.Equal(before, after) {
				t.Errorf("generation after export %v, before %v", after, before)
			}
			writeExport(t, again, cfg, m.MergedTensors())
			sameFiles(t, streamed, again)

			m.MergeLoRA() // the old export: widen the whole base, merge in place, write views
			writeExport(t, merged, cfg, m.NamedTensors())
			sameFiles(t, streamed, merged)
		})
	}
}

func loadQuant(path string) func(t *testing.T) (*Model, format.ModelConfig) {
	return func(t *testing.T) (*Model, format.ModelConfig) {
		ck, err := format.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		m, err := FromCheckpoint(ck)
		if err != nil {
			t.Fatal(err)
		}
		return m, ck.Config()
	}
}

func loadStoriesBF16(t *testing.T) (*Model, format.ModelConfig) {
	ck, err := format.Open(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := FromCheckpointBF16(ck)
	if err != nil {
		t.Fatal(err)
	}
	return m, ck.Config()
}

func loadFalcon(t *testing.T) (*Model, format.ModelConfig) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(falconConfigJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	mc, err := format.ReadHFModelConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFrom(mc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewRandom(cfg, 9)
	if err != nil {
		t.Fatal(err)
	}
	return m, mc
}

// Exporting a QLoRA model allocates a bounded multiple of its largest tensor in float32, not the
// model: here a 101M-parameter llama held in Q4_K_M (57 MB of blocks, 405 MB in float32) with rank-16
// adapters on every projection is written as safetensors and GGUF (810 MB of float32 files) with
// less than 4 times its largest tensor (the 16 MiB embedding) allocated in all, counted by the Go
// runtime (TotalAlloc: every byte allocated, an upper bound of the heap's growth, whatever the
// collector does meanwhile). The old export (MergeLoRA widening the base) allocates the whole float32
// model, which the same count sees.
func TestMergedExportMemoryBoundedByLargestTensor(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 810 MB")
	}
	mc := format.ModelConfig{Architecture: "llama", Dim: 1024, Layers: 8, Heads: 16, KVHeads: 16, HeadDim: 64, FFN: 2816,
		Vocab: 4096, NormEps: 1e-5, RopeTheta: 10000, RopeDim: 64, ContextLength: 256, Layout: format.LayoutGGUF,
		Rope: format.RopeAdjacent, BOS: 1, EOS: []int{2}, Pad: -1}
	cfg, err := ConfigFrom(mc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := FromSourceQuant(cfg, &randquant.Source{Shape: cfg.TensorShape, Layers: cfg.Layers, Rng: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AttachLoRA(LoRAConfig{Rank: 16, Alpha: 32, FrozenBF16: true, Targets: allTargets}, 3); err != nil {
		t.Fatal(err)
	}
	trainedAdapters(m, 4)
	largest, total := 0, 0
	for _, s := range cfg.tensorSpecs() {
		largest = max(largest, 4*s.size())
		total += 4 * s.size()
	}
	dir := t.TempDir()
	cfgE := m.ExportConfig(mc)

	allocated := func(f func()) uint64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	streamed := allocated(func() { writeExport(t, dir, cfgE, m.MergedTensors()) })
	bound := uint64(4 * largest)
	t.Logf("float32 model %d MB, largest tensor %d MB; streamed export allocated %.1f MB (bound %d MB)",
		total>>20, largest>>20, float64(streamed)/(1<<20), bound>>20)
	if streamed > bound {
		t.Errorf("streamed export allocated %d MB, more than 4 times the largest tensor (%d MB)", streamed>>20, bound>>20)
	}
	if q, _ := m.QuantizedWeights(); !q {
		t.Fatal("export widened the base")
	}
	widened := allocated(m.MergeLoRA)
	t.Logf("widening the base to merge allocated %.1f MB", float64(widened)/(1<<20))
	if widened < uint64(total)*3/4 {
		t.Errorf("MergeLoRA allocated %d MB: the count does not see a widened model (%d MB)", widened>>20, total>>20)
	}
}
