package finetune

import (
	"context"
	"fmt"
	"strings"

	"github.com/lathe-ml/lathe/internal/eval"
	"github.com/lathe-ml/lathe/internal/job"
)

// maxRougePairs bounds how many validation prompts are generated for ROUGE: generation costs a forward
// pass per new token, so on large validation sets ROUGE is measured on the first pairs of the split
// (a fixed, seeded sample); the validation loss always covers the whole split.
const maxRougePairs = 200

// Metrics are one model's evaluation numbers (metrics.json keeps base and fine-tuned side by side).
type Metrics = eval.Scores

// Sample is one line of samples.jsonl: a validation prompt, its reference and what the model wrote.
type Sample struct {
	Input      string `json:"input"`
	Reference  string `json:"reference"`
	Generation string `json:"generation"` // the fine-tuned model's answer
	// BaseGeneration is the base model's answer to the same prompt, for comparison.
	BaseGeneration string `json:"base_generation,omitempty"`
}

// evaluate measures lm on the validation split: mean loss over the response tokens, perplexity, and
// ROUGE of greedy generations against the references.
func evaluate(ctx context.Context, lm LanguageModel, val []Sequence) (Metrics, []Sample, error) {
	if len(val) == 0 {
		return Metrics{}, nil, fmt.Errorf("the validation split is empty")
	}
	loss, err := lm.Loss(ctx, val)
	if err != nil {
		return Metrics{}, nil, err
	}
	pairs := val[:min(len(val), maxRougePairs)]
	prompts := make([][]int, len(pairs))
	maxRef := 0
	for i, s := range pairs {
		prompts[i] = s.Tokens[:s.PromptLen]
		maxRef = max(maxRef, len(s.Tokens)-s.PromptLen)
	}
	// Room for a response twice as long as the longest reference, within the context.
	maxNew := min(2*maxRef+8, 512)
	gens, err := lm.Generate(ctx, prompts, maxNew)
	if err != nil {
		return Metrics{}, nil, fmt.Errorf("generate: %w", err)
	}
	targets := make([]string, len(pairs))
	preds := make([]string, len(pairs))
	samples := make([]Sample, len(pairs))
	for i, s := range pairs {
		targets[i] = s.Output
		preds[i] = strings.TrimSpace(lm.Detokenize(gens[i]))
		samples[i] = Sample{Input: s.Input, Reference: s.Output, Generation: preds[i]}
	}
	rouge, err := eval.DefaultScorer.Mean(targets, preds)
	if err != nil {
		return Metrics{}, nil, err
	}
	return eval.NewScores(loss, 0, rouge, eval.DefaultScorer.UseStemmer, len(pairs)), samples, nil
}

// candidateMetrics converts the fine-tuned model's numbers into BestCandidate's CandidateMetrics.
func candidateMetrics(m Metrics) []job.Metric {
	var out []job.Metric
	for _, x := range m.Metrics() {
		out = append(out, job.Metric{Name: x.Name, Value: x.Value, Set: x.Set})
	}
	return out
}
