package t5

import (
	"github.com/lathe-ml/lathe/llm/format/half"
	"github.com/lathe-ml/lathe/llm/tensor"
)

// bf16Base holds a frozen base's projection matrices in bfloat16 (LoRA with FrozenBF16): half their
// float32 memory, which is what lets Flan-T5-XXL's LoRA fit where its float32 weights would not. A
// projection's matrix is widened to float32 into one shared buffer right before its product (net.lin,
// net.linBack), which costs about as much as reading it once more. The shared embedding, the head, the
// norms and the relative biases stay float32 in the model's weights; the projections' slices there are
// nil while frozen.
type bf16Base[F float] struct {
	mats map[site][]uint16
	buf  []F // the widened matrix of the projection being computed
}

// isProjection says whether a tensor of weights.visit is one of the blocks' projection matrices (a
// site), as opposed to the embedding, an untied head, a norm or a relative bias.
func isProjection(name string, kind Kind) bool { return kind == KindMatrix && name != "lm_head.weight" }

// freezeBF16 moves the projection matrices into bfloat16 (rounded to nearest even) and frees their
// float32 copies: the rest of the weights move to a smaller allocation.
func (m *net[F]) freezeBF16() {
	if m.bf16 != nil {
		return
	}
	c := m.cfg
	fb := &bf16Base[F]{mats: map[site][]uint16{}}
	largest := 0
	for _, s := range c.sites() {
		src := m.w.weightOf(s)
		dst := make([]uint16, len(src))
		tensor.Parallel(len(src)/4096+1, func(lo, hi int) {
			for i := lo * 4096; i < min(hi*4096, len(src)); i++ {
				dst[i] = half.F32ToBF16(float32(src[i]))
			}
		})
		fb.mats[s] = dst
		largest = max(largest, len(src))
	}
	fb.buf = make([]F, largest)
	rest := &weights[F]{enc: make([]encoderBlock[F], c.EncoderLayers), dec: make([]decoderBlock[F], c.DecoderLayers)}
	n := 0
	m.w.visit(c, func(name string, shape []int, kind Kind, _ *[]F) {
		if !isProjection(name, kind) {
			n += numel(shape)
		}
	})
	rest.slab = make([]F, n)
	cv := &carver[F]{slab: rest.slab}
	var srcs [][]F
	m.w.visit(c, func(name string, _ []int, kind Kind, t *[]F) {
		if !isProjection(name, kind) {
			srcs = append(srcs, *t)
		}
	})
	i := 0
	rest.visit(c, func(name string, shape []int, kind Kind, t *[]F) {
		if isProjection(name, kind) {
			return
		}
		*t = cv.take(numel(shape))
		copy(*t, srcs[i])
		i++
	})
	m.w, m.bf16 = rest, fb
}

// thaw restores float32 projection matrices (the bfloat16 values, widened) in one allocation again.
func (m *net[F]) thaw() {
	fb := m.bf16
	if fb == nil {
		return
	}
	c := m.cfg
	full := newWeights[F](c)
	var srcs [][]F
	m.w.visit(c, func(name string, _ []int, kind Kind, t *[]F) {
		if !isProjection(name, kind) {
			srcs = append(srcs, *t)
		}
	})
	i := 0
	full.visit(c, func(name string, _ []int, kind Kind, t *[]F) {
		if !isProjection(name, kind) {
			copy(*t, srcs[i])
			i++
		}
	})
	for s, b := range fb.mats {
		widenBF16(full.weightOf(s), b)
	}
	m.w, m.bf16 = full, nil
}

// weight is the matrix of a projection: its float32 slice, or, while frozen in bfloat16, the shared
// buffer widened from it.
func (m *net[F]) weight(s site, w []F) []F {
	if w != nil || m.bf16 == nil {
		return w
	}
	b := m.bf16.mats[s]
	dst := m.bf16.buf[:len(b)]
	widenBF16(dst, b)
	return dst
}

func widenBF16[F float](dst []F, src []uint16) {
	tensor.Parallel(len(src)/8192+1, func(lo, hi int) {
		for i := lo * 8192; i < min(hi*8192, len(src)); i++ {
			dst[i] = F(half.BF16ToF32(src[i]))
		}
	})
}
