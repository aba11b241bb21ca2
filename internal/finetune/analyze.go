package finetune

import (
	"context"
	"errors"
	"fmt"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/dataset"
	"github.com/lathe-ml/lathe/internal/job"
)

// analyzed is the dataset of a job, checked, split and tokenized.
type analyzed struct {
	train, val []Sequence
	report     dataReport
}

// dataReport is data-report.json: what the job read and how it was tokenized.
type dataReport struct {
	BaseModel          string            `json:"base_model"`
	Files              map[string]int    `json:"files"` // object URI -> rows read
	TrainingRows       int               `json:"training_rows"`
	ValidationRows     int               `json:"validation_rows"`
	ValidationFraction float64           `json:"validation_fraction,omitempty"`
	SplitSeed          uint64            `json:"split_seed,omitempty"`
	PromptTemplate     string            `json:"prompt_template"`
	Training           dataset.Report    `json:"training"`
	Validation         dataset.Report    `json:"validation"`
	Channels           map[string]string `json:"channels"`
}

// analyze reads every object under each channel's prefix, checks the schema row by row, enforces the
// base model's row limit, splits off the validation set and tokenizes both sets.
func (e *Executor) analyze(ctx context.Context, spec job.Spec, entry catalog.Model, lm LanguageModel) (*analyzed, error) {
	rep := dataReport{BaseModel: spec.BaseModel, Files: map[string]int{}, Channels: map[string]string{}}
	var trainEx, valEx []dataset.Example
	hasValidation := false
	for _, ch := range spec.Channels {
		rep.Channels[ch.Type] = ch.S3URI
		objs, err := e.Objects.List(ctx, ch.S3URI)
		if err != nil {
			return nil, fmt.Errorf("list the %s channel %s: %w", ch.Type, ch.S3URI, err)
		}
		files := make([]dataset.File, 0, len(objs))
		for _, o := range objs {
			data, err := e.Objects.Get(ctx, o.URI)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", o.URI, err)
			}
			files = append(files, dataset.File{Name: o.URI, Data: data})
		}
		examples, problems, err := dataset.ReadChannel(ch.S3URI, ch.ContentType, ch.Compression, files)
		if err != nil {
			return nil, fmt.Errorf("read the %s channel %s: %w", ch.Type, ch.S3URI, err)
		}
		if len(problems) > 0 {
			return nil, problemsError(ch.Type, problems)
		}
		for _, ex := range examples {
			rep.Files[ex.File]++
		}
		if ch.Type == "validation" {
			hasValidation = true
			valEx = append(valEx, examples...)
		} else {
			trainEx = append(trainEx, examples...)
		}
	}
	if err := dataset.CheckRowLimit(len(trainEx)+len(valEx), entry.MaxRows, spec.BaseModel); err != nil {
		return nil, err
	}
	if !hasValidation {
		var err error
		if trainEx, valEx, err = dataset.Split(trainEx, spec.ValidationFraction, dataset.SplitSeed); err != nil {
			return nil, err
		}
		rep.ValidationFraction, rep.SplitSeed = spec.ValidationFraction, dataset.SplitSeed
	}
	rep.TrainingRows, rep.ValidationRows = len(trainEx), len(valEx)

	ctxLen := lm.ContextLen()
	if entry.ContextLen > 0 {
		ctxLen = min(ctxLen, entry.ContextLen)
	}
	formatter := dataset.FormatterFunc(lm.Prompt)
	rep.PromptTemplate = lm.Prompt("{input}")
	// Encode also applies the 60% truncation rule to each split on its own; the rule is about the
	// whole dataset and is checked on the merged report below, so only Encode's other errors count here.
	trainSeqs, trainRep, err := dataset.Encode(trainEx, lm.Tokenize, lm.EOS(), ctxLen, formatter)
	if err != nil && dataset.CheckTruncation(trainRep) == nil {
		return nil, fmt.Errorf("training data: %w", err)
	}
	valSeqs, valRep, err := dataset.Encode(valEx, lm.Tokenize, lm.EOS(), ctxLen, formatter)
	if err != nil && dataset.CheckTruncation(valRep) == nil {
		return nil, fmt.Errorf("validation data: %w", err)
	}
	merged, err := trainRep.Merge(valRep)
	if err != nil {
		return nil, err
	}
	if err := dataset.CheckTruncation(merged); err != nil {
		return nil, err
	}
	rep.Training, rep.Validation = trainRep, valRep
	return &analyzed{train: sequences(trainSeqs, trainEx), val: sequences(valSeqs, valEx), report: rep}, nil
}

// problemsError lists the first few of a channel's problems in an error that fits, lead-in
// included, in a FailureReason (1024 characters): the job's store cuts longer reasons at the end,
// which would drop the count of the problems left out. Fewer problems are listed when needed.
func problemsError(channel string, problems []dataset.Problem) error {
	lead := fmt.Sprintf("the %s data is not valid: ", channel)
	var list string
	for limit := 5; limit >= 1; limit-- {
		if list = dataset.Summarize(problems, limit); len(lead)+len(list) <= dataset.MaxSummaryLen {
			break
		}
	}
	return errors.New(lead + list)
}

func sequences(seqs []dataset.Sequence, examples []dataset.Example) []Sequence {
	out := make([]Sequence, len(seqs))
	for i, s := range seqs {
		ex := examples[s.Example]
		out[i] = Sequence{Tokens: s.Tokens, PromptLen: s.PromptLen, Input: ex.Input, Output: ex.Output}
	}
	return out
}
