package format

import (
	"fmt"
	"math"
)

// RopeFreqsTensor is the GGUF tensor that carries llama-3 style rotary frequency factors.
const RopeFreqsTensor = "rope_freqs.weight"

// RopeFreqFactors returns the per-frequency divisors of llama-3 rope scaling, one per rotated
// pair (RopeDim/2): pair i rotates by pos * RopeTheta^(-2i/RopeDim) / factors[i]. A GGUF file
// carries them as rope_freqs.weight; a Hugging Face config as rope_scaling {"rope_type":
// "llama3", ...}, from which they are computed as transformers and llama.cpp's converter do.
// It returns nil when the checkpoint has no such scaling.
func RopeFreqFactors(ck Checkpoint) ([]float32, error) {
	for _, n := range ck.Names() {
		if n == RopeFreqsTensor {
			f, _, err := ck.Tensor(n)
			if err != nil {
				return nil, err
			}
			if want := ck.Config().RopeDim / 2; len(f) != want {
				return nil, fmt.Errorf("%s has %d factors, want %d", RopeFreqsTensor, len(f), want)
			}
			return f, nil
		}
	}
	return Llama3RopeFactors(ck.Config())
}

// Llama3RopeFactors computes llama-3 rope scaling factors from the config (nil if the config's
// scaling is not "llama3").
func Llama3RopeFactors(c ModelConfig) ([]float32, error) {
	s := c.RopeScaling
	if s == nil || s.Type != "llama3" {
		return nil, nil
	}
	factor, low, high, old := s.Factor, s.LowFreqFactor, s.HighFreqFactor, float64(s.OriginalMaxPositionEmbeddings)
	if factor == 0 {
		factor = 8
	}
	if low == 0 {
		low = 1
	}
	if high == 0 {
		high = 4
	}
	if old == 0 {
		old = 8192
	}
	if high <= low {
		return nil, fmt.Errorf("llama3 rope scaling: high_freq_factor %g must exceed low_freq_factor %g", high, low)
	}
	lowWavelen, highWavelen := old/low, old/high
	out := make([]float32, c.RopeDim/2)
	for i := range out {
		// float32 as the converter computes the frequencies
		freq := float64(float32(1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.RopeDim))))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = float32(factor)
		default:
			smooth := (old/wavelen - low) / (high - low)
			out[i] = float32(1 / ((1-smooth)/factor + smooth))
		}
	}
	return out, nil
}
