package train

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/llm/model"
)

func TestScheduleLR(t *testing.T) {
	cases := []struct {
		name string
		s    Schedule
		step int
		want float64
	}{
		{"warmup first step", Schedule{PeakLR: 1, WarmupSteps: 4, TotalSteps: 10}, 0, 0.25},
		{"warmup last step reaches peak", Schedule{PeakLR: 1, WarmupSteps: 4, TotalSteps: 10}, 3, 1},
		{"linear halfway", Schedule{PeakLR: 1, MinLR: 0, WarmupSteps: 4, TotalSteps: 10}, 7, 0.5},
		{"linear end is min", Schedule{PeakLR: 1, MinLR: 0.1, WarmupSteps: 0, TotalSteps: 10}, 10, 0.1},
		{"linear after end stays min", Schedule{PeakLR: 1, MinLR: 0.1, TotalSteps: 10}, 50, 0.1},
		{"cosine start", Schedule{PeakLR: 2, Decay: "cosine", TotalSteps: 10}, 0, 2},
		{"cosine halfway", Schedule{PeakLR: 2, MinLR: 0, Decay: "cosine", TotalSteps: 10}, 5, 1},
		{"cosine quarter", Schedule{PeakLR: 1, Decay: "cosine", TotalSteps: 100}, 25, 0.5 * (1 + math.Cos(math.Pi/4))},
		{"constant", Schedule{PeakLR: 3, Decay: "constant", WarmupSteps: 2, TotalSteps: 10}, 9, 3},
	}
	for _, c := range cases {
		if got := c.s.LR(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: LR(%d) = %g, want %g", c.name, c.step, got, c.want)
		}
	}
	for _, bad := range []Schedule{{PeakLR: 0}, {PeakLR: 1, MinLR: 2}, {PeakLR: 1, Decay: "step"}, {PeakLR: 1, WarmupSteps: -1}} {
		if bad.validate() == nil {
			t.Errorf("schedule %+v accepted", bad)
		}
	}
}

// AdamW against the formula computed independently in float64, with weight decay on a matrix and
// none on a norm.
func TestAdamWMatchesReference(t *testing.T) {
	w := []float32{0.5, -1, 2}
	g := []float32{0.1, -0.2, 0.3}
	norm := []float32{1, 1}
	gn := []float32{0.5, -0.5}
	params := []model.Param{
		{Tensor: model.Tensor{Name: "w", Kind: model.KindMatrix, Data: w}, Grad: g},
		{Tensor: model.Tensor{Name: "n", Kind: model.KindNorm, Data: norm}, Grad: gn},
	}
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	o := NewAdamW(cfg, params)
	ref := func(theta, grad []float64, decay bool, steps int, lr float64) []float64 {
		th := slices.Clone(theta)
		m, v := make([]float64, len(th)), make([]float64, len(th))
		for s := 1; s <= steps; s++ {
			for i := range th {
				m[i] = 0.9*m[i] + 0.1*grad[i]
				v[i] = 0.95*v[i] + 0.05*grad[i]*grad[i]
				mh, vh := m[i]/(1-math.Pow(0.9, float64(s))), v[i]/(1-math.Pow(0.95, float64(s)))
				upd := mh / (math.Sqrt(vh) + 1e-8)
				if decay {
					upd += 0.1 * th[i]
				}
				th[i] -= lr * upd
			}
		}
		return th
	}
	wantW := ref([]float64{0.5, -1, 2}, []float64{0.1, -0.2, 0.3}, true, 3, 0.01)
	wantN := ref([]float64{1, 1}, []float64{0.5, -0.5}, false, 3, 0.01)
	for range 3 {
		o.Step(0.01, 1)
	}
	for i := range w {
		if math.Abs(float64(w[i])-wantW[i]) > 1e-6 {
			t.Errorf("matrix[%d] = %g, want %g", i, w[i], wantW[i])
		}
	}
	for i := range norm {
		if math.Abs(float64(norm[i])-wantN[i]) > 1e-6 {
			t.Errorf("norm[%d] = %g, want %g (no weight decay)", i, norm[i], wantN[i])
		}
	}
}

func TestGradNormAndClipping(t *testing.T) {
	g1 := make([]float32, 70000) // more than one block
	for i := range g1 {
		g1[i] = 0.01
	}
	g2 := []float32{3, 4}
	params := []model.Param{{Grad: g1}, {Grad: g2}}
	want := math.Sqrt(70000*0.0001 + 25)
	sp := spans(params, normBlock)
	norm := gradNorm(params, sp, make([]float64, len(sp)))
	if math.Abs(norm-want) > 1e-6 {
		t.Fatalf("norm %g, want %g", norm, want)
	}
	s := clipScale(norm, 1)
	for _, p := range params {
		for i := range p.Grad {
			p.Grad[i] *= float32(s)
		}
	}
	if got := gradNorm(params, sp, make([]float64, len(sp))); math.Abs(got-1) > 1e-4 {
		t.Fatalf("norm after clipping to 1 is %g", got)
	}
	if clipScale(0.5, 1) != 1 || clipScale(5, 0) != 1 {
		t.Fatal("clipping below the limit or with clipping off")
	}
}

func TestSamplerDealsEveryExampleOncePerEpoch(t *testing.T) {
	s, err := NewSampler(10, 3)
	if err != nil {
		t.Fatal(err)
	}
	var epoch0, epoch1 []int
	for len(epoch0) < 10 {
		epoch0 = append(epoch0, s.Next(4)...)
	}
	for len(epoch1) < 10 {
		epoch1 = append(epoch1, s.Next(4)...)
	}
	if s.Epoch != 1 {
		t.Fatalf("epoch %d after two epochs' worth, want 1", s.Epoch)
	}
	a, b := slices.Sorted(slices.Values(epoch0)), slices.Sorted(slices.Values(epoch1))
	if !slices.Equal(a, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) || !slices.Equal(b, a) {
		t.Fatalf("epochs are not permutations: %v %v", epoch0, epoch1)
	}
	if slices.Equal(epoch0, epoch1) {
		t.Fatal("two epochs in the same order")
	}
	if _, err := NewSampler(0, 1); err == nil {
		t.Fatal("empty data set accepted")
	}
}

func tinyModel(t *testing.T, seed uint64) *model.Model {
	t.Helper()
	cfg := model.Config{Dim: 16, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 4, FFN: 24, Vocab: 20, NormEps: 1e-5,
		RopeTheta: 10000, ContextLen: 32}
	m, err := model.NewRandom(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tinyData is a task with something to generalise: after a random prompt and the separator 2, the
// response is the fixed phrase 10 11 12 followed by a function of the prompt's last token.
func tinyData(n int, seed uint64) []model.Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	var exs []model.Example
	for range n {
		p := []int32{1}
		for range 4 {
			p = append(p, int32(3+rng.IntN(17)))
		}
		toks := append(slices.Clone(p), 2, 10, 11, 12, 3+(p[4]*5)%17)
		exs = append(exs, model.Example{Tokens: toks, PromptLen: len(p) + 1})
	}
	return exs
}

func trainConfig(lora bool) Config {
	c := Config{Schedule: Schedule{PeakLR: 1e-2, MinLR: 1e-3, WarmupSteps: 5, TotalSteps: 150, Decay: "cosine"},
		AdamW: AdamWConfig{WeightDecay: 0.01}, MaxGradNorm: 1, Seed: 5}
	if lora {
		c.Schedule.PeakLR = 3e-2
		c.LoRA = &model.LoRAConfig{Rank: 4, Alpha: 8, Dropout: 0.1, Targets: []model.Target{model.TargetQ, model.TargetV, model.TargetGate, model.TargetDown}}
	}
	return c
}

// run trains for steps with two micro-batches of 2 per step, drawn by the trainer's sampler.
func run(t *testing.T, tr *Trainer, data []model.Example, steps int) []float64 {
	t.Helper()
	var losses []float64
	b1 := model.PackBatch(data[:2], 9, 0)
	b2 := model.PackBatch(data[:2], 9, 0)
	for range steps {
		pick := func(b *model.Batch) {
			var exs []model.Example
			for _, i := range tr.Sampler.Next(2) {
				exs = append(exs, data[i])
			}
			for len(exs) < 2 {
				exs = append(exs, data[tr.Sampler.Next(1)[0]])
			}
			model.PackInto(b, exs, 0)
		}
		pick(&b1)
		pick(&b2)
		r, err := tr.Step(b1, b2)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, r.Loss)
	}
	return losses
}

func TestTrainingLowersLoss(t *testing.T) {
	for _, lora := range []bool{false, true} {
		name := map[bool]string{false: "full", true: "lora"}[lora]
		t.Run(name, func(t *testing.T) {
			data := tinyData(64, 1)
			held := model.PackBatch(tinyData(8, 2), 9, 0)
			m := tinyModel(t, 1)
			if lora {
				// A frozen head of N(0, 0.02²) rows cannot spread the logits by more than about ±0.3
				// whatever the adapters do; a base with larger weights can be steered.
				for _, p := range m.Tensors() {
					if p.Kind != model.KindNorm {
						for i := range p.Data {
							p.Data[i] *= 15
						}
					}
				}
			}
			tr, err := New(m, trainConfig(lora))
			if err != nil {
				t.Fatal(err)
			}
			tr.Sampler, _ = NewSampler(len(data), 9)
			before, _ := tr.Eval(held)
			ls := run(t, tr, data, 150)
			t.Logf("train loss %.3f -> %.3f", ls[0], ls[len(ls)-1])
			after, _ := tr.Eval(held)
			t.Logf("%s: held-out loss %.3f -> %.3f", name, before, after)
			if !(after < before-0.3) {
				t.Fatalf("held-out loss %.3f -> %.3f: training did not learn", before, after)
			}
		})
	}
}

// One step over two micro-batches equals one step over one batch holding both.
func TestGradientAccumulationEqualsOneBigBatch(t *testing.T) {
	data := tinyData(4, 3)
	a, b := tinyModel(t, 2), tinyModel(t, 2)
	ta, _ := New(a, trainConfig(false))
	tb, _ := New(b, trainConfig(false))
	ra, err := ta.Step(model.PackBatch(data[:2], 9, 0), model.PackBatch(data[2:], 9, 0))
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := tb.Step(model.PackBatch(data, 9, 0))
	if math.Abs(ra.Loss-rb.Loss) > 1e-6 || math.Abs(ra.GradNorm-rb.GradNorm) > 1e-5*rb.GradNorm {
		t.Fatalf("accumulated loss %g norm %g, one batch loss %g norm %g", ra.Loss, ra.GradNorm, rb.Loss, rb.GradNorm)
	}
	pa, pb := a.Tensors(), b.Tensors()
	for i := range pa {
		for j := range pa[i].Data {
			if d := math.Abs(float64(pa[i].Data[j] - pb[i].Data[j])); d > 1e-6 {
				t.Fatalf("%s[%d] differs by %g", pa[i].Name, j, d)
			}
		}
	}
}

func weightsOf(m *model.Model) [][]float32 {
	var out [][]float32
	for _, p := range m.Tensors() {
		out = append(out, slices.Clone(p.Data))
	}
	for _, p := range m.AdapterTensors() {
		out = append(out, slices.Clone(p.Data))
	}
	return out
}

func bitsEqual(a, b [][]float32) bool {
	for i := range a {
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				return false
			}
		}
	}
	return len(a) == len(b)
}

// A run stopped after 4 steps, saved, and resumed in a fresh trainer from the base model ends
// bit-identical to a run of 8 steps that never stopped.
func TestResumeIsBitIdentical(t *testing.T) {
	for _, mode := range []string{"full", "lora", "lora-bf16"} {
		t.Run(mode, func(t *testing.T) {
			lora := mode != "full"
			cfg := trainConfig(lora)
			if mode == "lora-bf16" {
				lc := *cfg.LoRA
				lc.FrozenBF16 = true
				cfg.LoRA = &lc
			}
			data := tinyData(10, 4)
			straight, _ := New(tinyModel(t, 3), cfg)
			straight.Sampler, _ = NewSampler(len(data), 11)
			wantLosses := run(t, straight, data, 8)

			first, _ := New(tinyModel(t, 3), cfg)
			first.Sampler, _ = NewSampler(len(data), 11)
			gotLosses := run(t, first, data, 4)
			path := filepath.Join(t.TempDir(), "ckpt.bin")
			if err := first.Save(path, json.RawMessage(`{"epoch_loss":1.5}`)); err != nil {
				t.Fatal(err)
			}
			resumed, user, err := Resume(tinyModel(t, 3), path)
			if err != nil {
				t.Fatal(err)
			}
			if string(user) != `{"epoch_loss":1.5}` || resumed.StepsDone() != 4 {
				t.Fatalf("restored user state %s, step %d", user, resumed.StepsDone())
			}
			gotLosses = append(gotLosses, run(t, resumed, data, 4)...)
			if !slices.Equal(gotLosses, wantLosses) {
				t.Fatalf("losses differ:\nresumed  %v\nstraight %v", gotLosses, wantLosses)
			}
			if !bitsEqual(weightsOf(resumed.Model), weightsOf(straight.Model)) {
				t.Fatal("weights after resume differ from the uninterrupted run")
			}
		})
	}
}

func TestCorruptCheckpointIsRefused(t *testing.T) {
	tr, _ := New(tinyModel(t, 1), trainConfig(false))
	path := filepath.Join(t.TempDir(), "ckpt.bin")
	if err := tr.Save(path, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	raw[len(raw)/2] ^= 0x40
	os.WriteFile(path, raw, 0o644)
	if _, _, err := Resume(tinyModel(t, 1), path); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("flipped bit: got %v, want ErrCorruptCheckpoint", err)
	}
	os.WriteFile(path, raw[:20], 0o644)
	if _, _, err := Resume(tinyModel(t, 1), path); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("truncated: got %v, want ErrCorruptCheckpoint", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestAllMaskedBatchIsAnError(t *testing.T) {
	tr, _ := New(tinyModel(t, 1), trainConfig(false))
	b := model.PackBatch([]model.Example{{Tokens: []int32{1, 2, 3}, PromptLen: 5}}, 4, 0)
	if _, err := tr.Step(b); err == nil {
		t.Fatal("a step with no counted token succeeded")
	}
}

func TestLoRAResumeRefusesAnotherBase(t *testing.T) {
	tr, _ := New(tinyModel(t, 1), trainConfig(true))
	path := filepath.Join(t.TempDir(), "ckpt.bin")
	if err := tr.Save(path, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Resume(tinyModel(t, 2), path); err == nil {
		t.Fatal("adapters resumed onto a different base model")
	}
	if _, _, err := Resume(tinyModel(t, 1), path); err != nil {
		t.Fatalf("same base refused: %v", err)
	}
}

// Step's gradScale (how clipping is applied) is the same as scaling the gradients first.
func TestAdamWGradScale(t *testing.T) {
	mk := func(g []float32) ([]float32, *AdamW) {
		w := []float32{0.3, -0.7, 1e-3}
		return w, NewAdamW(AdamWConfig{Eps: 1e-3, WeightDecay: 0.1}, []model.Param{{Tensor: model.Tensor{Kind: model.KindMatrix, Data: w}, Grad: g}})
	}
	wa, a := mk([]float32{0.2, -0.4, 0.01})
	wb, b := mk([]float32{0.1, -0.2, 0.005})
	for range 3 {
		a.Step(0.1, 0.5)
		b.Step(0.1, 1)
	}
	for i := range wa {
		if math.Abs(float64(wa[i]-wb[i])) > 1e-7 {
			t.Fatalf("scaled step %v, step on scaled gradients %v", wa, wb)
		}
	}
}

// doneAfter is a context whose Err turns to Canceled after it has been asked `checks` times: a stop
// that lands at a chosen point of a step, without timing.
type doneAfter struct {
	context.Context
	checks int
	asked  int
}

func (c *doneAfter) Done() <-chan struct{} { return make(chan struct{}) } // non-nil: can be cancelled
func (c *doneAfter) Err() error {
	c.asked++
	if c.asked > c.checks {
		return context.Canceled
	}
	return nil
}

// A step stopped part way (in the forward, in the backward, between micro-batches) returns the
// context's error and leaves weights, optimizer and step count as they were; training then goes on
// exactly as if the stopped step had never been tried, full and LoRA alike.
func TestStepStoppedMidwayChangesNothing(t *testing.T) {
	for _, lora := range []bool{false, true} {
		stops := 0
		for checks := 1; checks <= 12; checks++ {
			data := tinyData(10, 4)
			b1, b2 := model.PackBatch(data[:3], 9, 0), model.PackBatch(data[3:6], 9, 0)
			straight, _ := New(tinyModel(t, 3), trainConfig(lora))
			stopped, _ := New(tinyModel(t, 3), trainConfig(lora))
			for _, tr := range []*Trainer{straight, stopped} {
				if _, err := tr.Step(b1, b2); err != nil {
					t.Fatal(err)
				}
			}
			before := weightsOf(stopped.Model)
			_, err := stopped.StepContext(&doneAfter{Context: context.Background(), checks: checks}, b1, b2)
			if err == nil {
				continue // the step finished before the stop: nothing to check for this point
			}
			stops++
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("lora=%v stop after %d checks: err = %v, want context.Canceled", lora, checks, err)
			}
			if stopped.StepsDone() != 1 || !bitsEqual(weightsOf(stopped.Model), before) {
				t.Fatalf("lora=%v stop after %d checks: the stopped step changed the weights or the step count (%d)", lora, checks, stopped.StepsDone())
			}
			want, err1 := straight.Step(b2, b1)
			got, err2 := stopped.Step(b2, b1)
			if err1 != nil || err2 != nil || got.Loss != want.Loss || got.GradNorm != want.GradNorm ||
				!bitsEqual(weightsOf(stopped.Model), weightsOf(straight.Model)) {
				t.Fatalf("lora=%v stop after %d checks: the next step differs (loss %v vs %v, norm %v vs %v, errs %v %v)",
					lora, checks, got.Loss, want.Loss, got.GradNorm, want.GradNorm, err1, err2)
			}
		}
		// A step asks at each layer of each micro-batch's forward and backward: all twelve points
		// fall inside it.
		if stops != 12 {
			t.Fatalf("lora=%v: %d of 12 stop points ended the step", lora, stops)
		}
	}
}
