package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference checks of the operators the falcon, gpt_neox and mpt blocks add, and of whole
// models of each family's layouts.

func TestLayerNormBackward(t *testing.T) {
	for _, withBias := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(21, 21))
		N, C := 3, 7
		inp, w, b, r := randSlice(rng, N*C, 1), randSlice(rng, C, 1), randSlice(rng, C, 1), randSlice(rng, N*C, 1)
		if !withBias {
			b = nil
		}
		out, mean, rstd := make([]float64, N*C), make([]float64, N), make([]float64, N)
		loss := func() float64 { layernormForward(out, mean, rstd, inp, w, b, N, C, 1e-5); return dotF(out, r) }
		loss()
		dinp, dw := make([]float64, N*C), make([]float64, C)
		var db []float64
		if withBias {
			db = make([]float64, C)
		}
		layernormBackward(dinp, dw, db, r, inp, w, mean, rstd, N, C)
		checkGrad(t, "layernorm dinp", inp, dinp, loss)
		checkGrad(t, "layernorm dweight", w, dw, loss)
		if withBias {
			checkGrad(t, "layernorm dbias", b, db, loss)
		}
	}
}

func TestLayerNormMatchesDefinition(t *testing.T) {
	inp := []float64{1, 2, 3, 6}
	out, mean, rstd := make([]float64, 4), make([]float64, 1), make([]float64, 1)
	layernormForward(out, mean, rstd, inp, []float64{1, 1, 1, 2}, []float64{0, 0, 0, 1}, 1, 4, 0)
	// mean 3, variance (4+1+0+9)/4 = 3.5
	sd := math.Sqrt(3.5)
	want := []float64{-2 / sd, -1 / sd, 0, 2*3/sd + 1}
	for i := range want {
		if math.Abs(out[i]-want[i]) > 1e-12 {
			t.Fatalf("layernorm %v, want %v", out, want)
		}
	}
}

func TestGELUBackward(t *testing.T) {
	for _, tanhApprox := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(22, 22))
		N := 30
		x, r := randSlice(rng, N, 2), randSlice(rng, N, 1)
		out := make([]float64, N)
		loss := func() float64 { geluForward(out, x, N, tanhApprox); return dotF(out, r) }
		dx := make([]float64, N)
		geluBackward(dx, r, x, N, tanhApprox)
		checkGrad(t, "gelu dx", x, dx, loss)
	}
	// Known values: gelu(1) = Φ(1) = 0.8413447460685429; the tanh form gives 0.8411919906082768.
	out := make([]float64, 1)
	geluForward(out, []float64{1}, 1, false)
	if math.Abs(out[0]-0.8413447460685429) > 1e-15 {
		t.Errorf("gelu(1) = %.16g", out[0])
	}
	geluForward(out, []float64{1}, 1, true)
	if math.Abs(out[0]-0.8411919906082768) > 1e-15 {
		t.Errorf("gelu_tanh(1) = %.16g", out[0])
	}
}

func TestClampBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 23))
	N := 40
	x, r := randSlice(rng, N, 1), randSlice(rng, N, 1)
	for i := range x { // keep the points away from the kinks, where the derivative jumps
		if math.Abs(math.Abs(x[i])-0.5) < 1e-3 {
			x[i] += 0.01
		}
	}
	y, keep := make([]float64, N), make([]bool, N)
	loss := func() float64 { copy(y, x); clampForward(y, keep, 0.5); return dotF(y, r) }
	loss()
	dx := append([]float64(nil), r...)
	clampBackward(dx, keep)
	checkGrad(t, "clamp dx", x, dx, loss)
}

func TestPartialRopeBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 24))
	cfg := Config{Dim: 16, Layers: 1, Heads: 2, KVHeads: 2, HeadDim: 8, RopeDim: 4, FFN: 4, Vocab: 4, NormEps: 1e-5, RopeTheta: 100, RopeLayout: RopeHalfSplit}
	m := newNet[float64](cfg)
	m.ensureRope(5)
	N, NH, HD, RD := 5, 2, 8, 4
	x, r := randSlice(rng, N*NH*HD, 1), randSlice(rng, N*NH*HD, 1)
	pos := []int32{0, 1, 2, 3, 4}
	y := make([]float64, len(x))
	loss := func() float64 {
		copy(y, x)
		ropeForward(y, pos, m.ropeCos, m.ropeSin, N, NH, HD, RD, RopeHalfSplit)
		return dotF(y, r)
	}
	loss()
	for i := range y { // dims RD..HD of every head pass through
		if i%HD >= RD && y[i] != x[i] {
			t.Fatalf("dimension %d of a head rotated; only the first %d do", i%HD, RD)
		}
	}
	// Pair (0, 2) of head 0 at position 1 rotates by 1·100^(-0/4) = 1 radian.
	a, b := x[1*NH*HD], x[1*NH*HD+2]
	if got, want := y[1*NH*HD], a*math.Cos(1)-b*math.Sin(1); math.Abs(got-want) > 1e-12 {
		t.Fatalf("rotated %g, want %g", got, want)
	}
	dx := append([]float64(nil), r...)
	ropeBackward(dx, pos, m.ropeCos, m.ropeSin, N, NH, HD, RD, RopeHalfSplit)
	checkGrad(t, "partial rope dx", x, dx, loss)
}

func TestALiBiSlopes(t *testing.T) {
	for _, tc := range []struct {
		heads int
		want  []float64 // log2 of each slope
	}{
		{4, []float64{-2, -4, -6, -8}},
		{8, []float64{-1, -2, -3, -4, -5, -6, -7, -8}},
		{6, []float64{-2, -4, -6, -8, -1, -3}}, // mpt's interleave for a non-power of two
	} {
		got := Config{Heads: tc.heads, ALiBiBiasMax: 8}.alibiSlopes()
		for i, w := range tc.want {
			if math.Abs(math.Log2(got[i])-w) > 1e-12 {
				t.Errorf("%d heads: slopes %v, want 2^%v", tc.heads, got, tc.want)
				break
			}
		}
	}
}

func TestAttentionBackwardALiBi(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 25))
	B, T, NH, NKV, HD := 2, 5, 4, 1, 3
	q, k, v := randSlice(rng, B*T*NH*HD, 1), randSlice(rng, B*T*NKV*HD, 1), randSlice(rng, B*T*NKV*HD, 1)
	r := randSlice(rng, B*T*NH*HD, 1)
	slopes := Config{Heads: NH, ALiBiBiasMax: 8}.alibiSlopes()
	out, scratch := make([]float64, len(q)), testAttnScratch(B, T, NH, NKV, HD)
	loss := func() float64 {
		attentionForward(out, q, k, v, scratch, B, T, NH, NKV, HD, 0, slopes)
		return dotF(out, r)
	}
	loss()
	// Position 2 of head 0 by hand: softmax over s ≤ 2 of q·k/√HD − slope·(2−s).
	var w [3]float64
	var z float64
	for s := range 3 {
		w[s] = math.Exp(dotF(q[2*NH*HD:2*NH*HD+HD], k[s*HD:(s+1)*HD])/math.Sqrt(float64(HD)) - slopes[0]*float64(2-s))
		z += w[s]
	}
	var want float64
	for s := range 3 {
		want += w[s] / z * v[s*HD]
	}
	if math.Abs(out[2*NH*HD]-want) > 1e-12 {
		t.Fatalf("alibi attention %g, by hand %g", out[2*NH*HD], want)
	}
	dq, dk, dv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
	attentionBackward(dq, dk, dv, r, out, q, k, v, scratch, B, T, NH, NKV, HD, 0, slopes)
	checkGrad(t, "alibi attention dq", q, dq, loss)
	checkGrad(t, "alibi attention dk", k, dk, loss)
	checkGrad(t, "alibi attention dv", v, dv, loss)
}

// familyConfigs are tiny models of every block layout the registered architectures use.
func familyConfigs() map[string]Config {
	base := Config{Dim: 8, Layers: 2, Heads: 4, KVHeads: 4, HeadDim: 2 * 2, FFN: 12, Vocab: 11, NormEps: 1e-5,
		RopeTheta: 10000, ContextLen: 16, RopeLayout: RopeHalfSplit, Norm: NormLayer, NormBias: true, Act: ActGELU}
	falcon7b := base
	falcon7b.KVHeads, falcon7b.ParallelAttn, falcon7b.SharedNorm, falcon7b.Tied = 1, true, true, true
	falcon40b := base
	falcon40b.KVHeads, falcon40b.ParallelAttn, falcon40b.Tied = 2, true, true
	falconRW := base
	falconRW.QKVBias, falconRW.OutputBias, falconRW.MLPBias, falconRW.ALiBi, falconRW.ALiBiBiasMax, falconRW.ALiBiPreScale, falconRW.Tied = true, true, true, true, 8, true, true
	neox := base
	neox.QKVBias, neox.OutputBias, neox.MLPBias, neox.ParallelAttn, neox.RopeDim = true, true, true, true, 2
	neoxSeq := neox
	neoxSeq.ParallelAttn, neoxSeq.Act = false, ActGELUTanh
	mpt := base
	mpt.Heads, mpt.KVHeads, mpt.Dim, mpt.HeadDim = 6, 6, 12, 2
	mpt.NormBias, mpt.ALiBi, mpt.ALiBiBiasMax, mpt.ClipQKV, mpt.Tied = false, true, 8, 0.6, true
	return map[string]Config{"falcon-7b": falcon7b, "falcon-40b": falcon40b, "falcon-rw": falconRW,
		"gpt_neox": neox, "gpt_neox-sequential": neoxSeq, "mpt": mpt}
}

func TestWholeModelBackwardFamilies(t *testing.T) {
	for name, cfg := range familyConfigs() {
		t.Run(name, func(t *testing.T) {
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			m := checkWholeModelGrads(t, cfg)
			if cfg.ClipQKV > 0 { // the check is meaningful only if some values were clamped
				clamped := 0
				for _, k := range m.acts.layers[0].keep {
					if !k {
						clamped++
					}
				}
				if clamped == 0 {
					t.Fatal("clip_qkv clamped nothing: raise the weights' scale")
				}
			}
		})
	}
}

// The KV-cache forward of generation gives the training forward's logits, token by token, for every
// family's layout.
func TestExtendMatchesForwardFamilies(t *testing.T) {
	for name, cfg := range familyConfigs() {
		t.Run(name, func(t *testing.T) {
			m := perturbedNet(cfg, 5)
			tokens := []int32{1, 4, 7, 2, 9, 3}
			T := len(tokens)
			full := m.logits(tokens, 1, T)
			kc := &kvCache[float64]{k: make([]float64, cfg.Layers*T*cfg.KVHeads*cfg.HeadDim), v: make([]float64, cfg.Layers*T*cfg.KVHeads*cfg.HeadDim), max: T}
			got := make([]float64, cfg.Vocab)
			// the prompt's first three tokens at once, then one at a time
			steps := [][]int32{tokens[:3], tokens[3:4], tokens[4:5], tokens[5:6]}
			pos := 0
			for _, st := range steps {
				if err := m.extend([]*kvCache[float64]{kc}, [][]int32{st}, got); err != nil {
					t.Fatal(err)
				}
				pos += len(st)
				want := full[(pos-1)*cfg.Vocab : pos*cfg.Vocab]
				for i := range want {
					if math.Abs(got[i]-want[i]) > 1e-9 {
						t.Fatalf("position %d logit %d: extend %g, forward %g", pos-1, i, got[i], want[i])
					}
				}
			}
		})
	}
}
