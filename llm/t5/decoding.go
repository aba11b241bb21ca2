package t5

import (
	"fmt"

	"github.com/lathe-ml/lathe/llm/generate"
)

// MaxDecodingLen bounds a request's input plus its generated tokens when the model serves (Decoding):
// T5 has no context length of its own (relative positions extend to any length), but encoder
// attention memory is quadratic in the input and Flan-T5 was trained on inputs of 512 tokens.
const MaxDecodingLen = 2048

// Decoding is the model as a generate.Model, so that llm/generate's sampling, stop conditions,
// log-probabilities and streaming, and the endpoints' continuous batching, serve an encoder-decoder as
// they serve a decoder-only model. A cache's first Extend is the prompt: it runs the encoder once,
// then the decoder's first step from decoder_start_token_id, whose logits give the first token; each
// later Extend is one decoder step. A cache's Len counts the prompt and the generated tokens fed, as a
// decoder-only KV cache's would.
func (m *Model) Decoding() generate.Model { return decoding{m} }

type decoding struct{ m *Model }

// seqCache is one request's encoder output (through the decoder's cross-attention keys and values)
// and its incremental decoder.
type seqCache struct {
	n, max int
	dec    *Decoder
}

func (c *seqCache) Len() int { return c.n }

func (c *seqCache) Cap() int { return c.max }

func (d decoding) Vocab() int { return d.m.n.cfg.Vocab }

func (d decoding) ContextLen() int { return MaxDecodingLen }

func (d decoding) NewCache(maxLen int) generate.Cache { return &seqCache{max: maxLen} }

func (d decoding) Extend(caches []generate.Cache, tokens [][]int32, logits []float32) error {
	V := d.m.n.cfg.Vocab
	for i, gc := range caches {
		c, ok := gc.(*seqCache)
		if !ok {
			return fmt.Errorf("t5: cache %d is a %T, not a T5 cache", i, gc)
		}
		row := logits[i*V : (i+1)*V]
		if c.dec == nil {
			if c.n+len(tokens[i]) >= c.max {
				return fmt.Errorf("t5: a prompt of %d tokens leaves no room in a cache of %d", len(tokens[i]), c.max)
			}
			enc, err := d.m.Encode(tokens[i])
			if err != nil {
				return err
			}
			// Decoder positions: the start token and every generated token fed back.
			c.dec = d.m.NewDecoder(enc, c.max-len(tokens[i])+1)
			if err := c.dec.Step(d.m.n.cfg.DecoderStart, row); err != nil {
				return err
			}
			c.n = len(tokens[i])
			continue
		}
		for _, t := range tokens[i] {
			if c.n >= c.max {
				return fmt.Errorf("t5: cache full at %d positions", c.max)
			}
			if err := c.dec.Step(t, row); err != nil {
				return err
			}
			c.n++
		}
	}
	return nil
}
