package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference checks in float64 of every backward, one op at a time and the whole model.

const fdStep = 1e-6

func randSlice(rng *rand.Rand, n int, scale float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64() * scale
	}
	return s
}

func dotF(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// checkGrad compares analytic[i] with the central difference of loss with respect to x[i].
func checkGrad(t *testing.T, name string, x, analytic []float64, loss func() float64) {
	t.Helper()
	if len(x) != len(analytic) {
		t.Fatalf("%s: %d values, %d gradients", name, len(x), len(analytic))
	}
	worst := 0.0
	for i := range x {
		orig := x[i]
		x[i] = orig + fdStep
		lp := loss()
		x[i] = orig - fdStep
		lm := loss()
		x[i] = orig
		num := (lp - lm) / (2 * fdStep)
		err := math.Abs(num-analytic[i]) / math.Max(1e-3, math.Abs(num)+math.Abs(analytic[i]))
		worst = max(worst, err)
		if err > 1e-5 {
			t.Fatalf("%s[%d]: analytic %.10g, finite difference %.10g", name, i, analytic[i], num)
		}
	}
	t.Logf("%s: %d values, worst relative error %.2e", name, len(x), worst)
}

func TestRMSNormBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	N, C := 3, 7
	inp, w, r := randSlice(rng, N*C, 1), randSlice(rng, C, 1), randSlice(rng, N*C, 1)
	out, rstd := make([]float64, N*C), make([]float64, N)
	loss := func() float64 { rmsnormForward(out, rstd, inp, w, N, C, 1e-5); return dotF(out, r) }
	loss()
	dinp, dw := make([]float64, N*C), make([]float64, C)
	rmsnormBackward(dinp, dw, r, inp, w, rstd, N, C)
	checkGrad(t, "rmsnorm dinp", inp, dinp, loss)
	checkGrad(t, "rmsnorm dweight", w, dw, loss)
}

func TestRopeBackward(t *testing.T) {
	for _, layout := range []RopeLayout{RopeAdjacent, RopeHalfSplit} {
		t.Run(layout.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(2, 2))
			cfg := Config{Dim: 8, Layers: 1, Heads: 2, KVHeads: 2, HeadDim: 4, FFN: 4, Vocab: 4, NormEps: 1e-5, RopeTheta: 100}
			m := newNet[float64](cfg)
			m.ensureRope(5)
			N, NH, HD := 5, 2, 4
			x, r := randSlice(rng, N*NH*HD, 1), randSlice(rng, N*NH*HD, 1)
			pos := []int32{0, 1, 2, 3, 4}
			y := make([]float64, len(x))
			loss := func() float64 {
				copy(y, x)
				ropeForward(y, pos, m.ropeCos, m.ropeSin, N, NH, HD, HD, layout)
				return dotF(y, r)
			}
			dx := append([]float64(nil), r...)
			ropeBackward(dx, pos, m.ropeCos, m.ropeSin, N, NH, HD, HD, layout)
			checkGrad(t, "rope dx", x, dx, loss)
		})
	}
}

func TestAttentionBackwardGQA(t *testing.T) {
	for _, W := range []int{0, 3} {
		t.Run(fmt.Sprintf("window=%d", W), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 3))
			B, T, NH, NKV, HD := 2, 5, 4, 2, 3
			q, k, v := randSlice(rng, B*T*NH*HD, 1), randSlice(rng, B*T*NKV*HD, 1), randSlice(rng, B*T*NKV*HD, 1)
			r := randSlice(rng, B*T*NH*HD, 1)
			out, scratch := make([]float64, len(q)), testAttnScratch(B, T, NH, NKV, HD)
			loss := func() float64 {
				attentionForward(out, q, k, v, scratch, B, T, NH, NKV, HD, W, nil)
				return dotF(out, r)
			}
			loss()
			dq, dk, dv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
			attentionBackward(dq, dk, dv, r, out, q, k, v, scratch, B, T, NH, NKV, HD, W, nil)
			checkGrad(t, "attention dq", q, dq, loss)
			checkGrad(t, "attention dk", k, dk, loss)
			checkGrad(t, "attention dv", v, dv, loss)
		})
	}
}

func TestAttentionIsCausal(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	B, T, NH, NKV, HD := 1, 6, 2, 1, 4
	q, k, v := randSlice(rng, T*NH*HD, 1), randSlice(rng, T*NKV*HD, 1), randSlice(rng, T*NKV*HD, 1)
	out, scratch := make([]float64, len(q)), testAttnScratch(B, T, NH, NKV, HD)
	attentionForward(out, q, k, v, scratch, B, T, NH, NKV, HD, 0, nil)
	before := append([]float64(nil), out[:3*NH*HD]...)
	for i := 3 * NKV * HD; i < len(k); i++ { // change the keys and values of positions 3..5
		k[i] += 5
		v[i] -= 5
	}
	attentionForward(out, q, k, v, scratch, B, T, NH, NKV, HD, 0, nil)
	for i, want := range before {
		if out[i] != want {
			t.Fatalf("output %d of positions 0..2 changed when later positions changed: %g -> %g", i, want, out[i])
		}
	}
}

func TestSwiGLUBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	N := 20
	g, u, r := randSlice(rng, N, 2), randSlice(rng, N, 1), randSlice(rng, N, 1)
	out := make([]float64, N)
	loss := func() float64 { swigluForward(out, g, u, N); return dotF(out, r) }
	dg, du := make([]float64, N), make([]float64, N)
	swigluBackward(dg, du, r, g, u, N)
	checkGrad(t, "swiglu dgate", g, dg, loss)
	checkGrad(t, "swiglu dup", u, du, loss)
}

func TestLinearBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	N, C, OC := 4, 5, 3
	inp, w, b, r := randSlice(rng, N*C, 1), randSlice(rng, OC*C, 1), randSlice(rng, OC, 1), randSlice(rng, N*OC, 1)
	out := make([]float64, N*OC)
	loss := func() float64 { linearForward(out, inp, w, b, N, C, OC); return dotF(out, r) }
	dinp, dw, db := make([]float64, N*C), make([]float64, OC*C), make([]float64, OC)
	linearBackward(dinp, dw, db, r, inp, w, N, C, OC, false, true)
	checkGrad(t, "linear dinp", inp, dinp, loss)
	checkGrad(t, "linear dweight", w, dw, loss)
	checkGrad(t, "linear dbias", b, db, loss)
}

func TestLoRALinearBackwardWithDropout(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	N, C, OC, rank, p := 4, 6, 5, 2, 0.3
	inp, w, r := randSlice(rng, N*C, 1), randSlice(rng, OC*C, 1), randSlice(rng, N*OC, 1)
	ad := &adapter[float64]{a: randSlice(rng, rank*C, 1), b: randSlice(rng, OC*rank, 1)}
	s := 0.75
	out, hs, xd := make([]float64, N*OC), make([]float64, N*rank), make([]float64, N*C)
	loss := func() float64 {
		linearForward(out, inp, w, nil, N, C, OC)
		dropoutForward(xd, inp, 42, 0, TargetQ, p)
		loraForward(out, hs, xd, ad, s, N, C, OC, rank)
		return dotF(out, r)
	}
	loss()
	dinp := make([]float64, N*C)
	gad := &adapter[float64]{a: make([]float64, rank*C), b: make([]float64, OC*rank)}
	linearBackward(dinp, nil, nil, r, inp, w, N, C, OC, false, true)
	dxd, dh := make([]float64, N*C), make([]float64, N*rank)
	loraBackward(dxd, dh, gad, ad, r, hs, xd, s, N, C, OC, rank, false)
	dropoutBackward(dinp, dxd, 42, 0, TargetQ, p)
	checkGrad(t, "lora dinp", inp, dinp, loss)
	checkGrad(t, "lora dA", ad.a, gad.a, loss)
	checkGrad(t, "lora dB", ad.b, gad.b, loss)
}

func TestCrossEntropyHeadBackwardWithMaskAndChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	N, C, V := 7, 4, 9
	x, w := randSlice(rng, N*C, 1), randSlice(rng, V*C, 1)
	targets := []int32{3, 0, 8, 8, 1, 5, 2}
	mask := []float64{1, 0, 1, 0.5, 0, 1, 1} // rows 1 and 4 are prompt/padding
	hs := newHeadScratch[float64](2, C, V)   // chunks of 2 masked rows: 3 chunks
	scale := 1 / 4.5
	loss := func() float64 { return scale * crossEntropyHeadForward(x, w, targets, mask, N, C, V, hs) }
	dx, dw := make([]float64, N*C), make([]float64, V*C)
	sum := crossEntropyHeadForwardBackward(dx, dw, x, w, targets, mask, N, C, V, scale, true, hs)
	if got := loss(); math.Abs(sum*scale-got) > 1e-12 {
		t.Fatalf("forward-backward loss %g, forward loss %g", sum*scale, got)
	}
	// Independent reference: the loss of row n from the full logits.
	var want float64
	for n := range N {
		logits := make([]float64, V)
		matmul(logits, x[n*C:(n+1)*C], w, 1, V, C, false, true, false)
		var z float64
		for _, l := range logits {
			z += math.Exp(l)
		}
		want += mask[n] * (math.Log(z) - logits[targets[n]])
	}
	if math.Abs(want-sum) > 1e-9 {
		t.Fatalf("loss sum %g, reference %g", sum, want)
	}
	for c := range C {
		if dx[1*C+c] != 0 || dx[4*C+c] != 0 {
			t.Fatalf("masked rows got gradient")
		}
	}
	checkGrad(t, "head dx", x, dx, loss)
	checkGrad(t, "head dw", w, dw, loss)
}

// tinyConfig is a model small enough for finite differences over every parameter, with GQA, a head
// dim that makes NH·HD differ from Dim, and the optional parts switched on.
func tinyConfig(layout RopeLayout, tied, bias bool) Config {
	return Config{Dim: 8, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 3 * 2, FFN: 12, Vocab: 11, NormEps: 1e-5,
		RopeTheta: 10000, ContextLen: 16, Tied: tied, QKVBias: bias, RopeLayout: layout}
}

func tinyBatch() (tokens, targets []int32, mask []float32, B, T int) {
	B, T = 2, 5
	tokens = []int32{1, 4, 7, 2, 9, 3, 3, 10, 0, 5}
	targets = []int32{4, 7, 2, 9, 6, 3, 10, 0, 5, 5}
	mask = []float32{0, 0, 1, 1, 1, 0, 1, 1, 0, 0} // prompt positions and padding do not count
	return
}

func TestWholeModelBackward(t *testing.T) {
	// GQA runs q alone and k beside v; with as many kv heads as heads (MHA), q beside k, v alone.
	for _, tc := range []struct {
		layout         RopeLayout
		tied, qkv, mha bool
	}{{RopeAdjacent, false, true, false}, {RopeHalfSplit, true, false, false}, {RopeAdjacent, false, true, true}} {
		t.Run(fmt.Sprintf("%v/tied=%v/bias=%v/mha=%v", tc.layout, tc.tied, tc.qkv, tc.mha), func(t *testing.T) {
			cfg := tinyConfig(tc.layout, tc.tied, tc.qkv)
			if tc.mha {
				cfg.KVHeads = cfg.Heads
			}
			checkWholeModelGrads(t, cfg)
		})
	}
}

// perturbedNet is a float64 model of cfg with random weights, its norms moved away from 1 and its
// norm biases from 0 so that their gradients are exercised.
func perturbedNet(cfg Config, seed uint64) *net[float64] {
	m := newNet[float64](cfg)
	m.w.initRandom(cfg, seed, 0.5)
	for i := range m.w.slab {
		m.w.slab[i] += 0.1 * math.Sin(float64(i))
	}
	return m
}

// checkWholeModelGrads compares every base gradient of a training forward and backward over
// tinyBatch with finite differences, and returns the model.
func checkWholeModelGrads(t *testing.T, cfg Config) *net[float64] {
	t.Helper()
	m := perturbedNet(cfg, 9)
	m.g = newWeights[float64](cfg)
	tokens, targets, mask, B, T := tinyBatch()
	scale := 1 / 5.0
	m.forward(tokens, targets, mask, B, T, true, scale, 0)
	m.backward(tokens, 0)
	loss := func() float64 { return scale * m.forward(tokens, targets, mask, B, T, false, 0, 0) }
	for _, s := range cfg.tensorSpecs() {
		checkGrad(t, s.name, *m.w.ptr(s.layer, s.field), *m.g.ptr(s.layer, s.field), loss)
	}
	return m
}

func TestWholeModelLoRABackward(t *testing.T) {
	cfg := tinyConfig(RopeAdjacent, false, true)
	m := newNet[float64](cfg)
	m.w.initRandom(cfg, 10, 0.5)
	lc := LoRAConfig{Rank: 2, Alpha: 3, Dropout: 0.25, Targets: []Target{TargetQ, TargetK, TargetV, TargetO, TargetGate, TargetUp, TargetDown}}
	m.lora = newLoRA[float64](cfg, lc, 11)
	rng := rand.New(rand.NewPCG(12, 12))
	for i := range m.lora.w.slab { // B starts at zero; make it non-zero so A's gradient is too
		m.lora.w.slab[i] += 0.3 * rng.NormFloat64()
	}
	tokens, targets, mask, B, T := tinyBatch()
	const seed = 77
	m.forward(tokens, targets, mask, B, T, true, 1, seed)
	m.backward(tokens, seed)
	if m.g != nil {
		t.Fatal("the frozen base got gradient memory")
	}
	loss := func() float64 { return m.forward(tokens, targets, mask, B, T, true, 1, seed) }
	for l := range cfg.Layers {
		for _, tg := range lc.Targets {
			name := fmt.Sprintf("layer %d %v", l, tg)
			checkGrad(t, name+" A", m.lora.w.layers[l][tg].a, m.lora.g.layers[l][tg].a, loss)
			checkGrad(t, name+" B", m.lora.w.layers[l][tg].b, m.lora.g.layers[l][tg].b, loss)
		}
	}
}

// With a sliding window of 2, position 5 sees positions 4 and 5 only.
func TestAttentionWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	B, T, NH, NKV, HD, W := 1, 6, 2, 1, 4, 2
	q, k, v := randSlice(rng, T*NH*HD, 1), randSlice(rng, T*NKV*HD, 1), randSlice(rng, T*NKV*HD, 1)
	out, scratch := make([]float64, len(q)), testAttnScratch(B, T, NH, NKV, HD)
	attentionForward(out, q, k, v, scratch, B, T, NH, NKV, HD, W, nil)
	last := append([]float64(nil), out[5*NH*HD:]...)
	for i := 0; i < 4*NKV*HD; i++ {
		k[i] += 3
		v[i] -= 3
	}
	attentionForward(out, q, k, v, scratch, B, T, NH, NKV, HD, W, nil)
	for i, want := range last {
		if out[5*NH*HD+i] != want {
			t.Fatalf("position 5 changed when positions 0..3 (outside its window) changed")
		}
	}
	attentionForward(out, q, k, v, scratch, B, T, NH, NKV, HD, 0, nil)
	if out[5*NH*HD] == last[0] {
		t.Fatal("without a window, position 5 ignores positions 0..3")
	}
}

func testAttnScratch(B, T, NH, NKV, HD int) *attnScratch[float64] {
	count := &carver[float64]{}
	newAttnScratch(count, B, T, NH, NKV)
	sc := newAttnScratch(&carver[float64]{slab: make([]float64, count.off)}, B, T, NH, NKV)
	sc.RB = 2 // several blocks per head even for short test sequences
	return sc
}
