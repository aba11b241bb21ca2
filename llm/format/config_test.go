package format

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// config.json files as published on the Hugging Face hub.
const (
	tinyLlamaConfig = `{"architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2,
 "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5632, "max_position_embeddings": 2048,
 "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 22, "num_key_value_heads": 4, "pretraining_tp": 1,
 "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
 "transformers_version": "4.35.0", "use_cache": true, "vocab_size": 32000}`
	qwen2Config = `{"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645,
 "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864, "max_position_embeddings": 32768,
 "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
 "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
 "transformers_version": "4.40.1", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}`
	llama31Config = `{"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 128000,
 "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
 "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32,
 "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
 "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
 "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 128256}`
	mistralConfig = `{"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096,
 "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
 "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
 "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0",
 "use_cache": true, "vocab_size": 32000}`
)

func TestHFConfigToModelConfig(t *testing.T) {
	tests := []struct {
		name string
		json string
		want ModelConfig
	}{
		{"TinyLlama 1.1B", tinyLlamaConfig, ModelConfig{Architecture: "llama", Dim: 2048, Layers: 22, Heads: 32, KVHeads: 4, HeadDim: 64,
			FFN: 5632, Vocab: 32000, NormEps: 1e-5, RopeTheta: 10000, RopeDim: 64, ContextLength: 2048,
			Layout: LayoutHF, Rope: RopeHalf, BOS: 1, EOS: []int{2}, Pad: -1}},
		{"Qwen2 0.5B: tied, biases", qwen2Config, ModelConfig{Architecture: "qwen2", Dim: 896, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64,
			FFN: 4864, Vocab: 151936, NormEps: 1e-6, RopeTheta: 1e6, RopeDim: 64, ContextLength: 32768, TiedEmbeddings: true,
			AttentionBias: true, Layout: LayoutHF, Rope: RopeHalf, BOS: 151643, EOS: []int{151645}, Pad: -1}},
		{"Llama 3.1 8B: llama3 rope scaling, three eos", llama31Config, ModelConfig{Architecture: "llama", Dim: 4096, Layers: 32, Heads: 32,
			KVHeads: 8, HeadDim: 128, FFN: 14336, Vocab: 128256, NormEps: 1e-5, RopeTheta: 500000, RopeDim: 128,
			RopeScaling:   &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192},
			ContextLength: 131072, Layout: LayoutHF, Rope: RopeHalf, BOS: 128000, EOS: []int{128001, 128008, 128009}, Pad: -1}},
		{"Mistral 7B: sliding window", mistralConfig, ModelConfig{Architecture: "mistral", Dim: 4096, Layers: 32, Heads: 32, KVHeads: 8,
			HeadDim: 128, FFN: 14336, Vocab: 32000, NormEps: 1e-5, RopeTheta: 10000, RopeDim: 128, ContextLength: 32768,
			SlidingWindow: 4096, Layout: LayoutHF, Rope: RopeHalf, BOS: 1, EOS: []int{2}, Pad: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c HFConfig
			if err := json.Unmarshal([]byte(tc.json), &c); err != nil {
				t.Fatal(err)
			}
			got, err := c.ModelConfig()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
			// Written back and re-read, config.json gives the same model.
			back, err := HFConfigFrom(got, "bfloat16")
			if err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(back)
			var again HFConfig
			if err := json.Unmarshal(js, &again); err != nil {
				t.Fatal(err)
			}
			if m, err := again.ModelConfig(); err != nil || !reflect.DeepEqual(m, tc.want) {
				t.Errorf("after writing config.json:\n got %+v (%v)\n%s", m, err, js)
			}
		})
	}
}

func TestHFConfigRejects(t *testing.T) {
	tests := []struct{ name, json string }{
		{"unknown model type", `{"model_type": "gpt2", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 4}`},
		{"gelu", `{"model_type": "llama", "hidden_act": "gelu", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 4}`},
		{"kv heads do not divide heads", `{"model_type": "llama", "hidden_size": 12, "num_hidden_layers": 1, "num_attention_heads": 3, "num_key_value_heads": 2, "intermediate_size": 8, "vocab_size": 4}`},
		{"missing sizes", `{"model_type": "llama"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c HFConfig
			if err := json.Unmarshal([]byte(tc.json), &c); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ModelConfig(); err == nil {
				t.Error("accepted")
			}
		})
	}
	dir := t.TempDir()
	if _, err := ReadHFConfig(dir); err == nil {
		t.Error("ReadHFConfig of a directory without config.json succeeded")
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": `), 0o644)
	if _, err := OpenHF(dir); err == nil {
		t.Error("OpenHF with a truncated config.json succeeded")
	}
}

func TestGenerationConfig(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadGenerationConfig(dir); ok || err != nil {
		t.Errorf("absent file: ok %v err %v", ok, err)
	}
	// Llama 3.1 8B Instruct's generation_config.json.
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"bos_token_id": 128000, "do_sample": true,
  "eos_token_id": [128001, 128008, 128009], "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.42.3"}`), 0o644)
	g, ok, err := ReadGenerationConfig(dir)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if g.BOSTokenID.First() != 128000 || len(g.EOSTokenID) != 3 || g.Temperature == nil || *g.Temperature != 0.6 ||
		g.TopP == nil || *g.TopP != 0.9 || g.DoSample == nil || !*g.DoSample || g.TopK != nil {
		t.Errorf("parsed %+v", g)
	}
}
