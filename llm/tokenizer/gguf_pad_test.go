package tokenizer

import (
	"strconv"
	"testing"
)

// GGUFMetadataFor pads a Unigram (T5) tokenizer to the embedding's rows as llama.cpp's converter does:
// unused "[PAD<id>]" tokens scored -1000; the tokenizer's own entries and its normalization table are
// written as they are.
func TestGGUFMetadataForPadsToTheEmbedding(t *testing.T) {
	tok, _ := t5Like(t)
	n := tok.VocabSize()
	kvs, err := tok.GGUFMetadataFor(n + 14)
	if err != nil {
		t.Fatal(err)
	}
	get := func(key string) any {
		for _, kv := range kvs {
			if kv.Key == key {
				return kv.Value
			}
		}
		t.Fatalf("no %s", key)
		return nil
	}
	tokens, types, scores := get("tokenizer.ggml.tokens").([]string), get("tokenizer.ggml.token_type").([]int32), get("tokenizer.ggml.scores").([]float32)
	if len(tokens) != n+14 || len(types) != n+14 || len(scores) != n+14 {
		t.Fatalf("%d tokens, %d types, %d scores; want %d each", len(tokens), len(types), len(scores), n+14)
	}
	if tokens[n+13] != "[PAD"+strconv.Itoa(n+13)+"]" || types[n] != int32(TypeUnused) || scores[n] != -1000 {
		t.Fatalf("padding %q type %d score %g", tokens[n+13], types[n], scores[n])
	}
	if tokens[1] != "</s>" || get("tokenizer.ggml.model") != "t5" {
		t.Fatalf("tokens[1] %q, model %v", tokens[1], get("tokenizer.ggml.model"))
	}
	if cm, ok := get("tokenizer.ggml.precompiled_charsmap").([]uint8); !ok || len(cm) == 0 {
		t.Fatal("no precompiled charsmap")
	}
	// Without padding the lists stay the tokenizer's.
	plain, _ := tok.GGUFMetadata()
	for _, kv := range plain {
		if kv.Key == "tokenizer.ggml.tokens" && len(kv.Value.([]string)) != n {
			t.Fatalf("unpadded: %d tokens", len(kv.Value.([]string)))
		}
	}
}
