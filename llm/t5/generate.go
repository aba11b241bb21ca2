package t5

import "fmt"

// Encoded is one request's encoder pass: the encoder output projected, once, into the keys and values
// of every decoder layer's cross-attention.
type Encoded struct {
	T    int
	mask []float32   // [T] all ones: a request's input has no padding
	k, v [][]float32 // [DecoderLayers][T, Inner]
}

// Encode runs the encoder over one input sequence and computes each decoder layer's cross-attention
// keys and values from its output.
func (m *Model) Encode(tokens []int32) (*Encoded, error) {
	n, c := m.n, m.n.cfg
	T := len(tokens)
	if T == 0 {
		return nil, fmt.Errorf("t5 encode: empty input")
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= c.Vocab {
			return nil, fmt.Errorf("t5 encode: token %d at %d outside vocabulary of %d", t, i, c.Vocab)
		}
	}
	// Its own activations, so that generating between training steps keeps the training allocation.
	a := newActivations[float32](c, actsKey{B: 1, TE: T})
	saved := n.acts
	n.acts = a
	defer func() { n.acts = saved }()
	for i := range a.encMask {
		a.encMask[i] = 1
	}
	n.encode(a, tokens, false)
	I := c.Inner()
	mask := make([]float32, T)
	for i := range mask {
		mask[i] = 1
	}
	e := &Encoded{T: T, mask: mask, k: make([][]float32, c.DecoderLayers), v: make([][]float32, c.DecoderLayers)}
	for l := range c.DecoderLayers {
		w := &n.w.dec[l].cross
		e.k[l], e.v[l] = make([]float32, T*I), make([]float32, T*I)
		n.lin(site{DecoderCross, l, ProjK}, e.k[l], a.encOut, w.k, T, c.DModel, I, false)
		n.lin(site{DecoderCross, l, ProjV}, e.v[l], a.encOut, w.v, T, c.DModel, I, false)
	}
	return e, nil
}

// Decoder is one sequence's incremental decoder: the self-attention keys and values of the positions
// fed so far (a KV cache), and the encoder's cross-attention keys and values.
type Decoder struct {
	n        *net[float32]
	enc      *Encoded
	pos, max int
	k, v     []float32 // [DecoderLayers, max, Inner]
	pb       posBias[float32]
	// one row's scratch
	x, xn, tmp  []float32 // [DModel]
	rstd        []float32 // [1]
	q, kv, attn []float32 // [Inner]
	a0, a1, h   []float32 // [DFF]
	sc          *attnScratch[float32]
}

// NewDecoder returns a decoder for up to maxLen positions over an encoded input.
func (m *Model) NewDecoder(enc *Encoded, maxLen int) *Decoder {
	c := m.n.cfg
	C, I, FF := c.DModel, c.Inner(), c.DFF
	maxLen = max(maxLen, 1)
	d := &Decoder{n: m.n, enc: enc, max: maxLen,
		k: make([]float32, c.DecoderLayers*maxLen*I), v: make([]float32, c.DecoderLayers*maxLen*I),
		pb: posBias[float32]{table: m.n.w.decRel, bucket: bucketTable(maxLen, false, c.Buckets, c.MaxDistance), off: maxLen - 1},
		x:  make([]float32, C), xn: make([]float32, C), tmp: make([]float32, C), rstd: make([]float32, 1),
		q: make([]float32, I), kv: make([]float32, I), attn: make([]float32, I),
		a0: make([]float32, FF), a1: make([]float32, FF), h: make([]float32, FF)}
	cv := &carver[float32]{}
	newAttnScratch(cv, c.Heads, 1, max(maxLen, enc.T))
	cv.slab = make([]float32, cv.off)
	cv.off = 0
	d.sc = newAttnScratch(cv, c.Heads, 1, max(maxLen, enc.T))
	return d
}

// Len is the number of positions fed so far.
func (d *Decoder) Len() int { return d.pos }

// Step feeds the next decoder input token (DecoderStart first) and writes the logits of the token that
// follows it into logits[:Vocab]. Each decoder layer: self-attention over the cached positions and this
// one (causal relative bias of key − query), cross-attention over the encoder, feed-forward.
func (d *Decoder) Step(token int32, logits []float32) error {
	n, c := d.n, d.n.cfg
	if d.pos >= d.max {
		return fmt.Errorf("t5 decoder: all %d positions used", d.max)
	}
	if token < 0 || int(token) >= c.Vocab {
		return fmt.Errorf("t5 decoder: token %d outside vocabulary of %d", token, c.Vocab)
	}
	if len(logits) < c.Vocab {
		return fmt.Errorf("t5 decoder: logits holds %d values, vocabulary is %d", len(logits), c.Vocab)
	}
	C, I, FF, H, D := c.DModel, c.Inner(), c.DFF, c.Heads, c.DKV
	p, w := d.pos, n.w
	embeddingForward(d.x, []int32{token}, w.shared, 1, C)
	for l := range c.DecoderLayers {
		b := &w.dec[l]
		K, V := d.k[l*d.max*I:(l+1)*d.max*I], d.v[l*d.max*I:(l+1)*d.max*I]
		rmsnormForward(d.xn, d.rstd, d.x, b.selfNorm, 1, C, c.Eps)
		n.lin(site{DecoderSelf, l, ProjQ}, d.q, d.xn, b.self.q, 1, C, I, false)
		n.lin(site{DecoderSelf, l, ProjK}, K[p*I:(p+1)*I], d.xn, b.self.k, 1, C, I, false)
		n.lin(site{DecoderSelf, l, ProjV}, V[p*I:(p+1)*I], d.xn, b.self.v, 1, C, I, false)
		attentionForward(d.attn, d.q, K[:(p+1)*I], V[:(p+1)*I], &d.pb, nil, d.sc, 1, 1, p+1, H, D, p, true)
		n.lin(site{DecoderSelf, l, ProjO}, d.tmp, d.attn, b.self.o, 1, I, C, false)
		residualForward(d.x, d.tmp)

		rmsnormForward(d.xn, d.rstd, d.x, b.crossNorm, 1, C, c.Eps)
		n.lin(site{DecoderCross, l, ProjQ}, d.q, d.xn, b.cross.q, 1, C, I, false)
		attentionForward(d.attn, d.q, d.enc.k[l], d.enc.v[l], nil, d.enc.mask, d.sc, 1, 1, d.enc.T, H, D, 0, false)
		n.lin(site{DecoderCross, l, ProjO}, d.tmp, d.attn, b.cross.o, 1, I, C, false)
		residualForward(d.x, d.tmp)

		rmsnormForward(d.xn, d.rstd, d.x, b.ffnNorm, 1, C, c.Eps)
		n.lin(site{DecoderFFN, l, ProjWi0}, d.a0, d.xn, b.ffn.wi0, 1, C, FF, false)
		a1 := []float32(nil)
		if c.Gated {
			a1 = d.a1
			n.lin(site{DecoderFFN, l, ProjWi1}, a1, d.xn, b.ffn.wi1, 1, C, FF, false)
		}
		actForward(d.h, d.a0, a1, c.Act)
		n.lin(site{DecoderFFN, l, ProjWo}, d.tmp, d.h, b.ffn.wo, 1, FF, C, false)
		residualForward(d.x, d.tmp)
	}
	rmsnormForward(d.xn, d.rstd, d.x, w.decFinal, 1, C, c.Eps)
	if c.Tied {
		scaleForward(d.xn, c.headScale())
	}
	linearForward(logits[:c.Vocab], d.xn, w.head(), 1, C, c.Vocab)
	d.pos++
	return nil
}

// Greedy generates up to maxNew tokens for input, each the most likely (the first on ties), stopping
// after EOS (which it returns). The decoder starts from DecoderStart, as transformers' generate does.
func (m *Model) Greedy(input []int32, maxNew int) ([]int32, error) {
	c := m.n.cfg
	enc, err := m.Encode(input)
	if err != nil {
		return nil, err
	}
	d := m.NewDecoder(enc, maxNew)
	logits := make([]float32, c.Vocab)
	var out []int32
	tok := c.DecoderStart
	for len(out) < maxNew {
		if err := d.Step(tok, logits); err != nil {
			return nil, err
		}
		tok = argmax(logits)
		out = append(out, tok)
		if tok == c.EOS {
			break
		}
	}
	return out, nil
}

// argmax is the index of the largest value, the first on ties (as torch.argmax).
func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}
