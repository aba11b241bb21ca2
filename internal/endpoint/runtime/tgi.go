package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lathe-ml/lathe/llm/generate"
)

// tgiRequest is the Text Generation Inference payload SageMaker's LLM containers take.
type tgiRequest struct {
	Inputs     json.RawMessage `json:"inputs"`
	Parameters *tgiParameters  `json:"parameters"`
	Stream     bool            `json:"stream"`
}

// tgiParameters are TGI's GenerateParameters; watermark and decoder_input_details are accepted and
// have no effect.
type tgiParameters struct {
	MaxNewTokens      *int     `json:"max_new_tokens"`
	Temperature       *float64 `json:"temperature"`
	TopP              *float64 `json:"top_p"`
	TopK              *int     `json:"top_k"`
	DoSample          *bool    `json:"do_sample"`
	RepetitionPenalty *float64 `json:"repetition_penalty"`
	Stop              []string `json:"stop"`
	Seed              *uint64  `json:"seed"`
	ReturnFullText    *bool    `json:"return_full_text"`
	Details           bool     `json:"details"`
	BestOf            *int     `json:"best_of"`
	TypicalP          *float64 `json:"typical_p"`
	Truncate          *int     `json:"truncate"`
	Watermark         bool     `json:"watermark"`
	DecoderInput      bool     `json:"decoder_input_details"`
}

// defaultMaxNewTokens is TGI's default.
const defaultMaxNewTokens = 20

// maxStops is TGI's default limit on stop sequences.
const maxStops = 4

// maxBestOf is TGI's default limit on best_of.
const maxBestOf = 2

// call is a parsed invocation.
type call struct {
	inputs   []string
	list     bool // inputs came as a list: answer one item per input
	opt      generate.Options
	sampled  bool
	fullText bool
	details  bool
	// truncate keeps the last truncate tokens of each input (TGI's left truncation) when hasTruncate;
	// it is checked against the model's input limit when the generation starts.
	truncate    int
	hasTruncate bool
	// bestOf sequences are sampled for each input and the one with the highest mean token
	// log-probability answers (TGI's best_of; 1 is a plain call).
	bestOf int
}

// inputError is a payload the model rejects: TGI answers 422 with {"error": msg, "error_type": "validation"}.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &inputError{msg: "Input validation error: " + fmt.Sprintf(format, args...)}
}

// parseTGI reads and checks a payload with TGI's rules and messages.
func parseTGI(body []byte) (*call, error) {
	var req tgiRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, &inputError{msg: "Failed to deserialize the JSON body into the target type: " + err.Error()}
	}
	c := &call{}
	switch {
	case len(req.Inputs) == 0 || string(req.Inputs) == "null":
		return nil, &inputError{msg: "Failed to deserialize the JSON body into the target type: missing field `inputs`"}
	case req.Inputs[0] == '[':
		if err := json.Unmarshal(req.Inputs, &c.inputs); err != nil {
			return nil, &inputError{msg: "Failed to deserialize the JSON body into the target type: inputs: " + err.Error()}
		}
		c.list = true
		if len(c.inputs) == 0 {
			return nil, invalid("`inputs` cannot be empty")
		}
	default:
		var s string
		if err := json.Unmarshal(req.Inputs, &s); err != nil {
			return nil, &inputError{msg: "Failed to deserialize the JSON body into the target type: inputs: " + err.Error()}
		}
		c.inputs = []string{s}
	}
	for _, in := range c.inputs {
		if in == "" {
			return nil, invalid("`inputs` cannot be empty")
		}
	}
	p := req.Parameters
	if p == nil {
		p = &tgiParameters{}
	}
	c.opt.MaxNewTokens = defaultMaxNewTokens
	if p.MaxNewTokens != nil {
		if *p.MaxNewTokens <= 0 {
			return nil, invalid("`max_new_tokens` must be strictly positive")
		}
		c.opt.MaxNewTokens = *p.MaxNewTokens
	}
	// As TGI: sampling when asked, or when any sampling parameter is set.
	c.sampled = p.DoSample != nil && *p.DoSample
	c.opt.Temperature = 1
	if t := p.Temperature; t != nil {
		if *t <= 0 {
			return nil, invalid("`temperature` must be strictly positive")
		}
		c.opt.Temperature = *t
		c.sampled = c.sampled || *t != 1
	}
	if k := p.TopK; k != nil {
		if *k <= 0 {
			return nil, invalid("`top_k` must be strictly positive")
		}
		c.opt.TopK = *k
		c.sampled = true
	}
	if tp := p.TopP; tp != nil {
		if *tp <= 0 || *tp > 1 {
			return nil, invalid("`top_p` must be > 0.0 and <= 1.0")
		}
		c.opt.TopP = *tp
		c.sampled = c.sampled || *tp < 1
	}
	if tp := p.TypicalP; tp != nil {
		if *tp <= 0 || *tp > 1 {
			return nil, invalid("`typical_p` must be > 0.0 and <= 1.0")
		}
		c.opt.TypicalP = *tp
		c.sampled = c.sampled || *tp < 1
	}
	if tr := p.Truncate; tr != nil {
		c.truncate, c.hasTruncate = *tr, true
	}
	if rp := p.RepetitionPenalty; rp != nil {
		if *rp <= 0 {
			return nil, invalid("`repetition_penalty` must be strictly positive")
		}
		c.opt.RepetitionPenalty = *rp
	}
	if len(p.Stop) > maxStops {
		return nil, invalid("`stop` supports up to %d stop sequences. Given: %d", maxStops, len(p.Stop))
	}
	for _, s := range p.Stop {
		if s == "" {
			return nil, invalid("`stop` sequences cannot be empty")
		}
	}
	c.opt.StopSequences = p.Stop
	c.bestOf = 1
	if b := p.BestOf; b != nil {
		switch {
		case *b <= 0 || *b > maxBestOf:
			return nil, invalid("`best_of` must be > 0 and <= %d. Given: %d", maxBestOf, *b)
		case *b > 1 && !c.sampled:
			return nil, invalid("you must use sampling when `best_of` is > 1")
		case *b > 1 && p.Seed != nil:
			return nil, invalid("`seed` must not be set when `best_of` > 1")
		}
		c.bestOf = *b
	}
	if !c.sampled {
		c.opt.Temperature, c.opt.TopK, c.opt.TopP, c.opt.TypicalP = 0, 0, 0, 0
	} else if p.Seed != nil {
		c.opt.Seed = *p.Seed
	} else {
		c.opt.Seed = rand.Uint64()
	}
	c.fullText = p.ReturnFullText != nil && *p.ReturnFullText
	c.details = p.Details
	// The details list each token's log-probability; best_of ranks sequences by theirs.
	c.opt.Logprobs = p.Details || c.bestOf > 1
	return c, nil
}

// tgiFinish is TGI's name for a finish reason.
func tgiFinish(reason string) string {
	switch reason {
	case generate.FinishEOS:
		return "eos_token"
	case generate.FinishStop:
		return "stop_sequence"
	}
	return "length"
}

type tgiDetails struct {
	FinishReason    string  `json:"finish_reason"`
	GeneratedTokens int     `json:"generated_tokens"`
	Seed            *uint64 `json:"seed"`
}

// tgiFullDetails are the details of an answer that is not streamed: TGI adds the prompt's tokens
// (prefill: empty, as without decoder_input_details) and each generated token with its
// log-probability, the end-of-sequence token included (special); with best_of, the sequences that
// were not chosen.
type tgiFullDetails struct {
	tgiDetails
	Prefill         []tgiToken     `json:"prefill"`
	Tokens          []tgiToken     `json:"tokens"`
	BestOfSequences []tgiCandidate `json:"best_of_sequences,omitempty"`
}

// tgiCandidate is one of best_of's other sequences.
type tgiCandidate struct {
	GeneratedText string `json:"generated_text"`
	tgiDetails
	Prefill []tgiToken `json:"prefill"`
	Tokens  []tgiToken `json:"tokens"`
}

type tgiOutput struct {
	GeneratedText string          `json:"generated_text"`
	Details       *tgiFullDetails `json:"details,omitempty"`
}

// tokenTexter gives the text of generated tokens: each one's addition to the text before it, and a
// special token's own string.
type tokenTexter interface {
	TokenTexts(ids []int32) []string
	SpecialText(id int32) string
}

// detailsOf is the summary of one generation, which sampled with seed.
func (c *call) detailsOf(res generate.Result, seed uint64) *tgiDetails {
	d := &tgiDetails{FinishReason: tgiFinish(res.Finish), GeneratedTokens: len(res.Tokens)}
	if res.Finish == generate.FinishEOS {
		d.GeneratedTokens++ // TGI counts the end-of-sequence token
	}
	if c.sampled {
		d.Seed = &seed
	}
	return d
}

// tokensOf lists a generation's tokens with their texts and log-probabilities, the end-of-sequence
// token last when it ended the generation.
func tokensOf(res generate.Result, tt tokenTexter) []tgiToken {
	toks := []tgiToken{}
	for i, text := range tt.TokenTexts(res.Tokens) {
		tk := tgiToken{ID: res.Tokens[i], Text: text}
		if i < len(res.Logprobs) {
			tk.Logprob = res.Logprobs[i]
		}
		toks = append(toks, tk)
	}
	if res.Finish == generate.FinishEOS {
		toks = append(toks, tgiToken{ID: res.StopToken, Text: tt.SpecialText(res.StopToken), Logprob: res.StopLogprob, Special: true})
	}
	return toks
}

// meanLogprob is what best_of ranks sequences by: the mean log-probability of their tokens, the
// end-of-sequence token included, as TGI does.
func meanLogprob(res generate.Result) float64 {
	var sum float64
	for _, lp := range res.Logprobs {
		sum += float64(lp)
	}
	n := len(res.Logprobs)
	if res.Finish == generate.FinishEOS {
		sum += float64(res.StopLogprob)
		n++
	}
	if n == 0 {
		return math.Inf(-1)
	}
	return sum / float64(n)
}

// generation is one finished sequence of a call: its result and the seed it sampled with.
type generation struct {
	res  generate.Result
	seed uint64
}

// output is the answer to one input from its generations (best_of of them): the one with the best
// mean log-probability answers. tt gives the token texts of the details (nil: no details).
func (c *call) output(input string, gens []generation, tt tokenTexter) tgiOutput {
	best := 0
	for i := range gens {
		if meanLogprob(gens[i].res) > meanLogprob(gens[best].res) {
			best = i
		}
	}
	text := func(res generate.Result) string {
		if c.fullText {
			return input + res.Text
		}
		return res.Text
	}
	g := gens[best]
	out := tgiOutput{GeneratedText: text(g.res)}
	if c.details && tt != nil {
		out.Details = &tgiFullDetails{tgiDetails: *c.detailsOf(g.res, g.seed), Prefill: []tgiToken{}, Tokens: tokensOf(g.res, tt)}
		for i, o := range gens {
			if i != best {
				out.Details.BestOfSequences = append(out.Details.BestOfSequences, tgiCandidate{GeneratedText: text(o.res),
					tgiDetails: *c.detailsOf(o.res, o.seed), Prefill: []tgiToken{}, Tokens: tokensOf(o.res, tt)})
			}
		}
	}
	return out
}
