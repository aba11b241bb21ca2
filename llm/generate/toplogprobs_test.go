package generate

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TopLogprobs lists the most likely tokens of the distribution each token was drawn from, most
// likely first, with the same log-probabilities a hand softmax gives: the whole vocabulary when
// greedy, the top-k candidates (renormalised at the temperature) when sampling. The streamed tokens
// and Result.TopLogprobs agree, and asking for them changes no token.
func TestTopLogprobs(t *testing.T) {
	logits := []float32{2, 1, 0, -1, 0.5, 1}
	logSoftmax := func(keep []int, temp float64) map[int]float64 {
		var z float64
		for _, j := range keep {
			z += math.Exp(float64(logits[j]) / temp)
		}
		out := map[int]float64{}
		for _, j := range keep {
			out[j] = float64(logits[j])/temp - math.Log(z)
		}
		return out
	}
	check := func(name string, got []Alternative, wantIDs []int32, lp map[int]float64) {
		t.Helper()
		if len(got) != len(wantIDs) {
			t.Fatalf("%s: %v, want ids %v", name, got, wantIDs)
		}
		for i, a := range got {
			if a.ID != wantIDs[i] || math.Abs(float64(a.Logprob)-lp[int(a.ID)]) > 1e-6 {
				t.Errorf("%s: alternative %d = %+v, want id %d logprob %g", name, i, a, wantIDs[i], lp[int(wantIDs[i])])
			}
		}
	}
	s := &Request{rng: rand.New(rand.NewPCG(1, 2)), seen: make([]bool, 6)}
	work, probs, order := make([]float64, 6), make([]float64, 6), make([]int32, 6)
	// Greedy: ties (tokens 1 and 5 both at 1) keep the lower id first.
	sample(logits, s, Options{Logprobs: true, TopLogprobs: 3}, work, probs, order)
	check("greedy", s.top, []int32{0, 1, 5}, logSoftmax([]int{0, 1, 2, 3, 4, 5}, 1))
	// More alternatives than candidates: top-k 2 has only two.
	sample(logits, s, Options{Temperature: 0.5, TopK: 2, Logprobs: true, TopLogprobs: 4}, work, probs, order)
	check("top-k 2 at temperature 0.5", s.top, []int32{0, 1}, logSoftmax([]int{0, 1}, 0.5))

	m := testModel(t)
	var streamed [][]Alternative
	opt := Options{MaxNewTokens: 12, Temperature: 0.8, Seed: 4, Logprobs: true, TopLogprobs: 5}
	res, err := Generate(context.Background(), m, [][]int32{{3, 1, 4}}, opt, letters, func(tk Token) error {
		if tk.ID >= 0 {
			streamed = append(streamed, tk.Top)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if len(r.TopLogprobs) != len(r.Tokens) || len(streamed) != len(r.Tokens) {
		t.Fatalf("%d tokens, %d top lists in the result, %d streamed", len(r.Tokens), len(r.TopLogprobs), len(streamed))
	}
	for i, top := range r.TopLogprobs {
		if len(top) != 5 || !slices.Equal(top, streamed[i]) {
			t.Fatalf("token %d: top %v, streamed %v", i, top, streamed[i])
		}
		for k := 1; k < len(top); k++ {
			if top[k].Logprob > top[k-1].Logprob {
				t.Errorf("token %d: alternatives not most likely first: %v", i, top)
			}
		}
		// The drawn token, when among the five, has its own log-probability there.
		for _, a := range top {
			if a.ID == r.Tokens[i] && a.Logprob != r.Logprobs[i] {
				t.Errorf("token %d: drawn token's logprob %g in the list, %g in Logprobs", i, a.Logprob, r.Logprobs[i])
			}
		}
	}
	plain, _ := Generate(context.Background(), m, [][]int32{{3, 1, 4}}, Options{MaxNewTokens: 12, Temperature: 0.8, Seed: 4}, letters, nil)
	if !slices.Equal(plain[0].Tokens, r.Tokens) || plain[0].TopLogprobs != nil {
		t.Errorf("asking for top logprobs changed the tokens (%v vs %v) or they came unasked", plain[0].Tokens, r.Tokens)
	}
}
