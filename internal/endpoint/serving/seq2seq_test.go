package serving_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/t5"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// writeT5 writes a tiny random Flan-T5-shaped model with the T5-shaped Unigram tokenizer of
// llm/tokenizer/testdata into a new directory.
func writeT5(t *testing.T) (string, *t5.Model) {
	t.Helper()
	cfg, err := t5.ParseConfig([]byte(`{"model_type": "t5", "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2,
		"num_decoder_layers": 2, "num_heads": 4, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false,
		"vocab_size": 3456, "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := t5.NewRandom(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	tj, err := os.ReadFile("../../../llm/tokenizer/testdata/unigram_t5like.tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// A T5 checkpoint serves through the same engine as decoder-only models: concurrent requests, batched
// together, each get the tokens the model's own greedy decoder gives their input (encoded with its
// </s>), whatever prompt format was asked for.
func TestSeq2SeqServesGreedy(t *testing.T) {
	dir, m := writeT5(t)
	e, err := serving.Load(dir, serving.Options{Format: serving.FormatChat, MaxBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if e.Format() != serving.FormatRaw {
		t.Fatalf("a T5 engine's prompt format is %s, want raw", e.Format())
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"Translate to German: the house is small.", "Summarize: the tokenizer appends an end marker.",
		"What is the capital of France?", "Answer yes or no: is the sky green?"}
	ctx := context.Background()
	got := make([][]int32, len(inputs))
	errs := make([]error, len(inputs))
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Go(func() {
			prompt, err := e.Prompt(in)
			if err != nil {
				errs[i] = err
				return
			}
			g, err := e.Start(ctx, prompt, generate.Options{MaxNewTokens: 10})
			if err != nil {
				errs[i] = err
				return
			}
			res, err := g.Wait(ctx)
			got[i], errs[i] = res.Tokens, err
		})
	}
	wg.Wait()
	for i, in := range inputs {
		if errs[i] != nil {
			t.Fatalf("%q: %v", in, errs[i])
		}
		ids := tok.Encode(in, false)
		if ids[len(ids)-1] != 1 {
			t.Fatalf("the tokenizer did not end %q with </s>: %v", in, ids)
		}
		input := make([]int32, len(ids))
		for j, id := range ids {
			input[j] = int32(id)
		}
		want, err := m.Greedy(input, 10)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(want); n > 0 && want[n-1] == 1 {
			want = want[:n-1]
		}
		if !slices.Equal(got[i], want) {
			t.Errorf("%q: served %v, the model's greedy decoder %v", in, got[i], want)
		}
	}
}
