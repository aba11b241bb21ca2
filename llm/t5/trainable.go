package t5

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/lathe-ml/lathe/llm/format/half"
	"github.com/lathe-ml/lathe/llm/model"
)

// The methods here make a Model an llm/train Network: the trainer's AdamW, schedule, clipping and
// checkpoints are the decoder-only engine's, over T5's tensors.

// modelKind is the optimizer's grouping of a T5 tensor: weight decay on the projections (and an untied
// lm_head) only.
func modelKind(k Kind) model.Kind {
	switch k {
	case KindNorm:
		return model.KindNorm
	case KindEmbedding:
		return model.KindEmbed
	default:
		return model.KindMatrix
	}
}

// Trainable returns the tensors ForwardBackward writes gradients for, with those gradients: the LoRA
// adapters when attached (the base is frozen), otherwise every weight.
func (m *Model) Trainable() []model.Param {
	if m.n.lora != nil {
		var ps []model.Param
		for _, a := range m.Adapters() {
			ps = append(ps, model.Param{Tensor: model.Tensor{Name: a.Name, Shape: a.Shape, Kind: model.KindLoRA, Data: a.Data}, Grad: a.Grad})
		}
		return ps
	}
	var ps []model.Param
	for _, p := range m.Params() {
		ps = append(ps, model.Param{Tensor: model.Tensor{Name: p.Name, Shape: p.Shape, Kind: modelKind(p.Kind), Data: p.Data}, Grad: p.Grad})
	}
	return ps
}

// DiscardGrads zeroes the trainable gradients before a step's first micro-batch (ForwardBackward adds
// to them). With adapters only theirs: the base's norm and embedding gradients that the backward still
// accumulates are never read, so clearing the whole model's worth each step would be wasted bandwidth.
func (m *Model) DiscardGrads() {
	if m.n.lora != nil {
		clear(m.n.lora.gslab)
		return
	}
	m.ZeroGrads()
}

// Fingerprint identifies the base weights: a hash of their names, shapes and a strided sample of about
// a million values rounded to bfloat16, so that a model and its bfloat16-frozen form agree and LoRA
// checkpoints are resumed only on the base they were trained on.
func (m *Model) Fingerprint() string {
	n := m.n
	c := n.cfg
	sites := map[string]site{}
	for _, s := range c.sites() {
		sites[c.moduleName(s)+".weight"] = s
	}
	h := sha256.New()
	count := 0
	n.w.visit(c, func(string, []int, Kind, *[]float32) { count++ })
	var buf [2]byte
	n.w.visit(c, func(name string, shape []int, kind Kind, t *[]float32) {
		fmt.Fprintf(h, "%s%v;", name, shape)
		size := numel(shape)
		get := func(i int) uint16 { return half.F32ToBF16((*t)[i]) }
		if *t == nil && n.bf16 != nil {
			b := n.bf16.mats[sites[name]]
			get = func(i int) uint16 { return b[i] }
		}
		for i := 0; i < size; i += max(1, size/(1<<20/count+1)) {
			v := get(i)
			buf[0], buf[1] = byte(v), byte(v>>8)
			h.Write(buf[:])
		}
	})
	return hex.EncodeToString(h.Sum(nil)[:16])
}
