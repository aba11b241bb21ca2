package t5

import (
	"math"

	"github.com/lathe-ml/lathe/llm/tensor"
)

// The operators, each a forward/backward pair over flat row-major slices. N is a number of rows
// (tokens, B·T), C a row's width. Backward functions accumulate (+=) into parameter gradients and say
// whether they overwrite or add to input gradients.

// float is the element type of the kernels: float32 to run, float64 for the gradient checks.
type float interface{ ~float32 | ~float64 }

// matmul is C (+)= op(A)·op(B), C m×n: tensor.MatMul for float32, plain loops for float64.
func matmul[F float](c, a, b []F, m, n, k int, transA, transB, accumulate bool) {
	if c32, ok := any(c).([]float32); ok {
		tensor.MatMul(c32, any(a).([]float32), any(b).([]float32), m, n, k, transA, transB, accumulate)
		return
	}
	matmulStridedSerial(c, n, a, ifElse(transA, m, k), b, ifElse(transB, k, n), m, n, k, transA, transB, accumulate)
}

func ifElse(cond bool, a, b int) int {
	if cond {
		return a
	}
	return b
}

// matmulStridedSerial is matmul over rows ldc, lda, ldb apart, on the calling goroutine
// (tensor.MatMulStridedSerial for float32): one attention head inside tensor.Parallel.
func matmulStridedSerial[F float](c []F, ldc int, a []F, lda int, b []F, ldb int, m, n, k int, transA, transB, accumulate bool) {
	if c32, ok := any(c).([]float32); ok {
		tensor.MatMulStridedSerial(c32, ldc, any(a).([]float32), lda, any(b).([]float32), ldb, m, n, k, transA, transB, accumulate)
		return
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s F
			for p := 0; p < k; p++ {
				ai, bi := i*lda+p, p*ldb+j
				if transA {
					ai = p*lda + i
				}
				if transB {
					bi = j*ldb + p
				}
				s += a[ai] * b[bi]
			}
			if accumulate {
				c[i*ldc+j] += s
			} else {
				c[i*ldc+j] = s
			}
		}
	}
}

// embeddingForward: out[n,:] = table[tokens[n],:]
func embeddingForward[F float](out []F, tokens []int32, table []F, N, C int) {
	for n := 0; n < N; n++ {
		t := int(tokens[n])
		copy(out[n*C:(n+1)*C], table[t*C:(t+1)*C])
	}
}

// embeddingBackward: dtable[tokens[n],:] += dout[n,:], rows in order (deterministic); nothing for a
// frozen table (nil).
func embeddingBackward[F float](dtable, dout []F, tokens []int32, N, C int) {
	if dtable == nil {
		return
	}
	for n := 0; n < N; n++ {
		t := int(tokens[n])
		d, g := dtable[t*C:(t+1)*C], dout[n*C:(n+1)*C]
		for c := range g {
			d[c] += g[c]
		}
	}
}

// rmsnormForward is T5LayerNorm: no mean subtraction, no bias, the variance in float64.
// rstd[n] = 1/√(mean_c inp[n,c]² + eps); out[n,c] = weight[c]·inp[n,c]·rstd[n]
func rmsnormForward[F float](out, rstd, inp, weight []F, N, C int, eps float64) {
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x, o := inp[n*C:(n+1)*C], out[n*C:(n+1)*C]
			var ss float64
			if x32, ok := any(x).([]float32); ok {
				ss = tensor.SumSquares(x32)
			} else {
				for _, v := range x {
					ss += float64(v) * float64(v)
				}
			}
			r := F(1 / math.Sqrt(ss/float64(C)+eps))
			rstd[n] = r
			for c, v := range x {
				o[c] = weight[c] * (v * r)
			}
		}
	})
}

// rmsnormBackward, with x̂ = inp·rstd and g = dout·weight:
// dweight[c] += Σ_n dout[n,c]·x̂[n,c] (skipped when dweight is nil: frozen);
// dinp[n,:] += rstd[n]·(g − x̂·mean_c(g·x̂))
func rmsnormBackward[F float](dinp, dweight, dout, inp, weight, rstd []F, N, C int) {
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x, dy, dx := inp[n*C:(n+1)*C], dout[n*C:(n+1)*C], dinp[n*C:(n+1)*C]
			r := rstd[n]
			var s float64
			for c := range x {
				s += float64(dy[c] * weight[c] * x[c])
			}
			m := F(s * float64(r) * float64(r) / float64(C))
			for c := range x {
				dx[c] += r * (dy[c]*weight[c] - x[c]*m)
			}
		}
	})
	if dweight == nil {
		return // a frozen gain
	}
	// Workers own columns; each column sums its rows in order whatever the number of workers.
	tensor.Parallel(C, func(lo, hi int) {
		dw := dweight[lo:hi]
		for n := 0; n < N; n++ {
			x, dy, r := inp[n*C+lo:n*C+hi], dout[n*C+lo:n*C+hi], rstd[n]
			for c := range dw {
				dw[c] += dy[c] * x[c] * r
			}
		}
	})
}

// linearForward: out[N,OC] = inp[N,C]·weight[OC,C]ᵀ (T5's projections have no bias)
func linearForward[F float](out, inp, weight []F, N, C, OC int) {
	matmul(out, inp, weight, N, OC, C, false, true, false)
}

// linearBackward: dinp[N,C] (+)= dout[N,OC]·weight; dweight[OC,C] += doutᵀ·inp (skipped when nil:
// a frozen weight). accumulate says whether dinp is added to or overwritten.
func linearBackward[F float](dinp, dweight, dout, inp, weight []F, N, C, OC int, accumulate bool) {
	matmul(dinp, dout, weight, N, C, OC, false, false, accumulate)
	if dweight != nil {
		matmul(dweight, dout, inp, OC, C, N, true, false, true)
	}
}

// residualForward: out += inp (the skip connection; its backward passes the gradient through).
func residualForward[F float](out, inp []F) {
	if o32, ok := any(out).([]float32); ok {
		tensor.Add(o32, any(inp).([]float32))
		return
	}
	for i, v := range inp {
		out[i] += v
	}
}

// scaleForward: x ← s·x in place (the tied head's d_model^-½); scaleBackward: dx ← s·dx.
func scaleForward[F float](x []F, s float64) {
	for i := range x {
		x[i] *= F(s)
	}
}

func scaleBackward[F float](dx []F, s float64) { scaleForward(dx, s) }

// The feed-forward activations in float64, with their derivatives.

const sqrt2OverPi = 0.7978845608028654 // √(2/π)

// activate returns act(x) and act′(x).
func activate(act Activation, x float64) (y, dy float64) {
	switch act {
	case ActReLU:
		if x > 0 {
			return x, 1
		}
		return 0, 0
	case ActGELUTanh:
		// gelu_new: ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³)
		th := math.Tanh(sqrt2OverPi * (x + 0.044715*x*x*x))
		return 0.5 * x * (1 + th), 0.5*(1+th) + 0.5*x*(1-th*th)*sqrt2OverPi*(1+3*0.044715*x*x)
	case ActGELU:
		// ½x(1 + erf(x/√2)); derivative ½(1 + erf(x/√2)) + x·φ(x)
		e := math.Erf(x / math.Sqrt2)
		return 0.5 * x * (1 + e), 0.5*(1+e) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
	default: // ActSiLU: x·σ(x); derivative σ(1 + x(1 − σ))
		s := 1 / (1 + math.Exp(-x))
		return x * s, s * (1 + x*(1-s))
	}
}

// actForward: out = act(a)·b when gated (b = wi_1's output), else out = act(a) (b nil).
func actForward[F float](out, a, b []F, act Activation) {
	if o32, ok := any(out).([]float32); ok && (act == ActGELU || act == ActGELUTanh) {
		a32, b32 := any(a).([]float32), any(b).([]float32)
		tensor.Parallel(len(out), func(lo, hi int) {
			tensor.GELU(o32[lo:hi], a32[lo:hi], act == ActGELUTanh)
			if b32 != nil {
				for i := lo; i < hi; i++ {
					o32[i] *= b32[i]
				}
			}
		})
		return
	}
	tensor.Parallel(len(out), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y, _ := activate(act, float64(a[i]))
			if b != nil {
				y *= float64(b[i])
			}
			out[i] = F(y)
		}
	})
}

// actBackward: da = dout·act′(a)·b, db = dout·act(a) (gated), else da = dout·act′(a); overwritten.
func actBackward[F float](da, db, dout, a, b []F, act Activation) {
	if da32, ok := any(da).([]float32); ok && (act == ActGELU || act == ActGELUTanh) {
		db32, d32, a32, b32 := any(db).([]float32), any(dout).([]float32), any(a).([]float32), any(b).([]float32)
		tensor.Parallel(len(dout), func(lo, hi int) {
			if b32 == nil {
				tensor.GELUBackward(da32[lo:hi], d32[lo:hi], a32[lo:hi], act == ActGELUTanh)
				return
			}
			tensor.GELU(db32[lo:hi], a32[lo:hi], act == ActGELUTanh) // db = dout·gelu(a)
			for i := lo; i < hi; i++ {
				da32[i] = d32[i] * b32[i]
				db32[i] *= d32[i]
			}
			tensor.GELUBackward(da32[lo:hi], da32[lo:hi], a32[lo:hi], act == ActGELUTanh) // da = dout·b·gelu'(a)
		})
		return
	}
	tensor.Parallel(len(dout), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y, dy := activate(act, float64(a[i]))
			g := float64(dout[i])
			if b == nil {
				da[i] = F(g * dy)
				continue
			}
			da[i] = F(g * dy * float64(b[i]))
			db[i] = F(g * y)
		}
	})
}

// relativeBucket is transformers' _relative_position_bucket for one relative position r = key −
// query. Bidirectional (encoder): half the buckets for r > 0, and |r| is bucketed; causal (decoder):
// only r ≤ 0 counts, as −r. Then, with n of the remaining buckets and exact = n/2: distances below
// exact get a bucket each, larger ones exact + ⌊log(d/exact)/log(maxDistance/exact)·(n − exact)⌋,
// capped at n − 1. The logarithm is computed as torch does, in float32, so that the boundaries
// (d = 16 at 32 buckets and max distance 128 falls exactly on one) land in the same bucket.
func relativeBucket(r int, bidirectional bool, buckets, maxDistance int) int {
	b, n := 0, buckets
	var d int
	if bidirectional {
		n /= 2
		if r > 0 {
			b = n
		}
		d = max(r, -r)
	} else {
		d = max(-r, 0)
	}
	exact := n / 2
	if d < exact {
		return b + d
	}
	ratio := float32(d) / float32(exact)
	lg := float32(math.Log(float64(ratio)))
	span := float32(math.Log(float64(maxDistance) / float64(exact)))
	large := exact + int(lg/span*float32(n-exact))
	return b + min(large, n-1)
}

// bucketTable returns the buckets of relative positions −(T−1) … T−1 at index r + T − 1.
func bucketTable(T int, bidirectional bool, buckets, maxDistance int) []int32 {
	tb := make([]int32, 2*T-1)
	for i := range tb {
		tb[i] = int32(relativeBucket(i-(T-1), bidirectional, buckets, maxDistance))
	}
	return tb
}

// posBias is a relative position bias: query at position t, key at s get table[bucket[s−t+off], h].
type posBias[F float] struct {
	table  []F     // relative_attention_bias.weight [Buckets, H]
	bucket []int32 // bucketTable
	off    int
}

// attnScratch is the attention kernels' working memory, per (batch row, head) task: two blocks of
// RB query rows by up to TK keys (scores and probabilities; the backward's dS), the backward's row
// sums, and its per-relative-position bias gradient.
type attnScratch[F float] struct {
	RB, TK, TQ int
	s          []F // [tasks, 2, RB, TK]
	d          []F // [tasks, TQ]
	drel       []F // [tasks, TQ+TK−1]
}

func newAttnScratch[F float](cv *carver[F], tasks, TQ, TK int) *attnScratch[F] {
	rb := min(TQ, 64)
	return &attnScratch[F]{RB: rb, TK: TK, TQ: TQ, s: cv.take(tasks * 2 * rb * TK), d: cv.take(tasks * TQ),
		drel: cv.take(tasks * (TQ + TK - 1))}
}

// attnRow turns one row of raw scores q·k (query position t, keys 0…len(row)−1) into probabilities:
// S[s] += bias(s − t) when pb is set; keys with s > t (causal) or keyMask[s] = 0 get probability 0;
// P = softmax(S). No 1/√d: T5 folds it into the initialisation of q. The forward and the backward
// both call it, so they agree bit for bit.
func attnRow[F float](row []F, t, h, H int, pb *posBias[F], keyMask []F, causal bool) {
	inf := F(math.Inf(-1))
	for s := range row {
		switch {
		case causal && s > t, keyMask != nil && keyMask[s] == 0:
			row[s] = inf
		case pb != nil:
			row[s] += pb.table[int(pb.bucket[s-t+pb.off])*H+h]
		}
	}
	if r32, ok := any(row).([]float32); ok {
		tensor.SoftmaxProbs(r32)
		return
	}
	mx := math.Inf(-1)
	for _, v := range row {
		mx = max(mx, float64(v))
	}
	var sum float64
	for i, v := range row {
		e := math.Exp(float64(v) - mx)
		row[i] = F(e)
		sum += e
	}
	for i := range row {
		row[i] = F(float64(row[i]) / sum)
	}
}

// attentionForward is T5 attention for B rows of Tq queries over Tk keys, H heads of width D (q, out:
// [B, Tq, H·D]; k, v: [B, Tk, H·D]); query row i sits at position qOff + i (incremental decoding):
// S[t,s] = q[b,t,h]·k[b,s,h] + bias_h(s − t); P = softmax_s(S) over the allowed keys (keyMask[b,s] ≠ 0;
// s ≤ t when causal); out[b,t,h] = Σ_s P[t,s]·v[b,s,h]. Self-attention passes the relative bias,
// cross-attention none. P is not kept: the backward recomputes it block by block from q and k.
func attentionForward[F float](out, q, k, v []F, pb *posBias[F], keyMask []F, sc *attnScratch[F], B, Tq, Tk, H, D, qOff int, causal bool) {
	I := H * D
	tensor.Parallel(B*H, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			Q, O := q[b*Tq*I+h*D:], out[b*Tq*I+h*D:]
			K, V := k[b*Tk*I+h*D:], v[b*Tk*I+h*D:]
			var km []F
			if keyMask != nil {
				km = keyMask[b*Tk : (b+1)*Tk]
			}
			blk := sc.s[bh*2*sc.RB*sc.TK:]
			for r0 := 0; r0 < Tq; r0 += sc.RB {
				r1 := min(Tq, r0+sc.RB)
				rb, nk := r1-r0, keysFor(Tk, qOff+r1-1, causal)
				S := blk[:rb*nk]
				matmulStridedSerial(S, nk, Q[r0*I:], I, K, I, rb, nk, D, false, true, false)
				for i := range rb {
					attnRow(S[i*nk:(i+1)*nk], qOff+r0+i, h, H, pb, km, causal)
				}
				matmulStridedSerial(O[r0*I:], I, S, nk, V, I, rb, D, nk, false, false, false)
			}
		}
	})
}

// keysFor is how many keys rows up to position last see: all Tk, or last+1 when causal.
func keysFor(Tk, last int, causal bool) int {
	if causal {
		return min(Tk, last+1)
	}
	return Tk
}

// attentionBackward recomputes P and, with D_t = dout[t]·out[t] (= Σ_s P·dP):
// dP = dO·Vᵀ; dS = P⊙(dP − D_t); dq = dS·K; dk = dSᵀ·Q; dv = Pᵀ·dO (dq, dk, dv overwritten);
// dtable[bucket(s−t), h] += Σ_{b,t,s} dS[t,s] when pb is set and dtable is not nil. Each (b, h) task
// owns its rows of dq, dk, dv and sums its bias gradient per relative position; the sums are added
// into dtable afterwards, in order, so the result does not depend on the number of workers. Training
// only: query row t is at position t (no qOff).
func attentionBackward[F float](dq, dk, dv, dout, out, q, k, v []F, pb *posBias[F], dtable, keyMask []F, sc *attnScratch[F], B, Tq, Tk, H, D int, causal bool) {
	I, R := H*D, Tq+Tk-1
	tensor.Parallel(B*H, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			at := b*Tq*I + h*D
			Q, O, DO, DQ := q[at:], out[at:], dout[at:], dq[at:]
			K, V := k[b*Tk*I+h*D:], v[b*Tk*I+h*D:]
			DK, DV := dk[b*Tk*I+h*D:], dv[b*Tk*I+h*D:]
			var km []F
			if keyMask != nil {
				km = keyMask[b*Tk : (b+1)*Tk]
			}
			for s := range Tk {
				clear(DK[s*I : s*I+D])
				clear(DV[s*I : s*I+D])
			}
			drel := sc.drel[bh*R : (bh+1)*R]
			clear(drel)
			Dt := sc.d[bh*sc.TQ : bh*sc.TQ+Tq]
			for t := range Tq {
				var s F
				for j := range D {
					s += DO[t*I+j] * O[t*I+j]
				}
				Dt[t] = s
			}
			blk := sc.s[bh*2*sc.RB*sc.TK:]
			for r0 := 0; r0 < Tq; r0 += sc.RB {
				r1 := min(Tq, r0+sc.RB)
				rb, nk := r1-r0, keysFor(Tk, r1-1, causal)
				P, dS := blk[:rb*nk], blk[sc.RB*sc.TK:][:rb*nk]
				matmulStridedSerial(P, nk, Q[r0*I:], I, K, I, rb, nk, D, false, true, false)
				matmulStridedSerial(dS, nk, DO[r0*I:], I, V, I, rb, nk, D, false, true, false)
				for i := range rb {
					t := r0 + i
					p, ds := P[i*nk:(i+1)*nk], dS[i*nk:(i+1)*nk]
					attnRow(p, t, h, H, pb, km, causal)
					for s := range p {
						ds[s] = p[s] * (ds[s] - Dt[t])
						drel[s-t+Tq-1] += ds[s]
					}
				}
				matmulStridedSerial(DV, I, P, nk, DO[r0*I:], I, nk, D, rb, true, false, true)
				matmulStridedSerial(DQ[r0*I:], I, dS, nk, K, I, rb, D, nk, false, false, false)
				matmulStridedSerial(DK, I, dS, nk, Q[r0*I:], I, nk, D, rb, true, false, true)
			}
		}
	})
	if pb == nil || dtable == nil {
		return
	}
	for bh := range B * H {
		h, drel := bh%H, sc.drel[bh*R:(bh+1)*R]
		for i, g := range drel {
			// drel[i] is relative position s − t = i − (Tq − 1).
			if g != 0 {
				dtable[int(pb.bucket[i-(Tq-1)+pb.off])*H+h] += g
			}
		}
	}
}

// headScratch is the memory of the fused output head + cross-entropy, R rows at a time.
type headScratch[F float] struct {
	R       int
	rows    []int
	x, dx   []F // [R, C]
	logits  []F // [R, V], turned into dlogits in place
	rowLoss []float64
}

func newHeadScratch[F float](cv *carver[F], R, C, V int) *headScratch[F] {
	return &headScratch[F]{R: R, rows: make([]int, R), x: cv.take(R * C), dx: cv.take(R * C),
		logits: cv.take(R * V), rowLoss: make([]float64, R)}
}

// crossEntropyHeadForward: Σ_n mask[n]·(logsumexp(x[n]·Wᵀ) − (x[n]·Wᵀ)[targets[n]]), over the rows
// with mask ≠ 0 only, gathered R at a time so the [N, V] logits are never held.
func crossEntropyHeadForward[F float](x, w []F, targets []int32, mask []F, N, C, V int, hs *headScratch[F]) float64 {
	return crossEntropyHead(nil, nil, x, w, targets, mask, N, C, V, 0, hs, false)
}

// crossEntropyHeadBackward is the forward and, in the same pass over each chunk, its backward:
// dlogits = scale·mask·(softmax − onehot(target)); dx[n] = dlogits·W (overwritten, 0 for unmasked
// rows); dw += dlogitsᵀ·x (skipped when nil). Returns the forward's sum.
func crossEntropyHeadBackward[F float](dx, dw, x, w []F, targets []int32, mask []F, N, C, V int, scale float64, hs *headScratch[F]) float64 {
	return crossEntropyHead(dx, dw, x, w, targets, mask, N, C, V, scale, hs, true)
}

func crossEntropyHead[F float](dx, dw, x, w []F, targets []int32, mask []F, N, C, V int, scale float64, hs *headScratch[F], backward bool) float64 {
	if backward {
		clear(dx[:N*C])
	}
	var total float64
	for n := 0; n < N; {
		R := 0
		for ; n < N && R < hs.R; n++ {
			if mask[n] != 0 {
				hs.rows[R] = n
				copy(hs.x[R*C:(R+1)*C], x[n*C:(n+1)*C])
				R++
			}
		}
		if R == 0 {
			break
		}
		logits := hs.logits[:R*V]
		matmul(logits, hs.x[:R*C], w, R, V, C, false, true, false)
		tensor.Parallel(R, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				l, row := logits[r*V:(r+1)*V], hs.rows[r]
				tgt := int(targets[row])
				lse := logSoftmaxInPlace(l, float64(l[tgt]))
				m := float64(mask[row])
				hs.rowLoss[r] = m * lse
				if backward {
					g := F(scale * m)
					for j := range l {
						l[j] *= g
					}
					l[tgt] -= g
				}
			}
		})
		for r := range R {
			total += hs.rowLoss[r]
		}
		if backward {
			linearBackward(hs.dx[:R*C], dw, logits, hs.x[:R*C], w, R, C, V, false)
			for r := range R {
				copy(dx[hs.rows[r]*C:(hs.rows[r]+1)*C], hs.dx[r*C:(r+1)*C])
			}
		}
	}
	return total
}

// logSoftmaxInPlace replaces x with softmax(x) and returns logsumexp(x) − target, the row's loss.
func logSoftmaxInPlace[F float](x []F, target float64) float64 {
	if x32, ok := any(x).([]float32); ok {
		return float64(tensor.Softmax(x32)) - target
	}
	mx := math.Inf(-1)
	for _, v := range x {
		mx = max(mx, float64(v))
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v) - mx)
		x[i] = F(e)
		sum += e
	}
	for i := range x {
		x[i] = F(float64(x[i]) / sum)
	}
	return mx + math.Log(sum) - target
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
