package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/lathe-ml/lathe/llm/model"
)

// Config is everything that decides a run's numbers besides the model and the data.
type Config struct {
	Schedule    Schedule
	AdamW       AdamWConfig
	MaxGradNorm float64 // clip the global gradient norm to this; 0 turns clipping off
	// LoRA, when set, attaches adapters (if the model has none yet) and trains only them; nil trains
	// every weight (full fine-tuning).
	LoRA *model.LoRAConfig
	Seed uint64 // LoRA initialisation and dropout masks
}

// Network is what a Trainer trains: its trainable tensors with their gradients, and LoRA. llm/model's
// decoder-only Model is one (New); llm/t5's encoder-decoder Model is another (NewNetwork).
type Network interface {
	// Trainable lists the tensors the optimizer updates, with their gradients: every weight, or only
	// the adapters once LoRA is attached.
	Trainable() []model.Param
	// DiscardGrads starts a step's accumulation of gradients.
	DiscardGrads()
	LoRA() (model.LoRAConfig, bool)
	AttachLoRA(lc model.LoRAConfig, seed uint64) error
	// Fingerprint identifies the frozen base weights a LoRA checkpoint belongs to.
	Fingerprint() string
}

// MicroStep runs the forward and backward of micro-batch i, adding gradScale·∂loss/∂θ to the
// gradients, and returns its summed loss; dropoutSeed is the micro-batch's dropout seed.
type MicroStep func(ctx context.Context, i int, gradScale float64, dropoutSeed uint64) (float64, error)

// Trainer runs optimizer steps on a model. It is deterministic: the same model, config, seed, batches
// and thread count give bit-identical weights.
type Trainer struct {
	// Model is the decoder-only model of a trainer made by New or Resume; nil for another Network.
	Model *model.Model
	// Sampler, when set, is saved in and restored from checkpoints with the rest of the state.
	Sampler *Sampler
	net     Network
	arch    json.RawMessage // the network's configuration, recorded in checkpoints
	cfg     Config
	params  []model.Param
	opt     *AdamW
	step    int
	// the gradient norm's blocks and their partial sums
	normSpans []span
	partial   []float64
}

// StepResult describes one optimizer step.
type StepResult struct {
	Step     int     // steps done, this one included
	Loss     float64 // mean loss over the counted (mask ≠ 0) tokens of all micro-batches
	Tokens   float64 // Σ mask over the micro-batches
	GradNorm float64 // global gradient norm before clipping
	LR       float64 // learning rate used
}

// New prepares a trainer for m. With cfg.LoRA it attaches adapters (initialised from cfg.Seed) unless m
// already has some, freezing the base weights.
func New(m *model.Model, cfg Config) (*Trainer, error) {
	t, err := NewNetwork(m, m.Config(), cfg)
	if err != nil {
		return nil, err
	}
	t.Model = m
	return t, nil
}

// NewNetwork prepares a trainer for any Network; arch is its configuration, which checkpoints record
// and ResumeNetwork compares. Steps go through StepFunc.
func NewNetwork(n Network, arch any, cfg Config) (*Trainer, error) {
	if err := cfg.Schedule.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxGradNorm < 0 {
		return nil, fmt.Errorf("max grad norm %g must not be negative", cfg.MaxGradNorm)
	}
	archJSON, err := json.Marshal(arch)
	if err != nil {
		return nil, fmt.Errorf("encode the model configuration: %w", err)
	}
	if cfg.LoRA != nil {
		if _, has := n.LoRA(); !has {
			if err := n.AttachLoRA(*cfg.LoRA, cfg.Seed); err != nil {
				return nil, fmt.Errorf("attach lora: %w", err)
			}
		}
	} else if _, has := n.LoRA(); has {
		return nil, fmt.Errorf("model has LoRA adapters but the config asks for full fine-tuning")
	}
	t := &Trainer{net: n, arch: archJSON, cfg: cfg, params: n.Trainable()}
	t.opt = NewAdamW(cfg.AdamW, t.params)
	t.normSpans = spans(t.params, normBlock)
	t.partial = make([]float64, len(t.normSpans))
	return t, nil
}

// StepsDone is the number of optimizer steps taken (restored by Resume).
func (t *Trainer) StepsDone() int { return t.step }

// Step is one optimizer step over one or more micro-batches (gradient accumulation): zero the
// gradients, forward and backward each micro-batch with the loss averaged over all their counted
// tokens, clip the global norm, and update with the schedule's learning rate.
func (t *Trainer) Step(batches ...model.Batch) (StepResult, error) {
	return t.StepContext(context.Background(), batches...)
}

// StepContext is Step that gives up once ctx is done, between two layers of a micro-batch's forward
// or backward, and returns ctx's error: the weights, the optimizer state and the step count are then
// as before the call, so a checkpoint saved next is the state after the last whole step.
func (t *Trainer) StepContext(ctx context.Context, batches ...model.Batch) (StepResult, error) {
	if len(batches) == 0 {
		return StepResult{}, fmt.Errorf("train step: no batches")
	}
	var count float64
	for _, b := range batches {
		count += b.Count()
	}
	if t.Model == nil {
		return StepResult{}, fmt.Errorf("train step: the trainer's network is not an llm/model Model (use StepFunc)")
	}
	return t.StepFunc(ctx, count, len(batches), func(ctx context.Context, i int, gradScale float64, seed uint64) (float64, error) {
		return t.Model.ForwardBackwardContext(ctx, batches[i], gradScale, seed)
	})
}

// StepFunc is one optimizer step over micro micro-batches whose counted tokens add up to count: zero
// the gradients, run fb on each with gradScale 1/count (a mean loss over all of them), clip the global
// norm, and update with the schedule's learning rate. An error from fb (ctx done included) leaves the
// weights, the optimizer state and the step count as before the call.
func (t *Trainer) StepFunc(ctx context.Context, count float64, micro int, fb MicroStep) (StepResult, error) {
	if count == 0 {
		return StepResult{}, fmt.Errorf("train step %d: no token counts toward the loss (all masks 0)", t.step)
	}
	t.net.DiscardGrads()
	var sum float64
	for i := range micro {
		s, err := fb(ctx, i, 1/count, dropoutSeed(t.cfg.Seed, t.step, i))
		if err != nil {
			return StepResult{}, fmt.Errorf("train step %d micro-batch %d: %w", t.step, i, err)
		}
		sum += s
	}
	norm := gradNorm(t.params, t.normSpans, t.partial)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return StepResult{}, fmt.Errorf("train step %d: gradient norm is %g (loss %g); weights left unchanged", t.step, norm, sum/count)
	}
	lr := t.cfg.Schedule.LR(t.step)
	t.opt.Step(lr, clipScale(norm, t.cfg.MaxGradNorm))
	t.step++
	return StepResult{Step: t.step, Loss: sum / count, Tokens: count, GradNorm: norm, LR: lr}, nil
}

// Eval returns the mean loss over the counted tokens of the batches, without touching the weights
// or the gradients (no dropout).
func (t *Trainer) Eval(batches ...model.Batch) (float64, error) {
	return EvalLoss(t.Model, batches...)
}

// EvalLoss returns a model's mean loss over the counted tokens of the batches.
func EvalLoss(m *model.Model, batches ...model.Batch) (float64, error) {
	var sum, count float64
	for i, b := range batches {
		s, c, err := m.LossSum(b)
		if err != nil {
			return 0, fmt.Errorf("eval batch %d: %w", i, err)
		}
		sum += s
		count += c
	}
	if count == 0 {
		return 0, fmt.Errorf("eval: no token counts toward the loss")
	}
	return sum / count, nil
}

// dropoutSeed is the dropout seed of a step's micro-batch: a function of the run seed and the
// position in the run only, so a resumed run draws the same masks.
func dropoutSeed(seed uint64, step, micro int) uint64 {
	z := seed + uint64(step)*0x9E3779B97F4A7C15 + uint64(micro)*0xC2B2AE3D27D4EB4F
	z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCD
	z = (z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53
	return z ^ (z >> 33)
}
