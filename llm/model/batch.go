package model

import "fmt"

// Batch is B sequences of T positions. Position t of sequence b reads Tokens[b·T+t] and, where
// Mask[b·T+t] is non-zero, is trained to predict Targets[b·T+t] with that weight (1 for a response
// token, 0 for prompt tokens and padding). Padding goes at the end of a sequence: attention is causal,
// so it never changes the positions before it.
type Batch struct {
	B, T    int
	Tokens  []int32
	Targets []int32
	Mask    []float32
}

// Validate reports a batch the model cannot run.
func (b Batch) Validate(vocab int) error {
	n := b.B * b.T
	if b.B <= 0 || b.T <= 0 {
		return fmt.Errorf("batch: shape %dx%d must be positive", b.B, b.T)
	}
	if len(b.Tokens) != n || len(b.Targets) != n || len(b.Mask) != n {
		return fmt.Errorf("batch: %dx%d needs %d tokens, targets and mask values; got %d, %d, %d",
			b.B, b.T, n, len(b.Tokens), len(b.Targets), len(b.Mask))
	}
	for i, t := range b.Tokens {
		if t < 0 || int(t) >= vocab {
			return fmt.Errorf("batch: token %d at %d outside vocabulary of %d", t, i, vocab)
		}
	}
	for i, m := range b.Mask {
		if m < 0 {
			return fmt.Errorf("batch: negative mask %g at %d", m, i)
		}
		if m != 0 && (b.Targets[i] < 0 || int(b.Targets[i]) >= vocab) {
			return fmt.Errorf("batch: target %d at %d outside vocabulary of %d", b.Targets[i], i, vocab)
		}
	}
	return nil
}

// Count is Σ Mask: the number of tokens the loss is averaged over.
func (b Batch) Count() float64 {
	var s float64
	for _, m := range b.Mask {
		s += float64(m)
	}
	return s
}

// Example is one training sequence: the prompt's tokens followed by the response's (BOS and EOS
// included as the caller's template wants). Only the response tokens are predicted in the loss.
type Example struct {
	Tokens    []int32
	PromptLen int
}

// PackBatch lays examples out as a B×T batch (B = len(examples)): inputs are Tokens[:len-1], targets
// Tokens[1:], mask 1 on targets at index ≥ PromptLen; sequences longer than T+1 tokens are cut, shorter
// ones padded with token pad and mask 0. It allocates; reuse a Batch with PackInto in a training loop.
func PackBatch(examples []Example, T int, pad int32) Batch {
	n := len(examples) * T
	b := Batch{B: len(examples), T: T, Tokens: make([]int32, n), Targets: make([]int32, n), Mask: make([]float32, n)}
	PackInto(&b, examples, pad)
	return b
}

// PackInto fills an existing batch of shape len(examples)×b.T, as PackBatch does.
func PackInto(b *Batch, examples []Example, pad int32) {
	T := b.T
	for i, ex := range examples {
		for t := range T {
			j := i*T + t
			b.Tokens[j], b.Targets[j], b.Mask[j] = pad, pad, 0
			if t+1 < len(ex.Tokens) {
				b.Tokens[j], b.Targets[j] = ex.Tokens[t], ex.Tokens[t+1]
				if t+1 >= ex.PromptLen {
					b.Mask[j] = 1
				}
			}
		}
	}
}
