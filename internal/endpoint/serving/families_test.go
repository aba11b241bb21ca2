package serving_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/internal/hubtest"
	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
)

// Every decoder family serves from its Hugging Face folder (fused query_key_value / Wqkv split on
// load, the family's real tokenizer): batched requests with the KV cache give each input the tokens
// that a forward over the whole sequence picks at every step, with log-probabilities when asked.
func TestFamiliesServe(t *testing.T) {
	vocab := func(name string) string {
		return filepath.Join("..", "..", "..", "..", "shared", "models", "vocab", "ggml-vocab-"+name+".gguf")
	}
	for _, c := range []struct{ name, config, vocab string }{
		{"falcon-7b", hubtest.Falcon7BConfig, "falcon"},
		{"gpt_neox", `{"model_type": "gpt_neox", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
			"intermediate_size": 128, "hidden_act": "gelu", "rotary_pct": 0.25, "use_parallel_residual": true,
			"tie_word_embeddings": false, "vocab_size": 50432, "max_position_embeddings": 256, "bos_token_id": 0, "eos_token_id": 0}`, "gpt-neox"},
		{"mpt", `{"model_type": "mpt", "d_model": 36, "n_heads": 6, "n_layers": 2, "expansion_ratio": 4, "max_seq_len": 256,
			"vocab_size": 50432, "no_bias": true, "attn_config": {"alibi": true, "alibi_bias_max": 8, "clip_qkv": 6}}`, "mpt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := hubtest.WriteDecoder(dir, c.config, vocab(c.vocab), 3); err != nil {
				t.Fatal(err)
			}
			e, err := serving.Load(dir, serving.Options{Format: serving.FormatRaw, MaxBatch: 2})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			ck, err := format.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := model.FromCheckpoint(ck)
			ck.Close()
			if err != nil {
				t.Fatal(err)
			}
			V := m.Config().Vocab
			ctx := context.Background()
			for _, in := range []string{"Hello world, this is a test.", "1 + 1 = 2; 22 * 3 = 66"} {
				g, err := e.Start(ctx, in, generate.Options{MaxNewTokens: 6, Logprobs: true})
				if err != nil {
					t.Fatal(err)
				}
				res, err := g.Wait(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Tokens) == 0 || len(res.Logprobs) != len(res.Tokens) {
					t.Fatalf("%q: %d tokens, %d log-probabilities", in, len(res.Tokens), len(res.Logprobs))
				}
				seq := e.Tokenize(in)
				for i, tok := range res.Tokens {
					logits, err := m.Logits(seq, 1, len(seq))
					if err != nil {
						t.Fatal(err)
					}
					last := logits[(len(seq)-1)*V : len(seq)*V]
					if best := int32(slices.Index(last, slices.Max(last))); best != tok {
						t.Fatalf("%q: token %d served %d, the full forward's argmax is %d", in, i, tok, best)
					}
					seq = append(seq, tok)
				}
			}
		})
	}
}
