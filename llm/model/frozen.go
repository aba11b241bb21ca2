package model

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/half"
	"github.com/lathe-ml/lathe/llm/tensor"
)

// frozenBase holds a frozen base's projection matrices in bfloat16 (LoRA with FrozenBF16): half the
// memory of float32. The layer being computed is widened to float32 into one shared buffer, so at
// most one layer's matrices exist in float32 at a time. Norms, biases, the embedding and the output
// head stay in float32 in the model's weights.
type frozenBase[F float] struct {
	data    []uint16
	layers  [][numTargets][]uint16 // per layer, in Target order: q, k, v, o, gate, up, down
	buf     [numTargets][]F        // the widened matrices of layer `current`
	current int                    // −1 when buf holds no layer
	view    layerWeights[F]
}

// isLayerMatrix says whether a tensor is one of a block's seven projection matrices.
func isLayerMatrix(s tensorSpec) bool { return s.layer >= 0 && s.kind == KindMatrix }

// freezeBF16 moves the block matrices into bfloat16 (rounded to nearest even) and frees their float32
// copies.
func (m *net[F]) freezeBF16() {
	if m.frozen != nil || m.quant != nil { // a quantized base is already smaller than bfloat16
		return
	}
	c := m.cfg
	n := 0
	for _, s := range c.tensorSpecs() {
		if isLayerMatrix(s) {
			n += s.size()
		}
	}
	fb := &frozenBase[F]{data: make([]uint16, n), layers: make([][numTargets][]uint16, c.Layers), current: -1}
	off := 0
	for l := range c.Layers {
		for t, f := range targetFields {
			src := *m.w.ptr(l, f)
			dst := fb.data[off : off+len(src) : off+len(src)]
			off += len(src)
			roundBF16(dst, src)
			fb.layers[l][t] = dst
		}
	}
	for t := range targetFields {
		in, out := Target(t).dims(c)
		fb.buf[t] = make([]F, in*out)
	}
	rest := newWeightsWhere[F](c, func(s tensorSpec) bool { return !isLayerMatrix(s) })
	for _, s := range c.tensorSpecs() {
		if !isLayerMatrix(s) {
			copy(*rest.ptr(s.layer, s.field), *m.w.ptr(s.layer, s.field))
		}
	}
	m.w, m.frozen = rest, fb
	m.acts, m.inf = nil, nil
}

// thaw widens a bfloat16 base back to float32 weights (for Tensors, MergeLoRA or full fine-tuning;
// MergedTensors exports without it, one tensor at a time).
func (m *net[F]) thaw() {
	if m.quant != nil {
		m.thawQuant()
	}
	fb := m.frozen
	if fb == nil {
		return
	}
	c := m.cfg
	full := newWeights[F](c)
	for _, s := range c.tensorSpecs() {
		if !isLayerMatrix(s) {
			copy(*full.ptr(s.layer, s.field), *m.w.ptr(s.layer, s.field))
		}
	}
	for l := range c.Layers {
		for t, f := range targetFields {
			widenBF16(*full.ptr(l, f), fb.layers[l][t])
		}
	}
	m.w, m.frozen = full, nil
}

// roundBF16 sets dst to src rounded to bfloat16 (to nearest even), split across the workers.
func roundBF16[F float](dst []uint16, src []F) {
	tensor.Parallel((len(src)+65535)/65536, func(lo, hi int) {
		lo, hi = lo*65536, min(hi*65536, len(src))
		if s32, ok := any(src[lo:hi]).([]float32); ok {
			tensor.RoundBF16(dst[lo:hi], s32)
			return
		}
		for i := lo; i < hi; i++ {
			dst[i] = half.F32ToBF16(float32(src[i]))
		}
	})
}

// widenBF16 sets dst to src's values, split across the workers (a frozen layer, every layer of every
// LoRA step where the CPU cannot multiply bfloat16).
func widenBF16[F float](dst []F, src []uint16) {
	tensor.Parallel((len(src)+65535)/65536, func(lo, hi int) {
		lo, hi = lo*65536, min(hi*65536, len(src))
		if d32, ok := any(dst[lo:hi]).([]float32); ok {
			tensor.WidenBF16(d32, src[lo:hi])
			return
		}
		for i := lo; i < hi; i++ {
			dst[i] = F(half.BF16ToF32(src[i]))
		}
	})
}

// layer returns block l's weights, widening its matrices first when the base is held in bfloat16.
func (m *net[F]) layer(l int) *layerWeights[F] {
	if m.quant != nil {
		return m.quantLayer(l)
	}
	fb := m.frozen
	if fb == nil {
		return &m.w.layers[l]
	}
	if fb.current != l {
		for t := range targetFields {
			widenBF16(fb.buf[t], fb.layers[l][t])
		}
		fb.current = l
	}
	lw := m.w.layers[l] // norms and biases
	lw.wq, lw.wk, lw.wv, lw.wo = fb.buf[TargetQ], fb.buf[TargetK], fb.buf[TargetV], fb.buf[TargetO]
	lw.wgate, lw.wup, lw.wdown = fb.buf[TargetGate], fb.buf[TargetUp], fb.buf[TargetDown]
	fb.view = lw
	return &fb.view
}

// Fingerprint identifies the base weights: a hash of their names, shapes and a strided sample of
// about a million values rounded to bfloat16, so a model and its bfloat16-frozen form agree, and two
// different bases (or a base and a fine-tune of it) do not. LoRA checkpoints record it.
func (m *Model) Fingerprint() string {
	n := m.n
	specs := n.cfg.tensorSpecs()
	h := sha256.New()
	var buf [2]byte
	for _, s := range specs {
		fmt.Fprintf(h, "%s%v;", s.name, s.shape)
		size := s.size()
		stride := max(1, size/(1<<20/len(specs)+1))
		var get func(i int) uint16
		if n.quant != nil && isLayerMatrix(s) {
			get = n.quantFingerprintValue(s)
		} else if n.frozen != nil && isLayerMatrix(s) {
			var t Target
			for i, f := range targetFields {
				if f == s.field {
					t = Target(i)
				}
			}
			src := n.frozen.layers[s.layer][t]
			get = func(i int) uint16 { return src[i] }
		} else {
			src := *n.w.ptr(s.layer, s.field)
			get = func(i int) uint16 { return half.F32ToBF16(src[i]) }
		}
		for i := 0; i < size; i += stride {
			binary.LittleEndian.PutUint16(buf[:], get(i))
			h.Write(buf[:])
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:16])
}

// FromCheckpointBF16 is FromCheckpoint for a model that will be fine-tuned with LoRA on a frozen
// bfloat16 base (LoRAConfig.FrozenBF16): each block matrix goes from the checkpoint straight into
// bfloat16, one tensor at a time, so the float32 copy of the whole model never exists. A Falcon-7B's
// matrices take 13 GiB this way instead of 26 GiB, what lets its LoRA fit in 24 GiB. Evaluation,
// generation and training run on the bfloat16 base; Tensors and full fine-tuning widen it back.
func FromCheckpointBF16(ck format.Checkpoint) (*Model, error) {
	cfg, err := checkpointConfig(ck)
	if err != nil {
		return nil, err
	}
	if quantizedMatrices(cfg, ck) {
		return FromSourceQuant(cfg, ck) // quantized blocks are smaller still (QLoRA)
	}
	return FromSourceBF16(cfg, ck)
}

// FromSourceBF16 is FromSource with the block matrices stored in bfloat16 as they are read (see
// FromCheckpointBF16).
func FromSourceBF16(cfg Config, src TensorSource) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := newNetWith(cfg, newWeightsWhere[float32](cfg, func(s tensorSpec) bool { return !isLayerMatrix(s) }))
	size := 0
	for _, s := range cfg.tensorSpecs() {
		if isLayerMatrix(s) {
			size += s.size()
		}
	}
	fb := &frozenBase[float32]{data: make([]uint16, size), layers: make([][numTargets][]uint16, cfg.Layers), current: -1}
	for t := range targetFields {
		in, out := Target(t).dims(cfg)
		fb.buf[t] = make([]float32, in*out)
	}
	off := 0
	for _, s := range cfg.tensorSpecs() {
		data, shape, err := src.Tensor(s.name)
		if err != nil {
			return nil, fmt.Errorf("load tensor %s: %w", s.name, err)
		}
		if !shapeMatches(shape, s.shape) || len(data) != s.size() {
			return nil, fmt.Errorf("load tensor %s: shape %v (%d values), model expects %v", s.name, shape, len(data), s.shape)
		}
		if !isFinite(data) {
			return nil, fmt.Errorf("load tensor %s: NaN or Inf", s.name)
		}
		if !isLayerMatrix(s) {
			copy(*n.w.ptr(s.layer, s.field), data)
			continue
		}
		dst := fb.data[off : off+len(data) : off+len(data)]
		off += len(data)
		roundBF16(dst, data)
		for t, f := range targetFields {
			if f == s.field {
				fb.layers[s.layer][t] = dst
			}
		}
		if len(data) >= 1<<24 {
			// The float32 tensor just read is garbage now, but with the bfloat16 base live (13 GiB for
			// a 7B) the collector would let such garbage grow to as much again before it ran: collect
			// now, which is cheap (the base holds no pointers), so the load peaks at the base plus one
			// tensor.
			runtime.GC()
		}
	}
	n.frozen = fb
	return &Model{n: n}, nil
}
