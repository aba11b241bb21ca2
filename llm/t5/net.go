package t5

import (
	"math"

	"github.com/lathe-ml/lathe/llm/hugemem"
)

// net is the T5 model over element type F: weights, gradients and the activations of the last
// training forward.
type net[F float] struct {
	cfg  Config
	w    *weights[F]
	g    *weights[F] // nil until the first training pass
	acts *activations[F]
	// hook, when set, adds to each projection's output and gradients: where LoRA adapters on q and v
	// will attach. Nil: plain projections.
	hook linearHook[F]
	// lora is the attached adapters (also the hook); frozen says the base weights get no gradients.
	lora   *loraAdapters[F]
	frozen bool
	// bf16 holds the projection matrices in bfloat16 while frozen with LoRAConfig.FrozenBF16 (their
	// slices in w are then nil); nil otherwise.
	bf16 *bf16Base[F]
}

// Part says which sub-layer a projection belongs to; with Proj it names a projection, which is what
// adapters (LoRA, to come) will be configured by.
type Part uint8

const (
	EncoderSelf Part = iota
	DecoderSelf
	DecoderCross
	EncoderFFN
	DecoderFFN
)

// Proj says which matrix of a sub-layer a projection is.
type Proj uint8

const (
	ProjQ Proj = iota
	ProjK
	ProjV
	ProjO
	ProjWi0 // wi_0, or wi when not gated
	ProjWi1
	ProjWo
)

// site names one projection: an adapter is keyed by it.
type site struct {
	part  Part
	layer int
	proj  Proj
}

// linearHook is what an adapter implements to ride on a projection out[N, OC] = inp[N, C]·Wᵀ: its
// forward adds to out (saving what its backward needs), its backward adds to dinp (input gradient)
// and to its own parameters' gradients.
type linearHook[F float] interface {
	forward(s site, out, inp []F, N, C, OC int, train bool)
	backward(s site, dinp, dout, inp []F, N, C, OC int)
}

// attnActs are one attention sub-layer's saved activations. For cross-attention k and v are rows of
// the encoder output, [B·TE, Inner].
type attnActs[F float] struct {
	norm, rstd   []F // [N, C], [N]: the layer norm of the sub-layer's input
	q, k, v, out []F // [N, Inner], out before the o projection
}

// ffnActs are one feed-forward sub-layer's saved activations.
type ffnActs[F float] struct {
	norm, rstd []F // [N, C], [N]
	a0, a1, h  []F // [N, DFF]: wi_0 (wi) output, wi_1 output (gated only), act(a0)(·a1)
}

type encoderActs[F float] struct {
	attn attnActs[F]
	mid  []F // [N, C] residual after attention
	ffn  ffnActs[F]
}

type decoderActs[F float] struct {
	self  attnActs[F]
	mid1  []F // [N, C] residual after self-attention
	cross attnActs[F]
	mid2  []F // [N, C] residual after cross-attention
	ffn   ffnActs[F]
}

// actsKey says what an activations allocation was carved for.
type actsKey struct{ B, TE, TD int }

// activations are everything a training forward keeps plus the backward's scratch, one allocation.
// With TD = 0 they hold the encoder only (Encode).
type activations[F float] struct {
	key          actsKey
	slab         []F
	encMask      []F   // [B·TE] 1: a real token, 0: padding (a key no query attends to)
	lossMask     []F   // [B·TD]
	encResid     [][]F // EncoderLayers+1 × [B·TE, C]: the residual stream entering each block, and leaving the last
	enc          []encoderActs[F]
	encOut       []F // [B·TE, C] encoder output (final layer norm)
	encRstd      []F
	decResid     [][]F
	dec          []decoderActs[F]
	decOut       []F // [B·TD, C] decoder output (final layer norm, scaled by DModel^-½ when tied)
	decRstd      []F
	encPB, decPB posBias[F]
	// backward scratch
	dresE, dencOut []F // [B·TE, C]
	dresD, dhead   []F // [B·TD, C]
	dnorm          []F // [max rows, C]
	dq, dk, dv, da []F // [max rows, Inner]
	da0, da1, dh   []F // [max rows, DFF]
	att            *attnScratch[F]
	head           *headScratch[F]
}

// ensureActs carves activations for a batch shape, reusing the allocation when the shape is the same.
func (m *net[F]) ensureActs(B, TE, TD int) *activations[F] {
	key := actsKey{B, TE, TD}
	if m.acts != nil && m.acts.key == key {
		return m.acts
	}
	a := newActivations[F](m.cfg, key)
	m.acts = a
	return a
}

func newActivations[F float](c Config, key actsKey) *activations[F] {
	B, TE, TD := key.B, key.TE, key.TD
	NE, ND, C, I, FF := B*TE, B*TD, c.DModel, c.Inner(), c.DFF
	NM, TM := max(NE, ND), max(TE, TD)
	a := &activations[F]{key: key, encResid: make([][]F, c.EncoderLayers+1), enc: make([]encoderActs[F], c.EncoderLayers)}
	if TD > 0 {
		a.decResid, a.dec = make([][]F, c.DecoderLayers+1), make([]decoderActs[F], c.DecoderLayers)
	}
	attn := func(cv *carver[F], x *attnActs[F], N, NKV int) {
		x.norm, x.rstd = cv.take(N*C), cv.take(N)
		x.q, x.k, x.v, x.out = cv.take(N*I), cv.take(NKV*I), cv.take(NKV*I), cv.take(N*I)
	}
	ffn := func(cv *carver[F], x *ffnActs[F], N int) {
		x.norm, x.rstd = cv.take(N*C), cv.take(N)
		x.a0, x.h = cv.take(N*FF), cv.take(N*FF)
		if c.Gated {
			x.a1 = cv.take(N * FF)
		}
	}
	// The output head's chunk: as many rows as keep R·V within 16M values.
	R := max(1, min(ND, (1<<24)/c.Vocab))
	carve := func(cv *carver[F]) {
		a.encMask, a.lossMask = cv.take(NE), cv.take(ND)
		for l := range a.encResid {
			a.encResid[l] = cv.take(NE * C)
		}
		for l := range a.enc {
			attn(cv, &a.enc[l].attn, NE, NE)
			a.enc[l].mid = cv.take(NE * C)
			ffn(cv, &a.enc[l].ffn, NE)
		}
		a.encOut, a.encRstd = cv.take(NE*C), cv.take(NE)
		for l := range a.decResid {
			a.decResid[l] = cv.take(ND * C)
		}
		for l := range a.dec {
			d := &a.dec[l]
			attn(cv, &d.self, ND, ND)
			d.mid1 = cv.take(ND * C)
			attn(cv, &d.cross, ND, NE)
			d.mid2 = cv.take(ND * C)
			ffn(cv, &d.ffn, ND)
		}
		a.decOut, a.decRstd = cv.take(ND*C), cv.take(ND)
		a.dresE, a.dencOut, a.dresD, a.dhead = cv.take(NE*C), cv.take(NE*C), cv.take(ND*C), cv.take(ND*C)
		a.dnorm = cv.take(NM * C)
		a.dq, a.dk, a.dv, a.da = cv.take(NM*I), cv.take(NM*I), cv.take(NM*I), cv.take(NM*I)
		a.da0, a.da1, a.dh = cv.take(NM*FF), cv.take(NM*FF), cv.take(NM*FF)
		a.att = newAttnScratch(cv, B*c.Heads, TM, TM)
		if TD > 0 {
			a.head = newHeadScratch(cv, R, C, c.Vocab)
		}
	}
	count := &carver[F]{}
	carve(count)
	a.slab = hugemem.Make[F](count.off)
	carve(&carver[F]{slab: a.slab})
	a.encPB = posBias[F]{bucket: bucketTable(TE, true, c.Buckets, c.MaxDistance), off: TE - 1}
	if TD > 0 {
		a.decPB = posBias[F]{bucket: bucketTable(TD, false, c.Buckets, c.MaxDistance), off: TD - 1}
	}
	return a
}

// lin is a projection with its adapter, if any: out = inp·Wᵀ (+ the adapter's term).
func (m *net[F]) lin(s site, out, inp, w []F, N, C, OC int, train bool) {
	linearForward(out, inp, m.weight(s, w), N, C, OC)
	if m.hook != nil {
		m.hook.forward(s, out, inp, N, C, OC, train)
	}
}

// linBack is lin's backward: dinp (+)= dout·W (+ the adapter's), dw += doutᵀ·inp when dw is not nil.
func (m *net[F]) linBack(s site, dinp, dw, dout, inp, w []F, N, C, OC int, accumulate bool) {
	if m.frozen {
		dw = nil // a frozen base matrix's gradient is never used: skip its N·C·OC product
	}
	linearBackward(dinp, dw, dout, inp, m.weight(s, w), N, C, OC, accumulate)
	if m.hook != nil {
		m.hook.backward(s, dinp, dout, inp, N, C, OC)
	}
}

// attnForward is one attention sub-layer (T5LayerSelfAttention, T5LayerCrossAttention):
// out = x + o(attention(q = norm(x)·Wqᵀ; k, v = src·Wk,vᵀ)), src = norm(x) for self-attention or the
// encoder output for cross-attention (kvSrc, B·Tk rows).
func (m *net[F]) attnForward(out, x, normW []F, w *attnWeights[F], a *attnActs[F], kvSrc []F, pb *posBias[F], keyMask []F, B, Tq, Tk int, causal bool, part Part, l int, train bool) {
	c := m.cfg
	NQ, NK, C, I := B*Tq, B*Tk, c.DModel, c.Inner()
	rmsnormForward(a.norm, a.rstd, x, normW, NQ, C, c.Eps)
	src := kvSrc
	if src == nil {
		src = a.norm
	}
	m.lin(site{part, l, ProjQ}, a.q, a.norm, w.q, NQ, C, I, train)
	m.lin(site{part, l, ProjK}, a.k, src, w.k, NK, C, I, train)
	m.lin(site{part, l, ProjV}, a.v, src, w.v, NK, C, I, train)
	attentionForward(a.out, a.q, a.k, a.v, pb, keyMask, m.acts.att, B, Tq, Tk, c.Heads, c.DKV, 0, causal)
	m.lin(site{part, l, ProjO}, out, a.out, w.o, NQ, I, C, train)
	residualForward(out, x)
}

// attnBackward is attnForward's backward. dx holds d out on entry and d x on return (the residual
// passes it through; the sub-layer adds its part). For cross-attention the gradient of the encoder
// output is added to dkvSrc; the relative bias gradient goes to dtable.
func (m *net[F]) attnBackward(dx, x, normW []F, w, g *attnWeights[F], dnormW []F, a *attnActs[F], kvSrc, dkvSrc []F, pb *posBias[F], dtable, keyMask []F, B, Tq, Tk int, causal bool, part Part, l int) {
	c, s := m.cfg, m.acts
	NQ, NK, C, I := B*Tq, B*Tk, c.DModel, c.Inner()
	m.linBack(site{part, l, ProjO}, s.da[:NQ*I], g.o, dx, a.out, w.o, NQ, I, C, false)
	attentionBackward(s.dq, s.dk, s.dv, s.da, a.out, a.q, a.k, a.v, pb, dtable, keyMask, s.att, B, Tq, Tk, c.Heads, c.DKV, causal)
	dnorm := s.dnorm[:NQ*C]
	m.linBack(site{part, l, ProjQ}, dnorm, g.q, s.dq, a.norm, w.q, NQ, C, I, false)
	src, dsrc := kvSrc, dkvSrc
	if src == nil {
		src, dsrc = a.norm, dnorm
	}
	m.linBack(site{part, l, ProjK}, dsrc, g.k, s.dk, src, w.k, NK, C, I, true)
	m.linBack(site{part, l, ProjV}, dsrc, g.v, s.dv, src, w.v, NK, C, I, true)
	rmsnormBackward(dx, dnormW, dnorm, x, normW, a.rstd, NQ, C)
}

// ffnForward is the feed-forward sub-layer (T5LayerFF): out = x + wo(act(norm(x)·Wi0ᵀ) ⊙ norm(x)·Wi1ᵀ),
// or x + wo(act(norm(x)·Wiᵀ)) when not gated.
func (m *net[F]) ffnForward(out, x, normW []F, w *ffnWeights[F], a *ffnActs[F], N int, part Part, l int, train bool) {
	c := m.cfg
	C, FF := c.DModel, c.DFF
	rmsnormForward(a.norm, a.rstd, x, normW, N, C, c.Eps)
	m.lin(site{part, l, ProjWi0}, a.a0, a.norm, w.wi0, N, C, FF, train)
	if c.Gated {
		m.lin(site{part, l, ProjWi1}, a.a1, a.norm, w.wi1, N, C, FF, train)
	}
	actForward(a.h, a.a0, a.a1, c.Act)
	m.lin(site{part, l, ProjWo}, out, a.h, w.wo, N, FF, C, train)
	residualForward(out, x)
}

// ffnBackward is ffnForward's backward; dx holds d out on entry and d x on return.
func (m *net[F]) ffnBackward(dx, x, normW []F, w, g *ffnWeights[F], dnormW []F, a *ffnActs[F], N int, part Part, l int) {
	c, s := m.cfg, m.acts
	C, FF := c.DModel, c.DFF
	dh, da0, da1, dnorm := s.dh[:N*FF], s.da0[:N*FF], s.da1[:N*FF], s.dnorm[:N*C]
	m.linBack(site{part, l, ProjWo}, dh, g.wo, dx, a.h, w.wo, N, FF, C, false)
	if !c.Gated {
		da1 = nil
	}
	actBackward(da0, da1, dh, a.a0, a.a1, c.Act)
	m.linBack(site{part, l, ProjWi0}, dnorm, g.wi0, da0, a.norm, w.wi0, N, C, FF, false)
	if c.Gated {
		m.linBack(site{part, l, ProjWi1}, dnorm, g.wi1, da1, a.norm, w.wi1, N, C, FF, true)
	}
	rmsnormBackward(dx, dnormW, dnorm, x, normW, a.rstd, N, C)
}

// encode runs the encoder over B sequences of TE tokens into a.encOut.
func (m *net[F]) encode(a *activations[F], tokens []int32, train bool) {
	c, w := m.cfg, m.w
	B, TE := a.key.B, a.key.TE
	N := B * TE
	a.encPB.table = w.encRel
	embeddingForward(a.encResid[0], tokens, w.shared, N, c.DModel)
	for l := range c.EncoderLayers {
		b, x := &w.enc[l], &a.enc[l]
		m.attnForward(x.mid, a.encResid[l], b.attnNorm, &b.attn, &x.attn, nil, &a.encPB, a.encMask, B, TE, TE, false, EncoderSelf, l, train)
		m.ffnForward(a.encResid[l+1], x.mid, b.ffnNorm, &b.ffn, &x.ffn, N, EncoderFFN, l, train)
	}
	rmsnormForward(a.encOut, a.encRstd, a.encResid[c.EncoderLayers], w.encFinal, N, c.DModel, c.Eps)
}

// headScale is the factor on the decoder output before the head: DModel^-½ when tied (the shared
// embedding's scale is that of the inputs, N(0, 1)), else 1.
func (c Config) headScale() float64 {
	if c.Tied {
		return 1 / math.Sqrt(float64(c.DModel))
	}
	return 1
}

// decode runs the decoder over B sequences of TD tokens, attending to a.encOut, into a.decOut.
func (m *net[F]) decode(a *activations[F], tokens []int32, train bool) {
	c, w := m.cfg, m.w
	B, TE, TD := a.key.B, a.key.TE, a.key.TD
	N := B * TD
	a.decPB.table = w.decRel
	embeddingForward(a.decResid[0], tokens, w.shared, N, c.DModel)
	for l := range c.DecoderLayers {
		b, x := &w.dec[l], &a.dec[l]
		m.attnForward(x.mid1, a.decResid[l], b.selfNorm, &b.self, &x.self, nil, &a.decPB, nil, B, TD, TD, true, DecoderSelf, l, train)
		m.attnForward(x.mid2, x.mid1, b.crossNorm, &b.cross, &x.cross, a.encOut, nil, a.encMask, B, TD, TE, false, DecoderCross, l, train)
		m.ffnForward(a.decResid[l+1], x.mid2, b.ffnNorm, &b.ffn, &x.ffn, N, DecoderFFN, l, train)
	}
	rmsnormForward(a.decOut, a.decRstd, a.decResid[c.DecoderLayers], w.decFinal, N, c.DModel, c.Eps)
	if c.Tied {
		scaleForward(a.decOut, c.headScale())
	}
}

// forward runs encoder, decoder and loss over a batch and returns Σ mask·(−log p(target)). With train
// it also runs the head's backward (scaled by gradScale), leaving d decOut in a.dhead for backward.
func (m *net[F]) forward(b *Batch, train bool, gradScale float64) float64 {
	c := m.cfg
	a := m.ensureActs(b.B, b.TEnc, b.TDec)
	for i, v := range b.EncMask {
		a.encMask[i] = F(v)
	}
	for i, v := range b.Mask {
		a.lossMask[i] = F(v)
	}
	m.encode(a, b.EncTokens, train)
	m.decode(a, b.DecTokens, train)
	N := b.B * b.TDec
	if !train {
		return crossEntropyHeadForward(a.decOut, m.w.head(), b.Targets, a.lossMask, N, c.DModel, c.Vocab, a.head)
	}
	var dhead []F
	if !m.frozen {
		dhead = m.g.head()
	}
	return crossEntropyHeadBackward(a.dhead, dhead, a.decOut, m.w.head(), b.Targets, a.lossMask, N, c.DModel, c.Vocab, gradScale, a.head)
}

// backward follows a train forward and adds the gradients into m.g: the decoder in reverse, which
// leaves the gradient of the encoder output, then the encoder in reverse.
func (m *net[F]) backward(b *Batch) {
	c, a, w, g := m.cfg, m.acts, m.w, m.g
	B, TE, TD := b.B, b.TEnc, b.TDec
	NE, ND, C := B*TE, B*TD, c.DModel
	if c.Tied {
		scaleBackward(a.dhead, c.headScale())
	}
	dres := a.dresD
	clear(dres)
	rmsnormBackward(dres, g.decFinal, a.dhead, a.decResid[c.DecoderLayers], w.decFinal, a.decRstd, ND, C)
	clear(a.dencOut)
	for l := c.DecoderLayers - 1; l >= 0; l-- {
		wb, gb, x := &w.dec[l], &g.dec[l], &a.dec[l]
		m.ffnBackward(dres, x.mid2, wb.ffnNorm, &wb.ffn, &gb.ffn, gb.ffnNorm, &x.ffn, ND, DecoderFFN, l)
		m.attnBackward(dres, x.mid1, wb.crossNorm, &wb.cross, &gb.cross, gb.crossNorm, &x.cross, a.encOut, a.dencOut, nil, nil, a.encMask, B, TD, TE, false, DecoderCross, l)
		m.attnBackward(dres, a.decResid[l], wb.selfNorm, &wb.self, &gb.self, gb.selfNorm, &x.self, nil, nil, &a.decPB, g.decRel, nil, B, TD, TD, true, DecoderSelf, l)
	}
	embeddingBackward(g.shared, dres, b.DecTokens, ND, C)
	dres = a.dresE
	clear(dres)
	rmsnormBackward(dres, g.encFinal, a.dencOut, a.encResid[c.EncoderLayers], w.encFinal, a.encRstd, NE, C)
	for l := c.EncoderLayers - 1; l >= 0; l-- {
		wb, gb, x := &w.enc[l], &g.enc[l], &a.enc[l]
		m.ffnBackward(dres, x.mid, wb.ffnNorm, &wb.ffn, &gb.ffn, gb.ffnNorm, &x.ffn, NE, EncoderFFN, l)
		m.attnBackward(dres, a.encResid[l], wb.attnNorm, &wb.attn, &gb.attn, gb.attnNorm, &x.attn, nil, nil, &a.encPB, g.encRel, a.encMask, B, TE, TE, false, EncoderSelf, l)
	}
	embeddingBackward(g.shared, dres, b.EncTokens, NE, C)
}

// logits runs the forward (no loss) and returns all [B·TD, Vocab] logits: for tests and checks.
func (m *net[F]) logits(b *Batch) []F {
	c := m.cfg
	a := m.ensureActs(b.B, b.TEnc, b.TDec)
	for i, v := range b.EncMask {
		a.encMask[i] = F(v)
	}
	m.encode(a, b.EncTokens, false)
	m.decode(a, b.DecTokens, false)
	N := b.B * b.TDec
	out := make([]F, N*c.Vocab)
	matmul(out, a.decOut, m.w.head(), N, c.Vocab, c.DModel, false, true, false)
	return out
}
