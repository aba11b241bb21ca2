// Package serving runs one loaded model for many concurrent callers: it formats prompts the way the
// model was fine-tuned, admits requests into a bounded queue, decodes them together with the
// engine's continuous batching (llm/generate.Decoder), streams tokens back, and drops a request whose
// caller went away. It knows nothing of HTTP or SageMaker.
package serving

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/dataset"
	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/t5"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// PromptFormat says how a caller's input becomes the text the model continues.
type PromptFormat string

const (
	// FormatPlain wraps the input in dataset.PlainTemplate, as the pipeline trains base models.
	FormatPlain PromptFormat = "plain"
	// FormatChat renders the input as one user turn of the model's chat template, as the pipeline
	// trains instruct models.
	FormatChat PromptFormat = "chat"
	// FormatRaw feeds the input unchanged (plain text continuation).
	FormatRaw PromptFormat = "raw"
	// FormatInstruct is FormatChat for a model with a chat template and FormatPlain for one without
	// (an instruct model such as Falcon-7B-Instruct ships none): what the pipeline trained it with.
	// Load resolves it; Engine.Format never returns it.
	FormatInstruct PromptFormat = "instruct"
)

// ParsePromptFormat checks a format name.
func ParsePromptFormat(s string) (PromptFormat, error) {
	switch f := PromptFormat(s); f {
	case FormatPlain, FormatChat, FormatRaw, FormatInstruct:
		return f, nil
	}
	return "", fmt.Errorf("prompt format %q is not one of plain, chat, raw, instruct", s)
}

// FormatFor is the prompt format the pipeline trains a base model with: for instruct catalog models the
// chat template when the model has one (finetune's engineModel.Prompt: FormatInstruct), the plain
// template otherwise.
func FormatFor(baseModel string) PromptFormat {
	if m, ok := catalog.Lookup(baseModel); ok && m.Instruct {
		return FormatInstruct
	}
	return FormatPlain
}

// Weights is how an engine holds the weight matrices it decodes with.
type Weights string

const (
	// WeightsAuto keeps a quantized GGUF's blocks (WeightsQuantized) and otherwise picks bfloat16
	// for models of at least BF16AutoParams parameters, float32 below.
	WeightsAuto     Weights = ""
	WeightsFloat32  Weights = "float32"
	WeightsBFloat16 Weights = "bfloat16"
	// WeightsQuantized decodes from the Q8_0/Q4_0/Q4_K/Q6_K blocks of a quantized GGUF file, never
	// widened (llm/model's QuantizedWeights). Only Auto picks it: float32 or bfloat16 asked for a
	// quantized file widen its blocks.
	WeightsQuantized Weights = "quantized"
)

// BF16AutoParams is the size from which an engine decodes with bfloat16 weights unless told
// otherwise: decoding is memory-bound, so half the bytes per token is up to twice the speed, and
// models this large are published in bfloat16 anyway. Smaller models keep float32's exact logits.
const BF16AutoParams = 400_000_000

// ParseWeights checks a weights name ("float32", "bfloat16", or "" / "auto").
func ParseWeights(s string) (Weights, error) {
	switch w := Weights(s); w {
	case WeightsFloat32, WeightsBFloat16:
		return w, nil
	case WeightsAuto, "auto":
		return WeightsAuto, nil
	}
	return "", fmt.Errorf("weights %q are not one of float32, bfloat16, auto", s)
}

// Options bound an engine's memory and queue.
type Options struct {
	Format  PromptFormat // default FormatPlain
	Weights Weights      // default WeightsAuto
	// MaxBatch is how many requests decode together (each holds a KV cache of prompt+max_new_tokens
	// positions). Default 32.
	MaxBatch int
	// MaxQueue is how many admitted requests may wait for a batch slot; beyond it Start fails with
	// ErrBusy. Default 4*MaxBatch.
	MaxQueue int
}

// Errors returned by Start.
var (
	// ErrBusy: the queue is full; the caller should retry later.
	ErrBusy = errors.New("the model's request queue is full")
	// ErrClosed: the engine was closed (its endpoint was deleted or updated).
	ErrClosed = errors.New("the model was unloaded")
)

// InputError is a request the model cannot take (prompt too long, bad options): the caller's fault.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// Engine is one loaded model with its decoding loop.
type Engine struct {
	m       generate.Model // a decoder-only model, or an encoder-decoder's adapter (llm/t5)
	tok     *tokenizer.Tokenizer
	stops   []int32
	format  PromptFormat
	weights Weights
	opts    Options

	pending chan *Generation
	quit    chan struct{}
	done    chan struct{}
	closeMu sync.RWMutex // Start holds it shared while it queues, Close exclusively while it marks closed
	closed  bool
	abort   atomic.Bool  // Close: stop without finishing what was admitted
	waiting atomic.Int64 // admitted, not yet finished

	completed, cancelled, failed atomic.Int64
	steps, stepSeqs              atomic.Int64
}

// Stats are an engine's counters since it was loaded.
type Stats struct {
	InFlight  int     // admitted and not finished (decoding or queued)
	Completed int64   // ended normally
	Cancelled int64   // dropped because their caller went away or cancelled them
	Failed    int64   // ended with an error
	Steps     int64   // batched forward passes
	MeanBatch float64 // sequences per forward pass, on average
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	st := Stats{InFlight: int(e.waiting.Load()), Completed: e.completed.Load(), Cancelled: e.cancelled.Load(),
		Failed: e.failed.Load(), Steps: e.steps.Load()}
	if st.Steps > 0 {
		st.MeanBatch = float64(e.stepSeqs.Load()) / float64(st.Steps)
	}
	return st
}

// ModelPath picks what to load from a model directory: the Hugging Face files when config.json is
// there (Lathe's export writes both, in float32), else the one .gguf file; a file path is itself.
func ModelPath(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return path, nil
	}
	if _, err := os.Stat(filepath.Join(path, "config.json")); err == nil {
		return path, nil
	}
	ggufs, _ := filepath.Glob(filepath.Join(path, "*.gguf"))
	if len(ggufs) == 1 {
		return ggufs[0], nil
	}
	return "", fmt.Errorf("%s holds neither a Hugging Face model (config.json) nor exactly one .gguf file (found %d)", path, len(ggufs))
}

// Load reads a model (a GGUF file, or a directory as ModelPath picks) with its tokenizer and starts
// its decoding loop. Close stops it.
func Load(path string, opts Options) (*Engine, error) {
	path, err := ModelPath(path)
	if err != nil {
		return nil, err
	}
	if t5.IsCheckpoint(path) {
		return loadSeq2Seq(path, opts)
	}
	ck, err := format.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	defer ck.Close()
	cfg := ck.Config()
	if !catalog.Runnable(cfg.Architecture) {
		return nil, fmt.Errorf("the model's architecture %q is not one Lathe's engine runs (%s)",
			cfg.Architecture, strings.Join(catalog.SupportedArchitectures, ", "))
	}
	m, err := model.FromCheckpoint(ck)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	weights := opts.Weights
	quantized, _ := m.QuantizedWeights()
	switch {
	case weights == WeightsAuto && quantized:
		weights = WeightsQuantized
	case weights == WeightsAuto:
		weights = WeightsFloat32
		if m.Config().NumParams() >= BF16AutoParams {
			weights = WeightsBFloat16
		}
	case quantized:
		m.WidenWeights()
	}
	if weights == WeightsBFloat16 {
		m.UseBF16Weights()
	}
	tok, err := tokenizer.Load(path) // a GGUF file's metadata, or a Hugging Face directory's files
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	e := &Engine{m: generate.DecoderOnly(m), tok: tok, format: opts.Format, weights: weights, opts: opts}
	switch {
	case e.format == "":
		e.format = FormatPlain
	case e.format == FormatInstruct && tok.ChatTemplate != "":
		e.format = FormatChat
	case e.format == FormatInstruct:
		e.format = FormatPlain
	}
	if e.format == FormatChat && tok.ChatTemplate == "" {
		return nil, fmt.Errorf("prompt format chat: %w", tokenizer.ErrNoChatTemplate)
	}
	for _, id := range cfg.EOS {
		e.stops = append(e.stops, int32(id))
	}
	if len(e.stops) == 0 && tok.EOS >= 0 {
		e.stops = []int32{int32(tok.EOS)}
	}
	e.start()
	return e, nil
}

// loadSeq2Seq loads a T5 (Flan-T5) checkpoint directory. Its prompts are the input itself
// (FormatRaw, whatever the format asked: the pipeline fine-tunes T5 on raw inputs, and Flan-T5 was
// instruction-tuned on them), its tokenizer's encoding of a prompt ends with </s> as the encoder
// expects, and its weights stay float32.
func loadSeq2Seq(path string, opts Options) (*Engine, error) {
	m, err := t5.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	e := &Engine{m: m.Decoding(), tok: tok, format: FormatRaw, weights: WeightsFloat32, opts: opts,
		stops: []int32{m.Config().EOS}}
	e.start()
	return e, nil
}

// start sizes the queue and starts the decoding loop.
func (e *Engine) start() {
	if e.opts.MaxBatch <= 0 {
		e.opts.MaxBatch = 32
	}
	if e.opts.MaxQueue <= 0 {
		e.opts.MaxQueue = 4 * e.opts.MaxBatch
	}
	e.pending = make(chan *Generation, e.opts.MaxBatch+e.opts.MaxQueue)
	e.quit, e.done = make(chan struct{}), make(chan struct{})
	go e.loop()
}

// Format is the engine's prompt format.
func (e *Engine) Format() PromptFormat { return e.format }

// Weights is how the engine holds its weight matrices (never WeightsAuto).
func (e *Engine) Weights() Weights { return e.weights }

// Capacity is how many generations the engine admits at once (decoding and queued): a request
// needing more can never be admitted, however idle the engine is.
func (e *Engine) Capacity() int { return e.opts.MaxBatch + e.opts.MaxQueue }

// ContextLen is the longest sequence (prompt and generated tokens) the model takes.
func (e *Engine) ContextLen() int { return e.m.ContextLen() }

// Prompt renders a caller's input as the text the model continues.
func (e *Engine) Prompt(input string) (string, error) {
	switch e.format {
	case FormatRaw:
		return input, nil
	case FormatChat:
		return e.ChatPrompt([]tokenizer.Message{{Role: "user", Content: input}})
	}
	return dataset.Plain{}.Prompt(input), nil
}

// ChatPrompt renders a conversation with the model's chat template, ready for the assistant's turn;
// a model without one gets the turns as plain lines (role: content) ending with "assistant:".
func (e *Engine) ChatPrompt(messages []tokenizer.Message) (string, error) {
	if e.tok.ChatTemplate == "" {
		if len(messages) == 1 && messages[0].Role == "user" {
			switch e.format {
			case FormatPlain:
				return dataset.Plain{}.Prompt(messages[0].Content), nil
			case FormatRaw: // T5's input, or a continuation: the user's text is the prompt
				return messages[0].Content, nil
			}
		}
		var b strings.Builder
		for _, m := range messages {
			fmt.Fprintf(&b, "%s: %s\n", m.Role, m.Content)
		}
		b.WriteString("assistant:")
		return b.String(), nil
	}
	text, err := e.tok.ChatPrompt(messages)
	if err != nil {
		return "", &InputError{Msg: fmt.Sprintf("chat template: %v", err)}
	}
	return text, nil
}

// Tokenize encodes a rendered prompt as the model sees it (with BOS when the model has one).
func (e *Engine) Tokenize(prompt string) []int32 {
	ids := e.tok.Encode(prompt, e.tok.BOS >= 0)
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

func (e *Engine) detokenize(ids []int32) string {
	in := make([]int, len(ids))
	for i, id := range ids {
		in[i] = int(id)
	}
	return e.tok.Decode(in)
}

// TokenTexts is the text each of ids adds to the text of the ones before it (" the", with its
// space, where decoding the token alone gives "the"), as TGI reports generated tokens.
func (e *Engine) TokenTexts(ids []int32) []string {
	out := make([]string, len(ids))
	prev := ""
	for i := range ids {
		cur := e.detokenize(ids[:i+1])
		if strings.HasPrefix(cur, prev) {
			out[i] = cur[len(prev):]
		} else { // a multi-byte character completed by this token rewrote the tail
			out[i] = e.detokenize(ids[i : i+1])
		}
		prev = cur
	}
	return out
}

// SpecialText is a special token's own string ("</s>"), which decoding leaves out.
func (e *Engine) SpecialText(id int32) string { return e.tok.Token(int(id)) }

// Start admits one generation: prompt (already rendered by Prompt or ChatPrompt) continued with opt
// (its StopTokens are filled with the model's end-of-sequence ids). It fails at once with ErrBusy
// when the queue is full, ErrClosed after Close, or an *InputError. Cancelling ctx cancels the
// generation at the engine's next step.
func (e *Engine) Start(ctx context.Context, prompt string, opt generate.Options) (*Generation, error) {
	return e.StartTruncated(ctx, prompt, 0, opt)
}

// StartTruncated is Start on only the last keep tokens of the prompt (TGI's truncate: the start of
// a long input is dropped); keep <= 0 keeps the whole prompt.
func (e *Engine) StartTruncated(ctx context.Context, prompt string, keep int, opt generate.Options) (*Generation, error) {
	ids := e.Tokenize(prompt)
	if keep > 0 && len(ids) > keep {
		ids = ids[len(ids)-keep:]
	}
	ctxLen := e.ContextLen()
	if len(ids) == 0 {
		return nil, &InputError{Msg: "the input is empty"}
	}
	if ctxLen > 0 && len(ids) >= ctxLen {
		return nil, &InputError{Msg: fmt.Sprintf("the input is %d tokens; the model's context is %d tokens, "+
			"which must also hold at least one new token", len(ids), ctxLen)}
	}
	if opt.MaxNewTokens <= 0 {
		return nil, &InputError{Msg: "max_new_tokens must be positive"}
	}
	opt.StopTokens = append(append([]int32(nil), opt.StopTokens...), e.stops...)
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return nil, ErrClosed
	}
	if e.waiting.Add(1) > int64(e.opts.MaxBatch+e.opts.MaxQueue) {
		e.waiting.Add(-1)
		return nil, ErrBusy
	}
	g := &Generation{prompt: ids, opt: opt, notify: make(chan struct{}, 1), finished: make(chan struct{})}
	select {
	case e.pending <- g:
	default: // cannot happen while waiting bounds the channel's contents; stay safe
		e.waiting.Add(-1)
		return nil, ErrBusy
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, g.Cancel)
		go func() { <-g.finished; stop() }()
	}
	return g, nil
}

// Close stops the decoding loop at once; generations still running or queued end with ErrClosed.
func (e *Engine) Close() {
	e.abort.Store(true)
	e.shut()
	<-e.done
}

// Drain refuses new generations (ErrClosed), lets the admitted ones finish, then stops the loop. An
// endpoint drains the model an update replaced, so that no caller sees its request cut.
func (e *Engine) Drain() {
	e.shut()
	<-e.done
}

func (e *Engine) shut() {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.quit)
	}
}

// loop owns the decoder: it adds waiting generations while there is room in the batch, steps, and
// hands each finished generation its result.
func (e *Engine) loop() {
	defer close(e.done)
	d := generate.NewDecoderFor(e.m, e.detokenize)
	var active []*Generation
	end := func(g *Generation, res generate.Result, err error) {
		switch {
		case err == nil:
			e.completed.Add(1)
		case errors.Is(err, context.Canceled):
			e.cancelled.Add(1)
		default:
			e.failed.Add(1)
		}
		g.finish(res, err)
		e.waiting.Add(-1)
	}
	fail := func(g *Generation, err error) { end(g, generate.Result{}, err) }
	defer func() {
		for _, g := range active {
			fail(g, ErrClosed)
		}
		for {
			select {
			case g := <-e.pending:
				fail(g, ErrClosed)
			default:
				return
			}
		}
	}()
	add := func(g *Generation) {
		if g.cancelled.Load() {
			end(g, generate.Result{Finish: generate.FinishCancelled}, context.Canceled)
			return
		}
		r, err := d.Add(g.prompt, g.opt, g.onToken)
		if err != nil {
			fail(g, &InputError{Msg: strings.TrimPrefix(err.Error(), "generate: ")})
			return
		}
		g.req = r
		active = append(active, g)
	}
	// quit becomes nil once the engine is shut: then the loop finishes what was admitted (no more can
	// be, as Start checks closed under closeMu) and returns, unless Close aborts.
	quit := e.quit
	onQuit := func() bool {
		quit = nil
		return e.abort.Load()
	}
	for {
		if e.abort.Load() || (quit == nil && len(active) == 0 && len(e.pending) == 0) {
			return
		}
		if len(active) == 0 {
			select {
			case g := <-e.pending:
				add(g)
			case <-quit:
				onQuit()
				continue
			}
		}
	fill:
		for len(active) < e.opts.MaxBatch {
			select {
			case g := <-e.pending:
				add(g)
			case <-quit:
				if onQuit() {
					return
				}
				break fill
			default:
				break fill
			}
		}
		if len(active) == 0 {
			continue
		}
		for _, g := range active {
			if g.cancelled.Load() {
				g.req.Cancel()
			}
		}
		e.steps.Add(1)
		e.stepSeqs.Add(int64(len(active)))
		stepErr := d.Step()
		kept := active[:0]
		for _, g := range active {
			switch {
			case g.req.Done():
				err := g.req.Err()
				if err == nil && g.req.Result().Finish == generate.FinishCancelled {
					err = context.Canceled
				}
				end(g, g.req.Result(), err)
			case stepErr != nil:
				fail(g, stepErr)
			default:
				kept = append(kept, g)
			}
		}
		clear(active[len(kept):])
		active = kept
	}
}

// Generation is one admitted request: its streamed tokens and, at the end, its result.
type Generation struct {
	prompt    []int32
	opt       generate.Options
	req       *generate.Request // owned by the engine's loop
	cancelled atomic.Bool

	mu       sync.Mutex
	tokens   []generate.Token // streamed, not yet taken by Next
	result   generate.Result
	err      error
	notify   chan struct{} // signalled when tokens arrive or the generation ends
	finished chan struct{}
	ended    bool
}

// PromptTokens is the number of tokens in the encoded prompt.
func (g *Generation) PromptTokens() int { return len(g.prompt) }

// Cancel drops the generation at the engine's next step. Safe from any goroutine.
func (g *Generation) Cancel() { g.cancelled.Store(true) }

func (g *Generation) onToken(t generate.Token) error {
	g.mu.Lock()
	g.tokens = append(g.tokens, t)
	g.mu.Unlock()
	select {
	case g.notify <- struct{}{}:
	default:
	}
	return nil
}

func (g *Generation) finish(res generate.Result, err error) {
	g.mu.Lock()
	g.result, g.err, g.ended = res, err, true
	g.mu.Unlock()
	close(g.finished)
}

// Next waits for tokens produced since the last call. done is true once the generation has ended
// and every token was returned; err is then its error (context.Canceled when it was cancelled).
func (g *Generation) Next(ctx context.Context) (tokens []generate.Token, done bool, err error) {
	for {
		g.mu.Lock()
		tokens, g.tokens = g.tokens, nil
		ended, err := g.ended, g.err
		g.mu.Unlock()
		if len(tokens) > 0 {
			return tokens, false, nil
		}
		if ended {
			return nil, true, err
		}
		select {
		case <-g.notify:
		case <-g.finished:
		case <-ctx.Done():
			g.Cancel()
			return nil, false, ctx.Err()
		}
	}
}

// Wait blocks until the generation ends and returns its result.
func (g *Generation) Wait(ctx context.Context) (generate.Result, error) {
	select {
	case <-g.finished:
	case <-ctx.Done():
		g.Cancel()
		return generate.Result{}, ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.result, g.err
}
