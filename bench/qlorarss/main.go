// Command qlorarss measures the peak memory of LoRA training on a frozen quantized base (QLoRA) at any
// model shape, without a checkpoint of that size: the block matrices are random Q4_K_M blocks
// (gguf.Q4KM's mix of Q4_K and Q6_K) handed to model.FromSourceQuant, which keeps them quantized as
// it does a real GGUF's. It attaches rank-16 adapters to all seven projections, allocates AdamW's two
// moments for them, runs a few forward+backward steps of B sequences of T tokens and prints the
// resident peak (VmHWM) with what the model holds.
//
//	go run ./bench/qlorarss -dim 4096 -layers 32 -heads 32 -kvheads 32 -ffn 11008 -vocab 32000 -T 128 -steps 1
//
// With -export DIR it then exports the merged model as finetune's Export does (float32 safetensors in
// DIR/hf, then DIR/model.gguf; -formats picks which) and prints the peak resident memory of the
// export alone (VmHWM reset first): -merge stream is model.MergedTensors (what Export runs), -merge
// widen the old MergeLoRA then NamedTensors.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/gguf/randquant"
	"github.com/lathe-ml/lathe/llm/model"
)

func main() {
	dim := flag.Int("dim", 1024, "model width")
	layers := flag.Int("layers", 4, "blocks")
	heads := flag.Int("heads", 16, "attention heads")
	kvHeads := flag.Int("kvheads", 16, "key/value heads")
	ffn := flag.Int("ffn", 2816, "SwiGLU hidden width (a multiple of 256)")
	vocab := flag.Int("vocab", 32000, "vocabulary")
	B := flag.Int("B", 1, "sequences per step")
	T := flag.Int("T", 128, "tokens per sequence")
	steps := flag.Int("steps", 2, "forward+backward steps")
	exportDir := flag.String("export", "", "export the merged model into this directory after the steps")
	merge := flag.String("merge", "stream", "how the export merges: stream (model.MergedTensors) or widen (MergeLoRA)")
	formats := flag.String("formats", "hf,gguf", "what the export writes: hf, gguf or both")
	flag.Parse()
	exp := exportSpec{dir: *exportDir, merge: *merge, formats: *formats}
	if err := run(*dim, *layers, *heads, *kvHeads, *ffn, *vocab, *B, *T, *steps, exp); err != nil {
		slog.Error("qlorarss", "err", err)
		os.Exit(1)
	}
}

func vmHWM() string { return procStatus("VmHWM") }

// procStatus returns a line of /proc/self/status (VmHWM: the resident peak, VmRSS: resident now).
func procStatus(key string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

type exportSpec struct{ dir, merge, formats string }

// export writes the merged model as finetune's Export does and prints its time and peak memory.
func export(m *model.Model, cfg model.Config, exp exportSpec) error {
	mc := format.ModelConfig{Architecture: "llama", Dim: cfg.Dim, Layers: cfg.Layers, Heads: cfg.Heads, KVHeads: cfg.KVHeads,
		HeadDim: cfg.HeadDim, FFN: cfg.FFN, Vocab: cfg.Vocab, NormEps: cfg.NormEps, RopeTheta: cfg.RopeTheta, RopeDim: cfg.HeadDim,
		ContextLength: cfg.ContextLen, Layout: format.LayoutGGUF, Rope: format.RopeAdjacent, BOS: 1, EOS: []int{2}, Pad: -1}
	if err := os.MkdirAll(exp.dir, 0o755); err != nil {
		return err
	}
	// The steps' peak is not the export's: start the count afresh (Linux resets VmHWM on "5").
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak: %w", err)
	}
	fmt.Printf("export (%s): resident before %s\n", exp.merge, procStatus("VmRSS"))
	start := time.Now()
	var tensors []format.NamedTensor
	switch exp.merge {
	case "stream":
		tensors = m.MergedTensors()
	case "widen":
		m.MergeLoRA()
		tensors = m.NamedTensors()
	default:
		return fmt.Errorf("-merge %q: stream or widen", exp.merge)
	}
	cfgE := m.ExportConfig(mc)
	if strings.Contains(exp.formats, "hf") {
		if err := format.WriteHF(filepath.Join(exp.dir, "hf"), cfgE, tensors, format.HFOptions{}); err != nil {
			return err
		}
		fmt.Printf("export (%s): safetensors written in %s, peak %s\n", exp.merge, time.Since(start).Round(time.Millisecond), vmHWM())
	}
	if strings.Contains(exp.formats, "gguf") {
		if err := format.WriteGGUF(filepath.Join(exp.dir, "model.gguf"), cfgE, tensors, format.GGUFOptions{}); err != nil {
			return err
		}
		fmt.Printf("export (%s): gguf written in %s, peak %s\n", exp.merge, time.Since(start).Round(time.Millisecond), vmHWM())
	}
	q, _ := m.QuantizedWeights()
	fmt.Printf("export (%s) done in %s: peak RSS of the export %s; base still quantized: %v\n", exp.merge,
		time.Since(start).Round(time.Millisecond), vmHWM(), q)
	return nil
}

func run(dim, layers, heads, kvHeads, ffn, vocab, B, T, steps int, exp exportSpec) error {
	cfg := model.Config{Dim: dim, Layers: layers, Heads: heads, KVHeads: kvHeads, HeadDim: dim / heads, FFN: ffn, Vocab: vocab,
		NormEps: 1e-5, RopeTheta: 10000, ContextLen: max(T, 512)}
	start := time.Now()
	m, err := model.FromSourceQuant(cfg, &randquant.Source{Shape: cfg.TensorShape, Layers: cfg.Layers, Rng: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		return err
	}
	_, qbytes := m.QuantizedWeights()
	fmt.Printf("shape dim %d layers %d heads %d/%d ffn %d vocab %d: %.2fB parameters, quantized matrices %.2f GiB; loaded in %s, peak %s\n",
		dim, layers, heads, kvHeads, ffn, vocab, float64(cfg.NumParams())/1e9, float64(qbytes)/(1<<30), time.Since(start).Round(time.Millisecond), vmHWM())
	targets := []model.Target{model.TargetQ, model.TargetK, model.TargetV, model.TargetO, model.TargetGate, model.TargetUp, model.TargetDown}
	if err := m.AttachLoRA(model.LoRAConfig{Rank: 16, Alpha: 32, FrozenBF16: true, Targets: targets}, 1); err != nil {
		return err
	}
	var moments [][]float32 // AdamW's m and v, as the trainer holds them
	adapter := 0
	for _, p := range m.Trainable() {
		moments = append(moments, make([]float32, len(p.Data)), make([]float32, len(p.Data)))
		adapter += len(p.Data)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var ex []model.Example
	for range B {
		toks := make([]int32, T)
		for i := range toks {
			toks[i] = int32(rng.IntN(vocab))
		}
		ex = append(ex, model.Example{Tokens: toks, PromptLen: 1})
	}
	batch := model.PackBatch(ex, T, 0)
	for s := range steps {
		t0 := time.Now()
		m.ZeroGrads()
		loss, err := m.ForwardBackward(batch, 1/batch.Count(), uint64(s))
		if err != nil {
			return err
		}
		fmt.Printf("step %d: loss %.4f in %s, peak %s\n", s, loss/batch.Count(), time.Since(t0).Round(time.Millisecond), vmHWM())
	}
	fmt.Printf("adapters %.1fM parameters (with gradients and AdamW moments %.2f GiB); peak RSS %s\n",
		float64(adapter)/1e6, float64(adapter)*16/(1<<30), vmHWM())
	_ = moments
	if exp.dir == "" {
		return nil
	}
	return export(m, cfg, exp)
}
