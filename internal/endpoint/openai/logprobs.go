package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/llm/generate"
)

// OpenAI's bounds: chat's top_logprobs is 0..20, the legacy completions' logprobs 0..5.
const (
	maxChatTopLogprobs       = 20
	maxCompletionTopLogprobs = 5
)

// chatLogprobs reads chat's "logprobs" (a boolean) and "top_logprobs" (0..20, only with logprobs).
func (req *request) chatLogprobs() (on bool, top int, err error) {
	if len(req.Logprobs) > 0 && string(req.Logprobs) != "null" {
		if json.Unmarshal(req.Logprobs, &on) != nil {
			return false, 0, &badRequest{"logprobs", fmt.Sprintf("Invalid type for 'logprobs': expected a boolean, but got %s instead.", req.Logprobs)}
		}
	}
	if req.TopLogprobs != nil {
		top = *req.TopLogprobs
		switch {
		case top < 0 || top > maxChatTopLogprobs:
			return false, 0, &badRequest{"top_logprobs", fmt.Sprintf("Invalid 'top_logprobs': expected a value between 0 and %d, but got %d instead.", maxChatTopLogprobs, top)}
		case !on:
			return false, 0, &badRequest{"top_logprobs", "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used."}
		}
	}
	return on, top, nil
}

// completionLogprobs reads the legacy completions' "logprobs" (an integer 0..5: how many most likely
// tokens to list beside each chosen one).
func (req *request) completionLogprobs() (on bool, top int, err error) {
	if len(req.Logprobs) == 0 || string(req.Logprobs) == "null" {
		return false, 0, nil
	}
	if json.Unmarshal(req.Logprobs, &top) != nil {
		return false, 0, &badRequest{"logprobs", fmt.Sprintf("Invalid type for 'logprobs': expected an integer, but got %s instead.", req.Logprobs)}
	}
	if top < 0 || top > maxCompletionTopLogprobs {
		return false, 0, &badRequest{"logprobs", fmt.Sprintf("Invalid 'logprobs': expected a value between 0 and %d, but got %d instead.", maxCompletionTopLogprobs, top)}
	}
	if req.Echo {
		return false, 0, &badRequest{"logprobs", "Lathe does not score the prompt: 'echo' cannot be combined with 'logprobs'."}
	}
	return true, top, nil
}

// logprob is a log-probability as JSON can carry it: a probability that underflowed to zero (−Inf)
// is reported as −9999, as OpenAI does.
func logprob(lp float32) float64 {
	if math.IsInf(float64(lp), -1) || math.IsNaN(float64(lp)) {
		return -9999
	}
	return float64(lp)
}

// utf8Bytes is a token's text as the list of byte values OpenAI's "bytes" carries (a []byte would
// encode as base64).
func utf8Bytes(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}

// tokenLog is one generated token with its log-probability and the most likely tokens at its step,
// texts resolved.
type tokenLog struct {
	text    string
	logprob float32
	top     []altLog
}

type altLog struct {
	text    string
	logprob float32
}

// tokenLogger turns a generation's tokens into tokenLogs, one call per arriving token, so a stream
// and a whole answer list the same texts: the chosen token's text is what it adds to the text before
// it (they concatenate to the answer); an alternative's is its text after the previous token.
type tokenLogger struct {
	e   *serving.Engine
	ids []int32
}

func (l *tokenLogger) add(id int32, lp float32, top []generate.Alternative) tokenLog {
	l.ids = append(l.ids, id)
	i := len(l.ids) - 1
	tl := tokenLog{text: l.e.TokenTextAt(l.ids, i), logprob: lp}
	prev := int32(-1)
	if i > 0 {
		prev = l.ids[i-1]
	}
	for _, a := range top {
		text := tl.text
		if a.ID != id {
			text = l.e.TokenTextAfter(prev, a.ID)
		}
		tl.top = append(tl.top, altLog{text, a.Logprob})
	}
	return tl
}

// resultLogs lists a finished generation's tokens; tokens past a stop sequence (generated, then cut
// from the text) are left out.
func resultLogs(e *serving.Engine, res generate.Result) []tokenLog {
	l := &tokenLogger{e: e}
	var out []tokenLog
	offset := 0
	for i, id := range res.Tokens {
		if res.Finish == generate.FinishStop && offset >= len(res.Text) {
			break
		}
		var lp float32
		var top []generate.Alternative
		if i < len(res.Logprobs) {
			lp = res.Logprobs[i]
		}
		if i < len(res.TopLogprobs) {
			top = res.TopLogprobs[i]
		}
		tl := l.add(id, lp, top)
		offset += len(tl.text)
		out = append(out, tl)
	}
	return out
}

// streamLogs lists the tokens of one streamed step (the text-only token ending a held-back tail,
// ID −1, is no token).
func (l *tokenLogger) streamLogs(toks []generate.Token) []tokenLog {
	var out []tokenLog
	for _, tk := range toks {
		if tk.ID >= 0 {
			out = append(out, l.add(tk.ID, tk.Logprob, tk.Top))
		}
	}
	return out
}

// chatTokenLogprob is one entry of a chat choice's logprobs.content.
type chatTokenLogprob struct {
	Token       string         `json:"token"`
	Logprob     float64        `json:"logprob"`
	Bytes       []int          `json:"bytes"`
	TopLogprobs []chatTopEntry `json:"top_logprobs"`
}

type chatTopEntry struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// chatLogprobsOf is a chat choice's "logprobs": {"content": [...], "refusal": null}.
func chatLogprobsOf(logs []tokenLog) map[string]any {
	content := make([]chatTokenLogprob, len(logs))
	for i, tl := range logs {
		top := make([]chatTopEntry, len(tl.top))
		for k, a := range tl.top {
			top[k] = chatTopEntry{Token: a.text, Logprob: logprob(a.logprob), Bytes: utf8Bytes(a.text)}
		}
		content[i] = chatTokenLogprob{Token: tl.text, Logprob: logprob(tl.logprob), Bytes: utf8Bytes(tl.text), TopLogprobs: top}
	}
	return map[string]any{"content": content, "refusal": nil}
}

// completionLogprobsOf is a legacy completion choice's "logprobs": parallel lists of tokens, their
// log-probabilities, the most likely tokens at each step (an object, most likely first, with the
// chosen token added when it is not among them) and each token's offset in characters from the
// start of the prompt; offset is where the first of logs starts.
func completionLogprobsOf(logs []tokenLog, offset int) map[string]any {
	tokens, lps := make([]string, len(logs)), make([]float64, len(logs))
	tops, offsets := make([]orderedLogprobs, len(logs)), make([]int, len(logs))
	for i, tl := range logs {
		tokens[i], lps[i], offsets[i] = tl.text, logprob(tl.logprob), offset
		offset += utf8.RuneCountInString(tl.text)
		var top orderedLogprobs
		for _, a := range tl.top {
			top = top.with(a.text, a.logprob)
		}
		tops[i] = top.with(tl.text, tl.logprob)
	}
	return map[string]any{"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}
}

// orderedLogprobs is a JSON object of token text -> log-probability that keeps its insertion order
// (most likely first); a text already present keeps its first, larger, value.
type orderedLogprobs []altLog

func (o orderedLogprobs) with(text string, lp float32) orderedLogprobs {
	for _, a := range o {
		if a.text == text {
			return o
		}
	}
	return append(o, altLog{text, lp})
}

func (o orderedLogprobs) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, a := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(a.text)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(logprob(a.logprob))
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// offsetAfter is the character offset where text appended to prompt starts.
func offsetAfter(prompt string) int { return utf8.RuneCountInString(prompt) }
