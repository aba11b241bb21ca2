package model

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/format/half"
	"github.com/lathe-ml/lathe/llm/tensor"
)

// quantBase holds a model's block matrices in the ggml blocks its GGUF file stored them in (Q8_0,
// Q4_0, Q4_K, Q6_K), as FromCheckpoint keeps a quantized file's weights: a 7B's matrices take 3.6 GiB
// in Q4_K_M instead of 26 GiB in float32.
//
// Generation of up to quantRows rows at a time multiplies the blocks directly (tensor.QuantMatMul:
// the activations are rounded to int8 blocks, as llama.cpp does). Everything else that needs float32
// matrices (a training forward and backward with LoRA on this frozen base, long prompts where the
// CPU lacks AVX512_BF16) widens one layer at a time into buf, the same per-layer buffer a bfloat16
// frozen base uses, so at most one layer's matrices exist in float32. Norms, biases and the embedding stay float32; an untied output
// head is float32 in the weights and, when the file quantized it, also kept as its blocks for
// generation.
type quantBase[F float] struct {
	layers  [][numTargets]*tensor.QMatrix // nil for a projection the architecture lacks
	head    *tensor.QMatrix               // the file's quantized output head, or nil
	buf     [numTargets][]F               // the widened matrices of layer `current`
	current int                           // −1 when buf holds no layer
	view    layerWeights[F]
	bytes   int
	// A long prompt on a CPU with AVX512_BF16 multiplies layer bf16Layer's matrices in bfloat16
	// (tensor.MatMulBF16): twice the float32 GEMM's speed, at the activations' and the dequantized
	// weights' rounding to 8 bits of mantissa (below the blocks' own 4- to 8-bit quantization).
	bf16      [numTargets][]uint16
	bf16Layer int // −1 when bf16 holds no layer
}

// quantRows is the most rows (tokens of all sequences in one Extend) whose products run on the
// blocks. Each row's activations are quantized and multiplied on their own, so a sequence decodes to
// the same logits whichever others share its steps; only a longer prefill widens the layers for the
// float32 matrix product, which is several times faster there (and differs from decoding by the
// activations' rounding).
const quantRows = 64

// quantTypes maps the GGUF block types the kernels multiply to tensor's.
var quantTypes = map[string]tensor.QuantType{"Q8_0": tensor.QuantQ8_0, "Q4_0": tensor.QuantQ4_0, "Q4_K": tensor.QuantQ4_K, "Q6_K": tensor.QuantQ6_K}

var ggufTypes = map[tensor.QuantType]gguf.TensorType{tensor.QuantQ8_0: gguf.Q8_0, tensor.QuantQ4_0: gguf.Q4_0, tensor.QuantQ4_K: gguf.Q4_K, tensor.QuantQ6_K: gguf.Q6_K}

// QuantizedWeights reports whether the model's block matrices are held in quantized blocks (see
// FromCheckpoint), and their size in bytes.
func (m *Model) QuantizedWeights() (bool, int) {
	if m.n.quant == nil {
		return false, 0
	}
	return true, m.n.quant.bytes
}

// quantizedMatrices says whether a checkpoint stores its block matrices quantized in a format the
// kernels multiply, so that FromCheckpoint keeps them so: every block matrix is either quantized in
// such a format or (a few files keep some in 16 or 32 bits) re-quantizable to Q8_0, and at least one
// is quantized.
func quantizedMatrices(cfg Config, ck format.Checkpoint) bool {
	gf, ok := ck.(*format.GGUFCheckpoint)
	if !ok {
		return false
	}
	any := false
	for _, s := range cfg.tensorSpecs() {
		if !isLayerMatrix(s) {
			continue
		}
		info, ok := gf.File.Tensor(s.name)
		if !ok {
			return false // a part of a fused tensor, or a name the file maps differently
		}
		if _, q := quantTypes[info.Type.String()]; q {
			any = true
		} else if s.shape[1]%32 != 0 {
			return false
		}
	}
	return any
}

// FromSourceQuant is FromSource with the block matrices kept as the quantized blocks src stores
// (src must be a format.RawTensorReader): a matrix stored in another type is quantized to Q8_0. The
// float32 copy of the matrices never exists.
func FromSourceQuant(cfg Config, src TensorSource) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rr, ok := src.(format.RawTensorReader)
	if !ok {
		return nil, fmt.Errorf("load quantized: the checkpoint cannot hand out stored tensors")
	}
	n := newNetWith(cfg, newWeightsWhere[float32](cfg, func(s tensorSpec) bool { return !isLayerMatrix(s) }))
	qb := &quantBase[float32]{layers: make([][numTargets]*tensor.QMatrix, cfg.Layers), current: -1, bf16Layer: -1}
	for t := range targetFields {
		if cfg.HasTarget(Target(t)) {
			in, out := Target(t).dims(cfg)
			qb.buf[t] = make([]float32, in*out)
		}
	}
	for _, s := range cfg.tensorSpecs() {
		if isLayerMatrix(s) || (s.field == fOutput && !cfg.Tied) {
			q, err := loadQMatrix(rr, src, s, !isLayerMatrix(s))
			if err != nil {
				return nil, fmt.Errorf("load tensor %s: %w", s.name, err)
			}
			if isLayerMatrix(s) {
				for t, f := range targetFields {
					if f == s.field {
						qb.layers[s.layer][t] = q
					}
				}
				qb.bytes += len(q.Data)
				continue
			}
			if q != nil {
				qb.head = q
				qb.bytes += len(q.Data)
			}
		}
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
		copy(*n.w.ptr(s.layer, s.field), data)
		if len(data) >= 1<<24 {
			runtime.GC() // as FromSourceBF16: let the large float32 temporary go before the next
		}
	}
	n.quant = qb
	return &Model{n: n}, nil
}

// loadQMatrix reads spec s as its stored blocks; a matrix stored in another type is quantized to
// Q8_0, or, with keepOnly, left to the caller (nil).
func loadQMatrix(rr format.RawTensorReader, src TensorSource, s tensorSpec, keepOnly bool) (*tensor.QMatrix, error) {
	raw, dtype, shape, err := rr.RawTensor(s.name)
	if err != nil {
		return nil, err
	}
	if !shapeMatches(shape, s.shape) {
		return nil, fmt.Errorf("shape %v, model expects %v", shape, s.shape)
	}
	rows, cols := s.shape[0], s.shape[1]
	if qt, ok := quantTypes[dtype]; ok {
		q, err := tensor.NewQMatrix(qt, rows, cols, raw)
		if err != nil {
			return nil, err
		}
		// Blocks are decoded without checks in the kernels: refuse non-finite scales here, as the
		// float32 load refuses non-finite weights.
		if !finiteScales(q) {
			return nil, fmt.Errorf("%s blocks with a NaN or Inf scale", dtype)
		}
		return q, nil
	}
	if keepOnly {
		return nil, nil
	}
	data, _, err := src.Tensor(s.name)
	if err != nil {
		return nil, err
	}
	if !isFinite(data) {
		return nil, fmt.Errorf("NaN or Inf")
	}
	b, err := gguf.Quantize(gguf.Q8_0, data)
	if err != nil {
		return nil, err
	}
	return tensor.NewQMatrix(tensor.QuantQ8_0, rows, cols, b)
}

// finiteScales checks every f16 scale of q's blocks (d, and dmin for Q4_K).
func finiteScales(q *tensor.QMatrix) bool {
	bb := q.Type.BlockBytes()
	var offs []int
	switch q.Type {
	case tensor.QuantQ8_0, tensor.QuantQ4_0:
		offs = []int{0}
	case tensor.QuantQ4_K:
		offs = []int{0, 2}
	case tensor.QuantQ6_K:
		offs = []int{208}
	}
	for b := 0; b < len(q.Data); b += bb {
		for _, o := range offs {
			if h := binary.LittleEndian.Uint16(q.Data[b+o:]); h&0x7c00 == 0x7c00 {
				return false
			}
		}
	}
	return true
}

// widenQuant dequantizes q into dst (float32), rows split across the workers.
func widenQuant[F float](dst []F, q *tensor.QMatrix) {
	d32, ok := any(dst).([]float32)
	if !ok {
		panic("model: a quantized base widens to float32 only")
	}
	gt := ggufTypes[q.Type]
	rb := q.RowBytes()
	rowsPer := max(1, 65536/q.Cols)
	tensor.Parallel((q.Rows+rowsPer-1)/rowsPer, func(lo, hi int) {
		r0, r1 := lo*rowsPer, min(hi*rowsPer, q.Rows)
		if q.WidenRows(d32[r0*q.Cols:r1*q.Cols], r0, r1) {
			return // the SIMD kernels: gguf's values, several times faster
		}
		if err := gguf.Dequantize(gt, q.Data[r0*rb:r1*rb], d32[r0*q.Cols:r1*q.Cols]); err != nil {
			panic(fmt.Sprintf("model: widen %s: %v", q.Type, err)) // sizes were checked at load
		}
	})
}

// quantLayer is layer() for a quantized base: block l's weights with its matrices widened into buf.
func (m *net[F]) quantLayer(l int) *layerWeights[F] {
	qb := m.quant
	if qb.current != l {
		for t, q := range qb.layers[l] {
			if q != nil {
				widenQuant(qb.buf[t], q)
			}
		}
		qb.current = l
	}
	lw := m.w.layers[l] // norms and biases
	lw.wq, lw.wk, lw.wv, lw.wo = qb.buf[TargetQ], qb.buf[TargetK], qb.buf[TargetV], qb.buf[TargetO]
	lw.wgate, lw.wup, lw.wdown = qb.buf[TargetGate], qb.buf[TargetUp], qb.buf[TargetDown]
	if qb.layers[l][TargetGate] == nil {
		lw.wgate = nil
	}
	qb.view = lw
	return &qb.view
}

// quantLayerBF16 returns block l's matrices dequantized and rounded to bfloat16 (nil for a
// projection the architecture lacks), for a long prompt's products.
func (m *net[F]) quantLayerBF16(l int) *[numTargets][]uint16 {
	qb := m.quant
	if qb.bf16Layer == l {
		return &qb.bf16
	}
	m.quantLayer(l)
	for t, q := range qb.layers[l] {
		if q == nil {
			qb.bf16[t] = nil
			continue
		}
		src := qb.buf[t]
		if cap(qb.bf16[t]) < len(src) {
			qb.bf16[t] = make([]uint16, len(src))
		}
		qb.bf16[t] = qb.bf16[t][:len(src)]
		roundBF16(qb.bf16[t], src)
	}
	qb.bf16Layer = l
	return &qb.bf16
}

// thawQuant widens a quantized base to float32 weights (for Tensors, MergeLoRA or full fine-tuning;
// MergedTensors exports without it, one tensor at a time): the values are the blocks' (what
// FromCheckpoint without quantized weights would have loaded).
func (m *net[F]) thawQuant() {
	qb := m.quant
	c := m.cfg
	full := newWeights[F](c)
	for _, s := range c.tensorSpecs() {
		if !isLayerMatrix(s) {
			copy(*full.ptr(s.layer, s.field), *m.w.ptr(s.layer, s.field))
		}
	}
	for l := range c.Layers {
		for t, f := range targetFields {
			if q := qb.layers[l][t]; q != nil {
				widenQuant(*full.ptr(l, f), q)
			}
		}
	}
	m.w, m.quant = full, nil
	m.acts, m.inf = nil, nil
}

// quantProduct does inferLinear's product from the quantized blocks of block l's projection t when
// the layer was not widened (w is empty), and reports whether it did.
func (m *net[F]) quantProduct(out, inp, w []F, R, l int, t Target) bool {
	if m.quant == nil || len(w) != 0 || l < 0 {
		return false
	}
	q := m.quant.layers[l][t]
	if q == nil {
		return false
	}
	tensor.QuantMatMul(any(out).([]float32), any(inp).([]float32), q, R)
	return true
}

// quantHead returns the quantized output head for generation, or nil.
func (m *net[F]) quantHead() *tensor.QMatrix {
	if m.quant == nil {
		return nil
	}
	if _, ok := any(m.w.output).([]float32); !ok {
		return nil
	}
	return m.quant.head
}

// quantFingerprintValue returns, for a block matrix of a quantized base, the bfloat16 of its i-th
// value (what the float32 load holds), decoding one block at a time.
func (m *net[F]) quantFingerprintValue(s tensorSpec) func(i int) uint16 {
	var q *tensor.QMatrix
	for t, f := range targetFields {
		if f == s.field {
			q = m.quant.layers[s.layer][t]
		}
	}
	bl, bb := q.Type.BlockLen(), q.Type.BlockBytes()
	gt := ggufTypes[q.Type]
	vals := make([]float32, bl)
	cur := -1
	return func(i int) uint16 {
		if b := i / bl; b != cur {
			if err := gguf.Dequantize(gt, q.Data[b*bb:(b+1)*bb], vals); err != nil {
				panic(err)
			}
			cur = b
		}
		return half.F32ToBF16(vals[i%bl])
	}
}

// WidenWeights turns a base held quantized or in bfloat16 into float32 weights (what FromSource
// would have loaded from the same values), for a caller that wants float32 generation.
func (m *Model) WidenWeights() { m.n.thaw() }
