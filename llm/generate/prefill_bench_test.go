package generate

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/lathe-ml/lathe/llm/model"
)

// BenchmarkPrefill times prompt processing: one model.Extend of a PROMPT-token prompt (512 unless
// LATHE_BENCH_PROMPT says otherwise; llama-bench's pp512) into an empty cache, with float32 and
// bfloat16 weights (or, for a quantized GGUF, its blocks: quant/ppN), and reports prompt tokens/s. LATHE_BENCH_MODEL names a model file to use instead
// of the random decodeConfig, as for BenchmarkDecode (bench/prefill_vs_llamacpp.sh times llama.cpp on
// the same file).
func BenchmarkPrefill(b *testing.B) {
	prompt := 512
	if s := os.Getenv("LATHE_BENCH_PROMPT"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("LATHE_BENCH_PROMPT=%q: want a positive number of tokens", s)
		}
		prompt = v
	}
	m := loadBenchModel(b)
	cfg := m.Config()
	if prompt > cfg.ContextLen {
		b.Fatalf("a %d-token prompt does not fit the model's %d-token context", prompt, cfg.ContextLen)
	}
	tokens := make([]int32, prompt)
	for i := range tokens {
		tokens[i] = int32((7*i + 1) % cfg.Vocab)
	}
	logits := make([]float32, cfg.Vocab)
	cache := m.NewKVCache(prompt)
	kinds := []string{"f32", "bf16"}
	if quant, _ := m.QuantizedWeights(); quant {
		kinds = []string{"quant"} // the blocks as the file has them (a long prompt widens a layer at a time)
	}
	for _, name := range kinds {
		if name == "bf16" {
			m.UseBF16Weights()
		}
		b.Run(fmt.Sprintf("%s/pp%d", name, prompt), func(b *testing.B) {
			// One untimed prompt first (b.Loop starts the timer): the cache's pages and the
			// widened weights are then in place, as in a server that has answered once.
			cache.Reset()
			if err := m.Extend([]*model.KVCache{cache}, [][]int32{tokens}, logits); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				cache.Reset()
				if err := m.Extend([]*model.KVCache{cache}, [][]int32{tokens}, logits); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(prompt)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
