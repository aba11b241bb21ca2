// Package train fine-tunes an llm/model.Model: AdamW, the learning-rate schedule, global-norm gradient
// clipping, gradient accumulation, full fine-tuning or LoRA, a deterministic data sampler, and
// checkpoints of the whole training state that resume bit-identically.
package train

import (
	"fmt"
	"math"

	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tensor"
)

// Schedule is linear warmup to PeakLR over WarmupSteps, then a decay to MinLR at TotalSteps.
type Schedule struct {
	PeakLR      float64
	MinLR       float64
	WarmupSteps int
	TotalSteps  int
	Decay       string // "linear" (default), "cosine" or "constant"
}

func (s Schedule) validate() error {
	if s.PeakLR <= 0 || s.MinLR < 0 || s.MinLR > s.PeakLR {
		return fmt.Errorf("schedule: learning rates peak %g, min %g: want 0 <= min <= peak, peak > 0", s.PeakLR, s.MinLR)
	}
	if s.WarmupSteps < 0 || s.TotalSteps < 0 {
		return fmt.Errorf("schedule: negative steps (warmup %d, total %d)", s.WarmupSteps, s.TotalSteps)
	}
	switch s.Decay {
	case "", "linear", "cosine", "constant":
	default:
		return fmt.Errorf("schedule: decay %q not one of linear, cosine, constant", s.Decay)
	}
	return nil
}

// LR is the learning rate of step (0-based): PeakLR·(step+1)/WarmupSteps during warmup, then the decay
// from PeakLR at the end of warmup to MinLR at TotalSteps (MinLR after it).
func (s Schedule) LR(step int) float64 {
	if step < s.WarmupSteps {
		return s.PeakLR * float64(step+1) / float64(s.WarmupSteps)
	}
	if s.Decay == "constant" || s.TotalSteps <= s.WarmupSteps {
		return s.PeakLR
	}
	frac := min(1, float64(step-s.WarmupSteps)/float64(s.TotalSteps-s.WarmupSteps))
	if s.Decay == "cosine" {
		return s.MinLR + (s.PeakLR-s.MinLR)*0.5*(1+math.Cos(math.Pi*frac))
	}
	return s.PeakLR + (s.MinLR-s.PeakLR)*frac
}

// AdamWConfig holds AdamW's hyperparameters (Loshchilov & Hutter: decoupled weight decay).
type AdamWConfig struct {
	Beta1, Beta2 float64 // default 0.9, 0.999
	Eps          float64 // default 1e-8
	WeightDecay  float64 // applied to projection matrices and LoRA matrices only
}

func (c AdamWConfig) withDefaults() AdamWConfig {
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	return c
}

// decays says which tensors get weight decay: the projection matrices and LoRA matrices. Norm gains,
// biases and the token embedding (also the tied output head) do not, as in minGPT and most
// Hugging Face recipes: decaying a gain pulls it toward 0, not toward "no change", and decaying rare
// tokens' embeddings erases them between their few updates.
func decays(k model.Kind) bool { return k == model.KindMatrix || k == model.KindLoRA }

// AdamW updates a set of parameters from their gradients. The two moments of every parameter are one
// allocation, carved in the parameters' order.
type AdamW struct {
	cfg    AdamWConfig
	params []model.Param
	slab   []float32
	m, v   [][]float32
	t      int // updates done
}

// NewAdamW returns an optimizer over params with zero moments.
func NewAdamW(cfg AdamWConfig, params []model.Param) *AdamW {
	o := &AdamW{cfg: cfg.withDefaults(), params: params}
	n := 0
	for _, p := range params {
		n += len(p.Data)
	}
	o.slab = make([]float32, 2*n)
	off := 0
	for _, p := range params {
		k := len(p.Data)
		o.m = append(o.m, o.slab[off:off+k:off+k])
		o.v = append(o.v, o.slab[n+off:n+off+k:n+off+k])
		off += k
	}
	return o
}

// Step applies one update with learning rate lr to the gradients scaled by gradScale (1 = as they
// are; the clipping factor otherwise, so clipping costs no extra pass over the gradients):
// g ← gradScale·g; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; θ ← θ − lr·(m̂/(√v̂ + ε) + λ·θ), with
// m̂, v̂ bias-corrected.
func (o *AdamW) Step(lr, gradScale float64) {
	o.t++
	c := o.cfg
	// The fused one-pass kernel, over blocks of 64 KiB so both workers share every tensor.
	const block = 16384
	for i, p := range o.params {
		lambda := 0.0
		if decays(p.Kind) {
			lambda = c.WeightDecay
		}
		k := tensor.NewAdamWCoeffs(o.t, lr, c.Beta1, c.Beta2, c.Eps, lambda, gradScale)
		theta, g, m, v := p.Data, p.Grad, o.m[i], o.v[i]
		n := len(theta)
		tensor.Parallel((n+block-1)/block, func(lo, hi int) {
			a, b := lo*block, min(hi*block, n)
			tensor.AdamW(theta[a:b], g[a:b], m[a:b], v[a:b], k)
		})
	}
}

// gradNorm returns √Σ g² over all gradients, summed in fixed blocks so the result does not depend on
// the number of threads.
func gradNorm(params []model.Param, partial []float64) float64 {
	var total float64
	for _, p := range params {
		g := p.Grad
		blocks := (len(g) + 65535) / 65536
		tensor.Parallel(blocks, func(lo, hi int) {
			for b := lo; b < hi; b++ {
				partial[b] = tensor.SumSquares(g[b*65536 : min((b+1)*65536, len(g))])
			}
		})
		for _, s := range partial[:blocks] {
			total += s
		}
	}
	return math.Sqrt(total)
}

// clipScale is the factor that brings the global norm down to maxNorm (1 when it is below, or when
// clipping is off).
func clipScale(norm, maxNorm float64) float64 {
	if maxNorm <= 0 || norm <= maxNorm {
		return 1
	}
	return maxNorm / (norm + 1e-6)
}
