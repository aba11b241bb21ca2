package model

import (
	"slices"

	"github.com/lathe-ml/lathe/llm/format"
)

// NamedTensors returns the base weights (views, not copies) for llm/format's writers, whose Q/K rows
// are in the layout RopePairing names. Merge LoRA adapters first to export a fine-tuned model (or use
// MergedTensors, which leaves the model as it is).
func (m *Model) NamedTensors() []format.NamedTensor {
	var out []format.NamedTensor
	for _, t := range m.Tensors() {
		out = append(out, format.NamedTensor{Name: t.Name, Shape: t.Shape, Data: t.Data})
	}
	return out
}

// MergedTensors returns the tensors of the fine-tuned model for llm/format's writers: the base with
// the LoRA adapters merged (W + Alpha/Rank·B·A), the values MergeLoRA then NamedTensors would give,
// bit for bit. Unlike them it changes nothing: a base held quantized or in bfloat16 stays so (the
// model still generates and trains as before, and can be exported again), and the adapters stay
// attached. Each block matrix is produced when a writer reaches it (format.NamedTensor's Fill):
// widened to float32 and merged one tensor at a time, so a 7B base held in Q4_K_M (3.6 GiB) exports
// without its 26 GiB of float32 ever existing. Tensors held in float32 and untouched by adapters are
// handed out as views. The writers fill one tensor at a time (the Fill functions share a buffer).
func (m *Model) MergedTensors() []format.NamedTensor {
	n := m.n
	var delta []float32 // B·A of the matrix being filled
	var out []format.NamedTensor
	for _, s := range n.cfg.tensorSpecs() {
		t := format.NamedTensor{Name: s.name, Shape: slices.Clone(s.shape)}
		target, isTarget := targetOf(s)
		var ad *adapter[float32]
		if isTarget {
			ad = n.lora.adapter(s.layer, target)
		}
		held := !isLayerMatrix(s) || (n.quant == nil && n.frozen == nil)
		if held && ad == nil {
			t.Data = *n.w.ptr(s.layer, s.field)
			out = append(out, t)
			continue
		}
		t.Fill = func(dst []float32) error {
			n.baseMatrix(dst, s, target, held)
			if ad != nil {
				in, outDim := target.dims(n.cfg)
				if cap(delta) < in*outDim {
					delta = make([]float32, in*outDim)
				}
				n.lora.mergeInto(dst, delta[:in*outDim], ad, in, outDim)
			}
			return nil
		}
		out = append(out, t)
	}
	return out
}

// targetOf returns the projection a block matrix is.
func targetOf(s tensorSpec) (Target, bool) {
	if !isLayerMatrix(s) {
		return 0, false
	}
	for t, f := range targetFields {
		if f == s.field {
			return Target(t), true
		}
	}
	return 0, false
}

// baseMatrix writes the base values of tensor s (projection t when it is a block matrix) into dst in
// float32: from the weights when they hold it (held), else widened from its quantized blocks or its
// bfloat16 copy as thaw would widen it.
func (n *net[F]) baseMatrix(dst []float32, s tensorSpec, t Target, held bool) {
	switch {
	case held:
		for i, v := range *n.w.ptr(s.layer, s.field) {
			dst[i] = float32(v)
		}
	case n.quant != nil:
		widenQuant(dst, n.quant.layers[s.layer][t])
	default:
		widenBF16(dst, n.frozen.layers[s.layer][t])
	}
}

// RopePairing is the model's current rotary layout in llm/format's terms.
func (m *Model) RopePairing() format.RopePairing {
	if m.n.cfg.RopeLayout == RopeHalfSplit {
		return format.RopeHalf
	}
	return format.RopeAdjacent
}

// ExportConfig returns the checkpoint configuration to write with NamedTensors: base (the
// configuration the model was loaded from, for the architecture name and special token ids) with the
// rotary pairing of the weights as they are now.
func (m *Model) ExportConfig(base format.ModelConfig) format.ModelConfig {
	base.Rope = m.RopePairing()
	return base
}
