package t5

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// WriteGGUF writes the model as llama.cpp's "t5" architecture (what its convert_hf_to_gguf.py writes
// for T5 and Flan-T5): shared.weight as token_embd, the encoder's blocks as enc.blk.N.* and the
// decoder's as dec.blk.N.* (attn_q/k/v/o, attn_rel_b in block 0, cross_attn_* in the decoder,
// ffn_gate = wi_0, ffn_up = wi_1 or wi, ffn_down = wo), enc/dec.output_norm and output.weight, in
// float32, with extra (the tokenizer's GGUF metadata) after the model's keys. llama.cpp applies no
// d_model^-½ to a tied head, so a tied model's output.weight is written already scaled. llama.cpp's
// relative buckets assume a maximum distance of 128, T5's default; another is refused.
func (m *Model) WriteGGUF(path, name string, extra []gguf.KV) error {
	c := m.n.cfg
	if c.MaxDistance != 128 {
		return fmt.Errorf("t5 gguf: relative_attention_max_distance %d: llama.cpp computes buckets for 128 only", c.MaxDistance)
	}
	m.n.thaw()
	w := gguf.NewWriter()
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: "t5"},
		{Key: "general.name", Value: name},
		{Key: "general.file_type", Value: uint32(0)}, // all F32
		{Key: "t5.vocab_size", Value: uint32(c.Vocab)},
		{Key: "t5.context_length", Value: uint32(512)}, // n_positions: what T5 was trained on
		{Key: "t5.embedding_length", Value: uint32(c.DModel)},
		{Key: "t5.feed_forward_length", Value: uint32(c.DFF)},
		{Key: "t5.block_count", Value: uint32(c.EncoderLayers)},
		{Key: "t5.decoder_block_count", Value: uint32(c.DecoderLayers)},
		{Key: "t5.attention.head_count", Value: uint32(c.Heads)},
		{Key: "t5.attention.head_count_kv", Value: uint32(c.Heads)},
		{Key: "t5.attention.key_length", Value: uint32(c.DKV)},
		{Key: "t5.attention.value_length", Value: uint32(c.DKV)},
		{Key: "t5.attention.layer_norm_epsilon", Value: float32(c.Eps)},
		{Key: "t5.attention.layer_norm_rms_epsilon", Value: float32(c.Eps)},
		{Key: "t5.attention.relative_buckets_count", Value: uint32(c.Buckets)},
		{Key: "t5.decoder_start_token_id", Value: uint32(c.DecoderStart)},
	}
	for _, kv := range append(kvs, extra...) {
		if err := w.Metadata.Set(kv.Key, kv.Value); err != nil {
			return fmt.Errorf("t5 gguf: %w", err)
		}
	}
	add := func(name string, shape []int, data []float32) error {
		dims := make([]uint64, len(shape))
		for i, d := range shape {
			dims[len(shape)-1-i] = uint64(d)
		}
		return w.AddTensor(name, dims, gguf.F32, data)
	}
	var err error
	m.n.w.visit(c, func(hf string, shape []int, _ Kind, t *[]float32) {
		if err != nil {
			return
		}
		name, ok := ggufName(hf, c.Gated)
		if !ok {
			err = fmt.Errorf("t5 gguf: no llama.cpp name for %s", hf)
			return
		}
		err = add(name, shape, *t)
	})
	if err == nil && c.Tied {
		head := slices.Clone(m.n.w.shared)
		s := float32(1 / math.Sqrt(float64(c.DModel)))
		for i := range head {
			head[i] *= s
		}
		err = add("output.weight", []int{c.Vocab, c.DModel}, head)
	}
	if err != nil {
		return err
	}
	return w.WriteFile(path)
}

// ggufName maps a transformers T5 tensor name to llama.cpp's.
func ggufName(hf string, gated bool) (string, bool) {
	switch hf {
	case "shared.weight":
		return "token_embd.weight", true
	case "lm_head.weight":
		return "output.weight", true
	case "encoder.final_layer_norm.weight":
		return "enc.output_norm.weight", true
	case "decoder.final_layer_norm.weight":
		return "dec.output_norm.weight", true
	}
	var stack, rest string
	var block int
	switch {
	case strings.HasPrefix(hf, "encoder.block."):
		stack, rest = "enc", strings.TrimPrefix(hf, "encoder.block.")
	case strings.HasPrefix(hf, "decoder.block."):
		stack, rest = "dec", strings.TrimPrefix(hf, "decoder.block.")
	default:
		return "", false
	}
	if _, err := fmt.Sscanf(rest, "%d.", &block); err != nil {
		return "", false
	}
	rest = rest[strings.Index(rest, ".")+1:]
	suffix := map[string]string{
		"layer.0.SelfAttention.q.weight": "attn_q", "layer.0.SelfAttention.k.weight": "attn_k",
		"layer.0.SelfAttention.v.weight": "attn_v", "layer.0.SelfAttention.o.weight": "attn_o",
		"layer.0.SelfAttention.relative_attention_bias.weight": "attn_rel_b", "layer.0.layer_norm.weight": "attn_norm",
	}
	if stack == "enc" {
		suffix["layer.1.layer_norm.weight"] = "ffn_norm"
		for k, v := range ffnNames(gated) {
			suffix["layer.1.DenseReluDense."+k] = v
		}
	} else {
		suffix["layer.1.EncDecAttention.q.weight"] = "cross_attn_q"
		suffix["layer.1.EncDecAttention.k.weight"] = "cross_attn_k"
		suffix["layer.1.EncDecAttention.v.weight"] = "cross_attn_v"
		suffix["layer.1.EncDecAttention.o.weight"] = "cross_attn_o"
		suffix["layer.1.layer_norm.weight"] = "cross_attn_norm"
		suffix["layer.2.layer_norm.weight"] = "ffn_norm"
		for k, v := range ffnNames(gated) {
			suffix["layer.2.DenseReluDense."+k] = v
		}
	}
	s, ok := suffix[rest]
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%s.blk.%d.%s.weight", stack, block, s), true
}

func ffnNames(gated bool) map[string]string {
	if gated {
		return map[string]string{"wi_0.weight": "ffn_gate", "wi_1.weight": "ffn_up", "wo.weight": "ffn_down"}
	}
	return map[string]string{"wi.weight": "ffn_up", "wo.weight": "ffn_down"}
}
