package model

import (
	"math"

	"github.com/lathe-ml/lathe/llm/tensor"
)

// The layers, each a forward/backward pair over flat row-major slices. N is the number of rows
// (tokens, B·T), C a row's width. Backward functions accumulate (+=) into parameter gradients.

// matmul is tensor.MatMul for float32 and a plain triple loop for float64 (gradient checks).
func matmul[F Float](c, a, b []F, m, n, k int, transA, transB, accumulate bool) {
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

// embeddingForward: out[n,:] = wte[tokens[n],:]
func embeddingForward[F Float](out []F, tokens []int32, wte []F, N, C int) {
	for n := 0; n < N; n++ {
		t := int(tokens[n])
		copy(out[n*C:(n+1)*C], wte[t*C:(t+1)*C])
	}
}

// embeddingBackward: dwte[tokens[n],:] += dout[n,:], rows in order (deterministic).
func embeddingBackward[F Float](dwte, dout []F, tokens []int32, N, C int) {
	for n := 0; n < N; n++ {
		t := int(tokens[n])
		d, g := dwte[t*C:(t+1)*C], dout[n*C:(n+1)*C]
		for c := range g {
			d[c] += g[c]
		}
	}
}

// rmsnormForward: rstd[n] = 1/√(mean_c inp[n,c]² + eps); out[n,c] = inp[n,c]·rstd[n]·weight[c]
func rmsnormForward[F Float](out, rstd, inp, weight []F, N, C int, eps float64) {
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x, o := inp[n*C:(n+1)*C], out[n*C:(n+1)*C]
			var ss float64
			for _, v := range x {
				ss += float64(v) * float64(v)
			}
			r := F(1 / math.Sqrt(ss/float64(C)+eps))
			rstd[n] = r
			for c, v := range x {
				o[c] = v * r * weight[c]
			}
		}
	})
}

// rmsnormBackward, with x̂ = inp·rstd and g = dout·weight:
// dweight[c] += Σ_n dout[n,c]·x̂[n,c];  dinp[n,:] += rstd[n]·(g − x̂·mean_c(g·x̂))
func rmsnormBackward[F Float](dinp, dweight, dout, inp, weight, rstd []F, N, C int) {
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			x, dy, dx := inp[n*C:(n+1)*C], dout[n*C:(n+1)*C], dinp[n*C:(n+1)*C]
			r := rstd[n]
			var dot float64
			for c := range x {
				dot += float64(dy[c] * weight[c] * x[c] * r)
			}
			m := F(dot / float64(C))
			for c := range x {
				dx[c] += r * (dy[c]*weight[c] - x[c]*r*m)
			}
		}
	})
	if dweight == nil {
		return
	}
	for n := 0; n < N; n++ {
		x, dy, r := inp[n*C:(n+1)*C], dout[n*C:(n+1)*C], rstd[n]
		for c := range dweight {
			dweight[c] += dy[c] * x[c] * r
		}
	}
}

// linearForward: out[N,OC] = inp[N,C]·weight[OC,C]ᵀ (+ bias[OC])
func linearForward[F Float](out, inp, weight, bias []F, N, C, OC int) {
	matmul(out, inp, weight, N, OC, C, false, true, false)
	if bias != nil {
		for n := 0; n < N; n++ {
			o := out[n*OC : (n+1)*OC]
			for j := range o {
				o[j] += bias[j]
			}
		}
	}
}

// linearBackward: dinp[N,C] (+)= dout[N,OC]·weight; dweight[OC,C] += doutᵀ·inp; dbias[OC] += Σ_n dout.
// A nil dweight (frozen weight) skips that product; accumulate says whether dinp is added to.
func linearBackward[F Float](dinp, dweight, dbias, dout, inp, weight []F, N, C, OC int, accumulate bool) {
	matmul(dinp, dout, weight, N, C, OC, false, false, accumulate)
	if dweight != nil {
		matmul(dweight, dout, inp, OC, C, N, true, false, true)
	}
	if dbias != nil {
		for n := 0; n < N; n++ {
			d := dout[n*OC : (n+1)*OC]
			for j := range d {
				dbias[j] += d[j]
			}
		}
	}
}

// ropePair returns the two dimensions of a head that rotary pair i rotates together.
func ropePair(i, HD int, layout RopeLayout) (int, int) {
	if layout == RopeHalfSplit {
		return i, i + HD/2
	}
	return 2 * i, 2*i + 1
}

// ropeForward rotates, in place, every head of every row n by its position pos[n]:
// (x_a, x_b) ← (x_a·cos θ − x_b·sin θ, x_a·sin θ + x_b·cos θ), θ = pos·freq_i, cos/sin: [pos, HD/2].
func ropeForward[F Float](x []F, pos []int32, cos, sin []F, N, NH, HD int, layout RopeLayout) {
	rope(x, pos, cos, sin, N, NH, HD, layout, 1)
}

// ropeBackward: the rotation is orthogonal, so the gradient rotates back by −θ (in place).
func ropeBackward[F Float](dx []F, pos []int32, cos, sin []F, N, NH, HD int, layout RopeLayout) {
	rope(dx, pos, cos, sin, N, NH, HD, layout, -1)
}

func rope[F Float](x []F, pos []int32, cos, sin []F, N, NH, HD int, layout RopeLayout, sign F) {
	half := HD / 2
	tensor.Parallel(N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			cs, sn := cos[int(pos[n])*half:], sin[int(pos[n])*half:]
			for h := 0; h < NH; h++ {
				head := x[(n*NH+h)*HD : (n*NH+h+1)*HD]
				for i := 0; i < half; i++ {
					a, b := ropePair(i, HD, layout)
					c, s := cs[i], sign*sn[i]
					xa, xb := head[a], head[b]
					head[a] = xa*c - xb*s
					head[b] = xa*s + xb*c
				}
			}
		}
	})
}

// attentionForward, causal and grouped-query (query head h reads kv head h/(NH/NKV)), over a sliding
// window of W positions when W > 0 (s > t−W), else over all s ≤ t (the masked half is never touched):
// P[t,s] = softmax_s(q[b,t,h]·k[b,s,kvh]/√HD); out[b,t,h] = Σ_s P[t,s]·v[b,s,kvh].
// Only lse[b,h,t] = log Σ_s exp(scores) is kept for the backward, which recomputes P (flash-attention
// style), so memory grows with T, not T². q, out: [B,T,NH,HD]; k, v: [B,T,NKV,HD]; lse: [B,NH,T];
// scratch: [B·NH·T].
func attentionForward[F Float](out, lse, q, k, v, scratch []F, B, T, NH, NKV, HD, W int) {
	group := NH / NKV
	scale := F(1 / math.Sqrt(float64(HD)))
	tensor.Parallel(B*NH, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			kvh := h / group
			p := scratch[bh*T : (bh+1)*T]
			for t := 0; t < T; t++ {
				qt := q[((b*T+t)*NH+h)*HD:][:HD]
				first := windowStart(t, W)
				maxv := F(math.Inf(-1))
				for s := first; s <= t; s++ {
					ks := k[((b*T+s)*NKV+kvh)*HD:][:HD]
					var dot F
					for i := range qt {
						dot += qt[i] * ks[i]
					}
					p[s] = dot * scale
					maxv = max(maxv, p[s])
				}
				var sum float64
				for s := first; s <= t; s++ {
					e := math.Exp(float64(p[s] - maxv))
					p[s] = F(e)
					sum += e
				}
				lse[bh*T+t] = maxv + F(math.Log(sum))
				inv := F(1 / sum)
				o := out[((b*T+t)*NH+h)*HD:][:HD]
				clear(o)
				for s := first; s <= t; s++ {
					w := p[s] * inv
					vs := v[((b*T+s)*NKV+kvh)*HD:][:HD]
					for i := range o {
						o[i] += w * vs[i]
					}
				}
			}
		}
	})
}

// windowStart is the first position that position t attends to.
func windowStart(t, W int) int {
	if W > 0 {
		return max(0, t-W+1)
	}
	return 0
}

// attentionBackward recomputes P[t,s] = exp(q·k_s/√HD − lse[t]) and, with D_t = dout[t]·out[t]
// (= Σ_s P·dP): dP[t,s] = dout[t]·v[s]; dS = P·(dP − D_t); dq[t] = Σ_s dS·k[s]/√HD;
// dk[s] = Σ_{h in group, t} dS·q[t]/√HD; dv[s] = Σ_{h in group, t} P·dout[t]. dq, dk, dv are
// overwritten. Work is split by (b, kv head) so each task owns the dk, dv rows it adds to.
func attentionBackward[F Float](dq, dk, dv, dout, out, lse, q, k, v []F, B, T, NH, NKV, HD, W int) {
	group := NH / NKV
	scale := F(1 / math.Sqrt(float64(HD)))
	tensor.Parallel(B*NKV, func(lo, hi int) {
		for bk := lo; bk < hi; bk++ {
			b, kvh := bk/NKV, bk%NKV
			for t := 0; t < T; t++ {
				clear(dk[((b*T+t)*NKV+kvh)*HD:][:HD])
				clear(dv[((b*T+t)*NKV+kvh)*HD:][:HD])
			}
			for h := kvh * group; h < (kvh+1)*group; h++ {
				bh := b*NH + h
				for t := 0; t < T; t++ {
					row := ((b*T+t)*NH + h) * HD
					do, ot, qt, dqt := dout[row:][:HD], out[row:][:HD], q[row:][:HD], dq[row:][:HD]
					var D F
					for i := range do {
						D += do[i] * ot[i]
					}
					l := lse[bh*T+t]
					clear(dqt)
					for s := windowStart(t, W); s <= t; s++ {
						kv := ((b*T+s)*NKV + kvh) * HD
						ks, vs, dks, dvs := k[kv:][:HD], v[kv:][:HD], dk[kv:][:HD], dv[kv:][:HD]
						var qk, dp F
						for i := range qt {
							qk += qt[i] * ks[i]
							dp += do[i] * vs[i]
						}
						p := F(math.Exp(float64(qk*scale - l)))
						ds := p * (dp - D) * scale
						for i := range qt {
							dvs[i] += p * do[i]
							dqt[i] += ds * ks[i]
							dks[i] += ds * qt[i]
						}
					}
				}
			}
		}
	})
}

// swigluForward: out = silu(gate)·up, silu(g) = g·σ(g)
func swigluForward[F Float](out, gate, up []F, N int) {
	tensor.Parallel(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := float64(gate[i])
			out[i] = F(g/(1+math.Exp(-g))) * up[i]
		}
	})
}

// swigluBackward: dgate = dout·up·σ(g)·(1 + g·(1−σ(g))); dup = dout·silu(g)  (overwritten)
func swigluBackward[F Float](dgate, dup, dout, gate, up []F, N int) {
	tensor.Parallel(N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := float64(gate[i])
			sg := 1 / (1 + math.Exp(-g))
			dgate[i] = dout[i] * up[i] * F(sg*(1+g*(1-sg)))
			dup[i] = dout[i] * F(g*sg)
		}
	})
}

// headScratch is the chunk memory of the fused output head + cross-entropy: R rows at a time.
type headScratch[F Float] struct {
	R       int
	rows    []int     // [R] which input rows the chunk holds
	x, dx   []F       // [R, C]
	logits  []F       // [R, V], turned into dlogits in place
	rowLoss []float64 // [R]
}

func newHeadScratch[F Float](R, C, V int) *headScratch[F] {
	return &headScratch[F]{R: R, rows: make([]int, R), x: make([]F, R*C), dx: make([]F, R*C),
		logits: make([]F, R*V), rowLoss: make([]float64, R)}
}

// crossEntropyHeadForward: Σ_n mask[n]·(logsumexp(x[n]·Wᵀ) − (x[n]·Wᵀ)[targets[n]]), over the rows
// with mask ≠ 0 only, gathered R at a time so the [N, V] logits are never held.
func crossEntropyHeadForward[F Float](x, w []F, targets []int32, mask []F, N, C, V int, hs *headScratch[F]) float64 {
	return crossEntropyHead(nil, nil, x, w, targets, mask, N, C, V, 0, hs, false)
}

// crossEntropyHeadForwardBackward is the forward and, in the same pass over each chunk, its backward:
// dlogits = scale·mask·(softmax − onehot(target)); dx[n] = dlogits·W (0 for unmasked rows);
// dw += dlogitsᵀ·x (skipped when dw is nil: a frozen head). Returns the same sum as the forward.
func crossEntropyHeadForwardBackward[F Float](dx, dw, x, w []F, targets []int32, mask []F, N, C, V int, scale float64, hs *headScratch[F]) float64 {
	return crossEntropyHead(dx, dw, x, w, targets, mask, N, C, V, scale, hs, true)
}

func crossEntropyHead[F Float](dx, dw, x, w []F, targets []int32, mask []F, N, C, V int, scale float64, hs *headScratch[F], backward bool) float64 {
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
		matmul(logits, hs.x[:R*C], w, R, V, C, false, true, false)
		tensor.Parallel(R, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				l := logits[r*V : (r+1)*V]
				row := hs.rows[r]
				maxv := l[0]
				for _, v := range l {
					maxv = max(maxv, v)
				}
				tgt := int(targets[row])
				target := float64(l[tgt])
				// One exp per logit: keep e_j = exp(l_j − max) in place for the backward.
				var sum float64
				for j, v := range l {
					e := math.Exp(float64(v - maxv))
					sum += e
					if backward {
						l[j] = F(e)
					}
				}
				m := float64(mask[row])
				hs.rowLoss[r] = m * (float64(maxv) + math.Log(sum) - target)
				if backward {
					g := F(scale * m / sum)
					for j := range l {
						l[j] *= g
					}
					l[tgt] -= F(scale * m)
				}
			}
		})
		for r := 0; r < R; r++ {
			total += hs.rowLoss[r]
		}
		if backward {
			matmul(hs.dx[:R*C], logits, w, R, C, V, false, false, false)
			for r := 0; r < R; r++ {
				copy(dx[hs.rows[r]*C:(hs.rows[r]+1)*C], hs.dx[r*C:(r+1)*C])
			}
			if dw != nil {
				matmul(dw, logits, hs.x[:R*C], V, C, R, true, false, true)
			}
		}
	}
	return total
}
