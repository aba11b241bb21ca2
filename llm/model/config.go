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

// Config is the architecture of one llama-family model, read once from the checkpoint's metadata.
type Config struct {
	Dim        int // model width (hidden_size)
	Layers     int
	Heads      int // query heads
	KVHeads    int // key/value heads (grouped-query attention when < Heads)
	HeadDim    int // usually Dim/Heads
	FFN        int // SwiGLU hidden width (intermediate_size)
	Vocab      int
	NormEps    float64 // RMSNorm epsilon
	RopeTheta  float64 // rotary base
	Scaling    RopeScaling
	ContextLen int // longest sequence the model was trained for
	// SlidingWindow > 0 limits attention to the last SlidingWindow positions (mistral v0.1).
	SlidingWindow int
	Tied          bool // output head shares the token embedding
	QKVBias       bool // Q/K/V projections have biases (qwen2)
	RopeLayout    RopeLayout
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
	case c.HeadDim%2 != 0:
		return fmt.Errorf("model config: head dim %d is odd; rotary embeddings need pairs", c.HeadDim)
	case c.RopeTheta <= 0:
		return fmt.Errorf("model config: rope theta %g must be positive", c.RopeTheta)
	case c.SlidingWindow < 0:
		return fmt.Errorf("model config: negative sliding window %d", c.SlidingWindow)
	case c.NormEps <= 0:
		return fmt.Errorf("model config: norm eps %g must be positive", c.NormEps)
	}
	if n := len(c.RopeFreqFactors); n != 0 && n != c.HeadDim/2 {
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

// ropeFrequencies returns the angular frequency of each of the HeadDim/2 rotary pairs:
// freq_i = theta^(-2i/HeadDim), then scaled as the config says.
func (c Config) ropeFrequencies() []float64 {
	half := c.HeadDim / 2
	freqs := make([]float64, half)
	for i := range freqs {
		f := math.Pow(c.RopeTheta, -float64(2*i)/float64(c.HeadDim))
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
