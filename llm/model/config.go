// Package model holds the llama-family transformer (llama 1/2/3, mistral, tinyllama, smollm, qwen2):
// its parameters, the forward and backward passes used for training, the KV-cache forward used for
// generation, and LoRA adapters.
//
// It is written in llm.c's manner: every layer is a pair of plain functions X_forward/X_backward next to
// each other (layers.go) over flat slices with the shapes in the argument names; parameters, gradients
// and activations are each one allocation carved into named tensors; a training step allocates nothing.
// The kernels are generic over float32 and float64 so the tests can check every backward against finite
// differences in float64; the exported Model runs in float32.
package model

import (
	"fmt"
	"math"
)

// RopeLayout says which pairs of a head's dimensions a rotary embedding rotates together.
type RopeLayout int

const (
	// RopeAdjacent rotates (2i, 2i+1): GGUF's layout (llama.cpp's converter permutes Q/K rows into it).
	RopeAdjacent RopeLayout = iota
	// RopeHalfSplit rotates (i, i+HeadDim/2): Hugging Face's rotate_half layout.
	RopeHalfSplit
)

func (l RopeLayout) String() string {
	if l == RopeHalfSplit {
		return "half-split"
	}
	return "adjacent"
}

// RopeScaling stretches the rotary frequencies for longer contexts.
type RopeScaling struct {
	// Type is "" or "none" (no scaling), "linear" (every frequency divided by Factor), or "llama3"
	// (low frequencies divided by Factor, high ones kept, a smooth blend between; Llama 3.1+).
	Type            string
	Factor          float64
	LowFreqFactor   float64 // llama3 only
	HighFreqFactor  float64 // llama3 only
	OriginalContext int     // llama3 only: original_max_position_embeddings
}

// Norm is a block's normalisation.
type Norm int

const (
	NormRMS   Norm = iota // x·rstd·w (llama)
	NormLayer             // (x−mean)·rstd·w + b (falcon, gpt_neox, mpt)
)

// Act is the feed-forward's kind.
type Act int

const (
	ActSwiGLU   Act = iota // down(silu(gate(x))·up(x)) (llama)
	ActGELU                // down(gelu(up(x))), the exact erf GELU
	ActGELUTanh            // down(gelu(up(x))), the tanh approximation
)

// Config is the architecture of one decoder-only model, read once from the checkpoint's metadata.
// The zero values of the block's variant (Norm, Act, the biases, ParallelAttn, ALiBi) are llama's;
// falcon, gpt_neox and mpt differ from it, and from each other, by a handful of them, as in
// llama.cpp's graph builders.
type Config struct {
	Arch       string // Hugging Face model_type, for export (llama, mistral, qwen2, falcon, gpt_neox, mpt)
	Dim        int    // model width (hidden_size)
	Layers     int
	Heads      int // query heads
	KVHeads    int // key/value heads (grouped-query attention when < Heads)
	HeadDim    int // usually Dim/Heads
	FFN        int // feed-forward hidden width (intermediate_size)
	Vocab      int
	NormEps    float64 // norm epsilon
	RopeTheta  float64 // rotary base
	Scaling    RopeScaling
	ContextLen int // longest sequence the model was trained for
	// SlidingWindow > 0 limits attention to the last SlidingWindow positions (mistral v0.1).
	SlidingWindow int
	Tied          bool // output head shares the token embedding
	QKVBias       bool // Q/K/V projections have biases (qwen2)
	RopeLayout    RopeLayout
	// RopeDim is the number of each head's dimensions that rotate (gpt_neox's rotary_pct); 0 means
	// all of them. The others pass through.
	RopeDim int

	Norm       Norm
	NormBias   bool // LayerNorm with a bias
	Act        Act
	OutputBias bool // the attention output projection has a bias
	MLPBias    bool // the feed-forward projections have biases
	// ParallelAttn: x + attn(norm1(x)) + mlp(norm2(x)) (falcon, gpt_neox) instead of two residual
	// steps; SharedNorm: norm2 is norm1 (falcon-7b's single input_layernorm).
	ParallelAttn bool
	SharedNorm   bool
	// ALiBi (mpt, falcon-rw) replaces the rotary embedding with a bias −slope_h·(t−s) on the scores;
	// ALiBiPreScale adds it before the 1/√HeadDim scaling (falcon), else after (mpt).
	ALiBi         bool
	ALiBiBiasMax  float64
	ALiBiPreScale bool
	ClipQKV       float64 // > 0: q, k, v clamped to [−ClipQKV, ClipQKV] (mpt's clip_qkv)

	// RopeFreqFactors, when set (HeadDim/2 values, GGUF llama-3's rope_freqs.weight), divide each
	// pair's frequency, as llama.cpp does; Scaling is then not applied again.
	RopeFreqFactors []float32
}

// Validate reports a configuration the kernels cannot run.
func (c Config) Validate() error {
	switch {
	case c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.HeadDim <= 0 || c.FFN <= 0 || c.Vocab <= 0:
		return fmt.Errorf("model config: sizes must be positive: %+v", c)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("model config: %d query heads not a multiple of %d kv heads", c.Heads, c.KVHeads)
	case !c.ALiBi && (c.rotDim()%2 != 0 || c.rotDim() > c.HeadDim):
		return fmt.Errorf("model config: %d rotary dims of a %d-dim head; rotary embeddings need pairs", c.rotDim(), c.HeadDim)
	case c.SharedNorm && !c.ParallelAttn:
		return fmt.Errorf("model config: a shared norm needs the parallel attention/MLP block")
	case c.ClipQKV < 0 || c.ALiBiBiasMax < 0:
		return fmt.Errorf("model config: negative clip_qkv %g or alibi_bias_max %g", c.ClipQKV, c.ALiBiBiasMax)
	case c.RopeTheta <= 0:
		return fmt.Errorf("model config: rope theta %g must be positive", c.RopeTheta)
	case c.SlidingWindow < 0:
		return fmt.Errorf("model config: negative sliding window %d", c.SlidingWindow)
	case c.NormEps <= 0:
		return fmt.Errorf("model config: norm eps %g must be positive", c.NormEps)
	}
	if n := len(c.RopeFreqFactors); n != 0 && n != c.rotDim()/2 {
		return fmt.Errorf("model config: %d rope frequency factors for head dim %d", n, c.HeadDim)
	}
	switch c.Scaling.Type {
	case "", "none":
	case "linear":
		if c.Scaling.Factor <= 0 {
			return fmt.Errorf("model config: linear rope scaling factor %g must be positive", c.Scaling.Factor)
		}
	case "llama3":
		s := c.Scaling
		if s.Factor <= 0 || s.LowFreqFactor <= 0 || s.HighFreqFactor <= s.LowFreqFactor || s.OriginalContext <= 0 {
			return fmt.Errorf("model config: invalid llama3 rope scaling %+v", s)
		}
	default:
		return fmt.Errorf("model config: rope scaling %q not supported (linear, llama3)", c.Scaling.Type)
	}
	return nil
}

// rotDim is the number of rotating dimensions of a head.
func (c Config) rotDim() int {
	if c.RopeDim > 0 {
		return c.RopeDim
	}
	return c.HeadDim
}

// gated reports whether the feed-forward is SwiGLU (it has a gate projection).
func (c Config) gated() bool { return c.Act == ActSwiGLU }

// ropeFrequencies returns the angular frequency of each of the rotDim/2 rotary pairs:
// freq_i = theta^(-2i/rotDim), then scaled as the config says.
func (c Config) ropeFrequencies() []float64 {
	half := c.rotDim() / 2
	freqs := make([]float64, half)
	for i := range freqs {
		f := math.Pow(c.RopeTheta, -float64(2*i)/float64(c.rotDim()))
		switch c.Scaling.Type {
		case "linear":
			f /= c.Scaling.Factor
		case "llama3":
			// As in Meta's reference (apply_scaling) and transformers' _compute_llama3_parameters.
			s := c.Scaling
			lowWavelen := float64(s.OriginalContext) / s.LowFreqFactor
			highWavelen := float64(s.OriginalContext) / s.HighFreqFactor
			wavelen := 2 * math.Pi / f
			switch {
			case wavelen < highWavelen:
			case wavelen > lowWavelen:
				f /= s.Factor
			default:
				smooth := (float64(s.OriginalContext)/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
				f = (1-smooth)*f/s.Factor + smooth*f
			}
		}
		if len(c.RopeFreqFactors) == half {
			f /= float64(c.RopeFreqFactors[i])
		}
		freqs[i] = f
	}
	return freqs
}

// NumParams is the number of distinct parameters (the tied head counted once).
func (c Config) NumParams() int {
	n := 0
	for _, s := range c.tensorSpecs() {
		n += s.size()
	}
	return n
}

// alibiSlopes returns each head's ALiBi slope: 2^(−bias_max·i/n) for i = 1..n with n the head count
// rounded up to a power of two, and for a head count that is not one, the odd-indexed slopes first
// then the even ones (mpt's gen_slopes; bloom's formula for falcon gives the same numbers at max 8).
func (c Config) alibiSlopes() []float64 {
	n := 1
	for n < c.Heads {
		n *= 2
	}
	maxBias := c.ALiBiBiasMax
	if maxBias == 0 {
		maxBias = 8
	}
	all := make([]float64, n)
	for i := range all {
		all[i] = math.Pow(2, -maxBias*float64(i+1)/float64(n))
	}
	if n == c.Heads {
		return all
	}
	var out []float64
	for i := 1; i < n; i += 2 {
		out = append(out, all[i])
	}
	for i := 0; i < n; i += 2 {
		out = append(out, all[i])
	}
	return out[:c.Heads]
}
