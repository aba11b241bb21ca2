package eval

import (
	"math"

	"github.com/lathe-ml/lathe/internal/job"
)

// Perplexity is exp(mean cross-entropy loss in nats per token).
func Perplexity(meanLoss float64) float64 { return math.Exp(meanLoss) }

// Scores are one model's evaluation numbers (the base model before training, or the fine-tuned
// model). The JSON names are SageMaker's StandardMetricName values, so the metrics artifact reads
// like BestCandidate's CandidateMetrics. ROUGE values are mean F-measures over the validation
// pairs (see Scorer.Mean); losses are mean cross-entropy in nats per response token.
type Scores struct {
	TrainingLoss   float64 `json:"TrainingLoss,omitempty"` // mean over the last epoch; absent for a base model
	ValidationLoss float64 `json:"ValidationLoss"`
	Perplexity     float64 `json:"Perplexity"`
	Rouge1         float64 `json:"Rouge1"`
	Rouge2         float64 `json:"Rouge2"`
	RougeL         float64 `json:"RougeL"`
	RougeLSum      float64 `json:"RougeLSum"`
	RougeStemmed   bool    `json:"RougeStemmed"` // whether ROUGE tokens were Porter-stemmed
	RougePairs     int     `json:"RougePairs"`   // validation pairs the ROUGE means are over
}

// NewScores fills Scores from a validation loss, a training loss (0 when there is none) and the
// ROUGE means over pairs validation pairs.
func NewScores(validationLoss, trainingLoss float64, r Rouge, stemmed bool, pairs int) Scores {
	return Scores{
		TrainingLoss:   trainingLoss,
		ValidationLoss: validationLoss,
		Perplexity:     Perplexity(validationLoss),
		Rouge1:         r.Rouge1.FMeasure,
		Rouge2:         r.Rouge2.FMeasure,
		RougeL:         r.RougeL.FMeasure,
		RougeLSum:      r.RougeLsum.FMeasure,
		RougeStemmed:   stemmed,
		RougePairs:     pairs,
	}
}

// Metrics lists the seven TextGeneration metrics as BestCandidate's CandidateMetrics, in the order
// the SageMaker documentation gives them, each with the data set it is measured on. TrainingLoss
// is left out when it is 0 (a base model that was not trained).
func (s Scores) Metrics() []job.Metric {
	out := []job.Metric{
		{Name: "Rouge1", Value: s.Rouge1, Set: "Validation"},
		{Name: "Rouge2", Value: s.Rouge2, Set: "Validation"},
		{Name: "RougeL", Value: s.RougeL, Set: "Validation"},
		{Name: "RougeLSum", Value: s.RougeLSum, Set: "Validation"},
		{Name: "Perplexity", Value: s.Perplexity, Set: "Validation"},
		{Name: "ValidationLoss", Value: s.ValidationLoss, Set: "Validation"},
	}
	if s.TrainingLoss != 0 {
		out = append(out, job.Metric{Name: "TrainingLoss", Value: s.TrainingLoss, Set: "Train"})
	}
	return out
}
