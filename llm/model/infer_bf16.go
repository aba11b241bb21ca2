package model

import (
	"github.com/lathe-ml/lathe/llm/hugemem"
)

// UseBF16Weights holds the weights that generation streams in bfloat16: every block's seven
// projection matrices (moved, as LoRA's FrozenBF16 does: their float32 copies are freed) and a
// bfloat16 copy of the output head. Decoding is memory-bound, so reading half the bytes per token
// makes it up to twice as fast. The decoding products round their activations to bfloat16 as well
// (as llama.cpp does with bfloat16 weights) and accumulate in float32, with the CPU's bfloat16 dot
// products where it has them (AVX-512 BF16). On stories260K the logits move by at most about 0.13 from
// float32's and greedy decoding writes the same text for 80 tokens or more (see the tests). Norms,
// biases, the embedding, attention and the KV cache stay float32.
//
// It is meant for serving a model whose weights are final: the rounding is permanent. Anything that
// needs float32 weights (Tensors, Trainable, MergeLoRA, training) widens the matrices back (rounded),
// and generation then reads float32 again until UseBF16Weights is called anew. Prompts longer than
// tensor.NarrowRows tokens go through the packed bfloat16 GEMM (activations rounded the same way)
// where the CPU multiplies bfloat16 natively, and elsewhere are prefilled with the matrices widened
// one layer at a time.
func (m *Model) UseBF16Weights() {
	n := m.n
	if n.quant != nil {
		return // quantized weights stay so: they are smaller than bfloat16 already
	}
	n.freezeBF16()
	hugemem.Advise(n.frozen.data)
	sc := n.ensureInfer(1, 1)
	out := n.w.output
	h := make([]uint16, len(out))
	roundBF16(h, out)
	sc.head = bf16Head{data: h, of: &out[0]}
}

// BF16Weights reports whether generation reads bfloat16 weights (UseBF16Weights is in force).
func (m *Model) BF16Weights() bool { return m.n.frozen != nil }

// bf16Head is the output head's bfloat16 copy, valid while of is still the head's storage: freezing
// the base allocates the head anew, and training the head needs float32 weights (which thaws the
// base), so a head that changed since the copy was made is never read through it.
type bf16Head struct {
	data []uint16
	of   *float32
}

// headBF16 returns the output head in bfloat16 when the base is held in bfloat16 and the copy is of
// the current head, else nil.
func (m *net[F]) headBF16() []uint16 {
	if m.frozen == nil || m.inf == nil || m.inf.head.data == nil || len(m.w.output) == 0 {
		return nil
	}
	if out, ok := any(m.w.output).([]float32); !ok || &out[0] != m.inf.head.of {
		return nil
	}
	return m.inf.head.data
}
