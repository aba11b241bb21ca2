package hubtest

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/t5"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// Falcon7BConfig is Falcon-7B's config.json layout (multi_query, parallel_attn, one input_layernorm,
// rotary) at a width that trains in seconds; its vocabulary is Falcon's real one.
const Falcon7BConfig = `{"model_type": "falcon", "architectures": ["FalconForCausalLM"], "hidden_size": 64,
	"num_hidden_layers": 2, "num_attention_heads": 4, "multi_query": true, "parallel_attn": true, "bias": false,
	"alibi": false, "new_decoder_architecture": false, "layer_norm_epsilon": 1e-5, "vocab_size": 65024,
	"bos_token_id": 11, "eos_token_id": 11}`

// T5Config is Flan-T5's config.json layout (gated-gelu, untied head) at a tiny width, for a T5-shaped
// tokenizer of at most 3,456 tokens.
const T5Config = `{"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "d_model": 64, "d_kv": 16,
	"d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 32,
	"relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6, "feed_forward_proj": "gated-gelu",
	"tie_word_embeddings": false, "vocab_size": 3456, "decoder_start_token_id": 0, "eos_token_id": 1,
	"pad_token_id": 0, "is_encoder_decoder": true}`

// WriteDecoder writes a random decoder-only model with config.json configJSON (any family llm/format
// reads) into dir, with the tokenizer read from tokenizerPath (a vocabulary GGUF or a Hugging Face
// folder) as tokenizer.json.
func WriteDecoder(dir, configJSON, tokenizerPath string, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(configJSON), 0o644); err != nil {
		return err
	}
	ck, err := format.ReadHFModelConfig(dir)
	if err != nil {
		return err
	}
	cfg, err := model.ConfigFrom(ck)
	if err != nil {
		return err
	}
	m, err := model.NewRandom(cfg, seed)
	if err != nil {
		return err
	}
	if err := format.WriteHF(dir, m.ExportConfig(ck), m.NamedTensors(), format.HFOptions{}); err != nil {
		return err
	}
	tok, err := tokenizer.Load(tokenizerPath)
	if err != nil {
		return fmt.Errorf("tokenizer %s: %w", tokenizerPath, err)
	}
	return tok.WriteHF(dir)
}

// WriteT5 writes a random T5 with config.json T5Config into dir, with tokenizerJSON (a T5 Unigram
// tokenizer.json) beside it.
func WriteT5(dir, tokenizerJSON string, seed uint64) error {
	cfg, err := t5.ParseConfig([]byte(T5Config))
	if err != nil {
		return err
	}
	m, err := t5.NewRandom(cfg, seed)
	if err != nil {
		return err
	}
	if err := m.Save(dir); err != nil {
		return err
	}
	tj, err := os.ReadFile(tokenizerJSON)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644)
}
