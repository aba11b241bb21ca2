package train

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tensor"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// storyExamples writes n short stories in the style of TinyStories from a seeded grammar (names,
// places, things and feelings drawn at random, so that a model learns the pattern but cannot predict
// the draws: its loss settles well above zero) and tokenizes them, truncated to T+1 tokens.
func storyExamples(tok *tokenizer.Tokenizer, n, T int, seed uint64) []model.Example {
	rng := rand.New(rand.NewPCG(seed, 99))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	girls := []string{"Lily", "Sue", "Anna", "Mia", "Lucy", "Emma"}
	boys := []string{"Tom", "Max", "Ben", "Tim", "Sam", "Jack"}
	places := []string{"park", "garden", "house", "beach", "forest", "school"}
	things := []string{"ball", "kite", "book", "cake", "hat", "toy car", "red box", "little boat", "big tree"}
	feelings := []string{"happy", "sad", "scared", "excited", "tired", "surprised"}
	friends := []string{"mom", "dad", "friend", "dog", "cat", "teacher"}
	var out []model.Example
	for range n {
		name, kind, he, his := pick(girls), "girl", "She", "her"
		if rng.IntN(2) == 0 {
			name, kind, he, his = pick(boys), "boy", "He", "his"
		}
		place, thing, feel, friend := pick(places), pick(things), pick(feelings), pick(friends)
		text := fmt.Sprintf("Once upon a time, there was a little %s named %s. %s loved to play in the %s. "+
			"One day, %s found a %s. %s was very %s. %s showed the %s to %s %s. They played with the %s all day.",
			kind, name, he, place, name, thing, he, feel, name, thing, his, friend, thing)
		ids := tok.Encode(text, true)
		toks := make([]int32, min(len(ids), T+1))
		for i := range toks {
			toks[i] = int32(ids[i])
		}
		out = append(out, model.Example{Tokens: toks, PromptLen: 1})
	}
	return out
}

// precisionRun fine-tunes stories260K for steps steps of 8 stories and returns each step's training
// loss and the held-out loss at the end. setup configures the model before the trainer is made. With
// data set, it also records the token sequences of every step and of the held-out set there.
func precisionRun(t *testing.T, cfg Config, steps int, setup func(*model.Model), data *precisionData) ([]float64, float64) {
	t.Helper()
	m, err := model.Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	const T = 64
	// Fresh stories for every step (none seen twice: the loss measures what was learned, not what was
	// memorized) and 64 held out.
	train, held := storyExamples(tok, 8*steps, T, 1), storyExamples(tok, 64, T, 2)
	if setup != nil {
		setup(m)
	}
	tr, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr.Sampler, _ = NewSampler(len(train), 7)
	batch := model.PackBatch(make([]model.Example, 8), T, 0)
	losses := make([]float64, 0, steps)
	for range steps {
		var exs []model.Example
		for len(exs) < 8 {
			for _, i := range tr.Sampler.Next(8 - len(exs)) {
				exs = append(exs, train[i])
			}
		}
		model.PackInto(&batch, exs, 0)
		if data != nil {
			var seqs [][]int32
			for _, e := range exs {
				seqs = append(seqs, e.Tokens)
			}
			data.Steps = append(data.Steps, seqs)
		}
		r, err := tr.Step(batch)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, r.Loss)
	}
	after, err := tr.Eval(model.PackBatch(held, T, 0))
	if err != nil {
		t.Fatal(err)
	}
	if data != nil {
		data.T = T
		for _, e := range held {
			data.Held = append(data.Held, e.Tokens)
		}
	}
	return losses, after
}

// precisionData is what TestMixedBF16Loss writes to $LATHE_PRECISION_DUMP for
// bench/torch_bf16_loss.py, which runs the same fine-tune in PyTorch in float32 and under bf16
// autocast: the sequences (each predicted from its second token on, T tokens at most), the run's
// settings and Lathe's loss curves.
type precisionData struct {
	T        int         `json:"T"`
	Steps    [][][]int32 `json:"steps"`
	Held     [][]int32   `json:"held"`
	Config   Config      `json:"config"`
	LatheF32 []float64   `json:"lathe_fp32"`
	LatheBF  []float64   `json:"lathe_bf16"`
	HeldF32  float64     `json:"lathe_held_fp32"`
	HeldBF   float64     `json:"lathe_held_bf16"`
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// compareLossCurves checks that the bfloat16 run's loss curve stays within 1% of the float32 run's:
// the mean training loss over all steps, over the last 50, and the held-out loss at the end. It also
// checks that both runs learned (the last 50 steps' loss well under the first 10's), and, where the
// CPU multiplies bfloat16, that the two runs differ at all (the bfloat16 products did run).
func compareLossCurves(t *testing.T, name string, f32, bf []float64, heldF32, heldBF float64) {
	t.Helper()
	rel := func(a, b float64) float64 { return math.Abs(a-b) / b }
	meanAll, meanLast := rel(mean(bf), mean(f32)), rel(mean(bf[len(bf)-50:]), mean(f32[len(f32)-50:]))
	heldRel := rel(heldBF, heldF32)
	t.Logf("%s over %d steps: mean loss float32 %.4f, bfloat16 %.4f (%.3f%%); last 50 steps %.4f vs %.4f (%.3f%%); held-out %.4f vs %.4f (%.3f%%); first step %.4f",
		name, len(f32), mean(f32), mean(bf), 100*meanAll, mean(f32[len(f32)-50:]), mean(bf[len(bf)-50:]), 100*meanLast, heldF32, heldBF, 100*heldRel, f32[0])
	for _, c := range []struct {
		what string
		rel  float64
	}{{"mean loss", meanAll}, {"last 50 steps' loss", meanLast}, {"held-out loss", heldRel}} {
		if c.rel > 0.01 {
			t.Errorf("%s: %s differs by %.2f%% between bfloat16 and float32 (limit 1%%)", name, c.what, 100*c.rel)
		}
	}
	for _, run := range []struct {
		what   string
		losses []float64
	}{{"float32", f32}, {"bfloat16", bf}} {
		if first, last := mean(run.losses[:10]), mean(run.losses[len(run.losses)-50:]); last > 0.7*first {
			t.Errorf("%s: the %s run did not learn: loss %.3f over the first 10 steps, %.3f over the last 50", name, run.what, first, last)
		}
	}
	if tensor.BF16Native() && slices.Equal(f32, bf) {
		t.Errorf("%s: the bfloat16 run's losses equal the float32 run's bit for bit: its products did not run in bfloat16", name)
	}
}

// TestLoRABF16ProductsLoss fine-tunes stories260K with LoRA on its base frozen in bfloat16 for 300
// steps twice: the base's products in bfloat16 (the default where the CPU has AVX512_BF16) and
// widened to float32 (WidenFrozen). The loss curves must agree within 1%.
func TestLoRABF16ProductsLoss(t *testing.T) {
	if !tensor.BF16Native() {
		t.Log("this CPU has no AVX512_BF16: both runs widen the base (the comparison is trivial)")
	}
	lora := func(widen bool) Config {
		return Config{Schedule: Schedule{PeakLR: 1e-2, MinLR: 1e-3, WarmupSteps: 20, TotalSteps: 300, Decay: "cosine"},
			MaxGradNorm: 1, Seed: 1,
			LoRA: &model.LoRAConfig{Rank: 8, Alpha: 16, Dropout: 0.05, FrozenBF16: true, WidenFrozen: widen,
				Targets: []model.Target{model.TargetQ, model.TargetK, model.TargetV, model.TargetO, model.TargetGate, model.TargetUp, model.TargetDown}}}
	}
	f32, heldF32 := precisionRun(t, lora(true), 300, nil, nil)
	bf, heldBF := precisionRun(t, lora(false), 300, nil, nil)
	compareLossCurves(t, "LoRA", f32, bf, heldF32, heldBF)
}

// TestMixedBF16Loss fine-tunes every weight of stories260K for 300 steps in float32 and with bfloat16
// mixed precision (SetMixedBF16): the loss curves must agree within 1%. With LATHE_PRECISION_DUMP set
// it writes the run there for bench/torch_bf16_loss.py (PyTorch's bf16 autocast on the same data).
func TestMixedBF16Loss(t *testing.T) {
	cfg := Config{Schedule: Schedule{PeakLR: 2e-3, MinLR: 2e-4, WarmupSteps: 20, TotalSteps: 300, Decay: "cosine"},
		AdamW: AdamWConfig{WeightDecay: 0.01}, MaxGradNorm: 1, Seed: 1}
	data := &precisionData{Config: cfg}
	f32, heldF32 := precisionRun(t, cfg, 300, nil, data)
	bf, heldBF := precisionRun(t, cfg, 300, func(m *model.Model) { m.SetMixedBF16(true) }, nil)
	compareLossCurves(t, "full fine-tuning", f32, bf, heldF32, heldBF)
	if path := os.Getenv("LATHE_PRECISION_DUMP"); path != "" {
		data.LatheF32, data.LatheBF, data.HeldF32, data.HeldBF = f32, bf, heldF32, heldBF
		js, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
