package openai

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/internal/endpoint/runtime"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// request is the body of /v1/completions and /v1/chat/completions (the members Lathe reads; others,
// such as presence_penalty or user, are accepted and have no effect).
type request struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`
	Messages            []message       `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Stop json.RawMessage `json:"stop"`
	Seed *uint64         `json:"seed"`
	Echo bool            `json:"echo"`
	// Logprobs is a boolean for chat, an integer (how many alternatives) for completions.
	Logprobs    json.RawMessage `json:"logprobs"`
	TopLogprobs *int            `json:"top_logprobs"`
}

// roles are the message roles OpenAI's chat API takes, in the order its error message lists them.
var roles = []string{"system", "assistant", "user", "function", "tool", "developer"}

// maxRequestBody is the largest request body the OpenAI routes read; a larger one is a 413.
const maxRequestBody = 8 << 20

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// text is a message's content: a string, or the text parts of a content array.
func (m message) text() (string, error) {
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", fmt.Errorf("content must be a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part type %q is not supported: Lathe's models take text", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

type badRequest struct{ param, msg string }

func (e *badRequest) Error() string { return e.msg }

// options turns the sampling members into decoding options (OpenAI's defaults: temperature 1, top_p 1).
func (req *request) options(defaultMax int) (generate.Options, error) {
	opt := generate.Options{MaxNewTokens: defaultMax, Temperature: 1}
	switch {
	case req.MaxCompletionTokens != nil:
		opt.MaxNewTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		opt.MaxNewTokens = *req.MaxTokens
	}
	if opt.MaxNewTokens < 1 {
		return opt, &badRequest{"max_tokens", fmt.Sprintf("Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got %d instead.", opt.MaxNewTokens)}
	}
	if t := req.Temperature; t != nil {
		if *t < 0 || *t > 2 {
			return opt, &badRequest{"temperature", fmt.Sprintf("Invalid 'temperature': expected a value between 0 and 2, but got %g instead.", *t)}
		}
		opt.Temperature = *t
	}
	if p := req.TopP; p != nil {
		if *p < 0 || *p > 1 {
			return opt, &badRequest{"top_p", fmt.Sprintf("Invalid 'top_p': expected a value between 0 and 1, but got %g instead.", *p)}
		}
		opt.TopP = *p
	}
	if req.N != nil && *req.N != 1 {
		return opt, &badRequest{"n", "Lathe answers one choice per request: 'n' must be 1."}
	}
	if req.Seed != nil {
		opt.Seed = *req.Seed
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			opt.Seed = opt.Seed<<8 | uint64(x)
		}
	}
	if len(req.Stop) > 0 && string(req.Stop) != "null" {
		var one string
		if err := json.Unmarshal(req.Stop, &one); err == nil {
			opt.StopSequences = []string{one}
		} else if err := json.Unmarshal(req.Stop, &opt.StopSequences); err != nil {
			return opt, &badRequest{"stop", "'stop' must be a string or an array of strings."}
		}
		if len(opt.StopSequences) > 4 {
			return opt, &badRequest{"stop", "'stop' takes at most 4 sequences."}
		}
		for _, s := range opt.StopSequences {
			if s == "" {
				return opt, &badRequest{"stop", "'stop' sequences must not be empty."}
			}
		}
	}
	return opt, nil
}

func finishReason(f string) string {
	if f == generate.FinishLength {
		return "length"
	}
	return "stop"
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(g *serving.Generation, res generate.Result) *usage {
	return &usage{PromptTokens: g.PromptTokens(), CompletionTokens: len(res.Tokens), TotalTokens: g.PromptTokens() + len(res.Tokens)}
}

func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// parse reads the body and finds the endpoint; it answers the error itself and returns ok=false.
func (h *handler) parse(w http.ResponseWriter, r *http.Request) (*request, runtime.Target, bool) {
	var req request
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err == nil && len(body) > maxRequestBody {
		// Cut at the limit, the body would read as broken JSON: say what is wrong instead.
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", "",
			fmt.Sprintf("The request body is larger than %d bytes (8 MiB), the most Lathe's OpenAI API reads.", maxRequestBody))
		return nil, runtime.Target{}, false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "", "Could not read the request body: "+err.Error())
		return nil, runtime.Target{}, false
	}
	if err = json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "", "The request body is not valid JSON: "+err.Error())
		return nil, runtime.Target{}, false
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "model", "You must provide a model parameter (the name of a Lathe endpoint).")
		return nil, runtime.Target{}, false
	}
	t, err := h.cfg.Router.Route(req.Model, "")
	if err != nil {
		modelNotFound(w, req.Model)
		return nil, runtime.Target{}, false
	}
	return &req, t, true
}

// start admits the generation, answering the error itself when it cannot.
func (h *handler) start(w http.ResponseWriter, r *http.Request, t runtime.Target, prompt string, opt generate.Options) (*serving.Generation, bool) {
	g, err := t.Engine.Start(r.Context(), prompt, opt)
	if err == nil {
		return g, true
	}
	var inErr *serving.InputError
	switch {
	case errors.Is(err, serving.ErrBusy):
		writeError(w, http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded", "", "The endpoint has too many requests in flight; retry later.")
	case errors.As(err, &inErr):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "context_length_exceeded", "messages", inErr.Msg)
	case errors.Is(err, serving.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "server_error", "", "", "The endpoint was updated or deleted; retry.")
	default:
		h.cfg.Logger.Error("openai: start generation", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "", "", "The model failed: "+err.Error())
	}
	return nil, false
}

// finishError answers a generation that failed after it started (before any byte was sent).
func (h *handler) finishError(w http.ResponseWriter, err error) {
	var inErr *serving.InputError
	if errors.As(err, &inErr) {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "", inErr.Msg)
		return
	}
	h.cfg.Logger.Error("openai: generation", "err", err)
	writeError(w, http.StatusInternalServerError, "server_error", "", "", "The model failed: "+err.Error())
}

func (h *handler) completions(w http.ResponseWriter, r *http.Request) {
	req, t, ok := h.parse(w, r)
	if !ok {
		return
	}
	var prompt string
	if err := json.Unmarshal(req.Prompt, &prompt); err != nil {
		var list []string
		if json.Unmarshal(req.Prompt, &list) != nil || len(list) != 1 {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "prompt", "'prompt' must be a string (or a list of one string).")
			return
		}
		prompt = list[0]
	}
	opt, err := req.options(16)
	if err == nil {
		opt.Logprobs, opt.TopLogprobs, err = req.completionLogprobs()
	}
	if err != nil {
		var br *badRequest
		errors.As(err, &br)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", br.param, br.msg)
		return
	}
	g, ok := h.start(w, r, t, prompt, opt)
	if !ok {
		return
	}
	id, created := newID("cmpl-"), h.cfg.Now().Unix()
	echo := ""
	if req.Echo {
		echo = prompt
	}
	if req.Stream {
		var logger *tokenLogger
		offset := offsetAfter(prompt)
		if opt.Logprobs {
			logger = &tokenLogger{e: t.Engine}
		}
		h.stream(w, r, g, req, logger, func(text string, logs []tokenLog, finish *string, u *usage) any {
			choices := []map[string]any{}
			if u == nil {
				var lp any
				if logger != nil {
					lp = completionLogprobsOf(logs, offset)
					for _, tl := range logs {
						offset += utf8.RuneCountInString(tl.text)
					}
				}
				choices = append(choices, map[string]any{"index": 0, "text": text, "logprobs": lp, "finish_reason": finish})
			}
			return map[string]any{"id": id, "object": "text_completion", "created": created, "model": req.Model, "choices": choices, "usage": u}
		}, echo)
		return
	}
	res, err := g.Wait(r.Context())
	if err != nil {
		if r.Context().Err() == nil {
			h.finishError(w, err)
		}
		return
	}
	var lp any
	if opt.Logprobs {
		lp = completionLogprobsOf(resultLogs(t.Engine, res), offsetAfter(prompt))
	}
	writeJSON(w, map[string]any{"id": id, "object": "text_completion", "created": created, "model": req.Model,
		"choices": []map[string]any{{"index": 0, "text": echo + res.Text, "logprobs": lp, "finish_reason": finishReason(res.Finish)}},
		"usage":   usageOf(g, res)})
}

func (h *handler) chatCompletions(w http.ResponseWriter, r *http.Request) {
	req, t, ok := h.parse(w, r)
	if !ok {
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "messages", "'messages' must hold at least one message.")
		return
	}
	msgs := make([]tokenizer.Message, len(req.Messages))
	for i, m := range req.Messages {
		text, err := m.text()
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", fmt.Sprintf("messages[%d].content", i), err.Error())
			return
		}
		if !slices.Contains(roles, m.Role) {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", fmt.Sprintf("messages[%d].role", i),
				fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", m.Role))
			return
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		msgs[i] = tokenizer.Message{Role: role, Content: text}
	}
	prompt, err := t.Engine.ChatPrompt(msgs)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "messages", err.Error())
		return
	}
	room := t.Engine.ContextLen() - len(t.Engine.Tokenize(prompt))
	opt, err := req.options(max(1, min(512, room)))
	if err == nil {
		opt.Logprobs, opt.TopLogprobs, err = req.chatLogprobs()
	}
	if err != nil {
		var br *badRequest
		errors.As(err, &br)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", br.param, br.msg)
		return
	}
	g, ok := h.start(w, r, t, prompt, opt)
	if !ok {
		return
	}
	id, created := newID("chatcmpl-"), h.cfg.Now().Unix()
	if req.Stream {
		first := true
		var logger *tokenLogger
		if opt.Logprobs {
			logger = &tokenLogger{e: t.Engine}
		}
		h.stream(w, r, g, req, logger, func(text string, logs []tokenLog, finish *string, u *usage) any {
			choices := []map[string]any{}
			if u == nil {
				delta := map[string]any{}
				if first {
					delta["role"] = "assistant"
					first = false
				}
				if text != "" || finish == nil {
					delta["content"] = text
				}
				var lp any
				if logger != nil && len(logs) > 0 {
					lp = chatLogprobsOf(logs)
				}
				choices = append(choices, map[string]any{"index": 0, "delta": delta, "logprobs": lp, "finish_reason": finish})
			}
			return map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model, "choices": choices, "usage": u}
		}, "")
		return
	}
	res, err := g.Wait(r.Context())
	if err != nil {
		if r.Context().Err() == nil {
			h.finishError(w, err)
		}
		return
	}
	var lp any
	if opt.Logprobs {
		lp = chatLogprobsOf(resultLogs(t.Engine, res))
	}
	writeJSON(w, map[string]any{"id": id, "object": "chat.completion", "created": created, "model": req.Model,
		"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": res.Text},
			"logprobs": lp, "finish_reason": finishReason(res.Finish)}},
		"usage": usageOf(g, res)})
}

// stream sends server-sent events: a chunk per piece of text, one with the finish reason, the usage
// when stream_options.include_usage asks for it, then [DONE]. A client that goes away cancels the
// generation.
// With a logger (logprobs asked for), each chunk also carries its tokens' log-probabilities.
func (h *handler) stream(w http.ResponseWriter, r *http.Request, g *serving.Generation, req *request, logger *tokenLogger,
	chunk func(text string, logs []tokenLog, finish *string, u *usage) any, first string) {
	defer g.Cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush() // the response starts now, even while the request waits in the queue
	}
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err == nil {
			_, err = fmt.Fprintf(w, "data: %s\n\n", b)
		}
		if flusher != nil {
			flusher.Flush()
		}
		return err == nil
	}
	if first != "" && !send(chunk(first, nil, nil, nil)) {
		return
	}
	ctx := r.Context()
	for {
		toks, done, err := g.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		if done {
			if err != nil && !errors.Is(err, context.Canceled) {
				send(map[string]any{"error": map[string]any{"message": "The model failed: " + err.Error(), "type": "server_error"}})
				return
			}
			break
		}
		var b strings.Builder
		for _, tk := range toks {
			b.WriteString(tk.Text)
		}
		var logs []tokenLog
		if logger != nil {
			logs = logger.streamLogs(toks)
		}
		if (b.Len() > 0 || len(logs) > 0) && !send(chunk(b.String(), logs, nil, nil)) {
			return
		}
	}
	res, _ := g.Wait(ctx)
	finish := finishReason(res.Finish)
	if !send(chunk("", nil, &finish, nil)) {
		return
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(chunk("", nil, nil, usageOf(g, res)))
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}
