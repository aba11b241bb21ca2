package t5

import "fmt"

// Batch is B examples: each an encoder input of TEnc tokens (padding marked by EncMask) and a decoder
// sequence of TDec positions. Decoder position t reads DecTokens[b·TDec+t] and, where Mask is non-zero,
// is trained to predict Targets[b·TDec+t] with that weight. DecTokens is the targets shifted right by
// one with DecoderStart first (ShiftRight), as transformers' T5 builds decoder_input_ids from labels.
// Padding goes at the end of a decoder sequence (attention is causal, so it never changes the positions
// before it); encoder padding may be anywhere, since EncMask hides it from every query.
type Batch struct {
	B, TEnc, TDec int
	EncTokens     []int32   // [B, TEnc]
	EncMask       []float32 // [B, TEnc]: 1 for a real token, 0 for padding (transformers' attention_mask)
	DecTokens     []int32   // [B, TDec]
	Targets       []int32   // [B, TDec]
	Mask          []float32 // [B, TDec]: the loss weight of each position (0: padding)
}

// Validate reports a batch the model cannot run.
func (b *Batch) Validate(vocab int) error {
	ne, nd := b.B*b.TEnc, b.B*b.TDec
	switch {
	case b.B <= 0 || b.TEnc <= 0 || b.TDec <= 0:
		return fmt.Errorf("t5 batch: shape B=%d TEnc=%d TDec=%d must be positive", b.B, b.TEnc, b.TDec)
	case len(b.EncTokens) != ne || len(b.EncMask) != ne:
		return fmt.Errorf("t5 batch: %dx%d encoder needs %d tokens and mask values; got %d, %d", b.B, b.TEnc, ne, len(b.EncTokens), len(b.EncMask))
	case len(b.DecTokens) != nd || len(b.Targets) != nd || len(b.Mask) != nd:
		return fmt.Errorf("t5 batch: %dx%d decoder needs %d tokens, targets and mask values; got %d, %d, %d",
			b.B, b.TDec, nd, len(b.DecTokens), len(b.Targets), len(b.Mask))
	}
	for i := range b.B {
		real := false
		for _, m := range b.EncMask[i*b.TEnc : (i+1)*b.TEnc] {
			real = real || m != 0
		}
		if !real {
			// Every key would be masked: the attention has nothing to average.
			return fmt.Errorf("t5 batch: encoder input %d is all padding", i)
		}
	}
	for _, ts := range [][]int32{b.EncTokens, b.DecTokens} {
		for i, t := range ts {
			if t < 0 || int(t) >= vocab {
				return fmt.Errorf("t5 batch: token %d at %d outside vocabulary of %d", t, i, vocab)
			}
		}
	}
	for i, m := range b.Mask {
		if m < 0 {
			return fmt.Errorf("t5 batch: negative mask %g at %d", m, i)
		}
		if m != 0 && (b.Targets[i] < 0 || int(b.Targets[i]) >= vocab) {
			return fmt.Errorf("t5 batch: target %d at %d outside vocabulary of %d", b.Targets[i], i, vocab)
		}
	}
	return nil
}

// Count is Σ Mask: the number of target tokens the loss is averaged over.
func (b *Batch) Count() float64 {
	var s float64
	for _, m := range b.Mask {
		s += float64(m)
	}
	return s
}

// ShiftRight returns the decoder inputs for targets: [start, targets[0], …, targets[len−2]].
func ShiftRight(targets []int32, start int32) []int32 {
	out := make([]int32, len(targets))
	if len(out) > 0 {
		out[0] = start
		copy(out[1:], targets[:len(targets)-1])
	}
	return out
}

// Example is one training pair: the encoder's input tokens and the target tokens the decoder learns to
// produce (EOS included, as the caller's tokenizer appends it).
type Example struct {
	Input, Target []int32
}

// PackBatch lays examples out as a batch of TEnc encoder and TDec decoder positions: inputs cut to TEnc
// and padded with cfg.Pad (mask 0); targets cut to TDec, decoder inputs their shift right from
// cfg.DecoderStart, loss mask 1 on every target position.
func PackBatch(cfg Config, examples []Example, TEnc, TDec int) Batch {
	B := len(examples)
	b := Batch{B: B, TEnc: TEnc, TDec: TDec,
		EncTokens: make([]int32, B*TEnc), EncMask: make([]float32, B*TEnc),
		DecTokens: make([]int32, B*TDec), Targets: make([]int32, B*TDec), Mask: make([]float32, B*TDec)}
	for i, ex := range examples {
		for t := range TEnc {
			b.EncTokens[i*TEnc+t] = cfg.Pad
			if t < len(ex.Input) {
				b.EncTokens[i*TEnc+t], b.EncMask[i*TEnc+t] = ex.Input[t], 1
			}
		}
		for t := range TDec {
			j := i*TDec + t
			b.DecTokens[j], b.Targets[j] = cfg.Pad, cfg.Pad
			if t == 0 {
				b.DecTokens[j] = cfg.DecoderStart
			} else if t-1 < len(ex.Target) {
				b.DecTokens[j] = ex.Target[t-1]
			}
			if t < len(ex.Target) {
				b.Targets[j], b.Mask[j] = ex.Target[t], 1
			}
		}
	}
	return b
}
