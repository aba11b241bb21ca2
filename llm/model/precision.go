package model

import (
	"github.com/lathe-ml/lathe/llm/tensor"
)

// frozenProducts multiplies by a frozen base's block matrices in the form the base holds them, with no
// float32 copy of the layer: the training forward and backward of LoRA on that base call it for every
// projection. A base without one (or when products returns nil) has each layer widened to float32
// by layer() instead. The bfloat16 base implements it with tensor.MatMulBF16; another storage (a
// quantized base, say) can implement it with its own kernels and be returned by products.
type frozenProducts interface {
	// forward sets out[N,OC] = inp[N,C]·Wᵀ for block l's projection t. serial keeps the product on the
	// calling goroutine (it runs inside tensor.Parallel, one projection per worker).
	forward(out, inp []float32, N, C, OC, l int, t Target, serial bool)
	// backward sets dinp[N,C] = dout[N,OC]·W, or adds it when accumulate.
	backward(dinp, dout []float32, N, C, OC, l int, t Target, accumulate bool)
}

func (fb *frozenBase[F]) forward(out, inp []float32, N, C, OC, l int, t Target, serial bool) {
	if serial {
		tensor.MatMulBF16Serial(out[:N*OC], inp[:N*C], fb.layers[l][t], N, OC, C, false, true, false)
		return
	}
	tensor.MatMulBF16(out[:N*OC], inp[:N*C], fb.layers[l][t], N, OC, C, false, true, false)
}

func (fb *frozenBase[F]) backward(dinp, dout []float32, N, C, OC, l int, t Target, accumulate bool) {
	tensor.MatMulBF16(dinp[:N*C], dout[:N*OC], fb.layers[l][t], N, C, OC, false, false, accumulate)
}

// products returns the frozen base's direct products for a LoRA run, or nil when its layers are to
// be widened: a float32 model whose base is held in bfloat16, on a CPU that multiplies bfloat16
// (AVX512_BF16), unless LoRAConfig.WidenFrozen asks for the float32 products. The activations are
// then rounded to bfloat16 for the base's products (the adapters stay float32); a CPU without the
// instructions keeps the exact widened path, which is no slower there.
func (m *net[F]) products() frozenProducts {
	if m.frozen == nil || m.lora == nil || m.lora.cfg.WidenFrozen || !tensor.BF16Native() {
		return nil
	}
	if _, ok := any(m.w.embed).([]float32); !ok {
		return nil
	}
	return m.frozen
}

// blockWeights is layer() for the training forward and backward: with direct products the base's
// matrices are not widened and the view's are nil (baseForward and baseBackward then multiply by the
// frozen base's own).
func (m *net[F]) blockWeights(l int) *layerWeights[F] {
	if m.products() != nil {
		return &m.w.layers[l]
	}
	return m.layer(l)
}

// baseForward is a projection's base product: out[N,OC] = inp[N,C]·wᵀ + bias, from the frozen base
// when w is nil, in bfloat16 under mixed precision, float32 otherwise. serial: on the calling
// goroutine only.
func (m *net[F]) baseForward(out, inp, w, bias []F, N, C, OC, l int, t Target, serial bool) {
	switch {
	case len(w) == 0 && l >= 0 && m.products() != nil:
		m.products().forward(any(out).([]float32), any(inp).([]float32), N, C, OC, l, t, serial)
		addBias(out, bias, N, OC)
	case m.mixedOn():
		o32, i32, w32 := any(out).([]float32), any(inp).([]float32), any(w).([]float32)
		if serial {
			tensor.MatMulRoundBF16Serial(o32[:N*OC], i32[:N*C], w32, N, OC, C, false, true, false)
		} else {
			tensor.MatMulRoundBF16(o32[:N*OC], i32[:N*C], w32, N, OC, C, false, true, false)
		}
		addBias(out, bias, N, OC)
	case serial:
		linearForwardSerial(out, inp, w, bias, N, C, OC)
	default:
		linearForward(out, inp, w, bias, N, C, OC)
	}
}

// baseBackward is baseForward's backward: dinp (+)= dout·w, dw (+)= doutᵀ·inp (nil: frozen), and the
// bias gradient.
func (m *net[F]) baseBackward(dinp, dw, db, dout, inp, w []F, N, C, OC, l int, t Target, accumulate, accW bool) {
	if len(w) == 0 && dw == nil && m.products() != nil {
		m.products().backward(any(dinp).([]float32), any(dout).([]float32), N, C, OC, l, t, accumulate)
		addBiasGrad(db, dout, N, OC)
		return
	}
	linearBackwardIn(m.mixedOn(), dinp, dw, db, dout, inp, w, N, C, OC, accumulate, accW)
}

// mixedOn says whether the products run in bfloat16 mixed precision: asked for (SetMixedBF16), on a
// float32 model being fully fine-tuned (LoRA's frozen base has its own products; see products).
func (m *net[F]) mixedOn() bool {
	if !m.mixed || m.lora != nil {
		return false
	}
	_, ok := any(m.w.embed).([]float32)
	return ok
}

// SetMixedBF16 turns bfloat16 mixed precision on or off for full fine-tuning: the products of every
// projection and of the output head (forward, input gradient and weight gradient) round their float32
// operands to bfloat16 and sum in float32 (tensor.MatMulRoundBF16), as PyTorch's bf16 autocast does;
// the weights stay float32 (the master copy the optimizer updates), as do the norms, attention,
// the loss and the optimizer. On a CPU with AVX512_BF16 the products are about twice as fast; without
// it they are computed by widening the rounded operands (the same numbers, slower than float32).
// It applies to a float32 model only and does not change a LoRA base's products (see products).
func (m *Model) SetMixedBF16(on bool) { m.n.mixed = on }

// MixedBF16 reports whether bfloat16 mixed precision is on (SetMixedBF16).
func (m *Model) MixedBF16() bool { return m.n.mixed }
