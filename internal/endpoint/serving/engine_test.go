package serving_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/llm/generate"
)

// storiesPath is the shared Stories260K model (see its README): never copied into the repo.
const storiesPath = "../../../../shared/models/stories260K.gguf"

func load(t *testing.T, opts serving.Options) *serving.Engine {
	t.Helper()
	e, err := serving.Load(storiesPath, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// The model's README gives the greedy continuation of this sentence (from an independent
// implementation); a served request must produce it, alone or batched with others.
const (
	lilyPrompt = "Once upon a time, there was a little girl named Lily."
	lilyWant   = "She loved to play outside in the park."
)

func TestGreedyContinuationMatchesReference(t *testing.T) {
	e := load(t, serving.Options{Format: serving.FormatRaw, MaxBatch: 4})
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]string, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := e.Start(ctx, lilyPrompt, generate.Options{MaxNewTokens: 16})
			if err != nil {
				errs[i] = err
				return
			}
			res, err := g.Wait(ctx)
			results[i], errs[i] = res.Text, err
		}()
	}
	wg.Wait()
	for i, got := range results {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if !strings.HasPrefix(strings.TrimSpace(got), lilyWant) {
			t.Errorf("request %d = %q, want it to start with %q", i, got, lilyWant)
		}
	}
}

func TestStreamedTokensAddUpToTheText(t *testing.T) {
	e := load(t, serving.Options{Format: serving.FormatRaw})
	ctx := context.Background()
	g, err := e.Start(ctx, lilyPrompt, generate.Options{MaxNewTokens: 20, StopSequences: []string{"park"}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		toks, done, err := g.Next(ctx)
		if done {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		for _, tk := range toks {
			b.WriteString(tk.Text)
		}
	}
	res, _ := g.Wait(ctx)
	if b.String() != res.Text || res.Finish != generate.FinishStop || strings.Contains(res.Text, "park") {
		t.Errorf("streamed %q, result %q (%s); want equal text cut before the stop sequence", b.String(), res.Text, res.Finish)
	}
}

func TestQueueLimitAndBadInput(t *testing.T) {
	e := load(t, serving.Options{Format: serving.FormatRaw, MaxBatch: 1, MaxQueue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two long generations fill the batch slot and the queue; the third is refused.
	var gens []*serving.Generation
	for range 2 {
		g, err := e.Start(ctx, lilyPrompt, generate.Options{MaxNewTokens: 1000})
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, g)
	}
	if _, err := e.Start(ctx, lilyPrompt, generate.Options{MaxNewTokens: 5}); !errors.Is(err, serving.ErrBusy) {
		t.Fatalf("third request: err = %v, want ErrBusy", err)
	}
	// A cancelled generation ends as cancelled and frees its place.
	for _, g := range gens {
		g.Cancel()
		if _, err := g.Wait(context.Background()); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled generation: err = %v, want context.Canceled", err)
		}
	}
	if _, err := e.Start(ctx, lilyPrompt, generate.Options{MaxNewTokens: 1}); err != nil {
		t.Errorf("after cancelling: %v", err)
	}
	var inErr *serving.InputError
	if _, err := e.Start(ctx, strings.Repeat("word ", 3000), generate.Options{MaxNewTokens: 5}); !errors.As(err, &inErr) {
		t.Errorf("over-long prompt: err = %v, want an InputError", err)
	}
	if _, err := e.Start(ctx, "x", generate.Options{MaxNewTokens: 5, Temperature: -1}); err != nil {
		t.Fatal(err) // options are checked by the decoder: the error comes from Wait
	}
}

func TestClosedEngineRefusesAndEndsRunning(t *testing.T) {
	e, err := serving.Load(storiesPath, serving.Options{Format: serving.FormatPlain})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Start(context.Background(), "Tell a story.", generate.Options{MaxNewTokens: 2000})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := g.Wait(context.Background()); !errors.Is(err, serving.ErrClosed) && err != nil {
		t.Errorf("running generation after Close: err = %v", err)
	}
	if _, err := e.Start(context.Background(), "x", generate.Options{MaxNewTokens: 1}); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("Start after Close: err = %v, want ErrClosed", err)
	}
}

// A caller whose context ends (a client that disconnected) gets its generation cancelled.
func TestCancelledContextCancelsGeneration(t *testing.T) {
	e := load(t, serving.Options{Format: serving.FormatRaw})
	ctx, cancel := context.WithCancel(context.Background())
	g, err := e.Start(ctx, lilyPrompt, generate.Options{MaxNewTokens: 1500, RepetitionPenalty: 1.3})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := g.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("generation of a cancelled caller: err = %v, want context.Canceled", err)
	}
}

// Drain lets admitted generations finish and refuses new ones.
func TestDrainFinishesAdmittedGenerations(t *testing.T) {
	e, err := serving.Load(storiesPath, serving.Options{Format: serving.FormatRaw, MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	var gens []*serving.Generation
	for range 3 { // one decoding, two queued
		g, err := e.Start(context.Background(), lilyPrompt, generate.Options{MaxNewTokens: 40})
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, g)
	}
	e.Drain()
	for i, g := range gens {
		if res, err := g.Wait(context.Background()); err != nil || len(res.Tokens) != 40 {
			t.Errorf("generation %d after Drain: %d tokens, %v; want 40 tokens", i, len(res.Tokens), err)
		}
	}
	if _, err := e.Start(context.Background(), "x", generate.Options{MaxNewTokens: 1}); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("Start after Drain: %v, want ErrClosed", err)
	}
	e.Close() // a no-op now
}

// Small models decode with float32 weights by default; asked for bfloat16, the engine holds them so
// and still writes the README's greedy continuation.
func TestWeightsDefaultAndBFloat16(t *testing.T) {
	if w := load(t, serving.Options{Format: serving.FormatRaw}).Weights(); w != serving.WeightsFloat32 {
		t.Errorf("stories260K (260K parameters) decodes with %q weights by default, want float32", w)
	}
	e := load(t, serving.Options{Format: serving.FormatRaw, Weights: serving.WeightsBFloat16})
	if w := e.Weights(); w != serving.WeightsBFloat16 {
		t.Fatalf("weights %q, want bfloat16", w)
	}
	ctx := context.Background()
	g, err := e.Start(ctx, lilyPrompt, generate.Options{MaxNewTokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.TrimSpace(res.Text), lilyWant) {
		t.Errorf("bfloat16 weights wrote %q, want it to start with %q", res.Text, lilyWant)
	}
	if _, err := serving.ParseWeights("fp8"); err == nil {
		t.Error("ParseWeights accepted fp8")
	}
}
