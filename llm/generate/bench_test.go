package generate

import (
	"context"
	"testing"

	"github.com/lathe-ml/lathe/llm/model"
)

var benchConfig = model.Config{Dim: 256, Layers: 4, Heads: 8, KVHeads: 4, HeadDim: 32, FFN: 688, Vocab: 4096,
	NormEps: 1e-5, RopeTheta: 10000, ContextLen: 512}

func benchGenerate(b *testing.B, prompts int) {
	m, err := model.NewRandom(benchConfig, 1)
	if err != nil {
		b.Fatal(err)
	}
	ps := make([][]int32, prompts)
	for i := range ps {
		ps[i] = []int32{1, int32(10 + i), 20, 30}
	}
	const newTokens = 64
	b.ResetTimer()
	for b.Loop() {
		if _, err := Generate(context.Background(), m, ps, Options{MaxNewTokens: newTokens, Temperature: 0.8, TopK: 40, Seed: 1}, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(prompts*newTokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkGenerateBatch1(b *testing.B) { benchGenerate(b, 1) }
func BenchmarkGenerateBatch8(b *testing.B) { benchGenerate(b, 8) }
