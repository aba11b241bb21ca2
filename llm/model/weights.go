package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/lathe-ml/lathe/llm/hugemem"
)

// float is the element type of the kernels: float32 in the product, float64 in gradient checks.
type float interface{ ~float32 | ~float64 }

// field names one tensor of the architecture.
type field int

const (
	fEmbed field = iota
	fAttnNorm
	fWq
	fBq
	fWk
	fBk
	fWv
	fBv
	fWo
	fFFNNorm
	fGate
	fUp
	fDown
	fFinalNorm
	fOutput
	fAttnNormB
	fBo
	fFFNNormB
	fBup
	fBdown
	fFinalNormB
)

// Kind groups tensors by how the optimizer treats them.
type Kind int

const (
	KindMatrix Kind = iota // projection weights: weight decay applies
	KindEmbed              // token embedding (and the tied head): no weight decay
	KindNorm               // norm gains and LayerNorm biases: no weight decay
	KindBias               // projection biases: no weight decay
	KindLoRA               // LoRA A and B: weight decay applies
)

// tensorSpec is one named tensor: its GGUF name, where it lives, and its row-major shape
// ([out, in] for projections, which is GGUF's [in, out] with `in` contiguous: the same bytes).
type tensorSpec struct {
	name  string
	layer int // -1 for tensors outside the blocks
	field field
	shape []int
	kind  Kind
}

func (s tensorSpec) size() int {
	n := 1
	for _, d := range s.shape {
		n *= d
	}
	return n
}

// tensorSpecs lists the model's tensors in allocation order, with the names llama.cpp gives a llama's
// (llm/format maps them to each architecture's own names, fusing Q/K/V where a file does). The
// tensors a variant adds (biases, LayerNorm biases) come after those of a llama, so a llama's order
// is unchanged.
func (c Config) tensorSpecs() []tensorSpec {
	qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	specs := []tensorSpec{{"token_embd.weight", -1, fEmbed, []int{c.Vocab, c.Dim}, KindEmbed}}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		specs = append(specs, tensorSpec{p + "attn_norm.weight", l, fAttnNorm, []int{c.Dim}, KindNorm})
		if c.NormBias {
			specs = append(specs, tensorSpec{p + "attn_norm.bias", l, fAttnNormB, []int{c.Dim}, KindNorm})
		}
		specs = append(specs,
			tensorSpec{p + "attn_q.weight", l, fWq, []int{qd, c.Dim}, KindMatrix},
			tensorSpec{p + "attn_k.weight", l, fWk, []int{kvd, c.Dim}, KindMatrix},
			tensorSpec{p + "attn_v.weight", l, fWv, []int{kvd, c.Dim}, KindMatrix})
		if c.QKVBias {
			specs = append(specs,
				tensorSpec{p + "attn_q.bias", l, fBq, []int{qd}, KindBias},
				tensorSpec{p + "attn_k.bias", l, fBk, []int{kvd}, KindBias},
				tensorSpec{p + "attn_v.bias", l, fBv, []int{kvd}, KindBias})
		}
		specs = append(specs, tensorSpec{p + "attn_output.weight", l, fWo, []int{c.Dim, qd}, KindMatrix})
		if c.OutputBias {
			specs = append(specs, tensorSpec{p + "attn_output.bias", l, fBo, []int{c.Dim}, KindBias})
		}
		if !c.SharedNorm {
			specs = append(specs, tensorSpec{p + "ffn_norm.weight", l, fFFNNorm, []int{c.Dim}, KindNorm})
			if c.NormBias {
				specs = append(specs, tensorSpec{p + "ffn_norm.bias", l, fFFNNormB, []int{c.Dim}, KindNorm})
			}
		}
		if c.gated() {
			specs = append(specs, tensorSpec{p + "ffn_gate.weight", l, fGate, []int{c.FFN, c.Dim}, KindMatrix})
		}
		specs = append(specs,
			tensorSpec{p + "ffn_up.weight", l, fUp, []int{c.FFN, c.Dim}, KindMatrix},
			tensorSpec{p + "ffn_down.weight", l, fDown, []int{c.Dim, c.FFN}, KindMatrix})
		if c.MLPBias {
			specs = append(specs,
				tensorSpec{p + "ffn_up.bias", l, fBup, []int{c.FFN}, KindBias},
				tensorSpec{p + "ffn_down.bias", l, fBdown, []int{c.Dim}, KindBias})
		}
	}
	specs = append(specs, tensorSpec{"output_norm.weight", -1, fFinalNorm, []int{c.Dim}, KindNorm})
	if c.NormBias {
		specs = append(specs, tensorSpec{"output_norm.bias", -1, fFinalNormB, []int{c.Dim}, KindNorm})
	}
	if !c.Tied {
		specs = append(specs, tensorSpec{"output.weight", -1, fOutput, []int{c.Vocab, c.Dim}, KindMatrix})
	}
	return specs
}

// layerWeights are one transformer block's tensors; those a variant does not have are nil (biases,
// LayerNorm biases, the gate of a plain MLP, the second norm of falcon-7b's shared-norm block).
type layerWeights[F float] struct {
	attnNorm, attnNormB, wq, bq, wk, bk, wv, bv, wo, bo []F
	ffnNorm, ffnNormB, wgate, wup, bup, wdown, bdown    []F
}

// weights are all parameters (or all gradients) of a model, carved out of one allocation.
type weights[F float] struct {
	slab       []F
	embed      []F // [Vocab, Dim]
	layers     []layerWeights[F]
	finalNorm  []F // [Dim]
	finalNormB []F // [Dim], LayerNorm only
	output     []F // [Vocab, Dim]; the same slice as embed when tied
}

func newWeights[F float](c Config) *weights[F] {
	return newWeightsWhere[F](c, func(tensorSpec) bool { return true })
}

// newWeightsWhere allocates only the tensors that keep accepts (the others stay nil).
func newWeightsWhere[F float](c Config, keep func(tensorSpec) bool) *weights[F] {
	total := 0
	for _, s := range c.tensorSpecs() {
		if keep(s) {
			total += s.size()
		}
	}
	w := &weights[F]{slab: hugemem.Make[F](total), layers: make([]layerWeights[F], c.Layers)}
	off := 0
	for _, s := range c.tensorSpecs() {
		if !keep(s) {
			continue
		}
		n := s.size()
		*w.ptr(s.layer, s.field) = w.slab[off : off+n : off+n]
		off += n
	}
	if c.Tied {
		w.output = w.embed
	}
	return w
}

// ptr returns where the tensor (layer, f) lives.
func (w *weights[F]) ptr(layer int, f field) *[]F {
	switch f {
	case fEmbed:
		return &w.embed
	case fFinalNorm:
		return &w.finalNorm
	case fFinalNormB:
		return &w.finalNormB
	case fOutput:
		return &w.output
	}
	lw := &w.layers[layer]
	switch f {
	case fAttnNorm:
		return &lw.attnNorm
	case fAttnNormB:
		return &lw.attnNormB
	case fBo:
		return &lw.bo
	case fFFNNormB:
		return &lw.ffnNormB
	case fBup:
		return &lw.bup
	case fBdown:
		return &lw.bdown
	case fWq:
		return &lw.wq
	case fBq:
		return &lw.bq
	case fWk:
		return &lw.wk
	case fBk:
		return &lw.bk
	case fWv:
		return &lw.wv
	case fBv:
		return &lw.bv
	case fWo:
		return &lw.wo
	case fFFNNorm:
		return &lw.ffnNorm
	case fGate:
		return &lw.wgate
	case fUp:
		return &lw.wup
	case fDown:
		return &lw.wdown
	}
	panic(fmt.Sprintf("model: unknown field %d", f))
}

// initRandom fills matrices and embeddings with N(0, std²), norm gains with 1, norm biases with 0 and
// projection biases with N(0, std²): a deterministic function of seed.
func (w *weights[F]) initRandom(c Config, seed uint64, std float64) {
	rng := rand.New(rand.NewPCG(seed, 0x6c61746865))
	for _, s := range c.tensorSpecs() {
		t := *w.ptr(s.layer, s.field)
		for i := range t {
			switch {
			case s.kind == KindNorm && strings.HasSuffix(s.name, ".bias"):
				t[i] = 0
			case s.kind == KindNorm:
				t[i] = 1
			default:
				t[i] = F(rng.NormFloat64() * std)
			}
		}
	}
}

// Tensor is one named tensor of a model, a view of its storage (not a copy). Shape is row-major
// ([out, in] for projections); GGUF writes the same bytes with the dimensions reversed.
type Tensor struct {
	Name  string
	Shape []int
	Kind  Kind
	Data  []float32
}

// Param is one trainable tensor with its gradient, both views into the model's allocations.
type Param struct {
	Tensor
	Grad []float32
}

func isFinite[F float](xs []F) bool {
	for _, x := range xs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// TensorShape is the row-major shape of the model's tensor name (a GGUF name), or false when the
// model has no such tensor.
func (c Config) TensorShape(name string) ([]int, bool) {
	for _, s := range c.tensorSpecs() {
		if s.name == name {
			return slices.Clone(s.shape), true
		}
	}
	return nil, false
}
