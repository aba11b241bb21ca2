package generate

import (
	"fmt"

	"github.com/lathe-ml/lathe/llm/model"
)

// Model is what a Decoder decodes with: a vocabulary, a context length, and a cache per sequence that
// Extend feeds tokens into, returning the next-token logits of each sequence. llm/model's decoder-only
// Model is one (DecoderOnly); an encoder-decoder is one when its first Extend of a cache encodes the
// prompt and its later ones step the decoder (llm/t5's Model.Decoding).
type Model interface {
	Vocab() int
	// ContextLen is the longest prompt + generation a cache may hold; 0 means no limit.
	ContextLen() int
	// NewCache returns an empty cache for a sequence of at most maxLen positions.
	NewCache(maxLen int) Cache
	// Extend appends tokens[i] to caches[i] for every i and writes the logits after each sequence's last
	// token into logits[i·Vocab:(i+1)·Vocab].
	Extend(caches []Cache, tokens [][]int32, logits []float32) error
}

// Cache is one sequence's decoding state.
type Cache interface {
	Len() int // positions fed so far
	Cap() int // positions it can hold
}

// DecoderOnly is m as a Model: its KV caches and its batched Extend.
func DecoderOnly(m *model.Model) Model { return &decoderOnly{m: m} }

type decoderOnly struct {
	m      *model.Model
	caches []*model.KVCache // Extend's argument, reused
}

func (d *decoderOnly) Vocab() int { return d.m.Config().Vocab }

func (d *decoderOnly) ContextLen() int { return d.m.Config().ContextLen }

func (d *decoderOnly) NewCache(maxLen int) Cache { return d.m.NewKVCache(maxLen) }

func (d *decoderOnly) Extend(caches []Cache, tokens [][]int32, logits []float32) error {
	d.caches = d.caches[:0]
	for i, c := range caches {
		kv, ok := c.(*model.KVCache)
		if !ok {
			return fmt.Errorf("cache %d is a %T, not this model's KV cache", i, c)
		}
		d.caches = append(d.caches, kv)
	}
	return d.m.Extend(d.caches, tokens, logits)
}
