// Command randgguf writes a random llama (model.NewRandom) as a GGUF file (float32, 16-bit or quantized matrices: Q8_0,
// Q4_0, or llama-quantize's Q4_K_M mix, with ggml's reference quantizers) with the tokenizer
// of another GGUF file, so that Lathe and llama.cpp can be timed on the same weights at a size where
// decoding is memory-bound (bench/generate_vs_llamacpp.sh). The vocabulary is the tokenizer's.
//
//	go run ./bench/randgguf -tokenizer stories260K.gguf -out /tmp/rand154M.gguf
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

func main() {
	tokPath := flag.String("tokenizer", "/work/shared/models/stories260K.gguf", "GGUF file whose tokenizer (and vocabulary size) the model takes")
	out := flag.String("out", "", "GGUF file to write")
	dim := flag.Int("dim", 1024, "model width")
	layers := flag.Int("layers", 12, "blocks")
	heads := flag.Int("heads", 16, "attention heads (key/value heads too)")
	ffn := flag.Int("ffn", 2816, "SwiGLU hidden width")
	ctx := flag.Int("context", 1024, "context length")
	seed := flag.Uint64("seed", 1, "random seed")
	typ := flag.String("type", "f32", "matrix storage: f32, f16, bf16, q8_0, q4_0 or q4_k_m")
	flag.Parse()
	types := map[string]gguf.TensorType{"f32": gguf.F32, "f16": gguf.F16, "bf16": gguf.BF16, "q8_0": gguf.Q8_0, "q4_0": gguf.Q4_0, "q4_k_m": gguf.Q4_K}
	tt, ok := types[*typ]
	if !ok {
		slog.Error("randgguf: -type must be f32, f16, bf16, q8_0, q4_0 or q4_k_m", "type", *typ)
		os.Exit(2)
	}
	if err := run(*tokPath, *out, *dim, *layers, *heads, *ffn, *ctx, *seed, tt); err != nil {
		slog.Error("randgguf", "err", err)
		os.Exit(1)
	}
}

func run(tokPath, out string, dim, layers, heads, ffn, ctx int, seed uint64, tt gguf.TensorType) error {
	if out == "" {
		return fmt.Errorf("-out is required")
	}
	src, err := format.Open(tokPath)
	if err != nil {
		return fmt.Errorf("open %s: %w", tokPath, err)
	}
	mc := src.Config()
	src.Close()
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return fmt.Errorf("load the tokenizer of %s: %w", tokPath, err)
	}
	kvs, err := tok.GGUFMetadata()
	if err != nil {
		return fmt.Errorf("tokenizer metadata: %w", err)
	}
	mc.Architecture, mc.Dim, mc.Layers, mc.Heads, mc.KVHeads, mc.HeadDim, mc.FFN = "llama", dim, layers, heads, heads, dim/heads, ffn
	mc.RopeDim, mc.ContextLength, mc.TiedEmbeddings, mc.AttentionBias, mc.SlidingWindow = dim/heads, ctx, false, false, 0
	cfg, err := model.ConfigFrom(mc)
	if err != nil {
		return err
	}
	m, err := model.NewRandom(cfg, seed)
	if err != nil {
		return err
	}
	opts := format.GGUFOptions{Type: tt, Extra: kvs}
	if tt == gguf.Q4_K {
		opts.TypeOf = func(name string, shape []int) gguf.TensorType { return gguf.Q4KM(name, shape[len(shape)-1], layers) }
	}
	if err := format.WriteGGUF(out, m.ExportConfig(mc), m.NamedTensors(), opts); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Printf("%s: %d parameters, vocabulary %d\n", out, cfg.NumParams(), cfg.Vocab)
	return nil
}
