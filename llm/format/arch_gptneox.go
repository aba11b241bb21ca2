package format

import (
	"fmt"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// gptNeoXConfig is config.json of a GPT-NeoX model (Pythia, Dolly v2, RedPajama-INCITE).
type gptNeoXConfig struct {
	HiddenSize            int          `json:"hidden_size"`
	NumHiddenLayers       int          `json:"num_hidden_layers"`
	NumAttentionHeads     int          `json:"num_attention_heads"`
	IntermediateSize      int          `json:"intermediate_size"`
	HiddenAct             string       `json:"hidden_act"`
	RotaryPct             *float64     `json:"rotary_pct"`
	PartialRotaryFactor   *float64     `json:"partial_rotary_factor"`
	RotaryEmbBase         float64      `json:"rotary_emb_base"`
	RopeTheta             float64      `json:"rope_theta"`
	RopeScaling           *RopeScaling `json:"rope_scaling"`
	LayerNormEps          float64      `json:"layer_norm_eps"`
	UseParallelResidual   *bool        `json:"use_parallel_residual"`
	AttentionBias         *bool        `json:"attention_bias"`
	MaxPositionEmbeddings int          `json:"max_position_embeddings"`
	VocabSize             int          `json:"vocab_size"`
	TieWordEmbeddings     bool         `json:"tie_word_embeddings"`
	BOSTokenID            TokenIDs     `json:"bos_token_id"`
	EOSTokenID            TokenIDs     `json:"eos_token_id"`
	PadTokenID            TokenIDs     `json:"pad_token_id"`
}

// hfActivation maps transformers' ACT2FN names to the engine's.
func hfActivation(name, fallback string) (string, error) {
	switch name {
	case "":
		return fallback, nil
	case "gelu":
		return "gelu", nil
	case "gelu_new", "gelu_fast", "gelu_pytorch_tanh":
		return "gelu_tanh", nil
	}
	return "", fmt.Errorf("hidden_act %q is not supported (gelu, gelu_new, gelu_pytorch_tanh)", name)
}

// parseGPTNeoX applies GPTNeoXConfig's defaults: rotary_pct 0.25, base 10000, parallel residual,
// biased attention, an untied head (embed_out).
func parseGPTNeoX(raw []byte) (ModelConfig, error) {
	var c gptNeoXConfig
	if err := parseJSON(raw, &c); err != nil {
		return ModelConfig{}, err
	}
	act, err := hfActivation(c.HiddenAct, "gelu")
	if err != nil {
		return ModelConfig{}, fmt.Errorf("gpt_neox: %w", err)
	}
	m := ModelConfig{
		Architecture: "gpt_neox", Dim: c.HiddenSize, Layers: c.NumHiddenLayers, Heads: c.NumAttentionHeads,
		KVHeads: c.NumAttentionHeads, FFN: c.IntermediateSize, Vocab: c.VocabSize, NormEps: c.LayerNormEps,
		RopeTheta: firstPositive(c.RopeTheta, c.RotaryEmbBase, 10000), RopeScaling: c.RopeScaling,
		ContextLength: firstPositive(c.MaxPositionEmbeddings, 2048), TiedEmbeddings: c.TieWordEmbeddings,
		AttentionBias: c.AttentionBias == nil || *c.AttentionBias, MLPBias: true,
		Norm: NormLayer, NormBias: true, Act: act,
		ParallelAttn: c.UseParallelResidual == nil || *c.UseParallelResidual,
		Layout:       LayoutHF, Rope: RopeHalf, BOS: c.BOSTokenID.First(), EOS: append([]int(nil), c.EOSTokenID...),
		Pad: c.PadTokenID.First(), Source: raw,
	}
	m.OutputBias = m.AttentionBias
	if m.Heads > 0 {
		m.HeadDim = m.Dim / m.Heads
	}
	pct := 0.25
	if c.RotaryPct != nil {
		pct = *c.RotaryPct
	} else if c.PartialRotaryFactor != nil {
		pct = *c.PartialRotaryFactor
	}
	m.RopeDim = int(float64(m.HeadDim) * pct)
	if m.FFN == 0 {
		m.FFN = 4 * m.Dim
	}
	if m.NormEps == 0 {
		m.NormEps = 1e-5
	}
	if m.RopeScaling != nil && (m.RopeScaling.Type == "" || m.RopeScaling.Type == "default") {
		m.RopeScaling = nil
	}
	return m, m.Validate()
}

func writeGPTNeoX(m ModelConfig, torchDType string) (any, error) {
	act := "gelu"
	if m.Act == "gelu_tanh" {
		act = "gelu_new"
	}
	out := map[string]any{
		"model_type": "gpt_neox", "architectures": []string{"GPTNeoXForCausalLM"},
		"hidden_size": m.Dim, "num_hidden_layers": m.Layers, "num_attention_heads": m.Heads,
		"intermediate_size": m.FFN, "hidden_act": act, "rotary_pct": float64(m.RopeDim) / float64(m.HeadDim),
		"rotary_emb_base": m.RopeTheta, "layer_norm_eps": m.NormEps, "use_parallel_residual": m.ParallelAttn,
		"attention_bias": m.AttentionBias, "max_position_embeddings": m.ContextLength, "vocab_size": m.Vocab,
		"tie_word_embeddings": m.TiedEmbeddings, "torch_dtype": torchDType, "eos_token_id": TokenIDs(m.EOS),
		"rope_scaling": m.RopeScaling,
	}
	if m.BOS >= 0 {
		out["bos_token_id"] = m.BOS
	}
	src := mergeSource(m.Source, out)
	delete(src, "rope_theta") // rotary_emb_base says it; both would disagree after an edit
	delete(src, "partial_rotary_factor")
	return src, nil
}

func gptNeoXNames(ModelConfig) (map[string]string, map[string]string) {
	return map[string]string{
			"token_embd.weight": "gpt_neox.embed_in.weight", "output.weight": "embed_out.weight",
			"output_norm.weight": "gpt_neox.final_layer_norm.weight", "output_norm.bias": "gpt_neox.final_layer_norm.bias",
		}, map[string]string{
			"attn_norm.weight": "input_layernorm.weight", "attn_norm.bias": "input_layernorm.bias",
			"ffn_norm.weight": "post_attention_layernorm.weight", "ffn_norm.bias": "post_attention_layernorm.bias",
			"attn_output.weight": "attention.dense.weight", "attn_output.bias": "attention.dense.bias",
			"ffn_up.weight": "mlp.dense_h_to_4h.weight", "ffn_up.bias": "mlp.dense_h_to_4h.bias",
			"ffn_down.weight": "mlp.dense_4h_to_h.weight", "ffn_down.bias": "mlp.dense_4h_to_h.bias",
		}
}

func init() {
	Register(&Arch{
		Name: "gpt_neox", Class: "GPTNeoXForCausalLM", GGUF: "gptneox", GGUFRope: RopeHalf,
		ParseHF: parseGPTNeoX, WriteHF: writeGPTNeoX, HFNames: gptNeoXNames,
		HFLayerPrefix: "gpt_neox.layers.%d.", HFFused: "attention.query_key_value",
		HFQKV:     func(ModelConfig) QKVLayout { return QKVGrouped },
		GGUFFused: true,
		GGUFKeys: func(m ModelConfig) []gguf.KV {
			return []gguf.KV{{Key: "gptneox.use_parallel_residual", Value: m.ParallelAttn}}
		},
		ReadGGUF: func(md *gguf.Metadata, has func(string) bool, m *ModelConfig) error {
			m.Norm, m.NormBias, m.Act = NormLayer, true, "gelu"
			m.ParallelAttn = true
			if v, ok := md.Bool("gptneox.use_parallel_residual"); ok {
				m.ParallelAttn = v
			}
			m.AttentionBias = has("blk.0.attn_qkv.bias")
			m.OutputBias = has("blk.0.attn_output.bias")
			m.MLPBias = has("blk.0.ffn_up.bias")
			return nil
		},
	})
}
