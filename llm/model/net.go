package model

import (
	"math"

	"github.com/lathe-ml/lathe/llm/hugemem"
	"github.com/lathe-ml/lathe/llm/tensor"
)

// net is the llama model over element type F: parameters, gradients, LoRA adapters, rotary tables and
// the activations of the last training forward.
type net[F float] struct {
	cfg      Config
	w        *weights[F]
	g        *weights[F] // nil while the base is frozen (LoRA) or before training
	lora     *lora[F]
	ropeFreq []float64
	ropeCos  []F // [positions, rotary dims/2]
	ropeSin  []F
	slopes   []F // [Heads] ALiBi slopes in the units of the scaled scores; nil without ALiBi
	acts     *activations[F]
	inf      *inferScratch[F]
	noGrads  *weights[F] // all-nil gradients, used while the base is frozen
	frozen   *frozenBase[F]
	quant    *quantBase[F] // block matrices held quantized (frozen_quant.go); nil when float32 or bfloat16
	// stale holds the base gradients (by their first element) that still hold a previous step's
	// values after DiscardGrads: the backward overwrites them instead of adding to them. gradList is
	// every base gradient tensor of g, listed once (tensorSpecs allocates).
	stale      map[*F]struct{}
	gradList   [][]F
	gradListOf *weights[F] // the g gradList lists
	// stop, when set, is checked between layers of a training forward and backward: once it reports
	// true they return early, leaving activations and gradients unfinished (ForwardBackwardContext).
	stop func() bool
	// mixed: bfloat16 mixed precision, the projections' and head's products in bfloat16 (SetMixedBF16).
	mixed bool
}

// stopped reports whether the training pass in progress should end now.
func (m *net[F]) stopped() bool { return m.stop != nil && m.stop() }

func newNet[F float](cfg Config) *net[F] { return newNetWith(cfg, newWeights[F](cfg)) }

// newNetWith is newNet over weights already allocated (FromCheckpointBF16's, without block matrices).
func newNetWith[F float](cfg Config, w *weights[F]) *net[F] {
	n := &net[F]{cfg: cfg, w: w, ropeFreq: cfg.ropeFrequencies(),
		noGrads: &weights[F]{layers: make([]layerWeights[F], cfg.Layers)}}
	if cfg.ALiBi {
		// falcon adds the bias to q·k before the 1/√HD scaling: the same as a slope scaled with it.
		scale := 1.0
		if cfg.ALiBiPreScale {
			scale = 1 / math.Sqrt(float64(cfg.HeadDim))
		}
		for _, s := range cfg.alibiSlopes() {
			n.slopes = append(n.slopes, F(s*scale))
		}
	}
	return n
}

// ensureRope grows the rotary tables to cover positions [0, n). Rows are computed in float64.
func (m *net[F]) ensureRope(n int) {
	half := m.cfg.rotDim() / 2
	have := len(m.ropeCos) / half
	if have >= n {
		return
	}
	n = max(n, 2*have)
	cs, sn := make([]F, n*half), make([]F, n*half)
	copy(cs, m.ropeCos)
	copy(sn, m.ropeSin)
	for p := have; p < n; p++ {
		for i, f := range m.ropeFreq {
			s, c := math.Sincos(float64(p) * f)
			cs[p*half+i], sn[p*half+i] = F(c), F(s)
		}
	}
	m.ropeCos, m.ropeSin = cs, sn
}

// carver cuts consecutive tensors out of one slab; with a nil slab it only counts.
type carver[F float] struct {
	slab []F
	off  int
}

func (c *carver[F]) take(n int) []F {
	c.off += n
	if c.slab == nil {
		return nil
	}
	return c.slab[c.off-n : c.off : c.off]
}

// loraActs are what one adapter keeps for its backward: its dropped-out input and s·xd·Aᵀ.
type loraActs[F float] struct{ xd, hs []F }

// layerActs are one block's saved activations. q and k are stored after the rotary embedding.
type layerActs[F float] struct {
	attnNorm, attnMean, attnRstd []F // [N, C], [N], [N] (mean: LayerNorm only)
	q, k, v                      []F // [N, NH·HD], [N, NKV·HD], [N, NKV·HD]
	keep                         []bool
	attnOut                      []F // [N, NH·HD] attention output before the output projection
	mid                          []F // [N, C] residual stream after attention (and the block input, when parallel)
	ffnNorm, ffnMean, ffnRstd    []F // [N, C], [N], [N]; absent with a shared norm
	gate, up, swi                []F // [N, FFN]: gate (SwiGLU only), up (the MLP's pre-activation), activation
	lora                         [numTargets]loraActs[F]
}

// actsKey says what an activations allocation was carved for.
type actsKey struct {
	B, T, rank int
	dropout    bool
	targets    [numTargets]bool
}

// activations: everything a training forward keeps plus the backward's scratch, one allocation.
type activations[F float] struct {
	key       actsKey
	slab      []F
	pos       []int32 // [N] position of each row
	mask      []F     // [N] loss weight of each row
	resid     [][]F   // L+1 × [N, C]: the residual stream entering each block, and leaving the last
	layers    []layerActs[F]
	finalNorm []F // [N, C]
	finalMean []F // [N], LayerNorm only
	finalRstd []F // [N]
	// backward scratch, reused by every layer
	dres, dnorm      []F // [N, C]
	dq, dattn        []F // [N, NH·HD]
	dk, dv           []F // [N, NKV·HD]
	dgate, dup, dswi []F // [N, FFN]
	att              *attnScratch[F]
	loraDH, loraDX   []F // [N, r], [N, max in]
	head             *headScratch[F]
}

// ensureActs carves activations for a (B, T) batch, reusing the slab when it is large enough.
func (m *net[F]) ensureActs(B, T int) *activations[F] {
	c := m.cfg
	key := actsKey{B: B, T: T}
	if m.lora != nil {
		key.rank, key.dropout, key.targets = m.lora.cfg.Rank, m.lora.cfg.Dropout > 0, m.lora.on
	}
	if m.acts != nil && m.acts.key == key {
		return m.acts
	}
	N, C, QD, KVD, FF := B*T, c.Dim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.FFN
	a := m.acts
	if a == nil {
		a = &activations[F]{}
	}
	carve := func(cv *carver[F]) {
		a.mask = cv.take(N)
		if len(a.resid) != c.Layers+1 {
			a.resid = make([][]F, c.Layers+1)
			a.layers = make([]layerActs[F], c.Layers)
		}
		for l := range a.resid {
			a.resid[l] = cv.take(N * C)
		}
		// Buffers a variant does not use are not carved (a nil take): no memory for a plain MLP's gate.
		takeIf := func(ok bool, n int) []F {
			if !ok {
				return nil
			}
			return cv.take(n)
		}
		layerNorm := c.Norm == NormLayer
		for l := range a.layers {
			la := &a.layers[l]
			la.attnNorm, la.attnMean, la.attnRstd = cv.take(N*C), takeIf(layerNorm, N), cv.take(N)
			la.q, la.k, la.v = cv.take(N*QD), cv.take(N*KVD), cv.take(N*KVD)
			la.attnOut, la.mid = cv.take(N*QD), cv.take(N*C)
			la.ffnNorm = takeIf(!c.SharedNorm, N*C)
			la.ffnMean, la.ffnRstd = takeIf(!c.SharedNorm && layerNorm, N), takeIf(!c.SharedNorm, N)
			la.gate, la.up, la.swi = takeIf(c.gated(), N*FF), cv.take(N*FF), cv.take(N*FF)
			if c.ClipQKV > 0 && len(la.keep) != N*(QD+2*KVD) {
				la.keep = make([]bool, N*(QD+2*KVD))
			}
			for t := Target(0); t < numTargets; t++ {
				la.lora[t] = loraActs[F]{}
				if !key.targets[t] {
					continue
				}
				in, _ := t.dims(c)
				if key.dropout {
					la.lora[t].xd = cv.take(N * in)
				}
				la.lora[t].hs = cv.take(N * key.rank)
			}
		}
		a.finalNorm, a.finalMean, a.finalRstd = cv.take(N*C), takeIf(layerNorm, N), cv.take(N)
		a.dres, a.dnorm = cv.take(N*C), cv.take(N*C)
		a.dq, a.dattn, a.dk, a.dv = cv.take(N*QD), cv.take(N*QD), cv.take(N*KVD), cv.take(N*KVD)
		a.dgate, a.dup, a.dswi = takeIf(c.gated(), N*FF), cv.take(N*FF), cv.take(N*FF)
		a.att = newAttnScratch(cv, B, T, c.Heads, c.KVHeads)
		a.loraDH, a.loraDX = cv.take(N*key.rank), cv.take(N*max(C, QD, FF))
	}
	count := &carver[F]{}
	carve(count)
	if cap(a.slab) < count.off {
		a.slab = nil
		a.slab = hugemem.Make[F](count.off)
	}
	carve(&carver[F]{slab: a.slab[:count.off]})
	if cap(a.pos) < N {
		a.pos = make([]int32, N)
	}
	a.pos = a.pos[:N]
	for b := range B {
		for t := range T {
			a.pos[b*T+t] = int32(t)
		}
	}
	// The output head's chunk: as many rows as keep R·V within 16M floats (64 MiB), so the logits take
	// bounded memory whatever the batch. Each chunk packs the whole head matrix twice (logits, dx) and
	// passes over its gradient once, so fewer, larger chunks are faster: with 2M floats (65 rows at a
	// 32K vocabulary) that traffic cost ~5% of a training step's CPU time.
	R := max(1, min(N, (1<<24)/c.Vocab))
	if a.head == nil || a.head.R < R {
		a.head = newHeadScratch[F](R, C, c.Vocab)
	}
	a.key = key
	if !c.ALiBi {
		m.ensureRope(T)
	}
	m.acts = a
	return a
}

// discardGrads marks every base gradient stale, so that the next backward writes it whole (the
// weight-gradient products store instead of adding to a zeroed buffer) rather than clearing them now:
// a full model's gradients are hundreds of megabytes, which zeroing and then re-reading in those
// products cost ~1.5% of a training step.
func (m *net[F]) discardGrads() {
	if m.g == nil {
		return
	}
	if m.stale == nil {
		m.stale = map[*F]struct{}{}
	}
	if m.gradListOf != m.g {
		m.gradList, m.gradListOf = nil, m.g
		for _, s := range m.cfg.tensorSpecs() {
			if t := *m.g.ptr(s.layer, s.field); len(t) > 0 {
				m.gradList = append(m.gradList, t)
			}
		}
	}
	for _, t := range m.gradList {
		m.stale[&t[0]] = struct{}{}
	}
}

// gradAccumulates reports whether a writer of gradient t adds to it (false: t is stale and the
// writer must overwrite it whole; t counts as written from now on). A nil t (frozen) reports true.
func (m *net[F]) gradAccumulates(t []F) bool {
	if len(t) == 0 {
		return true
	}
	if _, ok := m.stale[&t[0]]; ok {
		delete(m.stale, &t[0])
		return false
	}
	return true
}

// freshGrad zeroes t if it is stale, for writers that only add (reductions, scatters).
func (m *net[F]) freshGrad(t []F) {
	if !m.gradAccumulates(t) {
		parallelClear(t)
	}
}

// clearStaleGrads zeroes the gradients the backward did not write (none, for a llama; kept so that a
// tensor no path reaches still reads as a zero gradient).
func (m *net[F]) clearStaleGrads() {
	if len(m.stale) == 0 {
		return
	}
	for _, t := range m.gradList {
		if _, ok := m.stale[&t[0]]; ok {
			parallelClear(t)
			delete(m.stale, &t[0])
		}
	}
}

// grads returns the base gradients, or an empty set while the base is frozen.
func (m *net[F]) grads() *weights[F] {
	if m.g == nil {
		return m.noGrads
	}
	return m.g
}

// linForward is a projection with its LoRA adapter, if any: out (+)= inp·Wᵀ + bias + s·dropout(inp)·Aᵀ·Bᵀ.
func (m *net[F]) linForward(out, inp, w, bias []F, N, C, OC, l int, t Target, la *loraActs[F], train bool, seed uint64) {
	m.baseForward(out, inp, w, bias, N, C, OC, l, t, false)
	m.loraForward(out, inp, N, C, OC, l, t, la, train, seed)
}

// linForwardPair is linForward of two projections of the same input (q and k, gate and up) of the
// same size. With two workers each product runs whole on one of them, with no hand-off between its
// packing and its tiles; measured on the llama, ~2% faster a step than splitting each.
func (m *net[F]) linForwardPair(inp []F, N, C, l int, train bool, seed uint64, p1, p2 projection[F]) {
	if tensor.Workers() == 2 {
		onEachWorker(
			func() { m.baseForward(p1.out, inp, p1.w, p1.bias, N, C, p1.OC, l, p1.t, true) },
			func() { m.baseForward(p2.out, inp, p2.w, p2.bias, N, C, p2.OC, l, p2.t, true) })
	} else {
		m.baseForward(p1.out, inp, p1.w, p1.bias, N, C, p1.OC, l, p1.t, false)
		m.baseForward(p2.out, inp, p2.w, p2.bias, N, C, p2.OC, l, p2.t, false)
	}
	m.loraForward(p1.out, inp, N, C, p1.OC, l, p1.t, p1.la, train, seed)
	m.loraForward(p2.out, inp, N, C, p2.OC, l, p2.t, p2.la, train, seed)
}

// projection is one linear layer of a pair: out[N, OC] = inp·wᵀ + bias, and its adapter's target.
type projection[F float] struct {
	out, w, bias []F
	OC           int
	t            Target
	la           *loraActs[F]
}

// loraForward adds target t's adapter, if any, to out: s·dropout(inp)·Aᵀ·Bᵀ.
func (m *net[F]) loraForward(out, inp []F, N, C, OC, l int, t Target, la *loraActs[F], train bool, seed uint64) {
	ad := m.lora.adapter(l, t)
	if ad == nil {
		return
	}
	xd := inp
	if train && m.lora.cfg.Dropout > 0 {
		xd = la.xd
		dropoutForward(xd, inp[:N*C], seed, l, t, m.lora.cfg.Dropout)
	}
	loraForward(out, la.hs, xd, ad, m.lora.scale, N, C, OC, m.lora.cfg.Rank)
}

// linBackward is linForward's backward: base weight gradient (when not frozen) and the adapter's.
func (m *net[F]) linBackward(dinp, dw, db, dout, inp, w []F, N, C, OC, l int, t Target, la *loraActs[F], accumulate bool, seed uint64) {
	m.freshGrad(db)
	m.baseBackward(dinp, dw, db, dout, inp, w, N, C, OC, l, t, accumulate, m.gradAccumulates(dw))
	ad := m.lora.adapter(l, t)
	if ad == nil {
		return
	}
	a, p := m.acts, m.lora.cfg.Dropout
	gad := &m.lora.g.layers[l][t]
	if p == 0 {
		loraBackward(dinp, a.loraDH, gad, ad, dout, la.hs, inp, m.lora.scale, N, C, OC, m.lora.cfg.Rank, true)
		return
	}
	loraBackward(a.loraDX, a.loraDH, gad, ad, dout, la.hs, la.xd, m.lora.scale, N, C, OC, m.lora.cfg.Rank, false)
	dropoutBackward(dinp[:N*C], a.loraDX[:N*C], seed, l, t, p)
}

// forward runs the model over a batch and returns Σ mask·loss. With train it also runs the fused
// output head backward (scaled by gradScale), leaving d(final norm output) for backward. A block is
//
//	h = norm1(x); q, k, v = clip(h·Wqᵀ + bq, ...); rotary (or ALiBi in the scores); mid = x + attn·Woᵀ + bo
//	out = mid + mlp(norm2(mid))         sequential (llama, mpt, falcon-rw, gpt_neox without parallel residual)
//	out = mid + mlp(norm2(x))           parallel (gpt_neox, falcon-40b); norm2 = norm1 for falcon-7b
//
// with mlp = down(silu(gate)·up) (SwiGLU) or down(gelu(up)), each projection with its bias if any.
func (m *net[F]) forward(tokens, targets []int32, mask []float32, B, T int, train bool, gradScale float64, seed uint64) float64 {
	c, a := m.cfg, m.ensureActs(B, T)
	w := m.w
	N, C, NH, NKV, HD, FF := B*T, c.Dim, c.Heads, c.KVHeads, c.HeadDim, c.FFN
	QD, KVD := NH*HD, NKV*HD
	for i, v := range mask[:N] {
		a.mask[i] = F(v)
	}
	embeddingForward(a.resid[0], tokens, w.embed, N, C)
	for l := range c.Layers {
		if train && m.stopped() {
			return 0
		}
		lw, la := m.blockWeights(l), &a.layers[l]
		in := a.resid[l]
		m.normForward(la.attnNorm, la.attnMean, la.attnRstd, in, lw.attnNorm, lw.attnNormB, N)
		q := projection[F]{la.q, lw.wq, lw.bq, QD, TargetQ, &la.lora[TargetQ]}
		k := projection[F]{la.k, lw.wk, lw.bk, KVD, TargetK, &la.lora[TargetK]}
		v := projection[F]{la.v, lw.wv, lw.bv, KVD, TargetV, &la.lora[TargetV]}
		if QD == KVD { // pair the two of the same size
			m.linForwardPair(la.attnNorm, N, C, l, train, seed, q, k)
			m.linForward(v.out, la.attnNorm, v.w, v.bias, N, C, KVD, l, TargetV, v.la, train, seed)
		} else {
			m.linForward(q.out, la.attnNorm, q.w, q.bias, N, C, QD, l, TargetQ, q.la, train, seed)
			m.linForwardPair(la.attnNorm, N, C, l, train, seed, k, v)
		}
		if c.ClipQKV > 0 {
			clip := F(c.ClipQKV)
			clampForward(la.q, la.keep[:N*QD], clip)
			clampForward(la.k, la.keep[N*QD:N*(QD+KVD)], clip)
			clampForward(la.v, la.keep[N*(QD+KVD):], clip)
		}
		if !c.ALiBi {
			ropeForward(la.q, a.pos, m.ropeCos, m.ropeSin, N, NH, HD, c.rotDim(), c.RopeLayout)
			ropeForward(la.k, a.pos, m.ropeCos, m.ropeSin, N, NKV, HD, c.rotDim(), c.RopeLayout)
		}
		attentionForward(la.attnOut, la.q, la.k, la.v, a.att, B, T, NH, NKV, HD, c.SlidingWindow, m.slopes)
		m.linForward(la.mid, la.attnOut, lw.wo, lw.bo, N, QD, C, l, TargetO, &la.lora[TargetO], train, seed)
		residualForward(la.mid, in, N*C)
		ffnIn := m.ffnInput(la, in)
		if !c.SharedNorm {
			m.normForward(la.ffnNorm, la.ffnMean, la.ffnRstd, ffnIn, lw.ffnNorm, lw.ffnNormB, N)
		}
		h := m.ffnNormed(la)
		if c.gated() {
			m.linForwardPair(h, N, C, l, train, seed,
				projection[F]{la.gate, lw.wgate, nil, FF, TargetGate, &la.lora[TargetGate]},
				projection[F]{la.up, lw.wup, nil, FF, TargetUp, &la.lora[TargetUp]})
			swigluForward(la.swi, la.gate, la.up, N*FF)
		} else {
			m.linForward(la.up, h, lw.wup, lw.bup, N, C, FF, l, TargetUp, &la.lora[TargetUp], train, seed)
			geluForward(la.swi, la.up, N*FF, c.Act == ActGELUTanh)
		}
		out := a.resid[l+1]
		m.linForward(out, la.swi, lw.wdown, lw.bdown, N, FF, C, l, TargetDown, &la.lora[TargetDown], train, seed)
		residualForward(out, la.mid, N*C)
	}
	m.normForward(a.finalNorm, a.finalMean, a.finalRstd, a.resid[c.Layers], w.finalNorm, w.finalNormB, N)
	// The head is multiplied in bfloat16 under mixed precision, and under LoRA where the frozen base
	// is (it is frozen too; kept float32, rounded as it is packed).
	a.head.bf16 = m.mixedOn() || m.products() != nil
	if !train {
		return crossEntropyHeadForward(a.finalNorm, w.output, targets, a.mask, N, C, c.Vocab, a.head)
	}
	dw := m.grads().output
	return crossEntropyHeadForwardBackward(a.dnorm, dw, a.finalNorm, w.output, targets, a.mask, N, C, c.Vocab, gradScale, m.gradAccumulates(dw), a.head)
}

// ffnInput is the residual stream the feed-forward's norm reads: the block input when parallel.
func (m *net[F]) ffnInput(la *layerActs[F], in []F) []F {
	if m.cfg.ParallelAttn {
		return in
	}
	return la.mid
}

// ffnNormed is the feed-forward's input: its own norm's output, or the attention's with a shared norm.
func (m *net[F]) ffnNormed(la *layerActs[F]) []F {
	if m.cfg.SharedNorm {
		return la.attnNorm
	}
	return la.ffnNorm
}

// normForward is the block's normalisation over N rows of Dim: RMSNorm or LayerNorm (mean is only
// written by LayerNorm; bias nil: none).
func (m *net[F]) normForward(out, mean, rstd, inp, weight, bias []F, N int) {
	if m.cfg.Norm == NormLayer {
		layernormForward(out, mean, rstd, inp, weight, bias, N, m.cfg.Dim, m.cfg.NormEps)
		return
	}
	rmsnormForward(out, rstd, inp, weight, N, m.cfg.Dim, m.cfg.NormEps)
}

// normBackward is normForward's backward: dinp += ...; the gain and bias gradients (nil: frozen).
func (m *net[F]) normBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []F, N int) {
	m.freshGrad(dweight)
	m.freshGrad(dbias)
	if m.cfg.Norm == NormLayer {
		layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, m.cfg.Dim)
		return
	}
	rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, m.cfg.Dim)
}

// residualForward: out += inp (the skip connection; its backward passes the gradient through).
func residualForward[F float](out, inp []F, n int) {
	if o32, ok := any(out).([]float32); ok && n >= 1<<14 { // a training batch: SIMD, on all workers
		i32 := any(inp).([]float32)
		tensor.Parallel(n, func(lo, hi int) { tensor.Add(o32[lo:hi], i32[lo:hi]) })
		return
	}
	for i, v := range inp[:n] {
		out[i] += v
	}
}

// backward follows a train forward: it adds the gradients of the loss into m.g (unless frozen) and the
// LoRA gradients, layer by layer in reverse.
func (m *net[F]) backward(tokens []int32, seed uint64) {
	c, a, w, g := m.cfg, m.acts, m.w, m.grads()
	B, T := a.key.B, a.key.T
	N, C, NH, NKV, HD, FF := B*T, c.Dim, c.Heads, c.KVHeads, c.HeadDim, c.FFN
	QD, KVD := NH*HD, NKV*HD
	dres := a.dres
	clear(dres)
	m.normBackward(dres, g.finalNorm, g.finalNormB, a.dnorm, a.resid[c.Layers], w.finalNorm, a.finalMean, a.finalRstd, N)
	for l := c.Layers - 1; l >= 0; l-- {
		if m.stopped() {
			return
		}
		lw, lg, la := m.blockWeights(l), &g.layers[l], &a.layers[l]
		in := a.resid[l]
		// resid[l+1] = mid + mlp(h); dres holds d resid[l+1] (= d mid's share through the skip).
		h := m.ffnNormed(la)
		m.linBackward(a.dswi, lg.wdown, lg.bdown, dres, la.swi, lw.wdown, N, FF, C, l, TargetDown, &la.lora[TargetDown], false, seed)
		if c.gated() {
			swigluBackward(a.dgate, a.dup, a.dswi, la.gate, la.up, N*FF)
			m.linBackward(a.dnorm, lg.wgate, nil, a.dgate, h, lw.wgate, N, C, FF, l, TargetGate, &la.lora[TargetGate], false, seed)
			m.linBackward(a.dnorm, lg.wup, nil, a.dup, h, lw.wup, N, C, FF, l, TargetUp, &la.lora[TargetUp], true, seed)
		} else {
			geluBackward(a.dup, a.dswi, la.up, N*FF, c.Act == ActGELUTanh)
			m.linBackward(a.dnorm, lg.wup, lg.bup, a.dup, h, lw.wup, N, C, FF, l, TargetUp, &la.lora[TargetUp], false, seed)
		}
		// Sequential: norm2 read mid, so its gradient completes d mid before the attention's. Parallel:
		// it read the block input, and joins dres only after the output projection has used d mid.
		if !c.ParallelAttn {
			m.normBackward(dres, lg.ffnNorm, lg.ffnNormB, a.dnorm, la.mid, lw.ffnNorm, la.ffnMean, la.ffnRstd, N)
		}
		// mid = resid[l] + attention(norm1(resid[l]))·Woᵀ + bo; dres becomes d resid[l].
		m.linBackward(a.dattn, lg.wo, lg.bo, dres, la.attnOut, lw.wo, N, QD, C, l, TargetO, &la.lora[TargetO], false, seed)
		if c.ParallelAttn && !c.SharedNorm {
			m.normBackward(dres, lg.ffnNorm, lg.ffnNormB, a.dnorm, in, lw.ffnNorm, la.ffnMean, la.ffnRstd, N)
		}
		attentionBackward(a.dq, a.dk, a.dv, a.dattn, la.attnOut, la.q, la.k, la.v, a.att, B, T, NH, NKV, HD, c.SlidingWindow, m.slopes)
		if !c.ALiBi {
			ropeBackward(a.dq, a.pos, m.ropeCos, m.ropeSin, N, NH, HD, c.rotDim(), c.RopeLayout)
			ropeBackward(a.dk, a.pos, m.ropeCos, m.ropeSin, N, NKV, HD, c.rotDim(), c.RopeLayout)
		}
		if c.ClipQKV > 0 {
			clampBackward(a.dq, la.keep[:N*QD])
			clampBackward(a.dk, la.keep[N*QD:N*(QD+KVD)])
			clampBackward(a.dv, la.keep[N*(QD+KVD):])
		}
		// With a shared norm, d(norm1 output) already holds the MLP's share: Q adds to it.
		m.linBackward(a.dnorm, lg.wq, lg.bq, a.dq, la.attnNorm, lw.wq, N, C, QD, l, TargetQ, &la.lora[TargetQ], c.SharedNorm, seed)
		m.linBackward(a.dnorm, lg.wk, lg.bk, a.dk, la.attnNorm, lw.wk, N, C, KVD, l, TargetK, &la.lora[TargetK], true, seed)
		m.linBackward(a.dnorm, lg.wv, lg.bv, a.dv, la.attnNorm, lw.wv, N, C, KVD, l, TargetV, &la.lora[TargetV], true, seed)
		m.normBackward(dres, lg.attnNorm, lg.attnNormB, a.dnorm, in, lw.attnNorm, la.attnMean, la.attnRstd, N)
	}
	if g.embed != nil {
		m.freshGrad(g.embed)
		embeddingBackward(g.embed, dres, tokens, N, C)
	}
	m.clearStaleGrads()
}

// logits runs the forward and returns all [B·T, Vocab] logits (for tests and diagnostics: it
// allocates the full tensor that training never holds).
func (m *net[F]) logits(tokens []int32, B, T int) []F {
	c := m.cfg
	N := B * T
	mask := make([]float32, N)
	targets := make([]int32, N)
	m.forward(tokens, targets, mask, B, T, false, 0, 0)
	out := make([]F, N*c.Vocab)
	matmul(out, m.acts.finalNorm, m.w.output, N, c.Vocab, c.Dim, false, true, false)
	return out
}
