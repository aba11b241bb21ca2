package format

import (
	"strconv"
	"strings"
)

// Tensor names. Checkpoints are read under GGUF's names; Hugging Face files use the names on the
// right (llama, mistral and qwen2 share them). N is the layer index.
//
//	token_embd.weight          model.embed_tokens.weight                     [vocab, dim]
//	output_norm.weight         model.norm.weight                             [dim]
//	output.weight              lm_head.weight (absent when tied)             [vocab, dim]
//	blk.N.attn_norm.weight     model.layers.N.input_layernorm.weight         [dim]
//	blk.N.attn_q.weight        model.layers.N.self_attn.q_proj.weight        [heads*headDim, dim]
//	blk.N.attn_k.weight        model.layers.N.self_attn.k_proj.weight        [kvHeads*headDim, dim]
//	blk.N.attn_v.weight        model.layers.N.self_attn.v_proj.weight        [kvHeads*headDim, dim]
//	blk.N.attn_q.bias, attn_k.bias, attn_v.bias   ...q_proj.bias, ... (qwen2)
//	blk.N.attn_output.weight   model.layers.N.self_attn.o_proj.weight        [dim, heads*headDim]
//	blk.N.ffn_norm.weight      model.layers.N.post_attention_layernorm.weight [dim]
//	blk.N.ffn_gate.weight      model.layers.N.mlp.gate_proj.weight           [ffn, dim]
//	blk.N.ffn_up.weight        model.layers.N.mlp.up_proj.weight             [ffn, dim]
//	blk.N.ffn_down.weight      model.layers.N.mlp.down_proj.weight           [dim, ffn]
//
// Shapes are row-major [out, in]. GGUF-only tensors (rope_freqs.weight) have no HF name.

var globalNames = map[string]string{
	"token_embd.weight":  "model.embed_tokens.weight",
	"output_norm.weight": "model.norm.weight",
	"output.weight":      "lm_head.weight",
}

var layerNames = map[string]string{
	"attn_norm.weight":   "input_layernorm.weight",
	"attn_q.weight":      "self_attn.q_proj.weight",
	"attn_k.weight":      "self_attn.k_proj.weight",
	"attn_v.weight":      "self_attn.v_proj.weight",
	"attn_q.bias":        "self_attn.q_proj.bias",
	"attn_k.bias":        "self_attn.k_proj.bias",
	"attn_v.bias":        "self_attn.v_proj.bias",
	"attn_output.weight": "self_attn.o_proj.weight",
	"ffn_norm.weight":    "post_attention_layernorm.weight",
	"ffn_gate.weight":    "mlp.gate_proj.weight",
	"ffn_up.weight":      "mlp.up_proj.weight",
	"ffn_down.weight":    "mlp.down_proj.weight",
}

var globalNamesInv, layerNamesInv = invert(globalNames), invert(layerNames)

func invert(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// HFName returns the Hugging Face name of a GGUF tensor name.
func HFName(gguf string) (string, bool) {
	if n, ok := globalNames[gguf]; ok {
		return n, true
	}
	rest, ok := strings.CutPrefix(gguf, "blk.")
	if !ok {
		return "", false
	}
	layer, suffix, ok := splitLayer(rest)
	if !ok {
		return "", false
	}
	n, ok := layerNames[suffix]
	if !ok {
		return "", false
	}
	return "model.layers." + layer + "." + n, true
}

// GGUFName returns the GGUF name of a Hugging Face tensor name.
func GGUFName(hf string) (string, bool) {
	if n, ok := globalNamesInv[hf]; ok {
		return n, true
	}
	rest, ok := strings.CutPrefix(hf, "model.layers.")
	if !ok {
		return "", false
	}
	layer, suffix, ok := splitLayer(rest)
	if !ok {
		return "", false
	}
	n, ok := layerNamesInv[suffix]
	if !ok {
		return "", false
	}
	return "blk." + layer + "." + n, true
}

func splitLayer(s string) (layer, suffix string, ok bool) {
	layer, suffix, ok = strings.Cut(s, ".")
	if !ok {
		return "", "", false
	}
	if n, err := strconv.Atoi(layer); err != nil || n < 0 || strconv.Itoa(n) != layer {
		return "", "", false
	}
	return layer, suffix, true
}

// LayerTensor returns the GGUF name of a per-layer tensor, e.g. LayerTensor(3, "attn_q.weight").
func LayerTensor(layer int, suffix string) string {
	return "blk." + strconv.Itoa(layer) + "." + suffix
}

// isRotaryProjection reports whether a GGUF-named tensor holds Q or K rows (whose order depends
// on the rotary pairing), and whether it is Q.
func isRotaryProjection(name string) (rotary, isQ bool) {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return false, false
	}
	_, suffix, ok := splitLayer(rest)
	if !ok {
		return false, false
	}
	switch suffix {
	case "attn_q.weight", "attn_q.bias":
		return true, true
	case "attn_k.weight", "attn_k.bias":
		return true, false
	}
	return false, false
}
