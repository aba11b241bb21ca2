package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/hubtest"
	"github.com/lathe-ml/lathe/llm/t5"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// `lathe generate` runs a T5 folder: the prompt goes to the encoder (with its </s>) and the output is
// what the model's own greedy decoder writes.
func TestGenerateT5(t *testing.T) {
	dir := t.TempDir()
	if err := hubtest.WriteT5(dir, "../../llm/tokenizer/testdata/unigram_t5like.tokenizer.json", 4); err != nil {
		t.Fatal(err)
	}
	const prompt = "Translate to German: the house is small."
	var stderr bytes.Buffer
	out, err := runCommand(context.Background(), generateCommand(), nil, &stderr,
		"--model", dir, "--prompt", prompt, "--temperature", "0", "--max-new-tokens", "8")
	if err != nil {
		t.Fatalf("lathe generate: %v (%s)", err, stderr.String())
	}
	m, err := t5.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var in []int32
	for _, id := range tok.Encode(prompt, false) {
		in = append(in, int32(id))
	}
	want, err := m.Greedy(in, 8)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, id := range want {
		if id == m.Config().EOS {
			break
		}
		ids = append(ids, int(id))
	}
	if len(ids) == 0 {
		t.Fatal("the model wrote nothing: pick another seed")
	}
	if got, w := strings.TrimSpace(out), strings.TrimSpace(tok.Decode(ids)); got != w {
		t.Fatalf("lathe generate wrote %q, the model's greedy decoder %q", got, w)
	}
	if !strings.Contains(stderr.String(), "greedy decoding") {
		t.Errorf("stderr %q", stderr.String())
	}
}
