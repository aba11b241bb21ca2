package train

import (
	"testing"

	"github.com/lathe-ml/lathe/llm/model"
)

// benchConfig is a small random llama: big enough that the matrix products dominate, small enough
// for a 2-core machine.
var benchConfig = model.Config{Dim: 256, Layers: 4, Heads: 8, KVHeads: 4, HeadDim: 32, FFN: 688, Vocab: 4096,
	NormEps: 1e-5, RopeTheta: 10000, ContextLen: 256}

func benchStep(b *testing.B, lora *model.LoRAConfig) {
	const B, T = 4, 64
	m, err := model.NewRandom(benchConfig, 1)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := New(m, Config{Schedule: Schedule{PeakLR: 1e-3, Decay: "constant"}, MaxGradNorm: 1, LoRA: lora})
	if err != nil {
		b.Fatal(err)
	}
	var exs []model.Example
	for i := range B {
		toks := make([]int32, T+1)
		for j := range toks {
			toks[j] = int32((i*7919 + j*104729) % benchConfig.Vocab)
		}
		exs = append(exs, model.Example{Tokens: toks, PromptLen: T / 2})
	}
	batch := model.PackBatch(exs, T, 0)
	if _, err := tr.Step(batch); err != nil { // warm-up: allocations of the first step
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Step(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(B*T)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkTrainStepFull(b *testing.B) { benchStep(b, nil) }

func BenchmarkTrainStepLoRA(b *testing.B) {
	benchStep(b, &model.LoRAConfig{Rank: 8, Alpha: 16, Dropout: 0.05,
		Targets: []model.Target{model.TargetQ, model.TargetK, model.TargetV, model.TargetO, model.TargetGate, model.TargetUp, model.TargetDown}})
}
