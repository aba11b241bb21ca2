package model

import (
	"math"

	"github.com/lathe-ml/lathe/llm/hugemem"
	"github.com/lathe-ml/lathe/llm/tensor"
)

// The layers, each a forward/backward pair over flat row-major slices. N is the number of rows
// (tokens, B·T), C a row's width. Backward functions accumulate (+=) into parameter gradients.

// matmul is tensor.MatMul for float32 and a plain triple loop for float64 (gradient checks).
func matmul[F float](c, a, b []F, m, n, k int, transA, transB, accumulate bool) {
	if c32, ok := any(c).([]float32); ok {
		tensor.MatMul(c32, any(a).([]float32), any(b).([]float32), m, n, k, transA, transB, accumulate)
		return
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s F
			for p := 0; p < k; p++ {
				av, bv := a[i*k+p], b[p*n+j]
				if transA {
					av = a[p*m+i]
				}
				if transB {
					bv = b[j*k+p]
				}
				s += av * bv
			}
			if accumulate {
				c[i*n+j] += s
			} else {
				c[i*n+j] = s
			}
		}
	}
}

// matmulSerial is matmul on the calling goroutine only (tensor.MatMulSerial), for products run inside
// tensor.Parallel.
func matmulSerial[F float](c, a, b []F, m, n, k int, transA, transB, accumulate bool) {
	if c32, ok := any(c).([]float32); ok {
		tensor.MatMulSerial(c32, any(a).([]float32), any(b).([]float32), m, n, k, transA, transB, accumulate)
		return
	}
	matmul(c, a, b, m, n, k, transA, transB, accumulate)
}

// onEachWorker runs the jobs in parallel, one per worker (the pool has at least as many workers as
// jobs, or some run one after another), and returns when all are done. Jobs must not use the pool.
func onEachWorker(jobs ...func()) {
	tensor.Parallel(len(jobs), func(lo, hi int) {
		for _, job := range jobs[lo:hi] {
			job()
		}
	})
}

// embeddingForward: out[n,:] = wte[tokens[n],:]
func embeddingForward[F float](out []F, tokens []int32, wte []F, N, C int) {
	for n := 0; n < N; n++ {
		t := int(tokens[n])
		copy(out[n*C:(n+1)*C], wte[t*C:(t+1)*C])
	}
}

// embeddingBackward: dwte[tokens[n],:] += dout[n,:], rows in order (deterministic).
func embeddingBackward[F float](dwte, dout []F, tokens []int32, N, C int) {
	for n := 0; n < N; n++ {
		t := int(tokens[n])
		d, g := dwte[t*C:(t+1)*C], dout[n*C:(n+1)*C]
		for c := range g {
			d[c] += g[c]
		}
	}
}

// rmsnormForward: rstd[n] = 1/√(mean_c inp[n,c]² + eps); out[n,c] = inp[n,c]·rstd[n]·weight[c]
func rmsnormForward[F float](out, rstd, inp, weight []F, N, C int, eps float64) {
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x, o := inp[n*C:(n+1)*C], out[n*C:(n+1)*C]
			r := F(1 / math.Sqrt(sumSquares(x)/float64(C)+eps))
			rstd[n] = r
			for c, v := range x {
				o[c] = v * r * weight[c]
			}
		}
	})
}

// sumSquares is Σ x², accumulated in float64 (SIMD lanes for float32, tensor.SumSquares).
func sumSquares[F float](x []F) float64 {
	if x32, ok := any(x).([]float32); ok {
		return tensor.SumSquares(x32)
	}
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	return ss
}

// dotWeighted is Σ a·w·b, the products in F and the sum in float64 over four interleaved partial sums
// (a single running sum is a chain of dependent additions, four cycles an element).
func dotWeighted[F float](a, w, b []F) float64 {
	n := len(a)
	w, b = w[:n], b[:n]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += float64(a[i] * w[i] * b[i])
		s1 += float64(a[i+1] * w[i+1] * b[i+1])
		s2 += float64(a[i+2] * w[i+2] * b[i+2])
		s3 += float64(a[i+3] * w[i+3] * b[i+3])
	}
	for ; i < n; i++ {
		s0 += float64(a[i] * w[i] * b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// rmsnormBackward, with x̂ = inp·rstd and g = dout·weight:
// dweight[c] += Σ_n dout[n,c]·x̂[n,c];  dinp[n,:] += rstd[n]·(g − x̂·mean_c(g·x̂))
func rmsnormBackward[F float](dinp, dweight, dout, inp, weight, rstd []F, N, C int) {
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x, dy, dx := inp[n*C:(n+1)*C], dout[n*C:(n+1)*C], dinp[n*C:(n+1)*C]
			r := rstd[n]
			m := F(dotWeighted(dy, weight, x) * float64(r) / float64(C))
			for c := range x {
				dx[c] += r * (dy[c]*weight[c] - x[c]*r*m)
			}
		}
	})
	if dweight == nil {
		return
	}
	// Workers own columns; each column still sums its rows in order, whatever the number of workers.
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

// layernormForward: mean[n] = mean_c inp[n,c]; rstd[n] = 1/√(var_c inp[n,c] + eps);
// out[n,c] = (inp[n,c]−mean[n])·rstd[n]·weight[c] + bias[c] (bias nil: none, mpt's no_bias).
// Statistics are accumulated in float64.
func layernormForward[F float](out, mean, rstd, inp, weight, bias []F, N, C int, eps float64) {
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x, o := inp[n*C:(n+1)*C], out[n*C:(n+1)*C]
			var s float64
			for _, v := range x {
				s += float64(v)
			}
			mu := s / float64(C)
			var ss float64
			for _, v := range x {
				d := float64(v) - mu
				ss += d * d
			}
			r := 1 / math.Sqrt(ss/float64(C)+eps)
			mean[n], rstd[n] = F(mu), F(r)
			for c, v := range x {
				o[c] = F((float64(v)-mu)*r) * weight[c]
			}
			if bias != nil {
				for c := range o {
					o[c] += bias[c]
				}
			}
		}
	})
}

// layernormBackward, with x̂ = (inp−mean)·rstd and g = dout·weight:
// dweight[c] += Σ_n dout·x̂; dbias[c] += Σ_n dout; dinp[n,:] += rstd·(g − mean_c(g) − x̂·mean_c(g·x̂)).
func layernormBackward[F float](dinp, dweight, dbias, dout, inp, weight, mean, rstd []F, N, C int) {
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x, dy, dx := inp[n*C:(n+1)*C], dout[n*C:(n+1)*C], dinp[n*C:(n+1)*C]
			mu, r := float64(mean[n]), float64(rstd[n])
			var sg, sgx float64
			for c := range x {
				g := float64(dy[c] * weight[c])
				sg += g
				sgx += g * (float64(x[c]) - mu) * r
			}
			sg, sgx = sg/float64(C), sgx/float64(C)
			for c := range x {
				xh := (float64(x[c]) - mu) * r
				dx[c] += F(r * (float64(dy[c]*weight[c]) - sg - xh*sgx))
			}
		}
	})
	if dweight == nil {
		return
	}
	// Workers own columns; each column sums its rows in order, whatever the number of workers.
	tensor.Parallel(C, func(lo, hi int) {
		for n := 0; n < N; n++ {
			x, dy := inp[n*C:(n+1)*C], dout[n*C:(n+1)*C]
			mu, r := mean[n], rstd[n]
			for c := lo; c < hi; c++ {
				dweight[c] += dy[c] * (x[c] - mu) * r
				if dbias != nil {
					dbias[c] += dy[c]
				}
			}
		}
	})
}

// geluForward: out = x·Φ(x) (exact, erf) or 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (tanh).
func geluForward[F float](out, inp []F, N int, tanhApprox bool) {
	if o32, ok := any(out).([]float32); ok {
		i32 := any(inp).([]float32)
		tensor.Parallel(N, func(lo, hi int) { tensor.GELU(o32[lo:hi], i32[lo:hi], tanhApprox) })
		return
	}
	tensor.Parallel(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(inp[i])
			if tanhApprox {
				out[i] = F(0.5 * x * (1 + math.Tanh(geluK*(x+0.044715*x*x*x))))
			} else {
				out[i] = F(0.5 * x * (1 + math.Erf(x/math.Sqrt2)))
			}
		}
	})
}

const geluK = 0.7978845608028654 // √(2/π)

// geluBackward: dinp = dout·gelu'(x); exact: Φ(x) + x·φ(x); tanh: 0.5·(1+t) + 0.5·x·(1−t²)·k·(1+3·0.044715·x²).
// dinp may be dout (in place).
func geluBackward[F float](dinp, dout, inp []F, N int, tanhApprox bool) {
	if d32, ok := any(dinp).([]float32); ok {
		o32, i32 := any(dout).([]float32), any(inp).([]float32)
		tensor.Parallel(N, func(lo, hi int) { tensor.GELUBackward(d32[lo:hi], o32[lo:hi], i32[lo:hi], tanhApprox) })
		return
	}
	tensor.Parallel(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(inp[i])
			var d float64
			if tanhApprox {
				t := math.Tanh(geluK * (x + 0.044715*x*x*x))
				d = 0.5*(1+t) + 0.5*x*(1-t*t)*geluK*(1+3*0.044715*x*x)
			} else {
				d = 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
			}
			dinp[i] = dout[i] * F(d)
		}
	})
}

// clampForward: x ← min(max(x, −c), c) in place (mpt's clip_qkv), remembering in keep which
// elements were inside (their gradient passes; the clamped ones get none).
func clampForward[F float](x []F, keep []bool, c F) {
	for i, v := range x {
		keep[i] = v >= -c && v <= c
		x[i] = min(max(v, -c), c)
	}
}

// clampBackward: dx ← dx where the forward did not clamp, else 0 (in place).
func clampBackward[F float](dx []F, keep []bool) {
	for i, k := range keep {
		if !k {
			dx[i] = 0
		}
	}
}

// linearForward: out[N,OC] = inp[N,C]·weight[OC,C]ᵀ (+ bias[OC])
func linearForward[F float](out, inp, weight, bias []F, N, C, OC int) {
	matmul(out, inp, weight, N, OC, C, false, true, false)
	addBias(out, bias, N, OC)
}

// linearForwardSerial is linearForward on the calling goroutine only (inside onEachWorker).
func linearForwardSerial[F float](out, inp, weight, bias []F, N, C, OC int) {
	matmulSerial(out, inp, weight, N, OC, C, false, true, false)
	addBias(out, bias, N, OC)
}

// addBias adds bias[OC] (if any) to each of the N rows of out.
func addBias[F float](out, bias []F, N, OC int) {
	if bias == nil {
		return
	}
	for n := 0; n < N; n++ {
		o := out[n*OC : (n+1)*OC]
		for j := range o {
			o[j] += bias[j]
		}
	}
}

// linearBackward: dinp[N,C] (+)= dout[N,OC]·weight; dweight[OC,C] (+)= doutᵀ·inp; dbias[OC] += Σ_n dout.
// A nil dweight (frozen weight) skips that product; accumulate says whether dinp is added to, accW
// whether dweight is (false: overwritten).
func linearBackward[F float](dinp, dweight, dbias, dout, inp, weight []F, N, C, OC int, accumulate, accW bool) {
	linearBackwardIn(false, dinp, dweight, dbias, dout, inp, weight, N, C, OC, accumulate, accW)
}

// linearBackwardIn is linearBackward with its products in bfloat16 when bf16 (mixed precision).
func linearBackwardIn[F float](bf16 bool, dinp, dweight, dbias, dout, inp, weight []F, N, C, OC int, accumulate, accW bool) {
	switch {
	case dweight != nil && tensor.Workers() == 2:
		// The two products have the same size (N·C·OC multiply-adds) and are independent: one per
		// worker, whole, with one hand-off. Split between both workers, each product waits on them
		// twice per block, which at 512-row products left about a third of the two cores idle.
		onEachWorker(
			func() { matmulIn(bf16, false, dinp, dout, weight, N, C, OC, false, false, accumulate) },
			func() { matmulIn(bf16, false, dweight, dout, inp, OC, C, N, true, false, accW) })
	case dweight != nil:
		matmulIn(bf16, true, dinp, dout, weight, N, C, OC, false, false, accumulate)
		matmulIn(bf16, true, dweight, dout, inp, OC, C, N, true, false, accW)
	default:
		matmulIn(bf16, true, dinp, dout, weight, N, C, OC, false, false, accumulate)
	}
	addBiasGrad(dbias, dout, N, OC)
}

// addBiasGrad: dbias[OC] += Σ_n dout[n] (nothing when dbias is nil).
func addBiasGrad[F float](dbias, dout []F, N, OC int) {
	if dbias == nil {
		return
	}
	for n := 0; n < N; n++ {
		d := dout[n*OC : (n+1)*OC]
		for j := range d {
			dbias[j] += d[j]
		}
	}
}

// matmulIn is matmul (threaded) or matmulSerial, in bfloat16 (tensor.MatMulRoundBF16: the operands
// rounded, float32 sums) when bf16; a float64 model has no bfloat16 products and multiplies exactly.
func matmulIn[F float](bf16, threaded bool, c, a, b []F, m, n, k int, transA, transB, accumulate bool) {
	if c32, ok := any(c).([]float32); ok && bf16 {
		a32, b32 := any(a).([]float32), any(b).([]float32)
		if threaded {
			tensor.MatMulRoundBF16(c32, a32, b32, m, n, k, transA, transB, accumulate)
		} else {
			tensor.MatMulRoundBF16Serial(c32, a32, b32, m, n, k, transA, transB, accumulate)
		}
		return
	}
	if threaded {
		matmul(c, a, b, m, n, k, transA, transB, accumulate)
	} else {
		matmulSerial(c, a, b, m, n, k, transA, transB, accumulate)
	}
}

// ropePair returns the two dimensions of a head that rotary pair i rotates together, among the RD
// rotating dimensions (the head's first RD).
func ropePair(i, RD int, layout RopeLayout) (int, int) {
	if layout == RopeHalfSplit {
		return i, i + RD/2
	}
	return 2 * i, 2*i + 1
}

// ropeForward rotates, in place, the first RD dimensions of every head of every row n by its
// position pos[n] (the others pass through: gpt_neox's partial rotary):
// (x_a, x_b) ← (x_a·cos θ − x_b·sin θ, x_a·sin θ + x_b·cos θ), θ = pos·freq_i, cos/sin: [pos, RD/2].
func ropeForward[F float](x []F, pos []int32, cos, sin []F, N, NH, HD, RD int, layout RopeLayout) {
	rope(x, pos, cos, sin, N, NH, HD, RD, layout, 1)
}

// ropeBackward: the rotation is orthogonal, so the gradient rotates back by −θ (in place).
func ropeBackward[F float](dx []F, pos []int32, cos, sin []F, N, NH, HD, RD int, layout RopeLayout) {
	rope(dx, pos, cos, sin, N, NH, HD, RD, layout, -1)
}

func rope[F float](x []F, pos []int32, cos, sin []F, N, NH, HD, RD int, layout RopeLayout, sign F) {
	half := RD / 2
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			cs, sn := cos[int(pos[n])*half:], sin[int(pos[n])*half:]
			for h := 0; h < NH; h++ {
				head := x[(n*NH+h)*HD : (n*NH+h+1)*HD]
				for i := 0; i < half; i++ {
					a, b := ropePair(i, RD, layout)
					c, s := cs[i], sign*sn[i]
					xa, xb := head[a], head[b]
					head[a] = xa*c - xb*s
					head[b] = xa*s + xb*c
				}
			}
		}
	})
}

// attnScratch is the working memory of the attention kernels: a block of scores per head, and the
// backward's row sums. The heads themselves are read and written where they are, [B, T, heads, HD]
// with rows heads·HD apart, by strided products: no head-major copies.
type attnScratch[F float] struct {
	RB int // query rows per block
	s  []F // [B·NH, RB, T] forward scores; backward: P and dS, [B·NKV, 2, RB, T]
	d  []F // [B, NH, T]: D_t = dout_t·out_t
}

func newAttnScratch[F float](cv *carver[F], B, T, NH, NKV int) *attnScratch[F] {
	rb := min(T, 64)
	return &attnScratch[F]{RB: rb, s: cv.take(B * max(NH, 2*NKV) * rb * T), d: cv.take(B * NH * T)}
}

// matmulStridedSerial is tensor.MatMulStridedSerial for float32 (rows of C, A and B ldc, lda, ldb
// apart) and plain loops for float64.
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

// windowStart is the first position that position t attends to.
func windowStart(t, W int) int {
	if W > 0 {
		return max(0, t-W+1)
	}
	return 0
}

// attnProbs turns one row of raw scores q·k into attention probabilities: keys a..z (inclusive) get
// softmax(scale·score − slope·(z−s)), the others 0 (slope 0: no ALiBi; the query is key z, the
// row's last). The forward and the backward call it on the same scores, so they get the same
// probabilities, bit for bit.
func attnProbs[F float](row []F, a, z int, scale, slope F) {
	keys := row[a : z+1]
	scaleInPlace(keys, scale)
	if slope != 0 {
		for j := range keys {
			keys[j] -= slope * F(z-a-j)
		}
	}
	if k32, ok := any(keys).([]float32); ok {
		tensor.SoftmaxProbs(k32)
	} else {
		softmaxInPlace(keys)
	}
	clear(row[:a])
	clear(row[z+1:])
}

// attentionForward, causal and grouped-query (query head h reads kv head h/(NH/NKV)), over a sliding
// window of W positions when W > 0 (s > t−W), else over all s ≤ t:
// S[t,s] = q[b,t,h]·k[b,s,kvh]/√HD − slopes[h]·(t−s); P = softmax_s(S); out[b,t,h] = Σ_s P[t,s]·v[b,s,kvh].
// slopes is nil without ALiBi.
// Heads run in parallel; within a head, per block of RB query rows, S = Q·Kᵀ and out = P·V are matrix
// products over the keys up to the block's last row only (the masked upper triangle is mostly
// skipped). P is not kept: the backward recomputes it from q and k (flash-attention style), so memory
// grows with T, not T². q, out: [B,T,NH,HD]; k, v: [B,T,NKV,HD].
func attentionForward[F float](out, q, k, v []F, sc *attnScratch[F], B, T, NH, NKV, HD, W int, slopes []F) {
	group, QD, KVD := NH/NKV, NH*HD, NKV*HD
	scale := F(1 / math.Sqrt(float64(HD)))
	tensor.Parallel(B*NH, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			// The head's row t is at [t·QD] of Q and O, and at [t·KVD] of K and V.
			Q, O := q[b*T*QD+h*HD:], out[b*T*QD+h*HD:]
			K, V := k[b*T*KVD+h/group*HD:], v[b*T*KVD+h/group*HD:]
			scores := sc.s[bh*sc.RB*T : (bh+1)*sc.RB*T]
			for r0 := 0; r0 < T; r0 += sc.RB {
				r1 := min(T, r0+sc.RB)
				first := windowStart(r0, W)
				rb, nk := r1-r0, r1-first
				S := scores[:rb*nk]
				matmulStridedSerial(S, nk, Q[r0*QD:], QD, K[first*KVD:], KVD, rb, nk, HD, false, true, false)
				for i := range rb {
					attnProbs(S[i*nk:(i+1)*nk], windowStart(r0+i, W)-first, r0+i-first, scale, slope(slopes, h))
				}
				matmulStridedSerial(O[r0*QD:], QD, S, nk, V[first*KVD:], KVD, rb, HD, nk, false, false, false)
			}
		}
	})
}

// slope is head h's ALiBi slope, 0 without ALiBi.
func slope[F float](slopes []F, h int) F {
	if slopes == nil {
		return 0
	}
	return slopes[h]
}

// attentionBackward recomputes P = softmax(S) block by block and, with D_t = dout[t]·out[t]
// (= Σ_s P·dP): dP = dO·Vᵀ; dS = P⊙(dP − D_t)/√HD; dq = dS·K; dk += dSᵀ·Q; dv += Pᵀ·dO, the dk and dv
// of a kv head summed over the query heads of its group. Work is split by (b, kv head) so each task
// owns the dk, dv it adds to. dq, dk, dv are overwritten.
func attentionBackward[F float](dq, dk, dv, dout, out, q, k, v []F, sc *attnScratch[F], B, T, NH, NKV, HD, W int, slopes []F) {
	group, QD, KVD := NH/NKV, NH*HD, NKV*HD
	scale := F(1 / math.Sqrt(float64(HD)))
	tensor.Parallel(B*NKV, func(lo, hi int) {
		for bkv := lo; bkv < hi; bkv++ {
			b, kvh := bkv/NKV, bkv%NKV
			K, V := k[b*T*KVD+kvh*HD:], v[b*T*KVD+kvh*HD:]
			DK, DV := dk[b*T*KVD+kvh*HD:], dv[b*T*KVD+kvh*HD:]
			for t := range T {
				clear(DK[t*KVD : t*KVD+HD])
				clear(DV[t*KVD : t*KVD+HD])
			}
			blockP := sc.s[2*bkv*sc.RB*T : (2*bkv+1)*sc.RB*T]
			blockDS := sc.s[(2*bkv+1)*sc.RB*T : (2*bkv+2)*sc.RB*T]
			for h := kvh * group; h < (kvh+1)*group; h++ {
				bh, at := b*NH+h, b*T*QD+h*HD
				Q, O, DO, DQ := q[at:], out[at:], dout[at:], dq[at:]
				D := sc.d[bh*T : (bh+1)*T]
				for t := range T {
					D[t] = dot(DO[t*QD:t*QD+HD], O[t*QD:t*QD+HD])
				}
				for r0 := 0; r0 < T; r0 += sc.RB {
					r1 := min(T, r0+sc.RB)
					first := windowStart(r0, W)
					rb, nk := r1-r0, r1-first
					P, dS := blockP[:rb*nk], blockDS[:rb*nk]
					matmulStridedSerial(P, nk, Q[r0*QD:], QD, K[first*KVD:], KVD, rb, nk, HD, false, true, false)
					matmulStridedSerial(dS, nk, DO[r0*QD:], QD, V[first*KVD:], KVD, rb, nk, HD, false, true, false)
					for i := range rb {
						t := r0 + i
						p, ds := P[i*nk:(i+1)*nk], dS[i*nk:(i+1)*nk]
						attnProbs(p, windowStart(t, W)-first, t-first, scale, slope(slopes, h))
						for j := range p {
							ds[j] = p[j] * (ds[j] - D[t]) * scale
						}
					}
					matmulStridedSerial(DV[first*KVD:], KVD, P, nk, DO[r0*QD:], QD, nk, HD, rb, true, false, true)
					matmulStridedSerial(DQ[r0*QD:], QD, dS, nk, K[first*KVD:], KVD, rb, HD, nk, false, false, false)
					matmulStridedSerial(DK[first*KVD:], KVD, dS, nk, Q[r0*QD:], QD, nk, HD, rb, true, false, true)
				}
			}
		}
	})
}

// swigluForward: out = silu(gate)·up, silu(g) = g·σ(g)
func swigluForward[F float](out, gate, up []F, N int) {
	if o32, ok := any(out).([]float32); ok { // one SIMD pass (tensor.SwiGLU)
		g32, u32 := any(gate).([]float32), any(up).([]float32)
		tensor.Parallel(N, func(lo, hi int) { tensor.SwiGLU(o32[lo:hi], g32[lo:hi], u32[lo:hi]) })
		return
	}
	tensor.Parallel(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := float64(gate[i])
			out[i] = F(g/(1+math.Exp(-g))) * up[i]
		}
	})
}

// swigluBackward: dgate = dout·up·σ(g)·(1 + g·(1−σ(g))); dup = dout·silu(g)  (overwritten)
func swigluBackward[F float](dgate, dup, dout, gate, up []F, N int) {
	if dg32, ok := any(dgate).([]float32); ok { // one SIMD pass (tensor.SwiGLUBackward)
		du32, do32 := any(dup).([]float32), any(dout).([]float32)
		g32, u32 := any(gate).([]float32), any(up).([]float32)
		tensor.Parallel(N, func(lo, hi int) {
			tensor.SwiGLUBackward(dg32[lo:hi], du32[lo:hi], do32[lo:hi], g32[lo:hi], u32[lo:hi])
		})
		return
	}
	tensor.Parallel(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := float64(gate[i])
			sg := 1 / (1 + math.Exp(-g))
			dgate[i] = dout[i] * up[i] * F(sg*(1+g*(1-sg)))
			dup[i] = dout[i] * F(g*sg)
		}
	})
}

// softmaxInPlace replaces x with softmax(x) and returns log Σ exp x (tensor.Softmax's SIMD exp for
// float32).
func softmaxInPlace[F float](x []F) float64 {
	if x32, ok := any(x).([]float32); ok {
		return float64(tensor.Softmax(x32))
	}
	mx := x[0]
	for _, v := range x {
		mx = max(mx, v)
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - mx))
		x[i] = F(e)
		sum += e
	}
	for i := range x {
		x[i] = F(float64(x[i]) / sum)
	}
	return float64(mx) + math.Log(sum)
}

// headScratch is the chunk memory of the fused output head + cross-entropy: R rows at a time.
type headScratch[F float] struct {
	R       int
	rows    []int     // [R] which input rows the chunk holds
	x, dx   []F       // [R, C]
	logits  []F       // [R, V], turned into dlogits in place
	rowLoss []float64 // [R]
	bf16    bool      // the head's products in bfloat16 (mixed precision)
}

func newHeadScratch[F float](R, C, V int) *headScratch[F] {
	return &headScratch[F]{R: R, rows: make([]int, R), x: make([]F, R*C), dx: make([]F, R*C),
		logits: hugemem.Make[F](R * V), rowLoss: make([]float64, R)}
}

// crossEntropyHeadForward: Σ_n mask[n]·(logsumexp(x[n]·Wᵀ) − (x[n]·Wᵀ)[targets[n]]), over the rows
// with mask ≠ 0 only, gathered R at a time so the [N, V] logits are never held.
func crossEntropyHeadForward[F float](x, w []F, targets []int32, mask []F, N, C, V int, hs *headScratch[F]) float64 {
	return crossEntropyHead(nil, nil, x, w, targets, mask, N, C, V, 0, true, hs, false)
}

// crossEntropyHeadForwardBackward is the forward and, in the same pass over each chunk, its backward:
// dlogits = scale·mask·(softmax − onehot(target)); dx[n] = dlogits·W (0 for unmasked rows);
// dw (+)= dlogitsᵀ·x (skipped when dw is nil: a frozen head; overwritten unless accW). Returns the same
// sum as the forward.
func crossEntropyHeadForwardBackward[F float](dx, dw, x, w []F, targets []int32, mask []F, N, C, V int, scale float64, accW bool, hs *headScratch[F]) float64 {
	return crossEntropyHead(dx, dw, x, w, targets, mask, N, C, V, scale, accW, hs, true)
}

func crossEntropyHead[F float](dx, dw, x, w []F, targets []int32, mask []F, N, C, V int, scale float64, accW bool, hs *headScratch[F], backward bool) float64 {
	if backward {
		clear(dx[:N*C])
	}
	var total float64
	n := 0
	for n < N {
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
		matmulIn(hs.bf16, true, logits, hs.x[:R*C], w, R, V, C, false, true, false)
		tensor.Parallel(R, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				l := logits[r*V : (r+1)*V]
				row := hs.rows[r]
				tgt := int(targets[row])
				target := float64(l[tgt])
				lse := softmaxInPlace(l)
				m := float64(mask[row])
				hs.rowLoss[r] = m * (lse - target)
				if backward {
					g := F(scale * m)
					scaleInPlace(l, g)
					l[tgt] -= g
				}
			}
		})
		for r := 0; r < R; r++ {
			total += hs.rowLoss[r]
		}
		if backward {
			// The head is a linear layer from C to V: its backward is linearBackward's pair of
			// products, dx = dlogits·W and dw (+)= dlogitsᵀ·x.
			linearBackwardIn(hs.bf16, hs.dx[:R*C], dw, nil, logits, hs.x[:R*C], w, R, C, V, false, accW)
			accW = true
			for r := 0; r < R; r++ {
				copy(dx[hs.rows[r]*C:(hs.rows[r]+1)*C], hs.dx[r*C:(r+1)*C])
			}
		}
	}
	if backward && dw != nil && !accW { // no row counted: the head's gradient is zero
		parallelClear(dw)
	}
	return total
}
