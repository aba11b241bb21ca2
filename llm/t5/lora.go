package t5

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/lathe-ml/lathe/llm/model"
)

// LoRA on T5 rides on net.hook: every projection goes through net.lin / net.linBack with a site naming
// its stack, layer and matrix, and the adapters add W' = W + (Alpha/Rank)·B·A on the sites whose matrix
// is a target. A target names a matrix in every sub-layer that has it, as PEFT's target_modules does
// for T5 ("q" and "v" match the encoder's self-attention, the decoder's self-attention and its
// cross-attention alike). The base weights are frozen while adapters are attached: the backward
// computes no gradient for any of them (net.frozen).
//
// model.LoRAConfig is shared with the decoder-only engine, so the trainer and the job pipeline treat
// both alike. Its targets map onto T5's matrices: q, k, v, o; gate = wi_0, up = wi_1 (wi when the
// feed-forward is not gated), down = wo. Dropout on the adapters' input is not applied here (T5 is
// fine-tuned without dropout in Lathe, see ForwardBackward).

// loraSite is one projection's adapter: a [Rank, C] and b [OC, Rank], with their gradients.
type loraSite[F float] struct {
	s      site
	C, OC  int
	a, b   []F
	ga, gb []F
}

type loraAdapters[F float] struct {
	cfg   model.LoRAConfig
	scale F
	sites map[site]*loraSite[F]
	order []*loraSite[F] // the sites in the model's tensor order: Params and checkpoints list them so
	slab  []F            // all a and b
	gslab []F            // all gradients
	hs    []F            // scratch [N, Rank]
	dh    []F            // scratch [N, Rank]
}

// projFor maps a LoRA target to T5's matrix, or false when the model has no such matrix.
func projFor(c Config, t model.Target) (Proj, bool) {
	switch t {
	case model.TargetQ:
		return ProjQ, true
	case model.TargetK:
		return ProjK, true
	case model.TargetV:
		return ProjV, true
	case model.TargetO:
		return ProjO, true
	case model.TargetGate:
		return ProjWi0, c.Gated
	case model.TargetUp:
		if c.Gated {
			return ProjWi1, true
		}
		return ProjWi0, true
	case model.TargetDown:
		return ProjWo, true
	}
	return 0, false
}

// HasTarget reports whether a LoRA target names a matrix of this model (gate needs a gated
// feed-forward).
func (c Config) HasTarget(t model.Target) bool {
	_, ok := projFor(c, t)
	return ok
}

// projDims is the input and output width of a projection.
func (c Config) projDims(p Proj) (in, out int) {
	switch p {
	case ProjQ, ProjK, ProjV:
		return c.DModel, c.Inner()
	case ProjO:
		return c.Inner(), c.DModel
	case ProjWi0, ProjWi1:
		return c.DModel, c.DFF
	default:
		return c.DFF, c.DModel
	}
}

// sites lists every projection of the model in transformers' state-dict order.
func (c Config) sites() []site {
	var out []site
	attn := []Proj{ProjQ, ProjK, ProjV, ProjO}
	ffn := []Proj{ProjWi0, ProjWi1, ProjWo}
	if !c.Gated {
		ffn = []Proj{ProjWi0, ProjWo}
	}
	for l := range c.EncoderLayers {
		for _, p := range attn {
			out = append(out, site{EncoderSelf, l, p})
		}
		for _, p := range ffn {
			out = append(out, site{EncoderFFN, l, p})
		}
	}
	for l := range c.DecoderLayers {
		for _, part := range []Part{DecoderSelf, DecoderCross} {
			for _, p := range attn {
				out = append(out, site{part, l, p})
			}
		}
		for _, p := range ffn {
			out = append(out, site{DecoderFFN, l, p})
		}
	}
	return out
}

// moduleName is the Hugging Face module path of a projection (PEFT keys adapters by it).
func (c Config) moduleName(s site) string {
	proj := [...]string{ProjQ: "q", ProjK: "k", ProjV: "v", ProjO: "o", ProjWi0: "wi_0", ProjWi1: "wi_1", ProjWo: "wo"}[s.proj]
	if s.proj == ProjWi0 && !c.Gated {
		proj = "wi"
	}
	switch s.part {
	case EncoderSelf:
		return fmt.Sprintf("encoder.block.%d.layer.0.SelfAttention.%s", s.layer, proj)
	case EncoderFFN:
		return fmt.Sprintf("encoder.block.%d.layer.1.DenseReluDense.%s", s.layer, proj)
	case DecoderSelf:
		return fmt.Sprintf("decoder.block.%d.layer.0.SelfAttention.%s", s.layer, proj)
	case DecoderCross:
		return fmt.Sprintf("decoder.block.%d.layer.1.EncDecAttention.%s", s.layer, proj)
	default:
		return fmt.Sprintf("decoder.block.%d.layer.2.DenseReluDense.%s", s.layer, proj)
	}
}

func newLoRAAdapters[F float](c Config, lc model.LoRAConfig, seed uint64) (*loraAdapters[F], error) {
	if lc.Rank <= 0 || lc.Alpha <= 0 {
		return nil, fmt.Errorf("t5 lora: rank %d and alpha %g must be positive", lc.Rank, lc.Alpha)
	}
	if len(lc.Targets) == 0 {
		return nil, fmt.Errorf("t5 lora: no target projection")
	}
	lc.Targets = slices.Clone(lc.Targets)
	slices.Sort(lc.Targets)
	lc.Targets = slices.Compact(lc.Targets)
	want := map[Proj]bool{}
	for _, t := range lc.Targets {
		p, ok := projFor(c, t)
		if !ok {
			return nil, fmt.Errorf("t5 lora: the model has no %s projection", t)
		}
		want[p] = true
	}
	lo := &loraAdapters[F]{cfg: lc, scale: F(lc.Alpha / float64(lc.Rank)), sites: map[site]*loraSite[F]{}}
	n := 0
	for _, s := range c.sites() {
		if want[s.proj] {
			in, out := c.projDims(s.proj)
			lo.order = append(lo.order, &loraSite[F]{s: s, C: in, OC: out})
			n += lc.Rank * (in + out)
		}
	}
	lo.slab, lo.gslab = make([]F, n), make([]F, n)
	off := 0
	// As PEFT does: A ~ kaiming-uniform(a=√5) = U(−1/√in, 1/√in), B = 0: the adapted model starts equal
	// to the base.
	rng := rand.New(rand.NewPCG(seed, 0x6c6f7261))
	r := lc.Rank
	for _, ad := range lo.order {
		na, nb := r*ad.C, ad.OC*r
		ad.a, ad.ga = lo.slab[off:off+na:off+na], lo.gslab[off:off+na:off+na]
		off += na
		ad.b, ad.gb = lo.slab[off:off+nb:off+nb], lo.gslab[off:off+nb:off+nb]
		off += nb
		bound := 1 / math.Sqrt(float64(ad.C))
		for i := range ad.a {
			ad.a[i] = F((2*rng.Float64() - 1) * bound)
		}
		lo.sites[ad.s] = ad
	}
	return lo, nil
}

func (lo *loraAdapters[F]) scratch(N int) (hs, dh []F) {
	k := N * lo.cfg.Rank
	if cap(lo.hs) < k {
		lo.hs, lo.dh = make([]F, k), make([]F, k)
	}
	return lo.hs[:k], lo.dh[:k]
}

// forward: hs[N,r] = s·inp·Aᵀ; out[N,OC] += hs·Bᵀ.
func (lo *loraAdapters[F]) forward(s site, out, inp []F, N, C, OC int, _ bool) {
	ad := lo.sites[s]
	if ad == nil {
		return
	}
	r := lo.cfg.Rank
	hs, _ := lo.scratch(N)
	matmul(hs, inp, ad.a, N, r, C, false, true, false)
	for i := range hs {
		hs[i] *= lo.scale
	}
	matmul(out, hs, ad.b, N, OC, r, false, true, true)
}

// backward recomputes hs (cheaper than keeping one per site: N·C·r), then dB[OC,r] += doutᵀ·hs;
// dh[N,r] = s·dout·B; dA[r,C] += dhᵀ·inp; dinp[N,C] += dh·A.
func (lo *loraAdapters[F]) backward(s site, dinp, dout, inp []F, N, C, OC int) {
	ad := lo.sites[s]
	if ad == nil {
		return
	}
	r := lo.cfg.Rank
	hs, dh := lo.scratch(N)
	matmul(hs, inp, ad.a, N, r, C, false, true, false)
	for i := range hs {
		hs[i] *= lo.scale
	}
	matmul(ad.gb, dout, hs, OC, r, N, true, false, true)
	matmul(dh, dout, ad.b, N, r, OC, false, false, false)
	for i := range dh {
		dh[i] *= lo.scale
	}
	matmul(ad.ga, dh, inp, r, C, N, true, false, true)
	matmul(dinp, dh, ad.a, N, C, r, false, false, true)
}

// weightOf returns the base matrix of a site.
func (w *weights[F]) weightOf(s site) []F {
	switch s.part {
	case EncoderSelf:
		return w.enc[s.layer].attn.proj(s.proj)
	case DecoderSelf:
		return w.dec[s.layer].self.proj(s.proj)
	case DecoderCross:
		return w.dec[s.layer].cross.proj(s.proj)
	case EncoderFFN:
		return w.enc[s.layer].ffn.proj(s.proj)
	default:
		return w.dec[s.layer].ffn.proj(s.proj)
	}
}

func (a *attnWeights[F]) proj(p Proj) []F {
	return [...][]F{ProjQ: a.q, ProjK: a.k, ProjV: a.v, ProjO: a.o}[p]
}

func (f *ffnWeights[F]) proj(p Proj) []F {
	switch p {
	case ProjWi0:
		return f.wi0
	case ProjWi1:
		return f.wi1
	}
	return f.wo
}

// AttachLoRA adds adapters (A random from seed, B zero: the outputs do not change) and freezes the base
// weights, in bfloat16 with lc.FrozenBF16. The dropout of lc is not applied (see the comment at the top
// of this file).
func (m *Model) AttachLoRA(lc model.LoRAConfig, seed uint64) error {
	n := m.n
	if n.lora != nil {
		return fmt.Errorf("t5 lora: the model already has adapters (merge them first)")
	}
	lo, err := newLoRAAdapters[float32](n.cfg, lc, seed)
	if err != nil {
		return err
	}
	n.lora, n.hook, n.frozen = lo, lo, true
	// The base gets no gradient at all: an empty set of gradient tensors (every backward skips a nil
	// one), so a LoRA run holds the weights once, not twice.
	n.g = &weights[float32]{enc: make([]encoderBlock[float32], n.cfg.EncoderLayers), dec: make([]decoderBlock[float32], n.cfg.DecoderLayers)}
	if lc.FrozenBF16 {
		n.freezeBF16()
	}
	return nil
}

// LoRA returns the attached adapters' configuration.
func (m *Model) LoRA() (model.LoRAConfig, bool) {
	if m.n.lora == nil {
		return model.LoRAConfig{}, false
	}
	return m.n.lora.cfg, true
}

// AdapterTensor is one adapter matrix under its PEFT name ("<module>.lora_A.weight" [Rank, in],
// "<module>.lora_B.weight" [out, Rank]), with the module's Hugging Face path.
type AdapterTensor struct {
	Module string
	Name   string
	Shape  []int
	Data   []float32
	Grad   []float32
}

// Adapters lists the attached adapters in the model's tensor order (nil without adapters).
func (m *Model) Adapters() []AdapterTensor {
	lo := m.n.lora
	if lo == nil {
		return nil
	}
	r := lo.cfg.Rank
	var out []AdapterTensor
	for _, ad := range lo.order {
		mod := m.n.cfg.moduleName(ad.s)
		out = append(out,
			AdapterTensor{mod, mod + ".lora_A.weight", []int{r, ad.C}, ad.a, ad.ga},
			AdapterTensor{mod, mod + ".lora_B.weight", []int{ad.OC, r}, ad.b, ad.gb})
	}
	return out
}

// MergeLoRA folds the adapters into the base weights (W += Alpha/Rank·B·A), removes them and unfreezes
// the base.
func (m *Model) MergeLoRA() {
	n := m.n
	lo := n.lora
	if lo == nil {
		return
	}
	n.thaw()
	r := lo.cfg.Rank
	for _, ad := range lo.order {
		tmp := make([]float32, ad.OC*ad.C)
		matmul(tmp, ad.b, ad.a, ad.OC, ad.C, r, false, false, false)
		w := n.w.weightOf(ad.s)
		for i, v := range tmp {
			w[i] += lo.scale * v
		}
	}
	n.lora, n.hook, n.frozen, n.g = nil, nil, false, nil
}
