package train_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
	"github.com/lathe-ml/lathe/llm/train"
)

// The whole fine-tuning journey through the engine's API: load, tokenize, train with LoRA,
// checkpoint, evaluate, generate, merge and export.
func Example() {
	const path = "../../../shared/models/stories260K.gguf"
	ck, err := format.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	baseCfg := ck.Config()
	m, err := model.FromCheckpoint(ck) // or model.Load(path)
	ck.Close()
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	ids := func(text string, bos bool) []int32 {
		var out []int32
		for _, id := range tok.Encode(text, bos) {
			out = append(out, int32(id))
		}
		return out
	}
	// One example: prompt tokens then response tokens; only the response is in the loss.
	prompt := ids("Lily has a cat. The cat says", true)
	examples := []model.Example{{Tokens: append(append(prompt, ids("meow.", false)...), 2), PromptLen: len(prompt)}}
	batch := model.PackBatch(examples, 16, 0)

	tr, err := train.New(m, train.Config{
		Schedule:    train.Schedule{PeakLR: 1e-2, MinLR: 1e-3, WarmupSteps: 2, TotalSteps: 20, Decay: "cosine"},
		AdamW:       train.AdamWConfig{WeightDecay: 0.01},
		MaxGradNorm: 1,
		LoRA:        &model.LoRAConfig{Rank: 8, Alpha: 16, Dropout: 0.05, Targets: []model.Target{model.TargetQ, model.TargetV}},
		Seed:        1,
	})
	if err != nil {
		log.Fatal(err)
	}
	tr.Sampler, _ = train.NewSampler(len(examples), 1)
	for range 20 {
		tr.Sampler.Next(1)
		if _, err := tr.Step(batch); err != nil { // Step(b1, b2, ...) accumulates micro-batches
			log.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "lathe-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// The whole training state; train.Resume(freshBaseModel, path) continues bit-identically.
	if err := tr.Save(filepath.Join(dir, "step-20.ckpt"), []byte(`{"epoch":0}`)); err != nil {
		log.Fatal(err)
	}

	loss, _ := tr.Eval(batch)
	res, _ := generate.Generate(context.Background(), m, [][]int32{prompt},
		generate.Options{MaxNewTokens: 5, StopTokens: []int32{2}},
		func(ids []int32) string {
			xs := make([]int, len(ids))
			for i, id := range ids {
				xs[i] = int(id)
			}
			return tok.Decode(xs)
		}, nil)

	m.MergeLoRA() // fold the adapters into the base weights, then write with llm/format
	meta, err := tok.GGUFMetadata()
	if err != nil {
		log.Fatal(err)
	}
	err = format.WriteGGUF(filepath.Join(dir, "merged.gguf"), m.ExportConfig(baseCfg), m.NamedTensors(), format.GGUFOptions{Extra: meta})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(loss < 1.5, res[0].Finish != "")
	// Output: true true
}
