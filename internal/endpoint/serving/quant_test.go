package serving_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// writeQ8Model writes a random llama with Stories260K's tokenizer as a Q8_0 GGUF (weights of std 0.08,
// so that the most likely token is rarely a near tie).
func writeQ8Model(t *testing.T) string {
	t.Helper()
	ck, err := format.Open(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	mc := ck.Config()
	ck.Close()
	mc.Dim, mc.Layers, mc.Heads, mc.KVHeads, mc.HeadDim, mc.FFN, mc.RopeDim = 256, 2, 4, 4, 64, 512, 64
	mc.TiedEmbeddings = false
	cfg, err := model.ConfigFrom(mc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.NewRandom(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range m.NamedTensors() {
		if len(tn.Shape) == 2 {
			for i := range tn.Data {
				tn.Data[i] *= 4
			}
		}
	}
	tok, err := tokenizer.Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := tok.GGUFMetadata()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rand-Q8_0.gguf")
	if err := format.WriteGGUF(path, m.ExportConfig(mc), m.NamedTensors(), format.GGUFOptions{Type: gguf.Q8_0, Extra: kvs}); err != nil {
		t.Fatal(err)
	}
	return path
}

// An endpoint on a Q8_0 file decodes from its blocks (Weights reports "quantized": nothing was
// widened), and requests decoded together each get what one alone gets; asking for float32 widens.
func TestQ8_0ServedFromItsBlocks(t *testing.T) {
	path := writeQ8Model(t)
	e, err := serving.Load(path, serving.Options{Format: serving.FormatRaw, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if w := e.Weights(); w != serving.WeightsQuantized {
		t.Fatalf("weights %q, want quantized", w)
	}
	ctx := context.Background()
	run := func(prompt string) string {
		g, err := e.Start(ctx, prompt, generate.Options{MaxNewTokens: 12})
		if err != nil {
			t.Fatal(err)
		}
		res, err := g.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res.Text
	}
	alone := run(lilyPrompt)
	if alone == "" {
		t.Fatal("no text generated")
	}
	var wg sync.WaitGroup
	texts := make([]string, 6)
	for i := range texts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prompt := lilyPrompt
			if i%2 == 1 {
				prompt = "The dog ran to the park."
			}
			texts[i] = run(prompt)
		}()
	}
	wg.Wait()
	for i := 0; i < len(texts); i += 2 {
		if texts[i] != alone {
			t.Errorf("request %d decoded with others wrote %q, alone %q", i, texts[i], alone)
		}
	}
	f, err := serving.Load(path, serving.Options{Format: serving.FormatRaw, Weights: serving.WeightsFloat32})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if w := f.Weights(); w != serving.WeightsFloat32 {
		t.Fatalf("weights %q when float32 was asked", w)
	}
}
