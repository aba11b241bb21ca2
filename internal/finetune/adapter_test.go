package finetune

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
)

// The adapter a LoRA job exports must be what PEFT would load on top of the base model: for each
// target, base + (alpha/r)·B·A equals the merged weight the job exports, in Hugging Face's layout
// (which checks that the q/k rows were brought back from GGUF's rotary order). LoRA training keeps
// the frozen base in bfloat16, so the base here is the float32 base rounded to bfloat16.
func TestExportWritesPEFTAdapter(t *testing.T) {
	dir := t.TempDir()
	base := loadStories(t)
	hasAdapter, err := base.Export(filepath.Join(dir, "base"), filepath.Join(dir, "base-adapter"))
	if err != nil {
		t.Fatal(err)
	}
	if hasAdapter {
		t.Error("a model without adapters reported an adapter")
	}
	if _, err := os.Stat(filepath.Join(dir, "base-adapter")); !os.IsNotExist(err) {
		t.Errorf("a model without adapters wrote an adapter folder (%v)", err)
	}

	lm := loadStories(t)
	seqs := encodeRows(lm, patternRows(16))
	tr, err := lm.NewTrainer(HyperParameters{Epochs: 1, BatchSize: 8, LearningRate: 1e-2, Method: "lora", LoRARank: 4,
		LoRAAlpha: 8, Schedule: "cosine", GradClip: 1, Seed: 7}, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	for s := range 3 {
		if _, err := tr.Step(context.Background(), seqs[(s%2)*8:(s%2)*8+8]); err != nil {
			t.Fatal(err)
		}
	}
	if hasAdapter, err = lm.Export(filepath.Join(dir, "merged"), filepath.Join(dir, "adapter")); err != nil || !hasAdapter {
		t.Fatalf("export: adapter %v, err %v", hasAdapter, err)
	}

	var cfg peftConfig
	data, err := os.ReadFile(filepath.Join(dir, "adapter", "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	wantModules := []string{"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}
	if cfg.PeftType != "LORA" || cfg.R != 4 || cfg.LoraAlpha != 8 || !slices.Equal(cfg.TargetModules, wantModules) {
		t.Errorf("adapter_config.json: %+v", cfg)
	}

	open := func(path string) *safetensors.File {
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	adapter := open(filepath.Join(dir, "adapter", "adapter_model.safetensors"))
	baseW := open(filepath.Join(dir, "base", "model.safetensors"))
	mergedW := open(filepath.Join(dir, "merged", "model.safetensors"))
	read := func(f *safetensors.File, name string) ([]float32, []int) {
		info, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("tensor %s missing", name)
		}
		x, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return x, info.Shape
	}
	scale := cfg.LoraAlpha / float64(cfg.R)
	for _, module := range []string{"model.layers.0.self_attn.q_proj", "model.layers.2.self_attn.k_proj", "model.layers.4.mlp.down_proj"} {
		a, aShape := read(adapter, "base_model.model."+module+".lora_A.weight")
		b, bShape := read(adapter, "base_model.model."+module+".lora_B.weight")
		w0, wShape := read(baseW, module+".weight")
		w1, _ := read(mergedW, module+".weight")
		out, in, r := wShape[0], wShape[1], cfg.R
		if !slices.Equal(aShape, []int{r, in}) || !slices.Equal(bShape, []int{out, r}) {
			t.Fatalf("%s: A %v, B %v for a weight %v", module, aShape, bShape, wShape)
		}
		moved := false
		for i := range out {
			for j := range in {
				var d float64
				for k := range r {
					d += float64(b[i*r+k]) * float64(a[k*in+j])
				}
				want := float64(half.BF16ToF32(half.F32ToBF16(w0[i*in+j]))) + scale*d
				if math.Abs(float64(w1[i*in+j])-want) > 1e-5 {
					t.Fatalf("%s[%d,%d]: merged %v, base + (alpha/r)·B·A = %v", module, i, j, w1[i*in+j], want)
				}
				moved = moved || d != 0
			}
		}
		if !moved {
			t.Errorf("%s: the adapter is zero after training", module)
		}
	}
}
