package t5

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/lathe-ml/lathe/llm/format/safetensors"
	"github.com/lathe-ml/lathe/llm/tensor"
)

// Model is a T5 encoder-decoder in float32: weights, gradients (once trained) and the memory of its
// last forward. It is not safe for concurrent use.
type Model struct {
	n *net[float32]
}

// New returns a model with all weights zero (fill them with Load or NewRandom).
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Model{n: newNet[float32](cfg)}, nil
}

func newNet[F float](cfg Config) *net[F] { return &net[F]{cfg: cfg, w: newWeights[F](cfg)} }

// NewRandom returns a model initialised as transformers initialises a fresh T5 (see initRandom), a
// deterministic function of seed: for tests and benchmarks.
func NewRandom(cfg Config, seed uint64) (*Model, error) {
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	m.n.w.initRandom(cfg, seed)
	return m, nil
}

// Load reads a Hugging Face T5 checkpoint directory: config.json and model.safetensors (or the shards
// of model.safetensors.index.json), F32, F16 or BF16. The shared embedding may be stored as
// shared.weight or only as encoder.embed_tokens.weight / decoder.embed_tokens.weight (aliases); a
// tied checkpoint's lm_head.weight, if present, is ignored (it is the shared embedding).
func Load(dir string) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	st, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("t5: %w", err)
	}
	defer st.Close()
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	m.n.w.visit(cfg, func(name string, shape []int, _ Kind, t *[]float32) {
		if err != nil {
			return
		}
		src := name
		if name == "shared.weight" {
			for _, alias := range []string{"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"} {
				if _, ok := st.Tensor(alias); ok {
					src = alias
					break
				}
			}
		}
		info, ok := st.Tensor(src)
		if !ok {
			err = fmt.Errorf("t5 load %s: tensor %s missing", dir, name)
			return
		}
		if !slices.Equal(info.Shape, shape) {
			err = fmt.Errorf("t5 load %s: tensor %s has shape %v, config.json implies %v", dir, name, info.Shape, shape)
			return
		}
		var data []float32
		if data, err = st.Float32(src); err != nil {
			err = fmt.Errorf("t5 load %s: %w", dir, err)
			return
		}
		copy(*t, data)
	})
	if err != nil {
		return nil, err
	}
	for _, v := range m.n.w.slab {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("t5 load %s: weights contain NaN or Inf", dir)
		}
	}
	return m, nil
}

// Save writes dir/config.json and dir/model.safetensors (float32, transformers' tensor names, shared
// embedding once as shared.weight as save_pretrained writes it), creating dir if needed.
func (m *Model) Save(dir string) error {
	m.n.thaw() // a base frozen in bfloat16 is written as its float32 widening
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("t5 save: %w", err)
	}
	js, err := m.n.cfg.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		return fmt.Errorf("t5 save: %w", err)
	}
	var ts []safetensors.Tensor
	for _, t := range m.Tensors() {
		ts = append(ts, safetensors.Tensor{Name: t.Name, DType: safetensors.F32, Shape: t.Shape, Data: t.Data})
	}
	if _, err := safetensors.WriteDir(dir, ts, map[string]string{"format": "pt"}, 0); err != nil {
		return fmt.Errorf("t5 save: %w", err)
	}
	return nil
}

// Config returns the model's architecture.
func (m *Model) Config() Config { return m.n.cfg }

// Tensor is a view of one weight under its Hugging Face name, row-major.
type Tensor struct {
	Name  string
	Shape []int
	Kind  Kind
	Data  []float32
}

// Param is a trainable tensor with its gradient (same shape).
type Param struct {
	Tensor
	Grad []float32
}

// Tensors returns views of every weight, in transformers' state-dict order. While LoRA holds the base
// frozen in bfloat16 the projections' Data are nil (MergeLoRA and Save restore float32).
func (m *Model) Tensors() []Tensor {
	var ts []Tensor
	m.n.w.visit(m.n.cfg, func(name string, shape []int, kind Kind, t *[]float32) {
		ts = append(ts, Tensor{Name: name, Shape: slices.Clone(shape), Kind: kind, Data: *t})
	})
	return ts
}

// Params returns every weight with its gradient, which ForwardBackward adds to (the gradient memory is
// allocated, zeroed, on the first call).
func (m *Model) Params() []Param {
	n := m.n
	if n.g == nil {
		n.g = newWeights[float32](n.cfg)
	}
	ts := m.Tensors()
	ps := make([]Param, 0, len(ts))
	n.g.visit(n.cfg, func(_ string, _ []int, _ Kind, g *[]float32) {
		ps = append(ps, Param{Tensor: ts[len(ps)], Grad: *g})
	})
	return ps
}

// ZeroGrads clears the gradients, on all workers: a model's gradients are hundreds of megabytes, which
// one core clears at a fraction of the memory bandwidth (flan-t5-small's 300 MB took ~0.3 s).
func (m *Model) ZeroGrads() {
	if m.n.g == nil {
		return
	}
	s := m.n.g.slab
	const block = 1 << 16
	tensor.Parallel((len(s)+block-1)/block, func(lo, hi int) { clear(s[lo*block : min(hi*block, len(s))]) })
}

// LossSum runs the model over a batch without touching gradients and returns Σ mask·(−log p(target))
// and Σ mask: the mean loss over several batches is ΣLossSum/Σcount.
func (m *Model) LossSum(b Batch) (sum, count float64, err error) {
	if err := b.Validate(m.n.cfg.Vocab); err != nil {
		return 0, 0, err
	}
	return m.n.forward(&b, false, 0), b.Count(), nil
}

// ForwardBackward runs the forward and backward over a batch and adds gradScale·∂(Σ mask·loss)/∂θ to
// the gradients (call ZeroGrads first; use gradScale = 1/Σmask over all micro-batches of a step for a
// mean loss). It returns Σ mask·loss. Nothing is updated. There is no dropout (transformers' T5 trains
// with dropout_rate 0.1; fine-tuning here runs without it).
func (m *Model) ForwardBackward(b Batch, gradScale float64) (float64, error) {
	if err := b.Validate(m.n.cfg.Vocab); err != nil {
		return 0, err
	}
	if m.n.g == nil {
		m.n.g = newWeights[float32](m.n.cfg)
	}
	sum := m.n.forward(&b, true, gradScale)
	m.n.backward(&b)
	return sum, nil
}

// Logits returns the [B·TDec, Vocab] decoder logits of a batch (Targets and Mask are not read). It
// allocates the whole tensor: for checks, not for training.
func (m *Model) Logits(b Batch) ([]float32, error) {
	nd := b.B * b.TDec
	if len(b.Targets) != nd {
		b.Targets = make([]int32, nd)
	}
	if len(b.Mask) != nd {
		b.Mask = make([]float32, nd)
	}
	if err := b.Validate(m.n.cfg.Vocab); err != nil {
		return nil, err
	}
	return m.n.logits(&b), nil
}

// NumParams is the number of weights, counted by shape (a base frozen in bfloat16 included).
func (m *Model) NumParams() int64 {
	var n int64
	m.n.w.visit(m.n.cfg, func(_ string, shape []int, _ Kind, _ *[]float32) { n += int64(numel(shape)) })
	return n
}
