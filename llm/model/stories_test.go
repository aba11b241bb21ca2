package model

import (
	"os"
	"testing"

	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// storiesPath is the real pretrained model shared by the project (see ../shared/models/README.md).
const storiesPath = "../../../shared/models/stories260K.gguf"

// Paragraphs written for this test in the style of TinyStories.
var storiesParagraphs = []string{
	"Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day, she saw a big red ball in the park. She ran to the ball and kicked it very high. Lily was so happy.",
	"Tom had a small dog named Max. Max liked to run and jump. One day, Max found a stick in the garden. Tom threw the stick and Max ran to get it. They played all day and had lots of fun.",
	"One day, a little bird was sad because it could not fly. Its mom said, \"Do not be sad. You will fly soon.\" The next day, the bird tried again and it flew up into the sky. The bird was very happy.",
	"Sue went to the store with her mom. She wanted to buy a new toy. Her mom said, \"You can have one toy.\" Sue picked a big teddy bear. She hugged the bear and said thank you to her mom.",
}

func loadStories(t testing.TB) (*Model, *tokenizer.Tokenizer) {
	t.Helper()
	if _, err := os.Stat(storiesPath); err != nil {
		t.Fatalf("the shared test model is missing: %v", err)
	}
	m, err := Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// The published validation loss of stories260K is about 1.30 nats/token and an independent
// implementation measures 0.8-1.1 on such paragraphs; a wrong rotary pairing gives 3.8-4.6 and a wrong
// query-to-kv-head mapping about 4.5.
func TestStoriesLoss(t *testing.T) {
	m, tok := loadStories(t)
	cfg := m.Config()
	if cfg.Dim != 64 || cfg.Layers != 5 || cfg.Heads != 8 || cfg.KVHeads != 4 || cfg.FFN != 172 || cfg.Vocab != 512 || cfg.RopeLayout != RopeAdjacent {
		t.Fatalf("unexpected config %+v", cfg)
	}
	for _, p := range storiesParagraphs {
		ids := tok.Encode(p, true)
		toks := make([]int32, len(ids))
		for i, id := range ids {
			toks[i] = int32(id)
		}
		b := PackBatch([]Example{{Tokens: toks, PromptLen: 1}}, len(toks)-1, 0)
		sum, count, err := m.LossSum(b)
		if err != nil {
			t.Fatal(err)
		}
		loss := sum / count
		t.Logf("%.3f nats/token over %d tokens: %.40s...", loss, int(count), p)
		if loss > 1.5 || loss < 0.3 {
			t.Errorf("loss %.3f nats/token, want about 0.8-1.1 (below 1.5): %q", loss, p)
		}
	}
}
