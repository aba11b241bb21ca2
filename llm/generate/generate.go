// Package generate produces text from an llm/model.Model: a KV cache per sequence, greedy or sampled
// decoding (temperature, top-k, top-p, repetition penalty, seed), stop tokens and stop sequences,
// token streaming, and several prompts decoded together in one batch.
package generate

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/llm/model"
)

// Options controls decoding. The zero value (apart from MaxNewTokens) is greedy decoding.
type Options struct {
	MaxNewTokens int
	// Temperature divides the logits before sampling; 0 means greedy (argmax), as does TopK 1.
	Temperature float64
	TopK        int     // keep the K most likely tokens; 0 keeps all
	TopP        float64 // keep the smallest set of tokens whose probability reaches TopP; 0 or 1 keeps all
	// TypicalP is locally typical sampling (Meister et al. 2022, transformers' TypicalLogitsWarper):
	// after TopK and TopP, keep the tokens whose surprisal −log p is closest to the distribution's
	// entropy, as many as reach TypicalP of the probability. 0 or 1 keeps all.
	TypicalP float64
	// RepetitionPenalty > 1 makes tokens already in the prompt or the output less likely, as
	// transformers does: a positive logit is divided by it, a negative one multiplied. 0 or 1 is off.
	RepetitionPenalty float64
	Seed              uint64   // sequence i samples from PCG(Seed, i): the same seed gives the same text
	StopTokens        []int32  // end-of-sequence ids: generation ends there (the id is not output)
	StopSequences     []string // generation ends before the first occurrence of any of these in the text
	// Logprobs asks for each new token's natural-log probability (Token.Logprob, Result.Logprobs):
	// under the distribution it was sampled from, or, decoding greedily, under the softmax of the
	// logits after the repetition penalty, which costs one more pass over the vocabulary a token.
	Logprobs bool
	// TopLogprobs, with Logprobs, also lists the N most likely tokens of that same distribution at
	// each step (Token.Top, Result.TopLogprobs), most likely first: OpenAI's top_logprobs.
	TopLogprobs int
}

func (o Options) validate() error {
	switch {
	case o.MaxNewTokens <= 0:
		return fmt.Errorf("generate: max new tokens %d must be positive", o.MaxNewTokens)
	case o.Temperature < 0 || math.IsNaN(o.Temperature):
		return fmt.Errorf("generate: temperature %g must not be negative", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("generate: top-k %d must not be negative", o.TopK)
	case o.TopP < 0 || o.TopP > 1:
		return fmt.Errorf("generate: top-p %g must be in [0, 1]", o.TopP)
	case o.TypicalP < 0 || o.TypicalP > 1 || math.IsNaN(o.TypicalP):
		return fmt.Errorf("generate: typical-p %g must be in [0, 1]", o.TypicalP)
	case o.TopLogprobs < 0:
		return fmt.Errorf("generate: top logprobs %d must not be negative", o.TopLogprobs)
	case o.RepetitionPenalty < 0:
		return fmt.Errorf("generate: repetition penalty %g must not be negative", o.RepetitionPenalty)
	}
	for _, s := range o.StopSequences {
		if s == "" {
			return fmt.Errorf("generate: empty stop sequence")
		}
	}
	return nil
}

// Detokenize turns token ids into text (the tokenizer's decode, special tokens skipped).
type Detokenize func(ids []int32) string

// Token is one streamed step of one sequence: the token id and the text it releases (possibly empty
// while a multi-byte character or a possible stop sequence is still incomplete). A sequence that ends
// on a stop token or the context limit may send a last Token with ID −1 carrying the text held back.
type Token struct {
	Seq     int
	ID      int32
	Text    string
	Logprob float32       // with Options.Logprobs; 0 on the text-only token that ends a held-back tail (ID −1)
	Top     []Alternative // with Options.TopLogprobs: the most likely tokens at this step
}

// Finish reasons.
const (
	FinishLength = "length" // MaxNewTokens reached, or the model's context is full
	FinishEOS    = "eos"    // a stop token was produced
	FinishStop   = "stop"   // a stop sequence appeared in the text
	// FinishCancelled: Request.Cancel was called.
	FinishCancelled = "cancelled"
)

// Result is one prompt's generation.
type Result struct {
	Tokens   []int32   // generated ids (no stop token); may run past Text's end when a stop sequence cut it
	Logprobs []float32 // each token's log-probability, with Options.Logprobs
	// TopLogprobs are, token by token, the most likely tokens at that step (Options.TopLogprobs).
	TopLogprobs [][]Alternative
	Text        string // detokenized output, cut before a stop sequence
	Finish      string
	// StopToken is the end-of-sequence id that ended generation when Finish is FinishEOS, with its
	// log-probability (Options.Logprobs).
	StopToken   int32
	StopLogprob float32
}

// Request is one sequence in a Decoder: its cache, sampler state and result so far.
type Request struct {
	index   int
	opt     Options
	onToken func(Token) error
	cache   Cache
	rng     *rand.Rand
	seen    []bool        // tokens in the prompt or the output (repetition penalty)
	top     []Alternative // the step's most likely tokens, filled by sample (Options.TopLogprobs)
	next    []int32
	result  Result
	emitted int // bytes of text already streamed
	done    bool
	err     error
	cancel  atomic.Bool
}

// Done reports whether the request has finished (its Result is final).
func (r *Request) Done() bool { return r.done }

// Result is the request's output so far.
func (r *Request) Result() Result { return r.result }

// Err is the error that ended the request (from its onToken callback), if any.
func (r *Request) Err() error { return r.err }

// Cancel asks the decoder to drop the request at its next step (e.g. the client went away). It is the
// one method safe to call from another goroutine.
func (r *Request) Cancel() { r.cancel.Store(true) }

// Decoder runs continuous batching: requests join at any step (their prompt is prefilled in the same
// forward as the other requests' next tokens) and leave when they finish. It is not safe for
// concurrent use (except Request.Cancel): one goroutine owns it and calls Add and Step.
type Decoder struct {
	m      Model
	detok  Detokenize
	active []*Request
	logits []float32
	work   []float64
	probs  []float64
	order  []int32
	caches []Cache
	inputs [][]int32
}

// NewDecoder returns a decoder over m; detok may be nil when no text is wanted.
func NewDecoder(m *model.Model, detok Detokenize) *Decoder {
	return NewDecoderFor(DecoderOnly(m), detok)
}

// NewDecoderFor returns a decoder over any Model (an encoder-decoder's adapter included).
func NewDecoderFor(m Model, detok Detokenize) *Decoder {
	V := m.Vocab()
	return &Decoder{m: m, detok: detok, work: make([]float64, V), probs: make([]float64, V), order: make([]int32, V)}
}

// Active is the number of unfinished requests.
func (d *Decoder) Active() int { return len(d.active) }

// Add queues a prompt; its first token comes out of the next Step. onToken (may be nil) receives each
// token as it is produced.
func (d *Decoder) Add(prompt []int32, opt Options, onToken func(Token) error) (*Request, error) {
	return d.add(0, prompt, opt, onToken)
}

func (d *Decoder) add(index int, prompt []int32, opt Options, onToken func(Token) error) (*Request, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if d.detok == nil && len(opt.StopSequences) > 0 {
		return nil, fmt.Errorf("generate: stop sequences need a detokenizer")
	}
	V, ctxLen := d.m.Vocab(), d.m.ContextLen()
	if len(prompt) == 0 {
		return nil, fmt.Errorf("generate: prompt %d is empty (start it with BOS)", index)
	}
	n := len(prompt) + opt.MaxNewTokens
	if ctxLen > 0 {
		n = min(n, ctxLen)
	}
	if len(prompt) >= n {
		return nil, fmt.Errorf("generate: prompt %d has %d tokens, the model's context is %d", index, len(prompt), ctxLen)
	}
	r := &Request{index: index, opt: opt, onToken: onToken, rng: rand.New(rand.NewPCG(opt.Seed, uint64(index))),
		seen: make([]bool, V), next: slices.Clone(prompt)}
	for _, t := range prompt {
		if t < 0 || int(t) >= V {
			return nil, fmt.Errorf("generate: prompt %d has token %d outside the vocabulary of %d", index, t, V)
		}
		r.seen[t] = true
	}
	r.cache = d.m.NewCache(n)
	d.active = append(d.active, r)
	return r, nil
}

// Step runs one batched forward over every active request (a new request's whole prompt, one token
// for the others), samples each request's next token, streams it, and drops the requests that
// finished or were cancelled. An error from the model fails every active request.
func (d *Decoder) Step() error {
	V := d.m.Vocab()
	kept := d.active[:0]
	for _, r := range d.active {
		if r.cancel.Load() {
			r.done, r.result.Finish = true, FinishCancelled
			continue
		}
		kept = append(kept, r)
	}
	d.active = kept
	if len(d.active) == 0 {
		return nil
	}
	d.caches, d.inputs = d.caches[:0], d.inputs[:0]
	for _, r := range d.active {
		d.caches, d.inputs = append(d.caches, r.cache), append(d.inputs, r.next)
	}
	if need := len(d.active) * V; len(d.logits) < need {
		d.logits = make([]float32, need)
	}
	if err := d.m.Extend(d.caches, d.inputs, d.logits); err != nil {
		err = fmt.Errorf("generate: %w", err)
		for _, r := range d.active {
			r.done, r.err = true, err
		}
		d.active = d.active[:0]
		return err
	}
	kept = d.active[:0]
	for a, r := range d.active {
		tok, lp := sample(d.logits[a*V:(a+1)*V], r, r.opt, d.work, d.probs, d.order)
		if err := r.advance(tok, float32(lp), d.detok); err != nil {
			r.done, r.err = true, err
		}
		if !r.done && r.cache.Len() >= r.cache.Cap() {
			if err := r.finish(FinishLength, d.detok); err != nil {
				r.err = err
			}
		}
		if !r.done {
			r.next = append(r.next[:0], tok)
			kept = append(kept, r)
		}
	}
	d.active = kept
	return nil
}

// Generate continues each prompt with the same options, all prompts decoded together in one batch
// (prompt i samples from PCG(Seed, i)). onToken (may be nil) receives each token as it is produced
// (Token.Seq is the prompt's index); an error from it, or ctx's cancellation, ends generation with the
// results so far. detok may be nil when no text is wanted (then StopSequences must be empty).
func Generate(ctx context.Context, m *model.Model, prompts [][]int32, opt Options, detok Detokenize, onToken func(Token) error) ([]Result, error) {
	return GenerateWith(ctx, DecoderOnly(m), prompts, opt, detok, onToken)
}

// GenerateWith is Generate over any Model.
func GenerateWith(ctx context.Context, m Model, prompts [][]int32, opt Options, detok Detokenize, onToken func(Token) error) ([]Result, error) {
	d := NewDecoderFor(m, detok)
	reqs := make([]*Request, len(prompts))
	for i, p := range prompts {
		r, err := d.add(i, p, opt, onToken)
		if err != nil {
			return nil, err
		}
		reqs[i] = r
	}
	results := func() []Result {
		out := make([]Result, len(reqs))
		for i, r := range reqs {
			out[i] = r.result
		}
		return out
	}
	for d.Active() > 0 {
		if err := ctx.Err(); err != nil {
			return results(), err
		}
		if err := d.Step(); err != nil {
			return results(), err
		}
		for _, r := range reqs {
			if r.err != nil {
				return results(), r.err
			}
		}
	}
	return results(), nil
}

// advance records a sampled token (and its log-probability lp), checks the stop conditions and
// streams what text is final.
func (s *Request) advance(tok int32, lp float32, detok Detokenize) error {
	i, opt, onToken := s.index, s.opt, s.onToken
	if slices.Contains(opt.StopTokens, tok) {
		s.result.StopToken, s.result.StopLogprob = tok, lp
		return s.finish(FinishEOS, detok)
	}
	s.result.Tokens = append(s.result.Tokens, tok)
	if opt.Logprobs {
		s.result.Logprobs = append(s.result.Logprobs, lp)
	}
	if opt.TopLogprobs > 0 {
		s.result.TopLogprobs = append(s.result.TopLogprobs, s.top)
	}
	s.seen[tok] = true
	if detok == nil {
		if onToken != nil {
			if err := onToken(Token{Seq: i, ID: tok, Logprob: lp, Top: s.top}); err != nil {
				return err
			}
		}
		if len(s.result.Tokens) >= opt.MaxNewTokens {
			s.done, s.result.Finish = true, FinishLength
		}
		return nil
	}
	full := detok(s.result.Tokens)
	for _, stop := range opt.StopSequences {
		if k := strings.Index(full, stop); k >= 0 {
			full = full[:k]
			s.result.Text = full
			s.done, s.result.Finish = true, FinishStop
			return s.stream(i, tok, lp, full, len(full), onToken)
		}
	}
	s.result.Text = full
	if len(s.result.Tokens) >= opt.MaxNewTokens {
		s.done, s.result.Finish = true, FinishLength
		return s.stream(i, tok, lp, full, len(full), onToken)
	}
	return s.stream(i, tok, lp, full, safeEnd(full, opt.StopSequences), onToken)
}

// finish ends a sequence without a new token and streams the text held back.
func (s *Request) finish(reason string, detok Detokenize) error {
	i, onToken := s.index, s.onToken
	s.done, s.result.Finish = true, reason
	if detok == nil || s.emitted >= len(s.result.Text) || onToken == nil {
		return nil
	}
	rest := s.result.Text[s.emitted:]
	s.emitted = len(s.result.Text)
	return onToken(Token{Seq: i, ID: -1, Text: rest})
}

// stream sends the token (log-probability lp) with the text between what was already sent and end.
func (s *Request) stream(i int, tok int32, lp float32, full string, end int, onToken func(Token) error) error {
	if onToken == nil {
		return nil
	}
	text := ""
	if end > s.emitted {
		text = full[s.emitted:end]
		s.emitted = end
	}
	return onToken(Token{Seq: i, ID: tok, Text: text, Logprob: lp, Top: s.top})
}

// safeEnd is how much of text can be streamed: not a trailing incomplete character (decoders show it
// as U+FFFD), nor a suffix that could be the start of a stop sequence.
func safeEnd(text string, stops []string) int {
	end := len(text)
	for end > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:end])
		if r != utf8.RuneError || size > 1 {
			break
		}
		end -= size
	}
	for strings.HasSuffix(text[:end], "\uFFFD") {
		end -= len("\uFFFD")
	}
	hold := 0
	for _, stop := range stops {
		for k := min(len(stop)-1, end); k > hold; k-- {
			if strings.HasSuffix(text[:end], stop[:k]) {
				hold = k
				break
			}
		}
	}
	return end - hold
}

// sample picks the next token from one sequence's logits, and its log-probability when opt.Logprobs
// asks (see Options.Logprobs). work and probs hold Vocab float64s, order Vocab int32s.
func sample(logits []float32, s *Request, opt Options, work, probs []float64, order []int32) (int32, float64) {
	for j, v := range logits {
		w := float64(v)
		if p := opt.RepetitionPenalty; p > 0 && p != 1 && s.seen[j] {
			if w > 0 {
				w /= p
			} else {
				w *= p
			}
		}
		work[j] = w
	}
	if opt.Temperature == 0 || opt.TopK == 1 {
		best := 0
		for j, w := range work {
			if w > work[best] {
				best = j
			}
		}
		if !opt.Logprobs {
			return int32(best), 0
		}
		var z float64 // log-softmax at the maximum: −log Σ exp(w − max)
		for _, w := range work {
			z += math.Exp(w - work[best])
		}
		if opt.TopLogprobs > 0 { // log p(j) = w_j − max − log z
			s.top = topAlternatives(nil, work, opt.TopLogprobs, work[best]+math.Log(z), func(w float64) float64 { return w })
		}
		return int32(best), -math.Log(z)
	}
	topP := opt.TopP > 0 && opt.TopP < 1
	var cand []int32
	switch {
	case opt.TopK > 0 && opt.TopK < len(work):
		cand = topK(work, opt.TopK, order) // sorted, most likely first
	default:
		cand = order[:len(work)]
		for j := range cand {
			cand[j] = int32(j)
		}
		if topP {
			sortDesc(cand, work)
		}
	}
	// softmax over the candidates at the temperature
	mx := math.Inf(-1)
	for _, j := range cand {
		mx = max(mx, work[j])
	}
	var z float64
	for _, j := range cand {
		probs[j] = math.Exp((work[j] - mx) / opt.Temperature)
		z += probs[j]
	}
	if topP { // the smallest prefix of the sorted candidates whose probability reaches TopP
		cand, z = massPrefix(cand, probs, z, opt.TopP)
	}
	if opt.TypicalP > 0 && opt.TypicalP < 1 {
		cand, z = typical(cand, probs, z, opt.TypicalP, work)
	}
	u := s.rng.Float64() * z
	var cum float64
	pick := cand[len(cand)-1]
	for _, j := range cand {
		cum += probs[j]
		if u < cum {
			pick = j
			break
		}
	}
	if opt.Logprobs && opt.TopLogprobs > 0 {
		s.top = topAlternatives(cand, probs, opt.TopLogprobs, math.Log(z), math.Log)
	}
	return pick, math.Log(probs[pick] / z)
}

// typical keeps the candidates whose surprisal is closest to the entropy of their distribution
// (probs[j]/z over cand), closest first, until their probability reaches mass; it reorders cand and
// returns the kept prefix with its unnormalized total. shift is scratch indexed like probs.
func typical(cand []int32, probs []float64, z, mass float64, shift []float64) ([]int32, float64) {
	var entropy float64
	for _, j := range cand {
		if p := probs[j] / z; p > 0 {
			entropy -= p * math.Log(p)
		}
	}
	for _, j := range cand {
		if p := probs[j] / z; p > 0 {
			shift[j] = math.Abs(-math.Log(p) - entropy)
		} else {
			shift[j] = math.Inf(1)
		}
	}
	slices.SortStableFunc(cand, func(a, b int32) int { return cmp.Compare(shift[a], shift[b]) })
	return massPrefix(cand, probs, z, mass)
}

// massPrefix keeps the shortest prefix of cand whose probability (probs[j]/z) reaches mass, and
// returns it with its unnormalized total: what top-p and typical sampling both cut.
func massPrefix(cand []int32, probs []float64, z, mass float64) ([]int32, float64) {
	var cum float64
	for k, j := range cand {
		cum += probs[j] / z
		if cum >= mass {
			cand = cand[:k+1]
			break
		}
	}
	z = 0
	for _, j := range cand {
		z += probs[j]
	}
	return cand, z
}

// topK returns the indices of the k largest values, largest first (ties: lower index first), using a
// min-heap of k entries: O(V log k) instead of sorting the vocabulary.
func topK(w []float64, k int, buf []int32) []int32 {
	less := func(a, b int32) bool { // a ranks below b
		return w[a] < w[b] || (w[a] == w[b] && a > b)
	}
	h := buf[:0]
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && less(h[c+1], h[c]) {
				c++
			}
			if !less(h[c], h[i]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for j := range w {
		id := int32(j)
		if len(h) < k {
			h = append(h, id)
			for i := len(h) - 1; i > 0 && less(h[i], h[(i-1)/2]); i = (i - 1) / 2 {
				h[i], h[(i-1)/2] = h[(i-1)/2], h[i]
			}
			continue
		}
		if less(h[0], id) {
			h[0] = id
			down(0)
		}
	}
	sortDesc(h, w)
	return h
}

// sortDesc orders ids by decreasing w (ties: lower id first).
func sortDesc(ids []int32, w []float64) {
	slices.SortFunc(ids, func(a, b int32) int {
		switch {
		case w[a] > w[b]:
			return -1
		case w[a] < w[b]:
			return 1
		}
		return int(a - b)
	})
}
