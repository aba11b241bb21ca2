package format

import (
	"encoding/json"
	"fmt"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// mptConfig is config.json of an MPT model, in MosaicML's own keys.
type mptConfig struct {
	DModel           int              `json:"d_model"`
	NHeads           int              `json:"n_heads"`
	NLayers          int              `json:"n_layers"`
	ExpansionRatio   float64          `json:"expansion_ratio"`
	MaxSeqLen        int              `json:"max_seq_len"`
	VocabSize        int              `json:"vocab_size"`
	NoBias           *bool            `json:"no_bias"`
	LayerNormEpsilon float64          `json:"layer_norm_epsilon"`
	LearnedPosEmb    *bool            `json:"learned_pos_emb"`
	LogitScale       *json.RawMessage `json:"logit_scale"`
	AttnConfig       struct {
		Alibi        *bool    `json:"alibi"`
		AlibiBiasMax float64  `json:"alibi_bias_max"`
		ClipQKV      *float64 `json:"clip_qkv"`
		SoftmaxScale *float64 `json:"softmax_scale"`
		QKLN         bool     `json:"qk_ln"`
		PrefixLM     bool     `json:"prefix_lm"`
	} `json:"attn_config"`
	TieWordEmbeddings *bool    `json:"tie_word_embeddings"`
	BOSTokenID        TokenIDs `json:"bos_token_id"`
	EOSTokenID        TokenIDs `json:"eos_token_id"`
	PadTokenID        TokenIDs `json:"pad_token_id"`
}

// parseMPT applies MptConfig's defaults (no_bias true, expansion 4, ALiBi with max bias 8) and refuses
// what transformers' MPT does not run either (no ALiBi, qk_ln, a softmax or logit scale).
func parseMPT(raw []byte) (ModelConfig, error) {
	var c mptConfig
	if err := parseJSON(raw, &c); err != nil {
		return ModelConfig{}, err
	}
	a := c.AttnConfig
	switch {
	case a.Alibi != nil && !*a.Alibi:
		return ModelConfig{}, fmt.Errorf("mpt: attn_config.alibi false (learned positions) is not supported")
	case a.QKLN:
		return ModelConfig{}, fmt.Errorf("mpt: attn_config.qk_ln is not supported")
	case a.SoftmaxScale != nil:
		return ModelConfig{}, fmt.Errorf("mpt: attn_config.softmax_scale is not supported")
	case a.PrefixLM:
		return ModelConfig{}, fmt.Errorf("mpt: attn_config.prefix_lm is not supported")
	case c.LogitScale != nil && string(*c.LogitScale) != "null":
		return ModelConfig{}, fmt.Errorf("mpt: logit_scale is not supported")
	}
	bias := c.NoBias != nil && !*c.NoBias
	m := ModelConfig{
		Architecture: "mpt", Dim: c.DModel, Layers: c.NLayers, Heads: c.NHeads, KVHeads: c.NHeads,
		Vocab: firstPositive(c.VocabSize, 50368), NormEps: c.LayerNormEpsilon,
		ContextLength: firstPositive(c.MaxSeqLen, 2048), TiedEmbeddings: c.TieWordEmbeddings == nil || *c.TieWordEmbeddings,
		AttentionBias: bias, OutputBias: bias, MLPBias: bias, Norm: NormLayer, NormBias: bias, Act: "gelu",
		ALiBi: true, ALiBiBiasMax: firstPositive(a.AlibiBiasMax, 8), RopeTheta: 10000,
		Layout: LayoutHF, Rope: RopeHalf, BOS: c.BOSTokenID.First(), EOS: append([]int(nil), c.EOSTokenID...),
		Pad: c.PadTokenID.First(), Source: raw,
	}
	if a.ClipQKV != nil {
		m.ClipQKV = *a.ClipQKV
	}
	if m.Heads > 0 {
		m.HeadDim = m.Dim / m.Heads
	}
	m.RopeDim = m.HeadDim
	ratio := c.ExpansionRatio
	if ratio == 0 {
		ratio = 4
	}
	m.FFN = int(ratio * float64(m.Dim))
	if m.NormEps == 0 {
		m.NormEps = 1e-5
	}
	if !m.TiedEmbeddings {
		return ModelConfig{}, fmt.Errorf("mpt: an untied output head is not supported (MPT ties it to wte)")
	}
	return m, m.Validate()
}

func writeMPT(m ModelConfig, torchDType string) (any, error) {
	out := map[string]any{
		"model_type": "mpt", "architectures": []string{"MptForCausalLM"},
		"d_model": m.Dim, "n_heads": m.Heads, "n_layers": m.Layers,
		"expansion_ratio": float64(m.FFN) / float64(m.Dim), "max_seq_len": m.ContextLength,
		"vocab_size": m.Vocab, "no_bias": !m.MLPBias, "layer_norm_epsilon": m.NormEps,
		"torch_dtype": torchDType, "learned_pos_emb": false,
	}
	attn := map[string]any{"alibi": true, "alibi_bias_max": m.ALiBiBiasMax, "clip_qkv": nil,
		"softmax_scale": nil, "qk_ln": false, "prefix_lm": false, "attn_type": "multihead_attention"}
	if m.ClipQKV > 0 {
		attn["clip_qkv"] = m.ClipQKV
	}
	src := mergeSource(m.Source, out)
	if prev, ok := src["attn_config"].(map[string]any); ok {
		for k, v := range attn {
			prev[k] = v
		}
		attn = prev
	}
	src["attn_config"] = attn
	delete(src, "auto_map") // MosaicML's remote code: transformers' own MptForCausalLM reads these keys
	return src, nil
}

func mptNames(ModelConfig) (map[string]string, map[string]string) {
	return map[string]string{
			"token_embd.weight":  "transformer.wte.weight",
			"output_norm.weight": "transformer.norm_f.weight", "output_norm.bias": "transformer.norm_f.bias",
			"output.weight": "lm_head.weight",
		}, map[string]string{
			"attn_norm.weight": "norm_1.weight", "attn_norm.bias": "norm_1.bias",
			"ffn_norm.weight": "norm_2.weight", "ffn_norm.bias": "norm_2.bias",
			"attn_output.weight": "attn.out_proj.weight", "attn_output.bias": "attn.out_proj.bias",
			"ffn_up.weight": "ffn.up_proj.weight", "ffn_up.bias": "ffn.up_proj.bias",
			"ffn_down.weight": "ffn.down_proj.weight", "ffn_down.bias": "ffn.down_proj.bias",
		}
}

func init() {
	Register(&Arch{
		Name: "mpt", Class: "MptForCausalLM", GGUF: "mpt", GGUFRope: RopeHalf,
		ParseHF: parseMPT, WriteHF: writeMPT, HFNames: mptNames,
		HFLayerPrefix: "transformer.blocks.%d.", HFFused: "attn.Wqkv",
		HFQKV:     func(ModelConfig) QKVLayout { return QKVThirds },
		GGUFFused: true,
		GGUFKeys: func(m ModelConfig) []gguf.KV {
			kvs := []gguf.KV{{Key: "mpt.attention.max_alibi_bias", Value: float32(m.ALiBiBiasMax)}}
			if m.ClipQKV > 0 {
				kvs = append(kvs, gguf.KV{Key: "mpt.attention.clamp_kqv", Value: float32(m.ClipQKV)})
			}
			return kvs
		},
		ReadGGUF: func(md *gguf.Metadata, has func(string) bool, m *ModelConfig) error {
			m.Norm, m.Act, m.ALiBi, m.ALiBiBiasMax = NormLayer, "gelu", true, 8
			if v, ok := md.Float("mpt.attention.max_alibi_bias"); ok {
				m.ALiBiBiasMax = shortestFloat32(v)
			}
			if v, ok := md.Float("mpt.attention.clamp_kqv"); ok {
				m.ClipQKV = shortestFloat32(v)
			}
			m.NormBias = has("blk.0.attn_norm.bias")
			m.AttentionBias = has("blk.0.attn_qkv.bias")
			m.OutputBias = has("blk.0.attn_output.bias")
			m.MLPBias = has("blk.0.ffn_up.bias")
			return nil
		},
	})
}
