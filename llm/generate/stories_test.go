package generate

import (
	"context"
	"strings"
	"testing"
	"unicode"

	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

const storiesPath = "../../../shared/models/stories260K.gguf"

func ids32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

func detokenizer(tok *tokenizer.Tokenizer) Detokenize {
	return func(ids []int32) string {
		xs := make([]int, len(ids))
		for i, id := range ids {
			xs[i] = int(id)
		}
		return tok.Decode(xs)
	}
}

// Greedy generation from the real pretrained model continues a story in fluent English (the README
// beside the model quotes what a correct forward pass writes).
func TestStoriesGreedyIsFluentEnglish(t *testing.T) {
	m, err := model.Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int32{
		ids32(tok.Encode("Once upon a time", true)),
		ids32(tok.Encode("Once upon a time, there was a little girl named Lily.", true)),
	}
	var streamed [2]strings.Builder
	res, err := Generate(context.Background(), m, prompts, Options{MaxNewTokens: 60, StopTokens: []int32{2}}, detokenizer(tok),
		func(tk Token) error { streamed[tk.Seq].WriteString(tk.Text); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		t.Logf("%q", r.Text)
		words := strings.Fields(strings.ToLower(r.Text))
		if len(words) < 20 {
			t.Fatalf("only %d words: %q", len(words), r.Text)
		}
		common := 0
		for _, w := range words {
			switch strings.Trim(w, ".,!?\"'") {
			case "the", "a", "to", "and", "she", "he", "was", "her", "it", "they", "in", "play", "day", "happy", "big":
				common++
			}
		}
		if common < len(words)/5 {
			t.Errorf("%d of %d words are common English words: %q", common, len(words), r.Text)
		}
		for _, c := range r.Text {
			if c == unicode.ReplacementChar || (c < 32 && c != '\n') || c > 126 {
				t.Errorf("byte garbage %q in %q", c, r.Text)
				break
			}
		}
		if streamed[i].String() != r.Text {
			t.Errorf("streamed %q, result %q", streamed[i].String(), r.Text)
		}
	}
	if !strings.Contains(res[1].Text, "She loved to play") {
		t.Errorf("the continuation of the README's prompt is %q; a correct forward pass writes \"She loved to play outside in the park\"", res[1].Text)
	}
}
