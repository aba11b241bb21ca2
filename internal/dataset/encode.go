package dataset

import "fmt"

// Sequence is one tokenized training example: the formatted prompt's tokens followed by the
// output's tokens and the end-of-sequence token. The loss is computed only on the response:
// Tokens[i] is a target (predicted from position i-1) exactly when i >= PromptLen.
type Sequence struct {
	Tokens    []int
	PromptLen int  // number of prompt tokens at the start of Tokens (at least 1)
	Example   int  // index of the example in the slice given to Encode
	Truncated bool // the example was longer than the context and was cut (see Encode)
}

// LossMask returns, for each position of Tokens, whether that token is a loss target (a response
// token, the end-of-sequence token included).
func (s Sequence) LossMask() []bool {
	m := make([]bool, len(s.Tokens))
	for i := s.PromptLen; i < len(m); i++ {
		m[i] = true
	}
	return m
}

// Report describes a tokenized dataset for the job's data report artifact.
type Report struct {
	Rows           int      `json:"rows"`
	ContextLength  int      `json:"contextLength"`
	PromptTokens   int      `json:"promptTokens"`   // after truncation
	ResponseTokens int      `json:"responseTokens"` // after truncation, end-of-sequence tokens included
	TotalTokens    int      `json:"totalTokens"`    // PromptTokens + ResponseTokens
	TruncatedRows  int      `json:"truncatedRows"`
	DroppedTokens  int      `json:"droppedTokens"` // tokens removed by truncation
	MaxLength      int      `json:"maxLength"`     // longest example before truncation, in tokens
	MeanLength     float64  `json:"meanLength"`    // mean example length before truncation
	Histogram      []Bucket `json:"lengthHistogram"`
}

// Bucket counts the examples whose length before truncation is in [From, To] tokens; To is 0
// for the last bucket, which holds everything longer than the context.
type Bucket struct {
	From int `json:"from"`
	To   int `json:"to,omitempty"`
	Rows int `json:"rows"`
}

// MaxTruncatedFraction is the share of truncated rows above which SageMaker fails a job.
const MaxTruncatedFraction = 0.6

// Encode formats, tokenizes and truncates examples for a model whose context is ctxLen tokens.
// tokenize(text, addBOS) is the model's tokenizer; the prompt is tokenized with addBOS true and
// the output separately with addBOS false, so the prompt tokens are exactly those the endpoint
// feeds the model at inference time and the loss boundary falls on a token boundary.
//
// Truncation, for an example whose prompt + response is longer than ctxLen:
//   - The response keeps its beginning and loses its end (and the end-of-sequence token): the
//     example still teaches how its answer starts.
//   - The prompt is kept whole when that leaves room for at least a quarter of the context of
//     response (or the whole response, if shorter). Otherwise the prompt is cut to make that room,
//     by removing tokens from its middle: the beginning (the BOS token, the template header and
//     the start of the instruction) and the end (the end of the input and the response marker,
//     which must come right before the response) are what the model needs to see.
//
// Encode returns an error, meant for the job's FailureReason, when ctxLen is unusable or when
// more than 60% of the examples are truncated (CheckTruncation); the sequences and report are
// returned either way. To apply the 60% rule to both channels together, Merge the two reports
// and call CheckTruncation on the result.
func Encode(examples []Example, tokenize func(text string, addBOS bool) []int, eos, ctxLen int, f Formatter) ([]Sequence, Report, error) {
	if ctxLen < 2 {
		return nil, Report{}, fmt.Errorf("context length %d is too short to hold a prompt and a response", ctxLen)
	}
	rep := Report{ContextLength: ctxLen, Histogram: newHistogram(ctxLen)}
	seqs := make([]Sequence, 0, len(examples))
	totalLen := 0
	for i, ex := range examples {
		prompt := f.Prompt(ex.Input)
		p := tokenize(prompt, true)
		r := append(append([]int(nil), tokenize(ex.Output, false)...), eos)
		full := len(p) + len(r)
		seq := Sequence{Example: i}
		if full > ctxLen {
			seq.Truncated = true
			keepR := max(ctxLen-len(p), min(len(r), ctxLen/4))
			if keepP := ctxLen - keepR; keepP < len(p) {
				bos := 0
				if len(tokenize(prompt, false)) == len(p)-1 {
					bos = 1 // p[0] is the BOS token the tokenizer added; keep it first
				}
				p = cutMiddle(p, keepP, bos)
			}
			r = r[:keepR]
			rep.TruncatedRows++
			rep.DroppedTokens += full - len(p) - len(r)
		}
		seq.Tokens = append(p[:len(p):len(p)], r...)
		seq.PromptLen = len(p)
		seqs = append(seqs, seq)

		rep.Rows++
		rep.PromptTokens += len(p)
		rep.ResponseTokens += len(r)
		rep.MaxLength = max(rep.MaxLength, full)
		totalLen += full
		rep.Histogram[bucketIndex(rep.Histogram, full)].Rows++
	}
	rep.TotalTokens = rep.PromptTokens + rep.ResponseTokens
	if rep.Rows > 0 {
		rep.MeanLength = float64(totalLen) / float64(rep.Rows)
	}
	return seqs, rep, CheckTruncation(rep)
}

// cutMiddle keeps keep tokens of p: the first head (after the bos leading tokens that must stay)
// and the last ones.
func cutMiddle(p []int, keep, bos int) []int {
	head := bos + (keep-bos)/2
	tail := keep - head
	out := make([]int, 0, keep)
	out = append(out, p[:head]...)
	return append(out, p[len(p)-tail:]...)
}

// newHistogram makes buckets with power-of-two upper edges from 16 up to ctxLen, and one for
// lengths over ctxLen.
func newHistogram(ctxLen int) []Bucket {
	var h []Bucket
	from := 1
	for edge := 16; edge < ctxLen; edge *= 2 {
		h = append(h, Bucket{From: from, To: edge})
		from = edge + 1
	}
	h = append(h, Bucket{From: from, To: ctxLen})
	return append(h, Bucket{From: ctxLen + 1})
}

func bucketIndex(h []Bucket, n int) int {
	for i, b := range h {
		if b.To == 0 || n <= b.To {
			return i
		}
	}
	return len(h) - 1
}

// CheckTruncation returns the user-facing validation error SageMaker's rule calls for when more
// than 60% of the rows are truncated.
func CheckTruncation(r Report) error {
	if r.Rows == 0 || float64(r.TruncatedRows) <= MaxTruncatedFraction*float64(r.Rows) {
		return nil
	}
	return fmt.Errorf("%s of %s rows (%.0f%%) are longer than the base model's context of %s tokens and would be truncated; a job fails when more than 60%% of its rows are truncated: shorten the inputs and outputs (the longest row is %s tokens), or choose a base model with a longer context",
		thousands(r.TruncatedRows), thousands(r.Rows), 100*float64(r.TruncatedRows)/float64(r.Rows),
		thousands(r.ContextLength), thousands(r.MaxLength))
}

// Merge combines the reports of two parts of one dataset (the training and validation channels)
// tokenized for the same context length.
func (r Report) Merge(o Report) (Report, error) {
	if r.Rows == 0 {
		return o, nil
	}
	if o.Rows == 0 {
		return r, nil
	}
	if r.ContextLength != o.ContextLength {
		return Report{}, fmt.Errorf("merge data reports: context lengths %d and %d differ", r.ContextLength, o.ContextLength)
	}
	m := Report{
		Rows:           r.Rows + o.Rows,
		ContextLength:  r.ContextLength,
		PromptTokens:   r.PromptTokens + o.PromptTokens,
		ResponseTokens: r.ResponseTokens + o.ResponseTokens,
		TotalTokens:    r.TotalTokens + o.TotalTokens,
		TruncatedRows:  r.TruncatedRows + o.TruncatedRows,
		DroppedTokens:  r.DroppedTokens + o.DroppedTokens,
		MaxLength:      max(r.MaxLength, o.MaxLength),
		MeanLength:     (r.MeanLength*float64(r.Rows) + o.MeanLength*float64(o.Rows)) / float64(r.Rows+o.Rows),
		Histogram:      make([]Bucket, len(r.Histogram)),
	}
	for i, b := range r.Histogram {
		b.Rows += o.Histogram[i].Rows
		m.Histogram[i] = b
	}
	return m, nil
}
