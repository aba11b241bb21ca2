package model

import (
	"context"
	"fmt"
	"slices"

	"github.com/lathe-ml/lathe/llm/tensor"
)

// Model is a llama-family model in float32: base weights, optional LoRA adapters, gradients of
// whatever is trainable, and the memory of its last forward. It is not safe for concurrent use.
type Model struct {
	n *net[float32]
}

// New returns a model with all weights zero (fill them with Load, FromSource or InitRandom).
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Model{n: newNet[float32](cfg)}, nil
}

// NewRandom returns a model with N(0, 0.02²) weights and unit norms, a deterministic function of seed:
// for tests and benchmarks.
func NewRandom(cfg Config, seed uint64) (*Model, error) {
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	m.n.w.initRandom(cfg, seed, 0.02)
	return m, nil
}

// TensorSource yields a checkpoint's tensors by GGUF name, as float32 with their shape (either the
// row-major [out, in] or GGUF's reversed [in, out]; the bytes are the same).
type TensorSource interface {
	Tensor(name string) ([]float32, []int, error)
}

// FromSource builds a model of the given architecture and copies every tensor from src.
func FromSource(cfg Config, src TensorSource) (*Model, error) {
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.tensorSpecs() {
		data, shape, err := src.Tensor(s.name)
		if err != nil {
			return nil, fmt.Errorf("load tensor %s: %w", s.name, err)
		}
		if !shapeMatches(shape, s.shape) || len(data) != s.size() {
			return nil, fmt.Errorf("load tensor %s: shape %v (%d values), model expects %v", s.name, shape, len(data), s.shape)
		}
		copy(*m.n.w.ptr(s.layer, s.field), data)
	}
	if !isFinite(m.n.w.slab) {
		return nil, fmt.Errorf("load model: weights contain NaN or Inf")
	}
	return m, nil
}

// shapeMatches accepts the expected row-major shape or its reverse (GGUF's dimension order).
func shapeMatches(got, want []int) bool {
	if slices.Equal(got, want) {
		return true
	}
	r := slices.Clone(got)
	slices.Reverse(r)
	return slices.Equal(r, want)
}

// Config returns the model's architecture.
func (m *Model) Config() Config { return m.n.cfg }

// Tensors returns views of the base weights under their GGUF names (no output.weight when tied). After
// MergeLoRA they hold the merged weights, ready for a format writer. A base held in bfloat16
// (LoRAConfig.FrozenBF16) is widened back to float32 first.
func (m *Model) Tensors() []Tensor {
	m.n.thaw()
	var ts []Tensor
	for _, s := range m.n.cfg.tensorSpecs() {
		ts = append(ts, Tensor{Name: s.name, Shape: slices.Clone(s.shape), Kind: s.kind, Data: *m.n.w.ptr(s.layer, s.field)})
	}
	return ts
}

// Trainable returns the tensors that ForwardBackward writes gradients for, with those gradients: the
// LoRA adapters when attached (the base is frozen), otherwise every base tensor (the gradient memory
// is allocated on the first call).
func (m *Model) Trainable() []Param {
	n := m.n
	if n.lora != nil {
		return m.adapterParams()
	}
	n.thaw()
	if n.g == nil {
		n.g = newWeights[float32](n.cfg)
	}
	var ps []Param
	for _, s := range n.cfg.tensorSpecs() {
		ps = append(ps, Param{
			Tensor: Tensor{Name: s.name, Shape: slices.Clone(s.shape), Kind: s.kind, Data: *n.w.ptr(s.layer, s.field)},
			Grad:   *n.g.ptr(s.layer, s.field),
		})
	}
	return ps
}

// ZeroGrads clears the gradients of the trainable tensors.
func (m *Model) ZeroGrads() {
	clear(m.n.stale)
	if m.n.lora != nil {
		parallelClear(m.n.lora.g.slab)
	}
	if m.n.g != nil {
		parallelClear(m.n.g.slab)
	}
}

// DiscardGrads starts a new accumulation of gradients without zeroing them first: the next
// ForwardBackward writes each base gradient whole and later ones add to it, as after ZeroGrads. Until
// that ForwardBackward the gradients still hold their old values (read Params' Grad only after it).
// LoRA gradients are zeroed as by ZeroGrads.
func (m *Model) DiscardGrads() {
	if m.n.lora != nil {
		parallelClear(m.n.lora.g.slab)
	}
	m.n.discardGrads()
}

// parallelClear zeroes s on all workers: a full model's gradients are hundreds of megabytes, which one
// core clears at only part of the memory bandwidth while the other waits.
func parallelClear[F float](s []F) {
	const block = 1 << 16
	tensor.Parallel((len(s)+block-1)/block, func(lo, hi int) { clear(s[lo*block : min(hi*block, len(s))]) })
}

// AttachLoRA adds adapters (A random from seed, B zero: the model's outputs do not change) and freezes
// the base weights: their gradients are dropped and never computed again.
func (m *Model) AttachLoRA(lc LoRAConfig, seed uint64) error {
	if err := lc.validate(); err != nil {
		return err
	}
	for _, t := range lc.Targets {
		if !m.n.cfg.HasTarget(t) {
			return fmt.Errorf("attach lora: the model has no %s projection", t)
		}
	}
	if m.n.lora != nil {
		return fmt.Errorf("attach lora: the model already has adapters (merge them first)")
	}
	m.n.lora = newLoRA[float32](m.n.cfg, lc, seed)
	m.n.g = nil
	if lc.FrozenBF16 {
		m.n.freezeBF16()
	}
	return nil
}

// LoRA returns the attached adapters' configuration.
func (m *Model) LoRA() (LoRAConfig, bool) {
	if m.n.lora == nil {
		return LoRAConfig{}, false
	}
	return m.n.lora.cfg, true
}

func (m *Model) adapterParams() []Param {
	lo, c := m.n.lora, m.n.cfg
	var ps []Param
	for l := range c.Layers {
		for _, t := range lo.cfg.Targets {
			in, out := t.dims(c)
			name := fmt.Sprintf("blk.%d.%s.weight", l, targetGGUF[t])
			w, g := &lo.w.layers[l][t], &lo.g.layers[l][t]
			ps = append(ps,
				Param{Tensor{name + ".lora_a", []int{lo.cfg.Rank, in}, KindLoRA, w.a}, g.a},
				Param{Tensor{name + ".lora_b", []int{out, lo.cfg.Rank}, KindLoRA, w.b}, g.b})
		}
	}
	return ps
}

// AdapterTensors returns views of the LoRA matrices, named as llama.cpp's LoRA GGUF names them
// (blk.N.attn_q.weight.lora_a [Rank, in], .lora_b [out, Rank]); nil without adapters.
func (m *Model) AdapterTensors() []Tensor {
	if m.n.lora == nil {
		return nil
	}
	var ts []Tensor
	for _, p := range m.adapterParams() {
		ts = append(ts, p.Tensor)
	}
	return ts
}

// MergeLoRA folds the adapters into the base weights (W += Alpha/Rank·B·A) and removes them. The base
// stays frozen until Trainable is called again.
func (m *Model) MergeLoRA() {
	n := m.n
	lo := n.lora
	if lo == nil {
		return
	}
	n.thaw()
	var tmp []float32
	for l := range n.cfg.Layers {
		for _, t := range lo.cfg.Targets {
			in, out := t.dims(n.cfg)
			if cap(tmp) < out*in {
				tmp = make([]float32, out*in)
			}
			lo.mergeInto(*n.w.ptr(l, targetFields[t]), tmp[:out*in], &lo.w.layers[l][t], in, out)
		}
	}
	n.lora = nil
	n.acts = nil
	n.inf = nil
}

// SetRopeLayout converts the model to another rotary layout: it permutes the rows of Q and K (weights,
// biases and LoRA B) so the model computes the same function, and switches the kernel. A model read
// from Hugging Face safetensors (half-split) becomes GGUF's adjacent layout, and back.
func (m *Model) SetRopeLayout(layout RopeLayout) {
	n := m.n
	c := n.cfg
	if c.RopeLayout == layout || c.ALiBi {
		return
	}
	if n.frozen != nil {
		defer n.freezeBF16()
		n.thaw()
	}
	if n.quant != nil {
		n.thaw() // a quantized base is permuted in float32 (rows of blocks could be, but nothing needs it)
	}
	perm := func(rows []float32, heads, width int) {
		permuteRopeRows(rows, heads, c.HeadDim, c.rotDim(), width, layout)
	}
	for l := range c.Layers {
		lw := &n.w.layers[l]
		perm(lw.wq, c.Heads, c.Dim)
		perm(lw.wk, c.KVHeads, c.Dim)
		if c.QKVBias {
			perm(lw.bq, c.Heads, 1)
			perm(lw.bk, c.KVHeads, 1)
		}
		if n.lora != nil {
			for _, t := range []Target{TargetQ, TargetK} {
				if ad := n.lora.adapter(l, t); ad != nil {
					heads := c.Heads
					if t == TargetK {
						heads = c.KVHeads
					}
					perm(ad.b, heads, n.lora.cfg.Rank)
				}
			}
		}
	}
	n.cfg.RopeLayout = layout
}

// permuteRopeRows reorders, within each head, rows of `width` values between the two rotary layouts:
// the adjacent pair (2i, 2i+1) is the half-split pair (i, i+RD/2) among the RD rotating rows (the
// rest stay). to says the layout wanted.
func permuteRopeRows(rows []float32, heads, HD, RD, width int, to RopeLayout) {
	tmp := make([]float32, HD*width)
	half := RD / 2
	for h := range heads {
		head := rows[h*HD*width : (h+1)*HD*width]
		copy(tmp, head)
		for i := range half {
			for j := range 2 {
				adj, hs := 2*i+j, j*half+i
				src, dst := hs, adj // half-split -> adjacent
				if to == RopeHalfSplit {
					src, dst = adj, hs
				}
				copy(head[dst*width:(dst+1)*width], tmp[src*width:(src+1)*width])
			}
		}
	}
}

// LossSum runs the model over a batch without touching gradients and returns Σ mask·(−log p(target))
// and Σ mask: the mean loss over several batches is ΣLossSum/Σcount.
func (m *Model) LossSum(b Batch) (sum, count float64, err error) {
	if err := b.Validate(m.n.cfg.Vocab); err != nil {
		return 0, 0, err
	}
	sum = m.n.forward(b.Tokens, b.Targets, b.Mask, b.B, b.T, false, 0, 0)
	return sum, b.Count(), nil
}

// ForwardBackward runs the forward and backward over a batch and adds gradScale·∂(Σ mask·loss)/∂θ to
// the gradients of the trainable tensors (call ZeroGrads or DiscardGrads first; use gradScale =
// 1/Σmask over all micro-batches of a step for a mean loss). dropoutSeed fixes the LoRA dropout
// masks. It returns Σ mask·loss. The gradients are those of the loss over the given weights; nothing
// is updated.
func (m *Model) ForwardBackward(b Batch, gradScale float64, dropoutSeed uint64) (float64, error) {
	return m.ForwardBackwardContext(context.Background(), b, gradScale, dropoutSeed)
}

// ForwardBackwardContext is ForwardBackward that ends between two layers once ctx is done (a large
// model's pass can take minutes; a stopped job should not wait for it), returning ctx's error. The
// gradients are then unfinished: start the next accumulation with ZeroGrads or DiscardGrads. The
// weights are never touched.
func (m *Model) ForwardBackwardContext(ctx context.Context, b Batch, gradScale float64, dropoutSeed uint64) (float64, error) {
	if err := b.Validate(m.n.cfg.Vocab); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if m.n.lora == nil && m.n.g == nil {
		m.Trainable()
	}
	if ctx.Done() != nil {
		m.n.stop = func() bool { return ctx.Err() != nil }
		defer func() { m.n.stop = nil }()
	}
	sum := m.n.forward(b.Tokens, b.Targets, b.Mask, b.B, b.T, true, gradScale, dropoutSeed)
	if !m.n.stopped() {
		m.n.backward(b.Tokens, dropoutSeed)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return sum, nil
}

// Logits returns the [B·T, Vocab] logits of B sequences of T tokens. It allocates the whole tensor:
// for checks and diagnostics, not for training.
func (m *Model) Logits(tokens []int32, B, T int) ([]float32, error) {
	b := Batch{B: B, T: T, Tokens: tokens, Targets: make([]int32, B*T), Mask: make([]float32, B*T)}
	if err := b.Validate(m.n.cfg.Vocab); err != nil {
		return nil, err
	}
	return m.n.logits(tokens, B, T), nil
}

// KVCache holds one sequence's keys and values for generation.
type KVCache struct{ c *kvCache[float32] }

// NewKVCache returns an empty cache for up to maxLen positions.
func (m *Model) NewKVCache(maxLen int) *KVCache {
	kvd := m.n.cfg.KVHeads * m.n.cfg.HeadDim
	n := m.n.cfg.Layers * maxLen * kvd
	return &KVCache{&kvCache[float32]{k: make([]float32, n), v: make([]float32, n), max: maxLen}}
}

// Len is the number of positions the cache holds.
func (c *KVCache) Len() int { return c.c.n }

// Cap is the number of positions the cache can hold.
func (c *KVCache) Cap() int { return c.c.max }

// Reset empties the cache for a new sequence (the memory is kept).
func (c *KVCache) Reset() { c.c.n = 0 }

// Extend appends tokens[i] to caches[i] for each sequence (a whole prompt, or one token per step) and
// writes the logits that follow each sequence's last new token into logits[i·Vocab : (i+1)·Vocab].
// The sequences' new tokens go through each projection together (batched).
func (m *Model) Extend(caches []*KVCache, tokens [][]int32, logits []float32) error {
	cs := make([]*kvCache[float32], len(caches))
	for i, c := range caches {
		cs[i] = c.c
	}
	return m.n.extend(cs, tokens, logits)
}
