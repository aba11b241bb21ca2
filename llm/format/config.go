// Package format gives the model loader one view of a checkpoint, whichever format it came in:
// a GGUF file (llama.cpp, ollama) or a Hugging Face directory (config.json + safetensors).
//
// A Checkpoint has a ModelConfig (sizes, epsilon, rotary settings, which rotary pairing its Q/K
// weights expect) and tensors under one naming scheme, GGUF's ("blk.3.attn_q.weight"; see
// names.go for the mapping to Hugging Face names), each returned as float32 in row-major order
// with the PyTorch shape ([out, in] for a weight matrix).
//
// Rotary layout. Hugging Face llama-family models rotate pairs (i, i+d/2) of each head
// (rotate_half). llama.cpp's converter permutes the rows of Q and K of llama/mistral models so
// that GGUF files rotate adjacent pairs (2i, 2i+1) instead (ggml's "normal" rope); for qwen2 it
// does not permute, and GGUF qwen2 files keep the half-split pairing (ggml's "neox" rope).
// ModelConfig.Rope says which pairing a checkpoint's tensors need; AdjacentRope wraps any
// checkpoint so that it always reads in the adjacent layout, and PermuteHFToGGUF /
// PermuteGGUFToHF convert the rows themselves.
//
// Loading and saving a model:
//
//	ck, err := format.Open(path)   // a .gguf file or a Hugging Face directory
//	ck = format.AdjacentRope(ck)   // if the model implements only adjacent-pair RoPE
//	cfg := ck.Config()
//	freqFactors, err := format.RopeFreqFactors(ck) // llama-3 rope scaling (nil for most models)
//	wq, shape, err := ck.Tensor(format.LayerTensor(0, "attn_q.weight")) // shape [heads*headDim, dim]
//	tok, err := tokenizer.Load(path)  // llm/tokenizer, same path
//
//	format.WriteGGUF(out, cfg, tensors, format.GGUFOptions{Type: gguf.F16, Extra: tokKVs}) // tokKVs from tok.GGUFMetadata()
//	format.WriteHF(dir, cfg, tensors, format.HFOptions{}); tok.WriteHF(dir)
//
// where tensors are NamedTensor values in the rotary layout cfg.Rope says.
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Layout names the on-disk format a checkpoint came from.
type Layout string

// The checkpoint layouts.
const (
	LayoutGGUF Layout = "gguf"
	LayoutHF   Layout = "hf"
)

// RopePairing says which dimensions of a head rotate together.
type RopePairing string

const (
	// RopeAdjacent rotates (2i, 2i+1): GGUF llama/mistral files (Q/K rows permuted by the converter).
	RopeAdjacent RopePairing = "adjacent"
	// RopeHalf rotates (i, i+headDim/2): Hugging Face's rotate_half, and GGUF qwen2 files.
	RopeHalf RopePairing = "half"
)

// RopeScaling is the rotary frequency scaling from config.json's rope_scaling (or GGUF's
// rope.scaling.* keys). Type is "linear", "dynamic", "yarn", "llama3", ...; the fields that do
// not apply to a type are zero.
type RopeScaling struct {
	Type                          string  `json:"rope_type,omitempty"`
	Factor                        float64 `json:"factor,omitempty"`
	LowFreqFactor                 float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor                float64 `json:"high_freq_factor,omitempty"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings,omitempty"`
}

// UnmarshalJSON accepts both "rope_type" and the older "type" key.
func (r *RopeScaling) UnmarshalJSON(b []byte) error {
	type plain RopeScaling
	var aux struct {
		plain
		OldType string `json:"type"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*r = RopeScaling(aux.plain)
	if r.Type == "" {
		r.Type = aux.OldType
	}
	return nil
}

// ModelConfig is what the model needs to know to build itself from a checkpoint.
type ModelConfig struct {
	Architecture   string // Hugging Face model_type: "llama", "mistral", "qwen2", "falcon", "gpt_neox", "mpt"
	Dim            int    // hidden size
	Layers         int
	Heads          int // query heads
	KVHeads        int // key/value heads (grouped-query attention); query head j uses kv head j/(Heads/KVHeads)
	HeadDim        int
	FFN            int // feed-forward hidden size (SwiGLU's or the MLP's)
	Vocab          int
	NormEps        float64 // RMSNorm or LayerNorm epsilon
	RopeTheta      float64
	RopeDim        int          // dimensions of each head that rotate (HeadDim unless the file says otherwise)
	RopeScaling    *RopeScaling // nil when none; for llama-3 scaling use RopeFreqFactors (GGUF files carry rope_freqs.weight instead)
	ContextLength  int
	SlidingWindow  int  // attention window (mistral v0.1: 4096); 0 when attention is full
	TiedEmbeddings bool // no separate output head: the output projection is token_embd.weight
	AttentionBias  bool // Q/K/V have biases (qwen2, gpt_neox, falcon with bias)

	// The block's variant, as llama.cpp's graph builders take it (build_norm, build_ffn): the zero
	// values are llama's.
	Norm         NormKind // RMSNorm (llama) or LayerNorm (falcon, gpt_neox, mpt)
	NormBias     bool     // LayerNorms have biases (falcon, gpt_neox; not mpt's no_bias)
	Act          string   // feed-forward: "" or "silu" (SwiGLU, gated), "gelu" (exact), "gelu_tanh": a plain MLP
	OutputBias   bool     // the attention output projection has a bias (gpt_neox, falcon with bias)
	MLPBias      bool     // the feed-forward projections have biases (gpt_neox, falcon with bias)
	ParallelAttn bool     // x + attn(norm1(x)) + mlp(norm2(x)) instead of two residual steps
	SharedNorm   bool     // with ParallelAttn: one norm feeds attention and MLP (falcon-7b)
	// ALiBi replaces rotary embeddings with linear biases -slope_h·(t−s) on the attention scores,
	// slopes as mpt's gen_slopes / bloom's with ALiBiBiasMax (8). ALiBiPreScale adds them before the
	// 1/√HeadDim scaling (falcon) rather than after (mpt).
	ALiBi         bool
	ALiBiBiasMax  float64
	ALiBiPreScale bool
	ClipQKV       float64 // mpt: q, k and v clamped to [−ClipQKV, ClipQKV]; 0 when none
	// Source is the config.json of the checkpoint this configuration came from, if any: written back
	// under the exported keys so that keys Lathe does not model survive a fine-tune.
	Source []byte
	Layout Layout
	Rope   RopePairing // the pairing the checkpoint's Q/K tensors expect
	BOS    int         // -1 when none
	EOS    []int       // every end-of-sequence id (llama-3 has several)
	Pad    int         // -1 when none
}

// NormKind is a block's normalisation.
type NormKind int

// The normalisations.
const (
	NormRMS   NormKind = iota // x/rms(x)·w
	NormLayer                 // (x−mean)/std·w (+ b)
)

// Gated reports whether the feed-forward is SwiGLU (gate, up, down) rather than a plain MLP (up, down).
func (c ModelConfig) Gated() bool { return c.Act == "" || c.Act == "silu" }

// Validate checks that the sizes are consistent.
func (c ModelConfig) Validate() error {
	switch {
	case c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.FFN <= 0 || c.Vocab <= 0 || c.HeadDim <= 0:
		return fmt.Errorf("model config: sizes must be positive (dim %d, layers %d, heads %d, kv heads %d, head dim %d, ffn %d, vocab %d)",
			c.Dim, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.FFN, c.Vocab)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("model config: %d query heads are not a multiple of %d kv heads", c.Heads, c.KVHeads)
	case c.HeadDim%2 != 0 || c.RopeDim%2 != 0 || c.RopeDim > c.HeadDim:
		return fmt.Errorf("model config: head dim %d / rope dim %d must be even, rope dim at most head dim", c.HeadDim, c.RopeDim)
	case c.Rope != RopeAdjacent && c.Rope != RopeHalf:
		return fmt.Errorf("model config: unknown rope pairing %q", c.Rope)
	case c.Act != "" && c.Act != "silu" && c.Act != "gelu" && c.Act != "gelu_tanh":
		return fmt.Errorf("model config: activation %q not supported (silu, gelu, gelu_tanh)", c.Act)
	case c.SharedNorm && !c.ParallelAttn:
		return fmt.Errorf("model config: a shared norm needs the parallel attention/MLP block")
	case c.ClipQKV < 0:
		return fmt.Errorf("model config: negative clip_qkv %g", c.ClipQKV)
	}
	return nil
}

// TokenIDs is a token id field that config files write as a number, a list or null.
type TokenIDs []int

// UnmarshalJSON accepts 2, [2, 3] and null.
func (t *TokenIDs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*t = nil
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var ids []int
		if err := json.Unmarshal(b, &ids); err != nil {
			return err
		}
		*t = ids
		return nil
	}
	var id int
	if err := json.Unmarshal(b, &id); err != nil {
		return err
	}
	*t = TokenIDs{id}
	return nil
}

// MarshalJSON writes one id as a number and several as a list, as transformers does.
func (t TokenIDs) MarshalJSON() ([]byte, error) {
	switch len(t) {
	case 0:
		return []byte("null"), nil
	case 1:
		return json.Marshal(t[0])
	}
	return json.Marshal([]int(t))
}

// First returns the first id, or -1.
func (t TokenIDs) First() int {
	if len(t) == 0 {
		return -1
	}
	return t[0]
}

// HFConfig is the part of a Hugging Face config.json that llama-family models use.
type HFConfig struct {
	ModelType             string       `json:"model_type"`
	Architectures         []string     `json:"architectures"`
	HiddenSize            int          `json:"hidden_size"`
	IntermediateSize      int          `json:"intermediate_size"`
	NumHiddenLayers       int          `json:"num_hidden_layers"`
	NumAttentionHeads     int          `json:"num_attention_heads"`
	NumKeyValueHeads      int          `json:"num_key_value_heads,omitempty"`
	HeadDim               int          `json:"head_dim,omitempty"`
	HiddenAct             string       `json:"hidden_act,omitempty"`
	RMSNormEps            float64      `json:"rms_norm_eps"`
	RopeTheta             float64      `json:"rope_theta,omitempty"`
	RopeScaling           *RopeScaling `json:"rope_scaling"`
	MaxPositionEmbeddings int          `json:"max_position_embeddings"`
	VocabSize             int          `json:"vocab_size"`
	TieWordEmbeddings     bool         `json:"tie_word_embeddings"`
	AttentionBias         bool         `json:"attention_bias,omitempty"`
	BOSTokenID            TokenIDs     `json:"bos_token_id"`
	EOSTokenID            TokenIDs     `json:"eos_token_id"`
	PadTokenID            TokenIDs     `json:"pad_token_id,omitempty"`
	TorchDType            string       `json:"torch_dtype,omitempty"`
	SlidingWindow         *int         `json:"sliding_window,omitempty"`
}

// architectureClasses maps model_type to the transformers class written into "architectures".
var architectureClasses = map[string]string{
	"llama":   "LlamaForCausalLM",
	"mistral": "MistralForCausalLM",
	"qwen2":   "Qwen2ForCausalLM",
}

// ReadHFConfig reads and parses config.json in dir.
func ReadHFConfig(dir string) (HFConfig, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return HFConfig{}, fmt.Errorf("read model config: %w", err)
	}
	var c HFConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return HFConfig{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return c, nil
}

// ModelConfig converts config.json's fields, applying transformers' defaults (kv heads = heads,
// head dim = hidden/heads, rope theta 10000) and qwen2's implied Q/K/V biases.
func (c HFConfig) ModelConfig() (ModelConfig, error) {
	arch := c.ModelType
	if _, ok := architectureClasses[arch]; !ok {
		return ModelConfig{}, fmt.Errorf("model_type %q (architectures %v) is not supported; supported: llama, mistral, qwen2", c.ModelType, c.Architectures)
	}
	if c.HiddenAct != "" && c.HiddenAct != "silu" {
		return ModelConfig{}, fmt.Errorf("hidden_act %q is not supported (llama-family models use silu)", c.HiddenAct)
	}
	m := ModelConfig{
		Architecture: arch, Dim: c.HiddenSize, Layers: c.NumHiddenLayers, Heads: c.NumAttentionHeads,
		KVHeads: c.NumKeyValueHeads, HeadDim: c.HeadDim, FFN: c.IntermediateSize, Vocab: c.VocabSize,
		NormEps: c.RMSNormEps, RopeTheta: c.RopeTheta, RopeScaling: c.RopeScaling,
		ContextLength: c.MaxPositionEmbeddings, TiedEmbeddings: c.TieWordEmbeddings,
		AttentionBias: c.AttentionBias || arch == "qwen2",
		Layout:        LayoutHF, Rope: RopeHalf,
		BOS: c.BOSTokenID.First(), EOS: append([]int(nil), c.EOSTokenID...), Pad: c.PadTokenID.First(),
	}
	if m.KVHeads == 0 {
		m.KVHeads = m.Heads
	}
	if m.HeadDim == 0 && m.Heads > 0 {
		m.HeadDim = m.Dim / m.Heads
	}
	if arch == "mistral" && c.SlidingWindow != nil {
		m.SlidingWindow = *c.SlidingWindow
	}
	m.RopeDim = m.HeadDim
	if m.RopeTheta == 0 {
		m.RopeTheta = 10000
	}
	if m.NormEps == 0 {
		m.NormEps = 1e-6
	}
	if m.RopeScaling != nil && (m.RopeScaling.Type == "" || m.RopeScaling.Type == "default") {
		m.RopeScaling = nil
	}
	return m, m.Validate()
}

// HFConfigFrom builds the config.json for a ModelConfig.
func HFConfigFrom(m ModelConfig, torchDType string) (HFConfig, error) {
	class, ok := architectureClasses[m.Architecture]
	if !ok {
		return HFConfig{}, fmt.Errorf("architecture %q has no Hugging Face class here; supported: llama, mistral, qwen2", m.Architecture)
	}
	c := HFConfig{
		ModelType: m.Architecture, Architectures: []string{class},
		HiddenSize: m.Dim, IntermediateSize: m.FFN, NumHiddenLayers: m.Layers, NumAttentionHeads: m.Heads,
		NumKeyValueHeads: m.KVHeads, HiddenAct: "silu", RMSNormEps: m.NormEps, RopeTheta: m.RopeTheta,
		RopeScaling: m.RopeScaling, MaxPositionEmbeddings: m.ContextLength, VocabSize: m.Vocab,
		TieWordEmbeddings: m.TiedEmbeddings, TorchDType: torchDType,
		AttentionBias: m.AttentionBias && m.Architecture != "qwen2",
		EOSTokenID:    TokenIDs(m.EOS),
	}
	if m.HeadDim != m.Dim/m.Heads {
		c.HeadDim = m.HeadDim
	}
	if m.SlidingWindow > 0 {
		w := m.SlidingWindow
		c.SlidingWindow = &w
	}
	if m.BOS >= 0 {
		c.BOSTokenID = TokenIDs{m.BOS}
	}
	if m.Pad >= 0 {
		c.PadTokenID = TokenIDs{m.Pad}
	}
	return c, nil
}

// GenerationConfig is generation_config.json: the defaults a model ships for generation.
type GenerationConfig struct {
	BOSTokenID        TokenIDs `json:"bos_token_id,omitempty"`
	EOSTokenID        TokenIDs `json:"eos_token_id,omitempty"`
	PadTokenID        TokenIDs `json:"pad_token_id,omitempty"`
	DoSample          *bool    `json:"do_sample,omitempty"`
	Temperature       *float64 `json:"temperature,omitempty"`
	TopP              *float64 `json:"top_p,omitempty"`
	TopK              *int     `json:"top_k,omitempty"`
	RepetitionPenalty *float64 `json:"repetition_penalty,omitempty"`
	MaxNewTokens      *int     `json:"max_new_tokens,omitempty"`
	MaxLength         *int     `json:"max_length,omitempty"`
}

// ReadGenerationConfig reads generation_config.json in dir; ok is false when the file is absent.
func ReadGenerationConfig(dir string) (g GenerationConfig, ok bool, err error) {
	path := filepath.Join(dir, "generation_config.json")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return GenerationConfig{}, false, nil
	}
	if err != nil {
		return GenerationConfig{}, false, fmt.Errorf("read generation config: %w", err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return GenerationConfig{}, false, fmt.Errorf("parse %s: %w", path, err)
	}
	return g, true, nil
}
