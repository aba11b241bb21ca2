package model

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lathe-ml/lathe/llm/format"
)

// Load reads a model from a GGUF file or a Hugging Face directory (config.json + safetensors). The
// model keeps the checkpoint's rotary layout (adjacent for GGUF llama/mistral, half-split for Hugging
// Face and GGUF qwen2), so no rows are permuted on load.
func Load(path string) (*Model, error) {
	ck, err := format.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	defer ck.Close()
	m, err := FromCheckpoint(ck)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// FromCheckpoint builds a model from an open checkpoint. A GGUF file whose block matrices are
// quantized (Q8_0, Q4_0, Q4_K, Q6_K) keeps them in their blocks (see QuantizedWeights): generation
// multiplies the blocks and LoRA trains on them as a frozen base; WidenWeights turns them into
// float32.
func FromCheckpoint(ck format.Checkpoint) (*Model, error) {
	cfg, err := checkpointConfig(ck)
	if err != nil {
		return nil, err
	}
	if quantizedMatrices(cfg, ck) {
		return FromSourceQuant(cfg, ck)
	}
	return FromSource(cfg, ck)
}

// checkpointConfig is the model configuration of a checkpoint, with its rope_freqs.weight tensor (the
// llama-3 scaling as per-frequency factors) when it has one.
func checkpointConfig(ck format.Checkpoint) (Config, error) {
	cfg, err := ConfigFrom(ck.Config())
	if err != nil {
		return Config{}, err
	}
	if slices.Contains(ck.Names(), "rope_freqs.weight") {
		f, _, err := ck.Tensor("rope_freqs.weight")
		if err != nil {
			return Config{}, fmt.Errorf("read rope_freqs.weight: %w", err)
		}
		cfg.RopeFreqFactors = f
		cfg.Scaling = RopeScaling{} // the factors already are the llama-3 scaling
	}
	return cfg, nil
}

// ConfigFrom converts a checkpoint's configuration, refusing what the kernels do not run.
func ConfigFrom(mc format.ModelConfig) (Config, error) {
	if _, ok := format.LookupArch(mc.Architecture); !ok {
		return Config{}, fmt.Errorf("architecture %q not supported (%s)", mc.Architecture, strings.Join(format.Architectures(), ", "))
	}
	cfg := Config{Arch: mc.Architecture, Dim: mc.Dim, Layers: mc.Layers, Heads: mc.Heads, KVHeads: mc.KVHeads, HeadDim: mc.HeadDim,
		FFN: mc.FFN, Vocab: mc.Vocab, NormEps: mc.NormEps, RopeTheta: mc.RopeTheta, ContextLen: mc.ContextLength,
		Tied: mc.TiedEmbeddings, QKVBias: mc.AttentionBias, RopeLayout: RopeAdjacent, SlidingWindow: mc.SlidingWindow,
		NormBias: mc.NormBias, OutputBias: mc.OutputBias, MLPBias: mc.MLPBias, ParallelAttn: mc.ParallelAttn,
		SharedNorm: mc.SharedNorm, ALiBi: mc.ALiBi, ALiBiBiasMax: mc.ALiBiBiasMax, ALiBiPreScale: mc.ALiBiPreScale,
		ClipQKV: mc.ClipQKV}
	if mc.RopeDim != mc.HeadDim {
		cfg.RopeDim = mc.RopeDim
	}
	if mc.Norm == format.NormLayer {
		cfg.Norm = NormLayer
	}
	switch mc.Act {
	case "", "silu":
	case "gelu":
		cfg.Act = ActGELU
	case "gelu_tanh":
		cfg.Act = ActGELUTanh
	default:
		return Config{}, fmt.Errorf("activation %q not supported", mc.Act)
	}
	if mc.Rope == format.RopeHalf {
		cfg.RopeLayout = RopeHalfSplit
	}
	if s := mc.RopeScaling; s != nil {
		switch s.Type {
		case "", "default", "none":
		case "linear", "llama3":
			cfg.Scaling = RopeScaling{Type: s.Type, Factor: s.Factor, LowFreqFactor: s.LowFreqFactor,
				HighFreqFactor: s.HighFreqFactor, OriginalContext: s.OriginalMaxPositionEmbeddings}
		default:
			return Config{}, fmt.Errorf("rope scaling %q not supported (linear, llama3)", s.Type)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
