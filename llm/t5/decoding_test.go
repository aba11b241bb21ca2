package t5

import (
	"context"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/llm/generate"
)

// TestDecodingMatchesGreedy: served through llm/generate's batched decoder (several prompts of
// different lengths at once), greedy decoding gives each prompt the tokens Greedy gives it alone, and
// the length limit and stop token behave as for a decoder-only model.
func TestDecodingMatchesGreedy(t *testing.T) {
	cfg := tinyConfig("gated-gelu", false)
	m, err := NewRandom(cfg, 21)
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int32{{5, 9, 2, 1}, {7, 1}, {3, 4, 5, 6, 7, 8, 1}}
	const maxNew = 12
	res, err := generate.GenerateWith(context.Background(), m.Decoding(), prompts, generate.Options{MaxNewTokens: maxNew, StopTokens: []int32{cfg.EOS}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range prompts {
		want, err := m.Greedy(p, maxNew)
		if err != nil {
			t.Fatal(err)
		}
		got := res[i].Tokens
		if res[i].Finish == generate.FinishEOS {
			got = append(slices.Clone(got), res[i].StopToken)
		}
		if !slices.Equal(got, want) {
			t.Errorf("prompt %d: batched decoding %v (%s), Greedy %v", i, got, res[i].Finish, want)
		}
		if len(res[i].Tokens) > maxNew {
			t.Errorf("prompt %d: %d tokens for max_new_tokens %d", i, len(res[i].Tokens), maxNew)
		}
	}
}
