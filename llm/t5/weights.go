package t5

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lathe-ml/lathe/llm/hugemem"
)

// Kind groups tensors by how an optimizer treats them.
type Kind int

const (
	KindMatrix    Kind = iota // projections and an untied lm_head: weight decay applies
	KindNorm                  // T5LayerNorm gains: no weight decay
	KindEmbedding             // shared.weight and the relative attention biases: no weight decay
)

func (k Kind) String() string {
	switch k {
	case KindNorm:
		return "norm"
	case KindEmbedding:
		return "embedding"
	default:
		return "matrix"
	}
}

// attnWeights are one attention's projections, [Inner, DModel] for q, k, v and [DModel, Inner] for o.
type attnWeights[F float] struct{ q, k, v, o []F }

// ffnWeights are one feed-forward: wi0 (wi when not gated) and wi1 [DFF, DModel], wo [DModel, DFF].
type ffnWeights[F float] struct{ wi0, wi1, wo []F }

// encoderBlock is encoder.block.N: layer.0 self-attention, layer.1 feed-forward, each behind a norm.
type encoderBlock[F float] struct {
	attnNorm []F
	attn     attnWeights[F]
	ffnNorm  []F
	ffn      ffnWeights[F]
}

// decoderBlock is decoder.block.N: layer.0 causal self-attention, layer.1 cross-attention over the
// encoder output, layer.2 feed-forward.
type decoderBlock[F float] struct {
	selfNorm  []F
	self      attnWeights[F]
	crossNorm []F
	cross     attnWeights[F]
	ffnNorm   []F
	ffn       ffnWeights[F]
}

// weights are all the model's tensors (or their gradients), carved out of one slab.
type weights[F float] struct {
	slab     []F
	shared   []F // shared.weight [Vocab, DModel]: both embeddings, and the head when tied
	encRel   []F // encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight [Buckets, Heads]
	decRel   []F // decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight
	enc      []encoderBlock[F]
	encFinal []F // encoder.final_layer_norm.weight
	dec      []decoderBlock[F]
	decFinal []F // decoder.final_layer_norm.weight
	lmHead   []F // lm_head.weight [Vocab, DModel]; nil when tied
}

// visit calls fn on every tensor with its Hugging Face name, row-major shape and kind, in the order of
// transformers' state dict. It is the one list of the model's tensors: carving, loading, saving and
// Params all walk it.
func (w *weights[F]) visit(c Config, fn func(name string, shape []int, kind Kind, t *[]F)) {
	C, I, FF := c.DModel, c.Inner(), c.DFF
	attn := func(p string, a *attnWeights[F]) {
		fn(p+".q.weight", []int{I, C}, KindMatrix, &a.q)
		fn(p+".k.weight", []int{I, C}, KindMatrix, &a.k)
		fn(p+".v.weight", []int{I, C}, KindMatrix, &a.v)
		fn(p+".o.weight", []int{C, I}, KindMatrix, &a.o)
	}
	ffn := func(p string, f *ffnWeights[F]) {
		if c.Gated {
			fn(p+".wi_0.weight", []int{FF, C}, KindMatrix, &f.wi0)
			fn(p+".wi_1.weight", []int{FF, C}, KindMatrix, &f.wi1)
		} else {
			fn(p+".wi.weight", []int{FF, C}, KindMatrix, &f.wi0)
		}
		fn(p+".wo.weight", []int{C, FF}, KindMatrix, &f.wo)
	}
	rel := []int{c.Buckets, c.Heads}
	fn("shared.weight", []int{c.Vocab, C}, KindEmbedding, &w.shared)
	for l := range w.enc {
		b, p := &w.enc[l], fmt.Sprintf("encoder.block.%d.layer.", l)
		attn(p+"0.SelfAttention", &b.attn)
		if l == 0 {
			fn(p+"0.SelfAttention.relative_attention_bias.weight", rel, KindEmbedding, &w.encRel)
		}
		fn(p+"0.layer_norm.weight", []int{C}, KindNorm, &b.attnNorm)
		ffn(p+"1.DenseReluDense", &b.ffn)
		fn(p+"1.layer_norm.weight", []int{C}, KindNorm, &b.ffnNorm)
	}
	fn("encoder.final_layer_norm.weight", []int{C}, KindNorm, &w.encFinal)
	for l := range w.dec {
		b, p := &w.dec[l], fmt.Sprintf("decoder.block.%d.layer.", l)
		attn(p+"0.SelfAttention", &b.self)
		if l == 0 {
			fn(p+"0.SelfAttention.relative_attention_bias.weight", rel, KindEmbedding, &w.decRel)
		}
		fn(p+"0.layer_norm.weight", []int{C}, KindNorm, &b.selfNorm)
		attn(p+"1.EncDecAttention", &b.cross)
		fn(p+"1.layer_norm.weight", []int{C}, KindNorm, &b.crossNorm)
		ffn(p+"2.DenseReluDense", &b.ffn)
		fn(p+"2.layer_norm.weight", []int{C}, KindNorm, &b.ffnNorm)
	}
	fn("decoder.final_layer_norm.weight", []int{C}, KindNorm, &w.decFinal)
	if !c.Tied {
		fn("lm_head.weight", []int{c.Vocab, C}, KindMatrix, &w.lmHead)
	}
}

// newWeights carves zeroed tensors for cfg out of one allocation.
func newWeights[F float](c Config) *weights[F] {
	w := &weights[F]{enc: make([]encoderBlock[F], c.EncoderLayers), dec: make([]decoderBlock[F], c.DecoderLayers)}
	n := 0
	w.visit(c, func(_ string, shape []int, _ Kind, _ *[]F) { n += numel(shape) })
	w.slab = hugemem.Make[F](n)
	cv := &carver[F]{slab: w.slab}
	w.visit(c, func(_ string, shape []int, _ Kind, t *[]F) { *t = cv.take(numel(shape)) })
	return w
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// head is the output projection: lm_head.weight, or shared.weight when tied.
func (w *weights[F]) head() []F {
	if w.lmHead != nil {
		return w.lmHead
	}
	return w.shared
}

// initRandom fills the weights as transformers' T5PreTrainedModel._init_weights does with factor 1
// (deterministic in seed): shared ~ N(0, 1); q ~ N(0, (DModel·DKV)^-½); k, v, wi ~ N(0, DModel^-½);
// o ~ N(0, Inner^-½); wo ~ N(0, DFF^-½); relative biases ~ N(0, DModel^-½); lm_head ~ N(0, 1); norms 1.
func (w *weights[F]) initRandom(c Config, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x7435))
	fill := func(t []F, std float64) {
		for i := range t {
			t[i] = F(rng.NormFloat64() * std)
		}
	}
	inv := func(n int) float64 { return 1 / math.Sqrt(float64(n)) }
	w.visit(c, func(name string, shape []int, kind Kind, t *[]F) {
		switch {
		case kind == KindNorm:
			for i := range *t {
				(*t)[i] = 1
			}
		case hasSuffix(name, ".q.weight"):
			fill(*t, inv(c.DModel*c.DKV))
		case hasSuffix(name, ".o.weight"):
			fill(*t, inv(c.Inner()))
		case hasSuffix(name, ".wo.weight"):
			fill(*t, inv(c.DFF))
		case name == "shared.weight" || name == "lm_head.weight":
			fill(*t, 1)
		default: // k, v, wi, relative biases
			fill(*t, inv(c.DModel))
		}
	})
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
