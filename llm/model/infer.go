package model

import (
	"fmt"
	"math"

	"github.com/lathe-ml/lathe/llm/tensor"
)

// kvCache holds one sequence's keys and values for every layer: k, v [Layers, KVHeads, max, HeadDim],
// keys stored after the rotary embedding. A head's positions are contiguous, so that attention reads
// its window as one sequential stream: with the heads side by side ([Layers, max, KVHeads·HeadDim])
// each position's HeadDim values were a row apart (4 KiB at 1,024 wide), a page per position, which
// the hardware prefetchers do not follow; decoding's attention was latency-bound on them.
type kvCache[F float] struct {
	k, v []F
	n    int // positions filled
	max  int
}

// at is the index in k and v of layer l's kv head g at position pos.
func (kc *kvCache[F]) at(l, g, pos, NKV, HD int) int {
	return ((l*NKV+g)*kc.max + pos) * HD
}

// inferScratch is the memory of the generation forward for R rows at once, grown on demand.
type inferScratch[F float] struct {
	R              int
	rowSeq, rowPos []int32
	x, xn, rstd    []F // [R, C], [R, C], [R]
	mean, xn2      []F // [R] (LayerNorm), [R, C] the MLP's norm output in a parallel block
	mid            []F // [R, C] attention output projected, in a parallel block
	keep           []bool
	q, attnOut     []F // [R, NH·HD]
	k, v           []F // [R, NKV·HD]
	gate, up       []F // [R, FFN]
	hs             []F // [R, rank]
	last           []F // [S, C] final-normed last rows
	head           bf16Head
}

func (m *net[F]) ensureInfer(R, S int) *inferScratch[F] {
	c := m.cfg
	rank := 0
	if m.lora != nil {
		rank = m.lora.cfg.Rank
	}
	sc := m.inf
	if sc != nil && sc.R >= R && len(sc.last) >= S*c.Dim && len(sc.hs) >= R*rank {
		return sc
	}
	R = max(R, 1)
	QD, KVD := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	sc = &inferScratch[F]{R: R, rowSeq: make([]int32, R), rowPos: make([]int32, R),
		x: make([]F, R*c.Dim), xn: make([]F, R*c.Dim), rstd: make([]F, R), mean: make([]F, R),
		xn2: make([]F, R*c.Dim), mid: make([]F, R*c.Dim), keep: make([]bool, R*(QD+2*KVD)),
		q: make([]F, R*QD), attnOut: make([]F, R*QD), k: make([]F, R*KVD), v: make([]F, R*KVD),
		gate: make([]F, R*c.FFN), up: make([]F, R*c.FFN), hs: make([]F, R*rank), last: make([]F, max(S, R)*c.Dim)}
	if m.inf != nil {
		sc.head = m.inf.head
	}
	m.inf = sc
	return sc
}

// balancedCuts splits units 0..n-1, whose costs cost(u) gives, into at most parts contiguous ranges
// of about equal total cost: range i is cuts[i]..cuts[i+1]-1.
func balancedCuts(n, parts int, cost func(u int) int) []int {
	parts = max(1, min(parts, n))
	total := 0
	for u := range n {
		total += cost(u)
	}
	cuts := make([]int, 1, parts+1)
	acc := 0
	for u := 0; u < n && len(cuts) < parts; u++ {
		acc += cost(u)
		if acc*parts >= total*len(cuts) {
			cuts = append(cuts, u+1)
		}
	}
	return append(cuts, n)
}

// inferLinear: out = inp·Wᵀ + bias (+ s·inp·Aᵀ·Bᵀ with an adapter; no dropout when generating).
// A few rows (decoding) go through tensor's narrow product, which streams the weight rows without
// packing them, from their bfloat16 copy wbf when the base is held in bfloat16 (then w is nil).
func (m *net[F]) inferLinear(out, inp, w []F, wbf []uint16, bias []F, R, C, OC, l int, t Target) {
	switch {
	case wbf == nil && m.quantProduct(out, inp, w, R, l, t):
	case narrowProduct(out, inp, w, wbf, m.headBF16() != nil, R, C, OC):
	case wbf != nil:
		// A prompt over bfloat16 weights: the packed bfloat16 GEMM (VDPBF16PS), its activations
		// rounded to bfloat16 as the narrow products round them (inferLayer hands out the bfloat16
		// matrices for long prompts only where the CPU multiplies bfloat16 natively).
		tensor.MatMulBF16(any(out).([]float32), any(inp).([]float32), wbf, R, OC, C, false, true, false)
	default:
		linearForward(out, inp, w, nil, R, C, OC)
	}
	if bias != nil {
		for r := range R {
			o := out[r*OC : (r+1)*OC]
			for j := range o {
				o[j] += bias[j]
			}
		}
	}
	if ad := m.lora.adapter(l, t); ad != nil {
		loraForward(out, m.inf.hs, inp, ad, m.lora.scale, R, C, OC, m.lora.cfg.Rank)
	}
}

// narrowProduct sets out[R, OC] = inp[R, C]·Wᵀ with tensor's narrow kernels when R is small and F is
// float32, from wbf (bfloat16) if it is not nil, else from w. With allBF16 (UseBF16Weights) the
// bfloat16 product rounds inp to bfloat16 too, for the CPU's bfloat16 dot products; a LoRA base
// frozen in bfloat16 keeps float32 activations, so that its generation matches its training forward.
// It reports whether it did the product.
func narrowProduct[F float](out, inp, w []F, wbf []uint16, allBF16 bool, R, C, OC int) bool {
	o32, ok := any(out).([]float32)
	if !ok || R > tensor.NarrowRows {
		return false
	}
	i32 := any(inp).([]float32)
	switch {
	case wbf != nil && allBF16:
		tensor.MatMulNarrowAllBF16(o32, i32, wbf, R, OC, C)
	case wbf != nil:
		tensor.MatMulNarrowBF16(o32, i32, wbf, R, OC, C)
	default:
		tensor.MatMulNarrow(o32, i32, any(w).([]float32), R, OC, C)
	}
	return true
}

// inferLayer returns block l's weights for a forward over R rows and, when the base is held in
// bfloat16 and R is small enough for the narrow kernels or the CPU multiplies bfloat16 natively, the
// bfloat16 matrices to read instead (then the float32 view's matrices are nil: they are not widened).
func (m *net[F]) inferLayer(l, R int) (*layerWeights[F], *[numTargets][]uint16) {
	if m.quant != nil && R <= quantRows {
		return &m.w.layers[l], &noBF16 // the matrices are nil: inferLinear multiplies the blocks
	}
	if m.quant != nil && tensor.BF16Native() {
		if _, ok := any(m.w.embed).([]float32); ok {
			return &m.w.layers[l], m.quantLayerBF16(l) // a long prompt: bfloat16 products
		}
	}
	if m.frozen != nil && (R <= tensor.NarrowRows || tensor.BF16Native()) {
		if _, ok := any(m.w.embed).([]float32); ok {
			return &m.w.layers[l], &m.frozen.layers[l]
		}
	}
	return m.layer(l), &noBF16
}

var noBF16 [numTargets][]uint16

// extend appends tokens[i] to caches[i] for every i and writes the logits after each sequence's last
// new token into logits[i·Vocab:]. All new rows of all sequences go through each projection together.
func (m *net[F]) extend(caches []*kvCache[F], tokens [][]int32, logits []F) error {
	c := m.cfg
	if len(caches) != len(tokens) {
		return fmt.Errorf("extend: %d caches for %d token lists", len(caches), len(tokens))
	}
	if len(logits) < len(caches)*c.Vocab {
		return fmt.Errorf("extend: logits hold %d floats, need %d", len(logits), len(caches)*c.Vocab)
	}
	R := 0
	for i, ts := range tokens {
		if len(ts) == 0 {
			return fmt.Errorf("extend: sequence %d has no new tokens", i)
		}
		if caches[i].n+len(ts) > caches[i].max {
			return fmt.Errorf("extend: sequence %d needs %d positions, cache holds %d", i, caches[i].n+len(ts), caches[i].max)
		}
		for _, t := range ts {
			if t < 0 || int(t) >= c.Vocab {
				return fmt.Errorf("extend: token %d outside vocabulary of %d", t, c.Vocab)
			}
		}
		R += len(ts)
	}
	S := len(caches)
	sc := m.ensureInfer(R, S)
	maxPos := 0
	r := 0
	for i, ts := range tokens {
		for j, t := range ts {
			sc.rowSeq[r], sc.rowPos[r] = int32(i), int32(caches[i].n+j)
			copy(sc.x[r*c.Dim:(r+1)*c.Dim], m.w.embed[int(t)*c.Dim:])
			r++
		}
		maxPos = max(maxPos, caches[i].n+len(ts))
	}
	if !c.ALiBi {
		m.ensureRope(maxPos)
	}
	NH, NKV, HD, C, FF := c.Heads, c.KVHeads, c.HeadDim, c.Dim, c.FFN
	QD, KVD := NH*HD, NKV*HD
	group := NH / NKV
	scale := 1 / math.Sqrt(float64(HD))
	for l := range c.Layers {
		lw, wbf := m.inferLayer(l, R)
		m.normForward(sc.xn, sc.mean, sc.rstd, sc.x, lw.attnNorm, lw.attnNormB, R)
		m.inferLinear(sc.q, sc.xn, lw.wq, wbf[TargetQ], lw.bq, R, C, QD, l, TargetQ)
		m.inferLinear(sc.k, sc.xn, lw.wk, wbf[TargetK], lw.bk, R, C, KVD, l, TargetK)
		m.inferLinear(sc.v, sc.xn, lw.wv, wbf[TargetV], lw.bv, R, C, KVD, l, TargetV)
		if c.ClipQKV > 0 {
			clampForward(sc.q[:R*QD], sc.keep, F(c.ClipQKV))
			clampForward(sc.k[:R*KVD], sc.keep, F(c.ClipQKV))
			clampForward(sc.v[:R*KVD], sc.keep, F(c.ClipQKV))
		}
		if !c.ALiBi {
			ropeForward(sc.q, sc.rowPos, m.ropeCos, m.ropeSin, R, NH, HD, c.rotDim(), c.RopeLayout)
			ropeForward(sc.k, sc.rowPos, m.ropeCos, m.ropeSin, R, NKV, HD, c.rotDim(), c.RopeLayout)
		}
		for r := 0; r < R; r++ {
			kc := caches[sc.rowSeq[r]]
			for g := range NKV {
				off := kc.at(l, g, int(sc.rowPos[r]), NKV, HD)
				copy(kc.k[off:off+HD], sc.k[r*KVD+g*HD:])
				copy(kc.v[off:off+HD], sc.v[r*KVD+g*HD:])
			}
		}
		// Each row attends to its own sequence's positions. A sequence given several new rows (a
		// prompt) runs as the training forward does, per head and per block of rows: S = Q·Kᵀ over the
		// block's window of cached keys and O = P·V as matrix products. The other rows (decoding, one
		// token a sequence) take scores q·k for the whole window, one softmax over them (SIMD
		// exponentials), then the weighted sum of the values. Small work (a small model, a short
		// context) runs on this thread: handing half of it to another costs more.
		parallel := tensor.Parallel
		if R*NH*maxPos*HD < 1<<16 {
			parallel = func(n int, fn func(lo, hi int)) { fn(0, n) }
		}
		var prompts []int // sequences with several new rows, and their first row in sc
		decoding := 0     // rows of sequences with one new row
		for i, r := 0, 0; i < len(tokens); r, i = r+len(tokens[i]), i+1 {
			if len(tokens[i]) >= 2 {
				prompts = append(prompts, i, r)
			} else {
				decoding++
			}
		}
		if len(prompts) > 0 {
			parallel(len(prompts)/2*NH, func(lo, hi int) {
				var scores []F
				for ph := lo; ph < hi; ph++ {
					i, r0, h := prompts[ph/NH*2], prompts[ph/NH*2+1], ph%NH
					scores = m.promptAttention(scores, caches[i], sc, l, r0, len(tokens[i]), h, F(scale))
				}
			})
		}
		if decoding > 0 {
			// Decoding rows of different sequences attend to windows of different lengths, so the (row,
			// head) pairs are cut where the positions attended to, not the rows, split evenly.
			cuts := balancedCuts(R*NH, tensor.Workers(), func(rh int) int {
				if len(tokens[sc.rowSeq[rh/NH]]) >= 2 {
					return 0 // done above
				}
				pos := int(sc.rowPos[rh/NH])
				return pos + 1 - windowStart(pos, c.SlidingWindow)
			})
			parallel(len(cuts)-1, func(wlo, whi int) {
				lo, hi := cuts[wlo], cuts[whi]
				scores := make([]F, maxPos)
				for rh := lo; rh < hi; rh++ {
					r, h := rh/NH, rh%NH
					if len(tokens[sc.rowSeq[r]]) >= 2 {
						continue
					}
					kc := caches[sc.rowSeq[r]]
					kvh := h / group
					q := sc.q[(r*NH+h)*HD:][:HD]
					o := sc.attnOut[(r*NH+h)*HD:][:HD]
					pos := int(sc.rowPos[r])
					first := windowStart(pos, c.SlidingWindow)
					at := kc.at(l, kvh, first, NKV, HD)
					p := scores[:pos+1-first]
					dotRows(p, q, kc.k[at:], HD)
					attnProbs(p, 0, len(p)-1, F(scale), slope(m.slopes, h))
					clear(o)
					axpyRows(o, p, kc.v[at:], HD)
				}
			})
		}
		// Sequential: x += attn; x += mlp(norm2(x)). Parallel: x += attn + mlp(norm2(x_in)), norm2
		// read before x changes (or norm1's output, shared).
		ffnIn := sc.xn
		if c.ParallelAttn && !c.SharedNorm {
			m.normForward(sc.xn2, sc.mean, sc.rstd, sc.x, lw.ffnNorm, lw.ffnNormB, R)
			ffnIn = sc.xn2
		}
		attnOut := sc.xn
		if c.ParallelAttn {
			attnOut = sc.mid
		}
		m.inferLinear(attnOut, sc.attnOut, lw.wo, wbf[TargetO], lw.bo, R, QD, C, l, TargetO)
		if c.ParallelAttn {
			residualForward(sc.x, sc.mid, R*C) // the MLP's input is already normed
		} else {
			residualForward(sc.x, sc.xn, R*C)
			m.normForward(sc.xn, sc.mean, sc.rstd, sc.x, lw.ffnNorm, lw.ffnNormB, R)
		}
		if c.gated() {
			m.inferLinear(sc.gate, ffnIn, lw.wgate, wbf[TargetGate], nil, R, C, FF, l, TargetGate)
			m.inferLinear(sc.up, ffnIn, lw.wup, wbf[TargetUp], nil, R, C, FF, l, TargetUp)
			swigluForward(sc.gate, sc.gate, sc.up, R*FF)
		} else {
			m.inferLinear(sc.up, ffnIn, lw.wup, wbf[TargetUp], lw.bup, R, C, FF, l, TargetUp)
			geluForward(sc.gate, sc.up, R*FF, c.Act == ActGELUTanh)
		}
		m.inferLinear(sc.xn, sc.gate, lw.wdown, wbf[TargetDown], lw.bdown, R, FF, C, l, TargetDown)
		residualForward(sc.x, sc.xn, R*C)
	}
	r = 0
	for i, ts := range tokens {
		r += len(ts)
		copy(sc.xn[i*C:(i+1)*C], sc.x[(r-1)*C:r*C])
		caches[i].n += len(ts)
	}
	m.normForward(sc.last, sc.mean, sc.rstd, sc.xn, m.w.finalNorm, m.w.finalNormB, S)
	head := m.headBF16()
	if q := m.quantHead(); q != nil {
		tensor.QuantMatMul(any(logits).([]float32), any(sc.last[:S*C]).([]float32), q, S)
	} else if !narrowProduct(logits, sc.last[:S*C], m.w.output, head, head != nil, S, C, c.Vocab) {
		matmul(logits, sc.last[:S*C], m.w.output, S, c.Vocab, C, false, true, false)
	}
	return nil
}

// dot, axpy and scaleInPlace use tensor's SIMD kernels for float32.
func dot[F float](a, b []F) F {
	if a32, ok := any(a).([]float32); ok {
		return F(tensor.Dot(a32, any(b).([]float32)))
	}
	var s F
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// promptRowBlock is the most rows of a prompt whose scores promptAttention holds at once.
const promptRowBlock = 64

// promptAttention computes head h's attention output for the L new rows of one sequence, rows
// r0.. of sc, whose keys and values layer l has just written to kc at positions kc.n..kc.n+L−1: per
// block of rows, S = Q·Kᵀ over the keys the block's rows see (its first row's window start to its
// last row), softmax by attnProbs (which zeroes the keys a row does not see), O = P·V. It returns its
// scratch (grown as needed) for the next call.
func (m *net[F]) promptAttention(scores []F, kc *kvCache[F], sc *inferScratch[F], l, r0, L, h int, scale F) []F {
	c := m.cfg
	NH, HD := c.Heads, c.HeadDim
	QD := NH * HD
	base := kc.at(l, h/(NH/c.KVHeads), 0, c.KVHeads, HD)
	K, V := kc.k[base:], kc.v[base:]
	Q, O := sc.q[r0*QD+h*HD:], sc.attnOut[r0*QD+h*HD:]
	for a := 0; a < L; a += promptRowBlock {
		b := min(L, a+promptRowBlock)
		pa := kc.n + a // the block's first position
		first := windowStart(pa, c.SlidingWindow)
		rb, nk := b-a, kc.n+b-first
		if cap(scores) < rb*nk {
			scores = make([]F, rb*nk)
		}
		S := scores[:rb*nk]
		matmulStridedSerial(S, nk, Q[a*QD:], QD, K[first*HD:], HD, rb, nk, HD, false, true, false)
		for i := range rb {
			attnProbs(S[i*nk:(i+1)*nk], windowStart(pa+i, c.SlidingWindow)-first, pa+i-first, scale, slope(m.slopes, h))
		}
		matmulStridedSerial(O[a*QD:], QD, S, nk, V[first*HD:], HD, rb, HD, nk, false, false, false)
	}
	return scores
}

// dotRows sets out[s] = q·m[s·stride:][:len(q)] (tensor.DotRows for float32: one call for a window of
// cached keys).
func dotRows[F float](out, q, m []F, stride int) {
	if q32, ok := any(q).([]float32); ok {
		tensor.DotRows(any(out).([]float32), q32, any(m).([]float32), stride)
		return
	}
	for s := range out {
		out[s] = dot(q, m[s*stride:][:len(q)])
	}
}

// axpyRows adds p[s]·m[s·stride:][:len(y)] to y for each s in turn (tensor.AxpyRows for float32).
func axpyRows[F float](y, p, m []F, stride int) {
	if y32, ok := any(y).([]float32); ok {
		tensor.AxpyRows(y32, any(p).([]float32), any(m).([]float32), stride)
		return
	}
	for s, alpha := range p {
		axpy(alpha, m[s*stride:][:len(y)], y)
	}
}

// axpy: y += alpha·x
func axpy[F float](alpha F, x, y []F) {
	if x32, ok := any(x).([]float32); ok {
		tensor.Axpy(float32(alpha), x32, any(y).([]float32))
		return
	}
	for i := range x {
		y[i] += alpha * x[i]
	}
}

func scaleInPlace[F float](x []F, alpha F) {
	if x32, ok := any(x).([]float32); ok {
		tensor.Scale(float32(alpha), x32)
		return
	}
	for i := range x {
		x[i] *= alpha
	}
}
