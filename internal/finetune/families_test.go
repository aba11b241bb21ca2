package finetune

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// Tiny random models of each family the SageMaker guide names, in exact Hugging Face layout: the
// config.json keys of the real checkpoints, their tensor names (fused query_key_value / Wqkv), and the
// family's real tokenizer (from ../shared/models/vocab, written as tokenizer.json).
var familyConfigs = map[string]struct{ config, vocab string }{
	"falcon-7b": {`{"model_type": "falcon", "architectures": ["FalconForCausalLM"], "hidden_size": 32, "num_hidden_layers": 2,
		"num_attention_heads": 4, "multi_query": true, "parallel_attn": true, "bias": false, "alibi": false,
		"new_decoder_architecture": false, "layer_norm_epsilon": 1e-5, "vocab_size": 65024, "bos_token_id": 11, "eos_token_id": 11}`, "falcon"},
	"falcon-40b": {`{"model_type": "RefinedWeb", "n_head": 4, "n_head_kv": 2, "n_layer": 2, "hidden_size": 32,
		"parallel_attn": true, "bias": false, "alibi": false, "layer_norm_epsilon": 1e-5, "vocab_size": 65024, "bos_token_id": 11, "eos_token_id": 11}`, "falcon"},
	"gpt_neox": {`{"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"], "hidden_size": 32, "num_hidden_layers": 2,
		"num_attention_heads": 4, "intermediate_size": 128, "hidden_act": "gelu", "rotary_pct": 0.25, "rotary_emb_base": 10000,
		"layer_norm_eps": 1e-5, "use_parallel_residual": true, "tie_word_embeddings": false, "vocab_size": 50432,
		"max_position_embeddings": 2048, "bos_token_id": 0, "eos_token_id": 0}`, "gpt-neox"},
	"mpt": {`{"model_type": "mpt", "architectures": ["MPTForCausalLM"], "d_model": 36, "n_heads": 6, "n_layers": 2,
		"expansion_ratio": 4, "max_seq_len": 2048, "vocab_size": 50432, "no_bias": true, "layer_norm_epsilon": 1e-5,
		"attn_config": {"alibi": true, "alibi_bias_max": 8, "clip_qkv": 6, "attn_impl": "torch", "qk_ln": false}}`, "mpt"},
}

// writeFamilyModel writes a random model of the family into a new Hugging Face directory.
func writeFamilyModel(t *testing.T, family string) string {
	t.Helper()
	fc := familyConfigs[family]
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(fc.config), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := format.ReadHFModelConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.ConfigFrom(ck)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.NewRandom(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := format.WriteHF(dir, m.ExportConfig(ck), m.NamedTensors(), format.HFOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join("..", "..", "..", "shared", "models", "vocab", "ggml-vocab-"+fc.vocab+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.WriteHF(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func familyTaskCSV(t *testing.T) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"input", "output"})
	names := []string{"Lily", "Tom", "Sue", "Ben", "Max", "Mia", "Sam", "Anna", "Tim", "Zoe"}
	for i := range 30 {
		n, a := names[i%10], []string{"cat", "dog", "bird"}[i/10]
		_ = w.Write([]string{fmt.Sprintf("Tell me about %s and the %s.", n, a), fmt.Sprintf("%s had a %s.", n, a)})
	}
	w.Flush()
	path := filepath.Join(t.TempDir(), "train.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each family fine-tunes through the job's pipeline, learns, and exports a model that loads back as
// the same function: a run on the exported Hugging Face directory (and on its model.gguf) measures, as
// its base model's validation loss, exactly the fine-tuned validation loss the first run reported.
func TestFamiliesFineTuneExportAndReload(t *testing.T) {
	data := familyTaskCSV(t)
	for _, family := range []string{"falcon-7b", "falcon-40b", "gpt_neox", "mpt"} {
		t.Run(family, func(t *testing.T) {
			dir := writeFamilyModel(t, family)
			run := func(path, out string, epochs string) *LocalReport {
				t.Helper()
				rep, err := Local{ModelPath: path, Entry: LocalEntry(path, false), Training: data, ValidationFraction: 0.2,
					HyperParameters: map[string]string{"epochCount": epochs, "batchSize": "8", "learningRate": "0.01"},
					OutDir:          out}.Run(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return rep
			}
			out := t.TempDir()
			rep := run(dir, out, "8")
			b, f := rep.Base, rep.FineTuned
			t.Logf("validation loss %.4f -> %.4f, train loss %.4f, rougeL %.3f", b.ValidationLoss, f.ValidationLoss, f.TrainingLoss, f.RougeL)
			if !(f.ValidationLoss < b.ValidationLoss-1) || math.IsNaN(f.ValidationLoss) {
				t.Fatalf("did not learn: validation loss %.4f -> %.4f", b.ValidationLoss, f.ValidationLoss)
			}
			var cfg map[string]any
			raw, err := os.ReadFile(filepath.Join(out, "config.json"))
			if err != nil || json.Unmarshal(raw, &cfg) != nil {
				t.Fatalf("exported config.json: %v", err)
			}
			want := map[string]string{"falcon-7b": "falcon", "falcon-40b": "falcon", "gpt_neox": "gpt_neox", "mpt": "mpt"}[family]
			if cfg["model_type"] != want {
				t.Fatalf("exported model_type %v, want %s", cfg["model_type"], want)
			}
			for _, reloaded := range []string{out, filepath.Join(out, "model.gguf")} {
				again := run(reloaded, t.TempDir(), "1")
				if d := math.Abs(again.Base.ValidationLoss - f.ValidationLoss); d > 1e-4*f.ValidationLoss {
					t.Errorf("%s: validation loss %.6f, the run that exported it reported %.6f", filepath.Base(reloaded), again.Base.ValidationLoss, f.ValidationLoss)
				}
			}
		})
	}
}

// A LoRA fine-tune of falcon writes a PEFT adapter on falcon's own modules: q, k and v's adapters
// become one adapter of rank 3r on query_key_value (rank_pattern, alpha_pattern), and base + the
// adapter's update is the merged model that was exported.
func TestFalconLoRAAdapterIsPEFTs(t *testing.T) {
	dir := writeFamilyModel(t, "falcon-40b")
	out := t.TempDir()
	_, err := Local{ModelPath: dir, Entry: LocalEntry(dir, false), Training: familyTaskCSV(t), ValidationFraction: 0.2,
		HyperParameters: map[string]string{"epochCount": "2", "batchSize": "8", "learningRate": "0.01"}, Method: "lora",
		OutDir: out}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var pc peftConfig
	raw, err := os.ReadFile(filepath.Join(out, "adapter", "adapter_config.json"))
	if err != nil || json.Unmarshal(raw, &pc) != nil {
		t.Fatalf("adapter_config.json: %v", err)
	}
	for _, m := range []string{"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"} {
		if !slices.Contains(pc.TargetModules, m) {
			t.Errorf("target_modules %v lack %s", pc.TargetModules, m)
		}
	}
	if pc.RankPattern["query_key_value"] != float64(3*pc.R) || pc.AlphaPattern["query_key_value"] != 3*pc.LoraAlpha {
		t.Fatalf("rank_pattern %v alpha_pattern %v for r=%d alpha=%g", pc.RankPattern, pc.AlphaPattern, pc.R, pc.LoraAlpha)
	}
	ad, err := safetensors.Open(filepath.Join(out, "adapter", "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	base, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	tuned, err := safetensors.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer tuned.Close()
	const w = "transformer.h.1.self_attention.query_key_value.weight"
	a, _ := ad.Float32("base_model.model.transformer.h.1.self_attention.query_key_value.lora_A.weight")
	bm, _ := ad.Float32("base_model.model.transformer.h.1.self_attention.query_key_value.lora_B.weight")
	w0, err1 := base.Float32(w)
	w1, err2 := tuned.Float32(w)
	if a == nil || bm == nil || err1 != nil || err2 != nil {
		t.Fatalf("tensors missing: %v %v", err1, err2)
	}
	r := int(pc.RankPattern["query_key_value"].(float64))
	cols := len(a) / r
	rows := len(bm) / r
	scale := pc.AlphaPattern["query_key_value"].(float64) / float64(r)
	changed := 0
	for i := range rows {
		for j := range cols {
			var d float64
			for k := range r {
				d += float64(bm[i*r+k]) * float64(a[k*cols+j])
			}
			want := float64(w0[i*cols+j]) + scale*d
			// the frozen base is held in bfloat16: 2^-8 of the weight is its rounding
			if math.Abs(float64(w1[i*cols+j])-want) > math.Abs(float64(w0[i*cols+j]))/256+1e-6 {
				t.Fatalf("row %d col %d: exported %g, base + B·A %g", i, j, w1[i*cols+j], want)
			}
			if math.Abs(scale*d) > 1e-4 {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("the adapter changed nothing")
	}
}
