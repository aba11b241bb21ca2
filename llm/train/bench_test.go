package train

import (
	"testing"

	"github.com/lathe-ml/lathe/llm/cpuinfo"
	"github.com/lathe-ml/lathe/llm/model"
)

// benchConfig is a small random llama: big enough that the matrix products dominate, small enough
// for a 2-core machine.
var benchConfig = model.Config{Dim: 256, Layers: 4, Heads: 8, KVHeads: 4, HeadDim: 32, FFN: 688, Vocab: 4096,
	NormEps: 1e-5, RopeTheta: 10000, ContextLen: 256}

// issueConfig is the training-step shape of the engine-speed issue (≈58M parameters, untied head),
// the one bench/run.sh compares with PyTorch: run with -benchtime=5x, it is slow.
var issueConfig = model.Config{Dim: 512, Layers: 8, Heads: 8, KVHeads: 8, HeadDim: 64, FFN: 1376, Vocab: 32000,
	NormEps: 1e-5, RopeTheta: 10000, ContextLen: 128}

func benchStep(b *testing.B, lora *model.LoRAConfig) {
	benchStepOf(b, benchConfig, 4, 64, 32, lora)
}

// benchStepOf times steps over B sequences of T tokens whose first promptLen tokens are not counted
// in the loss (so skip the output head).
func benchStepOf(b *testing.B, cfg model.Config, B, T, promptLen int, lora *model.LoRAConfig) {
	m, err := model.NewRandom(cfg, 1)
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
			toks[j] = int32((i*7919 + j*104729) % cfg.Vocab)
		}
		exs = append(exs, model.Example{Tokens: toks, PromptLen: promptLen})
	}
	batch := model.PackBatch(exs, T, 0)
	if _, err := tr.Step(batch); err != nil { // warm-up: allocations of the first step
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuinfo.ProcessTime()
	for b.Loop() {
		if _, err := tr.Step(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(B*T)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	// CPU time per step: on a shared machine it moves less than the wall time when others take the cores.
	b.ReportMetric(float64(cpuinfo.ProcessTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
}

func BenchmarkTrainStepFull(b *testing.B) { benchStep(b, nil) }

func BenchmarkTrainStepLoRA(b *testing.B) {
	benchStep(b, &model.LoRAConfig{Rank: 8, Alpha: 16, Dropout: 0.05,
		Targets: []model.Target{model.TargetQ, model.TargetK, model.TargetV, model.TargetO, model.TargetGate, model.TargetUp, model.TargetDown}})
}

// BenchmarkTrainStepIssueShape counts every token, as `lathe bench train` and bench/torch_llama.py do.
func BenchmarkTrainStepIssueShape(b *testing.B) { benchStepOf(b, issueConfig, 4, 128, 0, nil) }

// BenchmarkTrainStepIssueShapeLoRA is the issue's shape with LoRA adapters (rank 16 on every
// projection, as `lathe bench train --lora`): the frozen base skips its weight-gradient products.
func BenchmarkTrainStepIssueShapeLoRA(b *testing.B) {
	benchStepOf(b, issueConfig, 4, 128, 0, &model.LoRAConfig{Rank: 16, Alpha: 32, Targets: []model.Target{
		model.TargetQ, model.TargetK, model.TargetV, model.TargetO, model.TargetGate, model.TargetUp, model.TargetDown}})
}
