package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func randomTokens(seed uint64, n, vocab int) []int32 {
	rng := rand.New(rand.NewPCG(seed, 0))
	ts := make([]int32, n)
	for i := range ts {
		ts[i] = int32(rng.IntN(vocab))
	}
	return ts
}

func smallConfig() Config {
	return Config{Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8, FFN: 48, Vocab: 50, NormEps: 1e-5,
		RopeTheta: 10000, ContextLen: 64, QKVBias: true}
}

// A model read in GGUF's adjacent layout and the same model with Q/K rows permuted to Hugging Face's
// half-split layout (what safetensors hold) compute the same logits.
func TestRopeLayoutsGiveSameLogits(t *testing.T) {
	m, err := NewRandom(smallConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Tensors() { // larger weights so rotary differences would show
		for i := range p.Data {
			p.Data[i] *= 10
		}
	}
	tokens := randomTokens(2, 2*12, 50)
	adjacent, err := m.Logits(tokens, 2, 12)
	if err != nil {
		t.Fatal(err)
	}
	wq := slices.Clone(m.n.w.layers[0].wq)
	m.SetRopeLayout(RopeHalfSplit)
	if slices.Equal(wq, m.n.w.layers[0].wq) {
		t.Fatal("switching layout did not permute Q rows")
	}
	half, _ := m.Logits(tokens, 2, 12)
	scale := maxAbsDiff(adjacent, make([]float32, len(adjacent)))
	if d := maxAbsDiff(adjacent, half); d > 1e-5*scale {
		t.Fatalf("logits (max %g) differ between layouts by %g", scale, d)
	}
	// The half-split kernel on adjacent-layout rows (a loader that forgets to permute) must differ.
	m.n.cfg.RopeLayout = RopeAdjacent
	wrong, _ := m.Logits(tokens, 2, 12)
	if d := maxAbsDiff(adjacent, wrong); d < 1e-2*scale {
		t.Fatalf("wrong rotary pairing changed logits by only %g", d)
	}
}

// Generation through the KV cache, a prompt at once or token by token and several sequences in one
// batch, gives the logits of the training forward.
func TestKVCacheMatchesFullForward(t *testing.T) {
	for _, window := range []int{0, 3} {
		t.Run(fmt.Sprintf("window=%d", window), func(t *testing.T) { testKVCache(t, window) })
	}
}

func testKVCache(t *testing.T, window int) {
	cfg := smallConfig()
	cfg.SlidingWindow = window
	m, _ := NewRandom(cfg, 3)
	const T = 10
	seqs := [][]int32{randomTokens(4, T, 50), randomTokens(5, T, 50)}
	V := m.Config().Vocab
	full, _ := m.Logits(slices.Concat(seqs...), 2, T)
	caches := []*KVCache{m.NewKVCache(T), m.NewKVCache(T)}
	logits := make([]float32, 2*V)
	// sequence 0 starts with a 4-token prompt, sequence 1 with 1 token; then one token at a time.
	if err := m.Extend(caches, [][]int32{seqs[0][:4], seqs[1][:1]}, logits); err != nil {
		t.Fatal(err)
	}
	check := func(seq, pos int) {
		t.Helper()
		if d := maxAbsDiff(logits[seq*V:(seq+1)*V], full[(seq*T+pos)*V:(seq*T+pos+1)*V]); d > 1e-4 {
			t.Fatalf("sequence %d position %d: cached logits differ by %g", seq, pos, d)
		}
	}
	check(0, 3)
	check(1, 0)
	for p := 1; p < T; p++ {
		if p < 4 {
			if err := m.Extend(caches[1:], [][]int32{{seqs[1][p]}}, logits[V:]); err != nil {
				t.Fatal(err)
			}
			check(1, p)
			continue
		}
		if err := m.Extend(caches, [][]int32{{seqs[0][p]}, {seqs[1][p]}}, logits); err != nil {
			t.Fatal(err)
		}
		check(0, p)
		check(1, p)
	}
	if err := m.Extend(caches[:1], [][]int32{{1}}, logits); err == nil {
		t.Fatal("extending a full cache succeeded")
	}
}

func TestLoRAStartsAsBaseAndMergeKeepsFunction(t *testing.T) {
	m, _ := NewRandom(smallConfig(), 6)
	tokens := randomTokens(7, 16, 50)
	base, _ := m.Logits(tokens, 1, 16)
	err := m.AttachLoRA(LoRAConfig{Rank: 4, Alpha: 8, Targets: []Target{TargetQ, TargetK, TargetV, TargetO, TargetGate, TargetUp, TargetDown}}, 8)
	if err != nil {
		t.Fatal(err)
	}
	same, _ := m.Logits(tokens, 1, 16)
	if d := maxAbsDiff(base, same); d != 0 {
		t.Fatalf("fresh adapters changed logits by %g", d)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, p := range m.Trainable() {
		for i := range p.Data {
			p.Data[i] += float32(rng.NormFloat64() * 0.1)
		}
	}
	adapted, _ := m.Logits(tokens, 1, 16)
	if d := maxAbsDiff(base, adapted); d < 1e-3 {
		t.Fatalf("adapters changed logits by only %g", d)
	}
	m.SetRopeLayout(RopeHalfSplit) // adapters on Q/K follow the permutation
	m.MergeLoRA()
	m.SetRopeLayout(RopeAdjacent)
	merged, _ := m.Logits(tokens, 1, 16)
	if d := maxAbsDiff(adapted, merged); d > 1e-4 {
		t.Fatalf("merged model differs from the adapted one by %g", d)
	}
}

func TestBadInputIsRefused(t *testing.T) {
	m, _ := NewRandom(smallConfig(), 1)
	cases := map[string]Batch{
		"token outside vocabulary": {B: 1, T: 2, Tokens: []int32{1, 50}, Targets: []int32{1, 1}, Mask: []float32{1, 1}},
		"counted target outside":   {B: 1, T: 2, Tokens: []int32{1, 2}, Targets: []int32{1, -1}, Mask: []float32{1, 1}},
		"short mask":               {B: 1, T: 2, Tokens: []int32{1, 2}, Targets: []int32{1, 1}, Mask: []float32{1}},
		"empty":                    {},
	}
	for name, b := range cases {
		if _, _, err := m.LossSum(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Dim: 8, Layers: 1, Heads: 3, KVHeads: 2, HeadDim: 4, FFN: 4, Vocab: 4, NormEps: 1e-5, RopeTheta: 1}); err == nil {
		t.Error("3 heads over 2 kv heads accepted")
	}
	if err := m.AttachLoRA(LoRAConfig{Rank: 0, Alpha: 1, Targets: []Target{TargetQ}}, 1); err == nil {
		t.Error("rank 0 accepted")
	}
}

// The loss mask: a batch's loss counts only masked positions, and padding after a sequence changes
// nothing before it.
func TestLossMaskAndPadding(t *testing.T) {
	m, _ := NewRandom(smallConfig(), 10)
	ex := Example{Tokens: []int32{1, 5, 6, 7, 8, 9}, PromptLen: 3}
	short := PackBatch([]Example{ex}, 5, 0)
	long := PackBatch([]Example{ex}, 9, 0)
	if got := short.Count(); got != 3 {
		t.Fatalf("counted %g tokens, want 3 response tokens", got)
	}
	s1, c1, _ := m.LossSum(short)
	s2, c2, _ := m.LossSum(long)
	if c1 != c2 || math.Abs(s1-s2) > 1e-5*math.Abs(s1) {
		t.Fatalf("padding changed the loss: %g/%g vs %g/%g", s1, c1, s2, c2)
	}
	// Changing a prompt token changes the loss (the response depends on it), changing a response
	// target outside the mask does not exist; changing the first (uncounted) target changes nothing.
	b := PackBatch([]Example{ex}, 5, 0)
	b.Targets[0] = 42
	s3, _, _ := m.LossSum(b)
	if s3 != s1 {
		t.Fatalf("an uncounted target changed the loss: %g vs %g", s3, s1)
	}
}

// Llama 3.1's rope scaling (theta 500000, factor 8, low 1, high 4, original context 8192, head dim
// 128): wavelengths under 8192/4 = 2048 positions keep their frequency, those over 8192 are divided
// by 8, those between are blended; linear scaling divides every frequency.
func TestRopeScalingFrequencies(t *testing.T) {
	base := Config{HeadDim: 128, RopeTheta: 500000}
	l3 := base
	l3.Scaling = RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}
	lin := base
	lin.Scaling = RopeScaling{Type: "linear", Factor: 4}
	plain, scaled, linear := base.ropeFrequencies(), l3.ropeFrequencies(), lin.ropeFrequencies()
	blended := 0
	for i, f := range plain {
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < 2048:
			if scaled[i] != f {
				t.Errorf("pair %d (wavelength %.0f): frequency changed %g -> %g", i, wavelen, f, scaled[i])
			}
		case wavelen > 8192:
			if math.Abs(scaled[i]-f/8) > 1e-15 {
				t.Errorf("pair %d (wavelength %.0f): %g, want %g", i, wavelen, scaled[i], f/8)
			}
		default:
			blended++
			if !(scaled[i] < f && scaled[i] > f/8) {
				t.Errorf("pair %d (wavelength %.0f): %g not between %g and %g", i, wavelen, scaled[i], f/8, f)
			}
		}
		if math.Abs(linear[i]-f/4) > 1e-15 {
			t.Errorf("linear: pair %d %g, want %g", i, linear[i], f/4)
		}
	}
	if blended == 0 {
		t.Error("no pair in the blended band")
	}
	if plain[0] != 1 || math.Abs(plain[1]-math.Pow(500000, -2.0/128)) > 1e-15 {
		t.Errorf("unscaled frequencies %g, %g", plain[0], plain[1])
	}
}

// Generation through the KV cache runs the adapters too (unmerged LoRA, as when a job evaluates
// before exporting).
func TestKVCacheWithLoRA(t *testing.T) {
	m, _ := NewRandom(smallConfig(), 11)
	if err := m.AttachLoRA(LoRAConfig{Rank: 3, Alpha: 6, Dropout: 0.2, Targets: []Target{TargetQ, TargetK, TargetV, TargetO, TargetGate, TargetUp, TargetDown}}, 1); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(12, 12))
	for _, p := range m.Trainable() {
		for i := range p.Data {
			p.Data[i] += float32(rng.NormFloat64() * 0.2)
		}
	}
	tokens := randomTokens(13, 8, 50)
	full, _ := m.Logits(tokens, 1, 8)
	V := m.Config().Vocab
	c := m.NewKVCache(8)
	logits := make([]float32, V)
	if err := m.Extend([]*KVCache{c}, [][]int32{tokens[:5]}, logits); err != nil {
		t.Fatal(err)
	}
	for p := 5; p <= 8; p++ {
		if d := maxAbsDiff(logits, full[(p-1)*V:p*V]); d > 1e-4 {
			t.Fatalf("position %d: cached logits with adapters differ by %g", p-1, d)
		}
		if p < 8 {
			m.Extend([]*KVCache{c}, [][]int32{{tokens[p]}}, logits)
		}
	}
}

// Batches of different shapes reuse the activation memory without changing any result.
func TestChangingBatchShapes(t *testing.T) {
	m, _ := NewRandom(smallConfig(), 14)
	ex := []Example{{Tokens: randomTokens(15, 12, 50), PromptLen: 3}, {Tokens: randomTokens(16, 9, 50), PromptLen: 2}}
	a := PackBatch(ex, 11, 0)
	b := PackBatch(ex[1:], 6, 0)
	c := PackBatch(append(ex, ex...), 16, 0)
	sa, _, _ := m.LossSum(a)
	sb, _, _ := m.LossSum(b)
	sc, _, _ := m.LossSum(c)
	for i, want := range []float64{sa, sb, sc, sa, sb} {
		got, _, _ := m.LossSum([]Batch{a, b, c, a, b}[i])
		if got != want {
			t.Fatalf("batch %d: loss %g after other shapes, %g before", i, got, want)
		}
	}
	fresh, _ := NewRandom(smallConfig(), 14)
	if got, _, _ := fresh.LossSum(b); got != sb {
		t.Fatalf("fresh model %g, reused memory %g", got, sb)
	}
}

// DiscardGrads followed by micro-batches gives exactly the gradients of ZeroGrads followed by the
// same micro-batches, whatever the buffers held before: untied with biases, tied, and with a
// micro-batch that counts no token (its head gradient is zero, not the old values).
func TestDiscardGradsMatchesZeroGrads(t *testing.T) {
	tied := smallConfig()
	tied.Tied, tied.QKVBias = true, false
	for name, cfg := range map[string]Config{"untied+bias": smallConfig(), "tied": tied} {
		t.Run(name, func(t *testing.T) {
			micro := func(seed uint64, promptLen int) Batch {
				var exs []Example
				for i := range 3 {
					exs = append(exs, Example{Tokens: randomTokens(seed+uint64(i), 10, cfg.Vocab), PromptLen: promptLen})
				}
				return PackBatch(exs, 9, 0)
			}
			old, b1, b2, none := micro(1, 2), micro(5, 3), micro(9, 1), micro(13, 10)
			run := func(discard bool, batches ...Batch) [][]float32 {
				m, _ := NewRandom(cfg, 3)
				m.ZeroGrads()
				if _, err := m.ForwardBackward(old, 1, 0); err != nil { // leave other gradients in the buffers
					t.Fatal(err)
				}
				if discard {
					m.DiscardGrads()
				} else {
					m.ZeroGrads()
				}
				for _, b := range batches {
					if _, err := m.ForwardBackward(b, 0.1, 0); err != nil {
						t.Fatal(err)
					}
				}
				var gs [][]float32
				for _, p := range m.Trainable() {
					gs = append(gs, slices.Clone(p.Grad))
				}
				return gs
			}
			for _, batches := range [][]Batch{{b1}, {b1, b2}, {none}, {none, b2}} {
				want, got := run(false, batches...), run(true, batches...)
				for i := range want {
					for j := range want[i] {
						if got[i][j] != want[i][j] {
							t.Fatalf("%d micro-batches: gradient %d[%d] = %g, want %g", len(batches), i, j, got[i][j], want[i][j])
						}
					}
				}
			}
		})
	}
}
