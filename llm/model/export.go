package model

import "github.com/lathe-ml/lathe/llm/format"

// NamedTensors returns the base weights (views, not copies) for llm/format's writers, whose Q/K rows
// are in the layout RopePairing names. Merge LoRA adapters first to export a fine-tuned model.
func (m *Model) NamedTensors() []format.NamedTensor {
	var out []format.NamedTensor
	for _, t := range m.Tensors() {
		out = append(out, format.NamedTensor{Name: t.Name, Shape: t.Shape, Data: t.Data})
	}
	return out
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
