package t5

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"

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
// a million values, so that LoRA checkpoints are resumed only on the base they were trained on.
func (m *Model) Fingerprint() string {
	ts := m.Tensors()
	h := sha256.New()
	var buf [4]byte
	for _, t := range ts {
		fmt.Fprintf(h, "%s%v;", t.Name, t.Shape)
		stride := max(1, len(t.Data)/(1<<20/len(ts)+1))
		for i := 0; i < len(t.Data); i += stride {
			b := math.Float32bits(t.Data[i])
			buf[0], buf[1], buf[2], buf[3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
			h.Write(buf[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
