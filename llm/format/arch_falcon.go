package format

import (
	"fmt"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// falconConfig is config.json of a falcon model, with the legacy keys of the RefinedWeb code
// (n_head, n_layer, n_head_kv, n_embed) that the original tiiuae checkpoints still carry.
type falconConfig struct {
	ModelType             string       `json:"model_type"`
	HiddenSize            int          `json:"hidden_size"`
	NEmbed                int          `json:"n_embed"`
	NumHiddenLayers       int          `json:"num_hidden_layers"`
	NLayer                int          `json:"n_layer"`
	NumAttentionHeads     int          `json:"num_attention_heads"`
	NHead                 int          `json:"n_head"`
	NumKVHeads            *int         `json:"num_kv_heads"`
	NHeadKV               *int         `json:"n_head_kv"`
	LayerNormEpsilon      float64      `json:"layer_norm_epsilon"`
	MultiQuery            *bool        `json:"multi_query"`
	ParallelAttn          *bool        `json:"parallel_attn"`
	NewDecoderArch        *bool        `json:"new_decoder_architecture"`
	NumLNInParallelAttn   *int         `json:"num_ln_in_parallel_attn"`
	Bias                  bool         `json:"bias"`
	Alibi                 bool         `json:"alibi"`
	FFNHiddenSize         int          `json:"ffn_hidden_size"`
	Activation            string       `json:"activation"`
	RopeTheta             float64      `json:"rope_theta"`
	RopeScaling           *RopeScaling `json:"rope_scaling"`
	MaxPositionEmbeddings int          `json:"max_position_embeddings"`
	VocabSize             int          `json:"vocab_size"`
	TieWordEmbeddings     *bool        `json:"tie_word_embeddings"`
	PostLayernormResidual bool         `json:"apply_residual_connection_post_layernorm"`
	BOSTokenID            TokenIDs     `json:"bos_token_id"`
	EOSTokenID            TokenIDs     `json:"eos_token_id"`
	PadTokenID            TokenIDs     `json:"pad_token_id"`
}

// firstPositive returns the first value above zero (config keys with aliases and defaults), or 0.
func firstPositive[T int | float64](vs ...T) T {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// parseFalcon applies FalconConfig's defaults: multi_query and parallel_attn true, 4·hidden MLP,
// gelu, rope base 10000, 2048 positions, a tied head. The legacy model_type "RefinedWeb" is the
// 40B code, whose decoder is the new architecture; "RefinedWebModel" is the 7B code.
func parseFalcon(raw []byte) (ModelConfig, error) {
	var c falconConfig
	if err := parseJSON(raw, &c); err != nil {
		return ModelConfig{}, err
	}
	if c.PostLayernormResidual {
		return ModelConfig{}, fmt.Errorf("falcon: apply_residual_connection_post_layernorm is not supported")
	}
	// transformers' converter of the original checkpoints sets the new architecture exactly when
	// n_head_kv is present (the RefinedWeb code of falcon-40b).
	newArch := c.ModelType == "RefinedWeb" || c.NHeadKV != nil
	if c.NewDecoderArch != nil {
		newArch = *c.NewDecoderArch
	}
	multiQuery, parallel := true, true
	if c.MultiQuery != nil {
		multiQuery = *c.MultiQuery
	}
	if c.ParallelAttn != nil {
		parallel = *c.ParallelAttn
	}
	m := ModelConfig{
		Architecture: "falcon", Dim: firstPositive(c.HiddenSize, c.NEmbed, 4544),
		Layers: firstPositive(c.NumHiddenLayers, c.NLayer, 32), Heads: firstPositive(c.NumAttentionHeads, c.NHead, 71),
		Vocab: firstPositive(c.VocabSize, 65024), NormEps: c.LayerNormEpsilon, RopeTheta: c.RopeTheta,
		RopeScaling: c.RopeScaling, ContextLength: firstPositive(c.MaxPositionEmbeddings, 2048),
		TiedEmbeddings: c.TieWordEmbeddings == nil || *c.TieWordEmbeddings,
		AttentionBias:  c.Bias, OutputBias: c.Bias, MLPBias: c.Bias, Norm: NormLayer, NormBias: true,
		ParallelAttn: parallel, ALiBi: c.Alibi, ALiBiBiasMax: 8, ALiBiPreScale: true,
		Layout: LayoutHF, Rope: RopeHalf, BOS: c.BOSTokenID.First(), EOS: append([]int(nil), c.EOSTokenID...),
		Pad: c.PadTokenID.First(), Source: raw,
	}
	m.HeadDim = m.Dim / max(m.Heads, 1)
	m.RopeDim = m.HeadDim
	m.FFN = firstPositive(c.FFNHiddenSize, 4*m.Dim)
	switch c.Activation {
	case "", "gelu":
		m.Act = "gelu"
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		m.Act = "gelu_tanh"
	default:
		return ModelConfig{}, fmt.Errorf("falcon: activation %q is not supported (gelu)", c.Activation)
	}
	kv := m.Heads
	if v := c.NumKVHeads; v != nil {
		kv = *v
	} else if v := c.NHeadKV; v != nil {
		kv = *v
	}
	switch {
	case newArch:
		m.KVHeads = kv
	case multiQuery:
		m.KVHeads = 1
	default:
		m.KVHeads = m.Heads
	}
	// One norm feeds attention and MLP unless the block has ln_attn and ln_mlp (the new
	// architecture, num_ln_in_parallel_attn 2 by default) or is sequential.
	lns := 1
	if newArch {
		lns = 2
		if c.NumLNInParallelAttn != nil {
			lns = *c.NumLNInParallelAttn
		}
	}
	m.SharedNorm = parallel && lns == 1
	if m.NormEps == 0 {
		m.NormEps = 1e-5
	}
	if m.RopeTheta == 0 {
		m.RopeTheta = 10000
	}
	if m.RopeScaling != nil && (m.RopeScaling.Type == "" || m.RopeScaling.Type == "default") {
		m.RopeScaling = nil
	}
	return m, m.Validate()
}

func writeFalcon(m ModelConfig, torchDType string) (any, error) {
	// Two norms in a parallel block, or a kv head count other than 1 (multi-query) or all heads,
	// exist only in the new decoder architecture.
	newArch := (m.ParallelAttn && !m.SharedNorm) || (m.KVHeads != 1 && m.KVHeads != m.Heads)
	if newArch && !m.ParallelAttn {
		return nil, fmt.Errorf("falcon: %d kv heads of %d need the parallel block of the new decoder architecture", m.KVHeads, m.Heads)
	}
	out := map[string]any{
		"model_type": "falcon", "architectures": []string{"FalconForCausalLM"},
		"hidden_size": m.Dim, "num_hidden_layers": m.Layers, "num_attention_heads": m.Heads,
		"num_kv_heads": m.KVHeads, "layer_norm_epsilon": m.NormEps, "bias": m.AttentionBias,
		"alibi": m.ALiBi, "parallel_attn": m.ParallelAttn, "multi_query": m.KVHeads == 1 && !newArch,
		"new_decoder_architecture": newArch, "ffn_hidden_size": m.FFN, "rope_theta": m.RopeTheta,
		"max_position_embeddings": m.ContextLength, "vocab_size": m.Vocab,
		"tie_word_embeddings": m.TiedEmbeddings, "torch_dtype": torchDType, "activation": "gelu",
		"eos_token_id": TokenIDs(m.EOS), "rope_scaling": m.RopeScaling,
	}
	if m.Act == "gelu_tanh" {
		out["activation"] = "gelu_pytorch_tanh"
	}
	if newArch {
		out["num_ln_in_parallel_attn"] = 2
		if m.SharedNorm {
			out["num_ln_in_parallel_attn"] = 1
		}
	}
	if m.BOS >= 0 {
		out["bos_token_id"] = m.BOS
	}
	src := mergeSource(m.Source, out)
	// The legacy keys would override the new ones when transformers reads the file back.
	for _, k := range []string{"n_head", "n_layer", "n_head_kv", "n_embed", "auto_map"} {
		delete(src, k)
	}
	return src, nil
}

func falconNames(m ModelConfig) (map[string]string, map[string]string) {
	global := map[string]string{
		"token_embd.weight":  "transformer.word_embeddings.weight",
		"output_norm.weight": "transformer.ln_f.weight", "output_norm.bias": "transformer.ln_f.bias",
		"output.weight": "lm_head.weight",
	}
	norm1, norm2 := "input_layernorm", "post_attention_layernorm"
	if m.ParallelAttn && !m.SharedNorm {
		norm1, norm2 = "ln_attn", "ln_mlp"
	}
	layer := map[string]string{
		"attn_norm.weight": norm1 + ".weight", "attn_norm.bias": norm1 + ".bias",
		"attn_output.weight": "self_attention.dense.weight", "attn_output.bias": "self_attention.dense.bias",
		"ffn_up.weight": "mlp.dense_h_to_4h.weight", "ffn_up.bias": "mlp.dense_h_to_4h.bias",
		"ffn_down.weight": "mlp.dense_4h_to_h.weight", "ffn_down.bias": "mlp.dense_4h_to_h.bias",
	}
	if !m.SharedNorm {
		layer["ffn_norm.weight"], layer["ffn_norm.bias"] = norm2+".weight", norm2+".bias"
	}
	return global, layer
}

func init() {
	Register(&Arch{
		Name: "falcon", Aliases: []string{"RefinedWebModel", "RefinedWeb"}, Class: "FalconForCausalLM",
		GGUF: "falcon", GGUFRope: RopeHalf, ParseHF: parseFalcon, WriteHF: writeFalcon,
		HFNames: falconNames, HFLayerPrefix: "transformer.h.%d.", HFFused: "self_attention.query_key_value",
		HFQKV: func(ModelConfig) QKVLayout { return QKVGrouped },
		// llama.cpp names the second norm of the parallel block attn_norm_2.
		GGUFNames: map[string]string{"ffn_norm.weight": "attn_norm_2.weight", "ffn_norm.bias": "attn_norm_2.bias"},
		GGUFFused: true,
		ReadGGUF: func(md *gguf.Metadata, has func(string) bool, m *ModelConfig) error {
			m.Norm, m.NormBias, m.Act, m.ParallelAttn = NormLayer, true, "gelu", true
			m.SharedNorm = !has("blk.0.attn_norm_2.weight")
			m.AttentionBias = has("blk.0.attn_qkv.bias")
			m.OutputBias, m.MLPBias = m.AttentionBias, m.AttentionBias
			return nil
		},
	})
}
