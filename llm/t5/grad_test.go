package t5

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference checks in float64 of every backward, one operator at a time and the whole model.

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

// checkGrad compares analytic[i] with the central difference of loss with respect to x[i], for the
// indices idx (all when nil).
func checkGrad(t *testing.T, name string, x, analytic []float64, idx []int, loss func() float64) {
	t.Helper()
	if len(x) != len(analytic) {
		t.Fatalf("%s: %d values, %d gradients", name, len(x), len(analytic))
	}
	if idx == nil {
		idx = make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
	}
	worst := 0.0
	for _, i := range idx {
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
	t.Logf("%s: %d of %d values, worst relative error %.2e", name, len(idx), len(x), worst)
}

func TestRMSNormBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	N, C := 3, 7
	inp, w, r := randSlice(rng, N*C, 1), randSlice(rng, C, 1), randSlice(rng, N*C, 1)
	out, rstd := make([]float64, N*C), make([]float64, N)
	loss := func() float64 { rmsnormForward(out, rstd, inp, w, N, C, 1e-6); return dotF(out, r) }
	loss()
	dinp, dw := make([]float64, N*C), make([]float64, C)
	rmsnormBackward(dinp, dw, r, inp, w, rstd, N, C)
	checkGrad(t, "rmsnorm dinp", inp, dinp, nil, loss)
	checkGrad(t, "rmsnorm dweight", w, dw, nil, loss)
}

func TestLinearBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	N, C, OC := 4, 5, 3
	inp, w, r := randSlice(rng, N*C, 1), randSlice(rng, OC*C, 1), randSlice(rng, N*OC, 1)
	out := make([]float64, N*OC)
	loss := func() float64 { linearForward(out, inp, w, N, C, OC); return dotF(out, r) }
	dinp, dw := make([]float64, N*C), make([]float64, OC*C)
	linearBackward(dinp, dw, r, inp, w, N, C, OC, false)
	checkGrad(t, "linear dinp", inp, dinp, nil, loss)
	checkGrad(t, "linear dweight", w, dw, nil, loss)
}

func TestActivationBackward(t *testing.T) {
	for _, act := range []Activation{ActReLU, ActGELUTanh, ActGELU, ActSiLU} {
		for _, gated := range []bool{false, true} {
			t.Run(fmt.Sprintf("act=%d/gated=%v", act, gated), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(3, 3))
				N := 24
				a, b, r := randSlice(rng, N, 2), randSlice(rng, N, 1), randSlice(rng, N, 1)
				for i := range a { // keep ReLU's kink away from the finite difference
					if math.Abs(a[i]) < 1e-3 {
						a[i] = 0.5
					}
				}
				if !gated {
					b = nil
				}
				out := make([]float64, N)
				loss := func() float64 { actForward(out, a, b, act); return dotF(out, r) }
				da, db := make([]float64, N), make([]float64, N)
				if !gated {
					db = nil
				}
				actBackward(da, db, r, a, b, act)
				checkGrad(t, "da", a, da, nil, loss)
				if gated {
					checkGrad(t, "db", b, db, nil, loss)
				}
			})
		}
	}
}

// TestGELUTanhValues pins gelu_new to values computed from its definition in transformers
// (0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))), evaluated with Python's math module.
func TestGELUTanhValues(t *testing.T) {
	for _, c := range []struct{ x, want float64 }{
		{0, 0}, {1, 0.8411919906082768}, {-1, -0.15880800939172324}, {2.5, 2.484915733910001}, {-3, -0.0036373920817729943},
	} {
		if got, _ := activate(ActGELUTanh, c.x); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("gelu_new(%g) = %.17g, want %.17g", c.x, got, c.want)
		}
	}
}

func TestRelativeBucket(t *testing.T) {
	// Worked from _relative_position_bucket's formula at T5's defaults (32 buckets, max distance 128).
	for _, c := range []struct {
		r     int
		bidir bool
		want  int
	}{
		{0, true, 0}, {-1, true, 1}, {1, true, 17}, {-7, true, 7}, {7, true, 23}, {-8, true, 8},
		{-16, true, 10}, // 8 + ⌊log(2)/log(16)·8⌋ = 8 + 2: exactly on a boundary
		{-127, true, 15}, {-128, true, 15}, {-1000, true, 15}, {1000, true, 31},
		{0, false, 0}, {5, false, 0}, {-1, false, 1}, {-15, false, 15}, {-16, false, 16},
		{-32, false, 21}, {-127, false, 31}, {-128, false, 31}, {-5000, false, 31},
	} {
		if got := relativeBucket(c.r, c.bidir, 32, 128); got != c.want {
			t.Errorf("bucket(r=%d, bidirectional=%v) = %d, want %d", c.r, c.bidir, got, c.want)
		}
	}
}

func TestAttentionBackward(t *testing.T) {
	cases := []struct {
		name          string
		Tq, Tk        int
		causal, bias  bool
		masked        bool
		bidirectional bool
	}{
		{"encoder self-attention, bias and padding", 5, 5, false, true, true, true},
		{"decoder self-attention, causal bias", 6, 6, true, true, false, false},
		{"cross-attention, padding, no bias", 4, 5, false, false, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 4))
			B, H, D, NB := 2, 3, 4, 8
			I := H * D
			q, k, v := randSlice(rng, B*c.Tq*I, 1), randSlice(rng, B*c.Tk*I, 1), randSlice(rng, B*c.Tk*I, 1)
			r := randSlice(rng, B*c.Tq*I, 1)
			var pb *posBias[float64]
			var table, dtable []float64
			if c.bias {
				table, dtable = randSlice(rng, NB*H, 1), make([]float64, NB*H)
				pb = &posBias[float64]{table: table, bucket: bucketTable(c.Tq, c.bidirectional, NB, 16), off: c.Tq - 1}
			}
			var mask []float64
			if c.masked {
				mask = make([]float64, B*c.Tk)
				for i := range mask {
					mask[i] = 1
				}
				mask[c.Tk-1], mask[c.Tk+1] = 0, 0 // padding at the end of one row, inside the other
			}
			cv := &carver[float64]{}
			newAttnScratch(cv, B*H, c.Tq, c.Tk)
			cv.slab, cv.off = make([]float64, cv.off), 0
			sc := newAttnScratch(cv, B*H, c.Tq, c.Tk)
			out := make([]float64, len(q))
			loss := func() float64 {
				attentionForward(out, q, k, v, pb, mask, sc, B, c.Tq, c.Tk, H, D, 0, c.causal)
				return dotF(out, r)
			}
			loss()
			dq, dk, dv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
			attentionBackward(dq, dk, dv, r, out, q, k, v, pb, dtable, mask, sc, B, c.Tq, c.Tk, H, D, c.causal)
			checkGrad(t, "dq", q, dq, nil, loss)
			checkGrad(t, "dk", k, dk, nil, loss)
			checkGrad(t, "dv", v, dv, nil, loss)
			if c.bias {
				checkGrad(t, "relative_attention_bias", table, dtable, nil, loss)
			}
		})
	}
}

func TestAttentionIsCausalAndMasked(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	B, T, H, D := 1, 6, 2, 4
	I := H * D
	q, k, v := randSlice(rng, T*I, 1), randSlice(rng, T*I, 1), randSlice(rng, T*I, 1)
	cv := &carver[float64]{slab: make([]float64, 1<<12)}
	sc := newAttnScratch(cv, B*H, T, T)
	pb := &posBias[float64]{table: randSlice(rng, 8*H, 1), bucket: bucketTable(T, false, 8, 16), off: T - 1}
	mask := []float64{1, 1, 1, 1, 0, 1}
	causal, masked := make([]float64, T*I), make([]float64, T*I)
	attentionForward(causal, q, k, v, pb, nil, sc, B, T, T, H, D, 0, true)
	attentionForward(masked, q, k, v, nil, mask, sc, B, T, T, H, D, 0, false)
	for i := 3 * I; i < len(k); i++ { // change positions 3..5, except the value of 5 (masked: 4)
		k[i] += 5
		if i < 5*I {
			v[i] -= 5
		}
	}
	out := make([]float64, T*I)
	attentionForward(out, q, k, v, pb, nil, sc, B, T, T, H, D, 0, true)
	for i := range 3 * I {
		if out[i] != causal[i] {
			t.Fatalf("causal output %d of positions 0..2 changed when later positions changed", i)
		}
	}
	// Restore and check that a masked key's value does not matter.
	for i := 4 * I; i < 5*I; i++ {
		v[i] += 1000
	}
	for i := 3 * I; i < len(k); i++ {
		k[i] -= 5
		if i < 5*I {
			v[i] += 5
		}
	}
	attentionForward(out, q, k, v, nil, mask, sc, B, T, T, H, D, 0, false)
	for i := range out {
		if math.Abs(out[i]-masked[i]) > 1e-12 {
			t.Fatalf("output %d changed with the value of a masked key: %g -> %g", i, masked[i], out[i])
		}
	}
}

func TestCrossEntropyHeadBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	N, C, V := 5, 4, 7
	x, w := randSlice(rng, N*C, 1), randSlice(rng, V*C, 1)
	targets := []int32{1, 0, 6, 3, 2}
	mask := []float64{1, 0, 0.5, 1, 2}
	cv := &carver[float64]{slab: make([]float64, 1<<10)}
	hs := newHeadScratch(cv, 2, C, V) // chunks of 2 rows: several passes
	loss := func() float64 { return crossEntropyHeadForward(x, w, targets, mask, N, C, V, hs) }
	dx, dw := make([]float64, N*C), make([]float64, V*C)
	got := crossEntropyHeadBackward(dx, dw, x, w, targets, mask, N, C, V, 1, hs)
	if want := loss(); math.Abs(got-want) > 1e-12 {
		t.Fatalf("fused backward returned loss %g, forward %g", got, want)
	}
	checkGrad(t, "head dx", x, dx, nil, loss)
	checkGrad(t, "head dw", w, dw, nil, loss)
}

// tinyConfig is the whole-model check's architecture: two heads of 8 (inner 16 = d_model, as in T5),
// more decoder than encoder layers, 8 buckets over 16 positions.
func tinyConfig(ffn string, tied bool) Config {
	c := Config{DModel: 16, DKV: 8, DFF: 24, EncoderLayers: 2, DecoderLayers: 3, Heads: 2, Buckets: 8,
		MaxDistance: 16, Eps: 1e-6, FeedForwardProj: ffn, Tied: tied, Vocab: 11, DecoderStart: 0, EOS: 1, Pad: 0}
	var err error
	if c.Act, c.Gated, err = parseFeedForward(ffn); err != nil {
		panic(err)
	}
	return c
}

// tinyBatch has encoder padding in one row (at the end) and loss padding in the other.
func tinyBatch() Batch {
	b := Batch{B: 2, TEnc: 5, TDec: 4,
		EncTokens: []int32{3, 4, 5, 6, 1, 7, 8, 2, 0, 0},
		EncMask:   []float32{1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
		Targets:   []int32{9, 10, 3, 1, 4, 5, 1, 0},
		Mask:      []float32{1, 1, 1, 1, 1, 1, 1, 0}}
	b.DecTokens = append(ShiftRight(b.Targets[:4], 0), ShiftRight(b.Targets[4:], 0)...)
	return b
}

func TestModelGradients(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"flan-t5: gated-gelu, untied", tinyConfig("gated-gelu", false)},
		{"t5 v1.0: relu, tied head scaled", tinyConfig("relu", true)},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newNet[float64](c.cfg)
			m.w.initRandom(c.cfg, 7)
			// Norm gains away from 1 so their gradients are not all alike.
			rng := rand.New(rand.NewPCG(8, 8))
			m.w.visit(c.cfg, func(_ string, _ []int, kind Kind, t *[]float64) {
				if kind == KindNorm {
					for i := range *t {
						(*t)[i] = 1 + 0.3*rng.NormFloat64()
					}
				}
			})
			b := tinyBatch()
			if err := b.Validate(c.cfg.Vocab); err != nil {
				t.Fatal(err)
			}
			m.g = newWeights[float64](c.cfg)
			sum := m.forward(&b, true, 1)
			m.backward(&b)
			loss := func() float64 { return m.forward(&b, false, 0) }
			if l := loss(); math.Abs(l-sum) > 1e-12 {
				t.Fatalf("training forward loss %g, evaluation forward %g", sum, l)
			}
			var grads [][]float64
			m.g.visit(c.cfg, func(_ string, _ []int, _ Kind, g *[]float64) { grads = append(grads, *g) })
			i := 0
			m.w.visit(c.cfg, func(name string, _ []int, _ Kind, w *[]float64) {
				g := grads[i]
				i++
				idx := rng.Perm(len(*w))
				if len(idx) > 24 {
					idx = idx[:24]
				}
				checkGrad(t, name, *w, g, idx, loss)
			})
		})
	}
}
