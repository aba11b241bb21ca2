package generate

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/llm/model"
)

func testModel(t *testing.T) *model.Model {
	t.Helper()
	cfg := model.Config{Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8, FFN: 48, Vocab: 26, NormEps: 1e-5,
		RopeTheta: 10000, ContextLen: 64}
	m, err := model.NewRandom(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Tensors() { // sharper distributions than N(0, 0.02²) gives
		for i := range p.Data {
			p.Data[i] *= 8
		}
	}
	return m
}

// letters is a detokenizer: id i is the letter 'a'+i.
func letters(ids []int32) string {
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteByte(byte('a' + id))
	}
	return sb.String()
}

func argmax(xs []float32) int32 {
	best := 0
	for j, v := range xs {
		if v > xs[best] {
			best = j
		}
	}
	return int32(best)
}

// Greedy decoding through the KV cache picks, at every step, the argmax of the full forward's logits.
func TestGreedyMatchesFullForward(t *testing.T) {
	m := testModel(t)
	prompt := []int32{1, 5, 9}
	res, err := Generate(context.Background(), m, [][]int32{prompt}, Options{MaxNewTokens: 12}, letters, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq := slices.Clone(prompt)
	for range 12 {
		logits, _ := m.Logits(seq, 1, len(seq))
		seq = append(seq, argmax(logits[(len(seq)-1)*26:]))
	}
	if want := seq[len(prompt):]; !slices.Equal(res[0].Tokens, want) {
		t.Fatalf("greedy %v, full-forward argmax %v", res[0].Tokens, want)
	}
	if res[0].Finish != FinishLength || res[0].Text != letters(res[0].Tokens) {
		t.Fatalf("finish %q text %q", res[0].Finish, res[0].Text)
	}
}

func TestBatchEqualsOneByOne(t *testing.T) {
	m := testModel(t)
	prompts := [][]int32{{1, 2}, {7, 3, 3, 8, 0}, {4}}
	opt := Options{MaxNewTokens: 9, RepetitionPenalty: 1.3}
	batch, err := Generate(context.Background(), m, prompts, opt, letters, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range prompts {
		one, _ := Generate(context.Background(), m, [][]int32{p}, opt, letters, nil)
		if !slices.Equal(one[0].Tokens, batch[i].Tokens) {
			t.Fatalf("prompt %d: batch %v, alone %v", i, batch[i].Tokens, one[0].Tokens)
		}
	}
}

func TestSamplingIsSeededAndCutsApply(t *testing.T) {
	m := testModel(t)
	prompts := [][]int32{{1, 2, 3}}
	gen := func(o Options) []int32 {
		o.MaxNewTokens = 20
		r, err := Generate(context.Background(), m, prompts, o, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r[0].Tokens
	}
	greedy := gen(Options{})
	a, b := gen(Options{Temperature: 1.5, Seed: 7}), gen(Options{Temperature: 1.5, Seed: 7})
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different samples: %v %v", a, b)
	}
	if c := gen(Options{Temperature: 1.5, Seed: 8}); slices.Equal(a, c) {
		t.Fatalf("different seeds, same 20 samples: %v", a)
	}
	if k1 := gen(Options{Temperature: 1.5, TopK: 1, Seed: 3}); !slices.Equal(k1, greedy) {
		t.Fatalf("top-k 1 %v differs from greedy %v", k1, greedy)
	}
	if p0 := gen(Options{Temperature: 1.5, TopP: 1e-9, Seed: 3}); !slices.Equal(p0, greedy) {
		t.Fatalf("top-p 1e-9 %v differs from greedy %v", p0, greedy)
	}
}

// sample draws from softmax(logits/T) restricted by top-k and top-p: frequencies over many draws.
func TestSampleDistribution(t *testing.T) {
	logits := []float32{2, 1, 0, -1, 0.5}
	soft := func(T float64, keep []int) []float64 {
		p := make([]float64, len(logits))
		var z float64
		for _, j := range keep {
			p[j] = math.Exp(float64(logits[j]) / T)
			z += p[j]
		}
		for j := range p {
			p[j] /= z
		}
		return p
	}
	cases := []struct {
		name string
		opt  Options
		want []float64
	}{
		{"temperature 1", Options{Temperature: 1}, soft(1, []int{0, 1, 2, 3, 4})},
		{"temperature 0.5", Options{Temperature: 0.5}, soft(0.5, []int{0, 1, 2, 3, 4})},
		{"top-k 2", Options{Temperature: 1, TopK: 2}, soft(1, []int{0, 1})},
		{"top-k 3 and top-p 0.75", Options{Temperature: 1, TopK: 3, TopP: 0.75}, soft(1, []int{0, 1})},
		// sorted probabilities at T=1: 0.563, 0.207, 0.126, 0.076, 0.028: top-p 0.8 keeps three
		{"top-p 0.8", Options{Temperature: 1, TopP: 0.8}, soft(1, []int{0, 1, 4})},
		// Typical sampling: entropy 1.206 nats; surprisal minus entropy, closest first: token 1
		// (0.368), 0 (0.632), 4 (0.868), 2, 3; cumulative probability 0.207, 0.770, 0.896, ...
		// 0.15 keeps token 1 alone (not the most likely one), 0.8 three tokens, 0.9 four.
		{"typical-p 0.15", Options{Temperature: 1, TypicalP: 0.15}, soft(1, []int{1})},
		{"typical-p 0.8", Options{Temperature: 1, TypicalP: 0.8}, soft(1, []int{0, 1, 4})},
		{"typical-p 0.9", Options{Temperature: 1, TypicalP: 0.9}, soft(1, []int{0, 1, 2, 4})},
		// After top-k 2 (probabilities 0.731, 0.269; entropy 0.582) token 0 is the typical one.
		{"top-k 2 then typical-p 0.5", Options{Temperature: 1, TopK: 2, TypicalP: 0.5}, soft(1, []int{0})},
		{"repetition penalty", Options{Temperature: 1, RepetitionPenalty: 2}, func() []float64 {
			saved := logits[0]
			logits[0] = saved / 2 // token 0 was seen
			defer func() { logits[0] = saved }()
			return soft(1, []int{0, 1, 2, 3, 4})
		}()},
	}
	for _, c := range cases {
		s := &Request{rng: rand.New(rand.NewPCG(1, 2)), seen: []bool{true, false, false, false, false}}
		counts := make([]float64, len(logits))
		const n = 40000
		for range n {
			tok, _ := sample(logits, s, c.opt, make([]float64, 5), make([]float64, 5), make([]int32, 5))
			counts[tok]++
		}
		for j := range counts {
			if got := counts[j] / n; math.Abs(got-c.want[j]) > 0.01 {
				t.Errorf("%s: token %d drawn %.3f of the time, want %.3f", c.name, j, got, c.want[j])
			}
		}
	}
}

func TestStopTokensAndSequencesAndStreaming(t *testing.T) {
	m := testModel(t)
	prompt := [][]int32{{3, 1, 4}}
	free, _ := Generate(context.Background(), m, prompt, Options{MaxNewTokens: 16}, letters, nil)
	full := free[0].Text
	if len(full) < 8 {
		t.Fatalf("free run too short: %q", full)
	}

	eos := free[0].Tokens[4]
	k := slices.Index(free[0].Tokens, eos)
	r, _ := Generate(context.Background(), m, prompt, Options{MaxNewTokens: 16, StopTokens: []int32{eos}}, letters, nil)
	if r[0].Finish != FinishEOS || !slices.Equal(r[0].Tokens, free[0].Tokens[:k]) {
		t.Fatalf("stop token %d: finish %q tokens %v, want %v", eos, r[0].Finish, r[0].Tokens, free[0].Tokens[:k])
	}

	stop := full[5:7]
	cut := strings.Index(full, stop)
	var streamed strings.Builder
	var ids []int32
	r, err := Generate(context.Background(), m, prompt, Options{MaxNewTokens: 16, StopSequences: []string{"zzzz", stop}}, letters,
		func(tk Token) error {
			streamed.WriteString(tk.Text)
			if tk.ID >= 0 {
				ids = append(ids, tk.ID)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if r[0].Finish != FinishStop || r[0].Text != full[:cut] {
		t.Fatalf("stop sequence %q in %q: finish %q text %q", stop, full, r[0].Finish, r[0].Text)
	}
	if streamed.String() != r[0].Text {
		t.Fatalf("streamed %q, result %q", streamed.String(), r[0].Text)
	}
	if !slices.Equal(ids, r[0].Tokens) {
		t.Fatalf("streamed ids %v, result %v", ids, r[0].Tokens)
	}
}

func TestSafeEndHoldsBackPossibleStops(t *testing.T) {
	cases := []struct {
		text  string
		stops []string
		want  int
	}{
		{"hello wor", []string{"world"}, 6},
		{"hello", []string{"###"}, 5},
		{"ab#", []string{"###"}, 2},
		{"ab\uFFFD", nil, 2},
		{"caf\xc3", nil, 3},
	}
	for _, c := range cases {
		if got := safeEnd(c.text, c.stops); got != c.want {
			t.Errorf("safeEnd(%q, %q) = %d, want %d", c.text, c.stops, got, c.want)
		}
	}
}

func TestLimitsAndCancellation(t *testing.T) {
	m := testModel(t)
	// The context (64) bounds the output whatever MaxNewTokens says.
	r, err := Generate(context.Background(), m, [][]int32{make([]int32, 60)}, Options{MaxNewTokens: 100}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r[0].Tokens) != 5 || r[0].Finish != FinishLength {
		t.Fatalf("60-token prompt in a 64 context: %d new tokens, finish %q", len(r[0].Tokens), r[0].Finish)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err = Generate(ctx, m, [][]int32{{1}}, Options{MaxNewTokens: 50}, nil, func(Token) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Fatalf("cancelled after 3 tokens: err %v, %d tokens", err, n)
	}
	bad := []Options{{}, {MaxNewTokens: 1, Temperature: -1}, {MaxNewTokens: 1, TopP: 2}, {MaxNewTokens: 1, TopK: -1},
		{MaxNewTokens: 1, StopSequences: []string{""}}}
	for _, o := range bad {
		if _, err := Generate(context.Background(), m, [][]int32{{1}}, o, letters, nil); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if _, err := Generate(context.Background(), m, [][]int32{{}}, Options{MaxNewTokens: 1}, nil, nil); err == nil {
		t.Error("empty prompt accepted")
	}
	if _, err := Generate(context.Background(), m, [][]int32{{1}}, Options{MaxNewTokens: 1, StopSequences: []string{"x"}}, nil, nil); err == nil {
		t.Error("stop sequences without a detokenizer accepted")
	}
}

// A request that joins a running decoder, and one cancelled midway, do not disturb the others: each
// output equals the same prompt decoded alone.
func TestDecoderContinuousBatching(t *testing.T) {
	m := testModel(t)
	opt := Options{MaxNewTokens: 10, Temperature: 0.9, Seed: 4}
	alone := func(p []int32) []int32 {
		r, err := Generate(context.Background(), m, [][]int32{p}, opt, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r[0].Tokens
	}
	pa, pb, pc := []int32{1, 2, 3}, []int32{5, 6, 7, 8, 9}, []int32{4, 4}
	d := NewDecoder(m, letters)
	a, _ := d.Add(pa, opt, nil)
	c, _ := d.Add(pc, opt, nil)
	var b *Request
	for step := 0; d.Active() > 0; step++ {
		if step == 3 {
			b, _ = d.Add(pb, opt, nil)
			c.Cancel()
		}
		if err := d.Step(); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(a.Result().Tokens, alone(pa)) || !slices.Equal(b.Result().Tokens, alone(pb)) {
		t.Fatalf("batched %v / %v, alone %v / %v", a.Result().Tokens, b.Result().Tokens, alone(pa), alone(pb))
	}
	if !c.Done() || c.Result().Finish != FinishCancelled || len(c.Result().Tokens) != 3 {
		t.Fatalf("cancelled request: done %v finish %q, %d tokens", c.Done(), c.Result().Finish, len(c.Result().Tokens))
	}
	if a.Result().Finish != FinishLength || len(a.Result().Text) != 10 {
		t.Fatalf("request a: finish %q text %q", a.Result().Finish, a.Result().Text)
	}
}

// With Logprobs, each token carries its log-probability: under the distribution it was drawn from
// when sampling (top-k renormalised), under the softmax of the logits when greedy; the streamed
// tokens and Result.Logprobs agree, and the stop token's is kept apart.
func TestLogprobs(t *testing.T) {
	logits := []float32{2, 1, 0, -1, 0.5}
	lse := func(keep []int) float64 {
		var z float64
		for _, j := range keep {
			z += math.Exp(float64(logits[j]))
		}
		return math.Log(z)
	}
	s := &Request{rng: rand.New(rand.NewPCG(1, 2)), seen: make([]bool, 5)}
	work, probs, order := make([]float64, 5), make([]float64, 5), make([]int32, 5)
	if tok, lp := sample(logits, s, Options{Logprobs: true}, work, probs, order); tok != 0 || math.Abs(lp-(2-lse([]int{0, 1, 2, 3, 4}))) > 1e-12 {
		t.Errorf("greedy: token %d logprob %g, want 0 and %g", tok, lp, 2-lse([]int{0, 1, 2, 3, 4}))
	}
	for range 50 {
		tok, lp := sample(logits, s, Options{Temperature: 1, TopK: 2, Logprobs: true}, work, probs, order)
		if want := float64(logits[tok]) - lse([]int{0, 1}); tok > 1 || math.Abs(lp-want) > 1e-12 {
			t.Fatalf("top-k 2: token %d logprob %g, want a token of the two and %g", tok, lp, want)
		}
	}

	m := testModel(t)
	var streamed []float32
	res, err := Generate(context.Background(), m, [][]int32{{3, 1, 4}}, Options{MaxNewTokens: 12, Temperature: 0.8, Seed: 4, Logprobs: true}, letters,
		func(tk Token) error {
			if tk.ID >= 0 {
				streamed = append(streamed, tk.Logprob)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if len(r.Logprobs) != len(r.Tokens) || !slices.Equal(r.Logprobs, streamed) {
		t.Fatalf("%d tokens, %d logprobs in the result, %v streamed", len(r.Tokens), len(r.Logprobs), streamed)
	}
	for i, lp := range r.Logprobs {
		if !(lp <= 0) || math.IsInf(float64(lp), -1) {
			t.Errorf("token %d logprob %g is not a log-probability of a drawn token", i, lp)
		}
	}
	eos := r.Tokens[3]
	cut, _ := Generate(context.Background(), m, [][]int32{{3, 1, 4}}, Options{MaxNewTokens: 12, Temperature: 0.8, Seed: 4, Logprobs: true, StopTokens: []int32{eos}}, letters, nil)
	k := slices.Index(r.Tokens, eos)
	if c := cut[0]; c.Finish != FinishEOS || c.StopToken != eos || c.StopLogprob != r.Logprobs[k] || !slices.Equal(c.Logprobs, r.Logprobs[:k]) {
		t.Errorf("stop token: finish %q, stop %d logprob %g, logprobs %v; want eos, %d, %g, %v", c.Finish, c.StopToken, c.StopLogprob, c.Logprobs, eos, r.Logprobs[k], r.Logprobs[:k])
	}
	plain, _ := Generate(context.Background(), m, [][]int32{{3, 1, 4}}, Options{MaxNewTokens: 12, Temperature: 0.8, Seed: 4}, letters, nil)
	if !slices.Equal(plain[0].Tokens, r.Tokens) || plain[0].Logprobs != nil {
		t.Errorf("asking for logprobs changed the tokens (%v vs %v) or they came unasked (%v)", plain[0].Tokens, r.Tokens, plain[0].Logprobs)
	}
}
