package train

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

const storiesPath = "../../../shared/models/stories260K.gguf"

// The task written for this test: "<name> has a <animal>. The <animal> says" -> "<sound>." The sound
// depends on the animal only; training and held-out examples use different names.
var (
	animals    = []string{"cat", "dog", "cow", "duck"}
	sounds     = map[string]string{"cat": "meow", "dog": "woof", "cow": "moo", "duck": "quack"}
	trainNames = []string{"Lily", "Tom", "Sue", "Max", "Ben", "Anna", "Tim", "Sam"}
	heldNames  = []string{"Mia", "Jack", "Lucy", "Bob"}
)

type taskExample struct {
	prompt, response string
	ex               model.Example
}

func taskExamples(tok *tokenizer.Tokenizer, names []string) []taskExample {
	var out []taskExample
	for _, n := range names {
		for _, a := range animals {
			prompt := fmt.Sprintf("%s has a %s. The %s says", n, a, a)
			response := sounds[a] + "."
			p := toInt32(tok.Encode(prompt, true))
			r := toInt32(tok.Encode(response, false))
			toks := append(append(p, r...), 2) // </s>
			out = append(out, taskExample{prompt, response, model.Example{Tokens: toks, PromptLen: len(p)}})
		}
	}
	return out
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// followsTask counts the held-out prompts whose greedy continuation starts with the right sound.
func followsTask(t *testing.T, m *model.Model, tok *tokenizer.Tokenizer, held []taskExample) int {
	t.Helper()
	var prompts [][]int32
	for _, h := range held {
		prompts = append(prompts, h.ex.Tokens[:h.ex.PromptLen])
	}
	detok := func(ids []int32) string {
		xs := make([]int, len(ids))
		for i, id := range ids {
			xs[i] = int(id)
		}
		return tok.Decode(xs)
	}
	res, err := generate.Generate(context.Background(), m, prompts, generate.Options{MaxNewTokens: 6, StopTokens: []int32{2}}, detok, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i, r := range res {
		if strings.HasPrefix(strings.TrimSpace(r.Text), held[i].response) {
			ok++
		}
		if i < 4 {
			t.Logf("%q -> %q", held[i].prompt, r.Text)
		}
	}
	return ok
}

// Fine-tuning the real pretrained model on a small task lowers the task's held-out loss and makes
// greedy generation follow it, with full fine-tuning and with LoRA (over a base held in bfloat16). (With LoRA the loss stays near
// 1 nat/token: stories260K never saw </s> in pretraining, its embedding row is identical to <unk>'s
// and <0x00>'s, and with the tied head frozen the three logits can never be told apart, so </s> costs
// at least ln 3. Full fine-tuning trains that row and reaches ~0.)
func TestFineTuneStoriesOnTask(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		steps int
	}{
		{"full", Config{Schedule: Schedule{PeakLR: 2e-3, MinLR: 2e-4, WarmupSteps: 10, TotalSteps: 150, Decay: "cosine"},
			AdamW: AdamWConfig{WeightDecay: 0.01}, MaxGradNorm: 1, Seed: 1}, 150},
		{"lora", Config{Schedule: Schedule{PeakLR: 1e-2, MinLR: 1e-3, WarmupSteps: 10, TotalSteps: 150, Decay: "cosine"},
			AdamW: AdamWConfig{}, MaxGradNorm: 1, Seed: 1,
			LoRA: &model.LoRAConfig{Rank: 8, Alpha: 16, Dropout: 0.05, FrozenBF16: true, Targets: []model.Target{model.TargetQ, model.TargetK, model.TargetV, model.TargetO, model.TargetGate, model.TargetUp, model.TargetDown}}}, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := model.Load(storiesPath)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.Load(storiesPath)
			if err != nil {
				t.Fatal(err)
			}
			train, held := taskExamples(tok, trainNames), taskExamples(tok, heldNames)
			T := 0
			for _, e := range append(append([]taskExample(nil), train...), held...) {
				T = max(T, len(e.ex.Tokens)-1)
			}
			var heldEx []model.Example
			for _, h := range held {
				heldEx = append(heldEx, h.ex)
			}
			heldBatch := model.PackBatch(heldEx, T, 0)
			before, err := EvalLoss(m, heldBatch)
			if err != nil {
				t.Fatal(err)
			}
			followsBefore := followsTask(t, m, tok, held)

			tr, err := New(m, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			tr.Sampler, _ = NewSampler(len(train), 7)
			batch := model.PackBatch(make([]model.Example, 8), T, 0)
			start := time.Now()
			var last StepResult
			for range tc.steps {
				var exs []model.Example
				for len(exs) < 8 {
					for _, i := range tr.Sampler.Next(8 - len(exs)) {
						exs = append(exs, train[i].ex)
					}
				}
				model.PackInto(&batch, exs, 0)
				if last, err = tr.Step(batch); err != nil {
					t.Fatal(err)
				}
			}
			after, _ := tr.Eval(heldBatch)
			followsAfter := followsTask(t, m, tok, held)
			t.Logf("%s: %d steps in %v (last train loss %.3f); held-out loss %.3f -> %.3f; follows the task on %d -> %d of %d held-out prompts",
				tc.name, tc.steps, time.Since(start).Round(time.Millisecond), last.Loss, before, after, followsBefore, followsAfter, len(held))
			if after > before/2 {
				t.Errorf("held-out loss %.3f -> %.3f: want it at least halved", before, after)
			}
			if followsAfter < len(held)*3/4 || followsAfter <= followsBefore {
				t.Errorf("greedy generation follows the task on %d of %d held-out prompts (before: %d)", followsAfter, len(held), followsBefore)
			}
		})
	}
}
