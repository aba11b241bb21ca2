package generate

import (
	"context"
	"fmt"
	"os"
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

// decodeConfig is a llama of about 154M parameters (12 blocks of width 1024, the stories260K
// vocabulary so that llama.cpp can run the same file): its 616 MB of float32 weights are far beyond
// the caches, so decoding is bound by memory bandwidth.
var decodeConfig = model.Config{Dim: 1024, Layers: 12, Heads: 16, KVHeads: 16, HeadDim: 64, FFN: 2816, Vocab: 512,
	NormEps: 1e-5, RopeTheta: 10000, ContextLen: 1024}

// BenchmarkDecode times decoding steps (model.Extend with one token per sequence) at batch 1 and 8,
// float32 and bfloat16 weights, after a 16-token prompt, and reports tokens/s, the weight bytes one
// step reads (every projection matrix and the head once, one embedding row per sequence) and the
// rate at which it reads them: compare with tensor's BenchmarkMemoryBandwidth. LATHE_BENCH_MODEL
// names a model file to use instead of the random decodeConfig (e.g. the GGUF llama.cpp is timed on
// by bench/generate_vs_llamacpp.sh). A quantized GGUF decodes from its blocks: its runs are named
// quant/batch=N (and there is no bfloat16 run).
func BenchmarkDecode(b *testing.B) {
	m := loadBenchModel(b)
	if quant, size := m.QuantizedWeights(); quant {
		for _, batch := range []int{1, 8} {
			b.Run(fmt.Sprintf("quant/batch=%d", batch), func(b *testing.B) { benchDecode(b, m, batch, false, size) })
		}
		return
	}
	for _, bf16 := range []bool{false, true} {
		if bf16 {
			m.UseBF16Weights()
		}
		for _, batch := range []int{1, 8} {
			name := fmt.Sprintf("f32/batch=%d", batch)
			if bf16 {
				name = fmt.Sprintf("bf16/batch=%d", batch)
			}
			b.Run(name, func(b *testing.B) { benchDecode(b, m, batch, bf16, 0) })
		}
	}
}

// benchDecode times decoding; quantBytes, when not zero, is the size of the quantized matrices (the
// head's included when the file quantized it, as randgguf's and llama-quantize's files do).
// loadBenchModel loads the model LATHE_BENCH_MODEL names, or makes the random decodeConfig llama.
func loadBenchModel(b *testing.B) *model.Model {
	var m *model.Model
	var err error
	if path := os.Getenv("LATHE_BENCH_MODEL"); path != "" {
		m, err = model.Load(path)
	} else {
		m, err = model.NewRandom(decodeConfig, 1)
	}
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchDecode(b *testing.B, m *model.Model, batch int, bf16 bool, quantBytes int) {
	cfg := m.Config()
	const prompt = 16
	steps := min(256, cfg.ContextLen-prompt)
	caches := make([]*model.KVCache, batch)
	tokens := make([][]int32, batch)
	logits := make([]float32, batch*cfg.Vocab)
	for i := range caches {
		caches[i] = m.NewKVCache(prompt + steps)
	}
	done := 0
	for b.Loop() {
		if done%steps == 0 { // a fresh prompt in every cache
			for i := range caches {
				caches[i].Reset()
				tokens[i] = make([]int32, prompt)
				for j := range tokens[i] {
					tokens[i][j] = int32((i*prompt + j) % cfg.Vocab)
				}
			}
			b.StopTimer()
			if err := m.Extend(caches, tokens, logits); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		for i := range tokens {
			tokens[i] = []int32{int32((done + i) % cfg.Vocab)}
		}
		if err := m.Extend(caches, tokens, logits); err != nil {
			b.Fatal(err)
		}
		done++
	}
	stepsPerSec := float64(b.N) / b.Elapsed().Seconds()
	C, QD, KVD := cfg.Dim, cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	matrices := cfg.Layers*(C*QD+2*C*KVD+QD*C+3*C*cfg.FFN) + cfg.Vocab*C
	elem := 4.0
	if bf16 {
		elem = 2
	}
	bytes := float64(matrices)*elem + float64(batch*C*4)
	if quantBytes > 0 {
		bytes = float64(quantBytes) + float64(batch*C*4)
	}
	b.ReportMetric(stepsPerSec*float64(batch), "tokens/s")
	b.ReportMetric(bytes/1e6, "weight-MB/step")
	b.ReportMetric(bytes*stepsPerSec/1e9, "GB/s")
}
