package endpoint_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/openai"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

func openAICall(t *testing.T, e *env, method, path, key, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, out
}

func TestOpenAIAPI(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	e.deploy(t, "stories", baseModelContainer("raw"))

	_, models := openAICall(t, e, "GET", "/v1/models", openAIKey, "")
	if data := models["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != "stories" {
		t.Errorf("/v1/models = %v", models)
	}

	// /v1/completions continues the prompt as given: the README's reference continuation.
	_, cmpl := openAICall(t, e, "POST", "/v1/completions", openAIKey,
		`{"model":"stories","prompt":"Once upon a time, there was a little girl named Lily.","max_tokens":16,"temperature":0}`)
	choice := cmpl["choices"].([]any)[0].(map[string]any)
	if !strings.HasPrefix(strings.TrimSpace(choice["text"].(string)), "She loved to play outside in the park.") ||
		choice["finish_reason"] != "length" || cmpl["usage"].(map[string]any)["completion_tokens"] != 16.0 {
		t.Errorf("/v1/completions = %v", cmpl)
	}

	body := `{"model":"stories","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":12,"temperature":0%s}`
	_, chat := openAICall(t, e, "POST", "/v1/chat/completions", openAIKey, strings.Replace(body, "%s", "", 1))
	msg := chat["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if msg["role"] != "assistant" || msg["content"] == "" || chat["object"] != "chat.completion" {
		t.Fatalf("/v1/chat/completions = %v", chat)
	}

	// The stream carries the same text in chunks, then the finish reason, the usage and [DONE].
	req, _ := http.NewRequest("POST", e.url+"/v1/chat/completions",
		strings.NewReader(strings.Replace(body, "%s", `,"stream":true,"stream_options":{"include_usage":true}`, 1)))
	req.Header.Set("Authorization", "Bearer "+openAIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream content type %q", ct)
	}
	var text strings.Builder
	var finish any
	var sawUsage, done bool
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var chunk map[string]any
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatal(err)
		}
		if u, ok := chunk["usage"].(map[string]any); ok && u["completion_tokens"] != nil {
			sawUsage = true
		}
		for _, c := range chunk["choices"].([]any) {
			c := c.(map[string]any)
			if s, ok := c["delta"].(map[string]any)["content"].(string); ok {
				text.WriteString(s)
			}
			if c["finish_reason"] != nil {
				finish = c["finish_reason"]
			}
		}
	}
	if text.String() != msg["content"] || finish != "length" || !sawUsage || !done {
		t.Errorf("stream: text %q (want %q), finish %v, usage %v, done %v", text.String(), msg["content"], finish, sawUsage, done)
	}

	errCases := []struct {
		name, method, path, key, body string
		status                        int
		code                          string
	}{
		{"no key", "GET", "/v1/models", "", "", 401, "invalid_api_key"},
		{"wrong key", "GET", "/v1/models", "sk-wrong", "", 401, "invalid_api_key"},
		{"unknown model", "POST", "/v1/chat/completions", openAIKey, `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found"},
		{"bad temperature", "POST", "/v1/completions", openAIKey, `{"model":"stories","prompt":"x","temperature":3}`, 400, ""},
		{"no messages", "POST", "/v1/chat/completions", openAIKey, `{"model":"stories","messages":[]}`, 400, ""},
		{"image content", "POST", "/v1/chat/completions", openAIKey, `{"model":"stories","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, ""},
		{"top_logprobs without logprobs", "POST", "/v1/chat/completions", openAIKey, `{"model":"stories","messages":[{"role":"user","content":"x"}],"top_logprobs":2}`, 400, ""},
		{"top_logprobs above 20", "POST", "/v1/chat/completions", openAIKey, `{"model":"stories","messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21}`, 400, ""},
		{"completion logprobs above 5", "POST", "/v1/completions", openAIKey, `{"model":"stories","prompt":"x","logprobs":6}`, 400, ""},
		{"completion logprobs with echo", "POST", "/v1/completions", openAIKey, `{"model":"stories","prompt":"x","logprobs":1,"echo":true}`, 400, ""},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			resp, out := openAICall(t, e, c.method, c.path, c.key, c.body)
			errObj, _ := out["error"].(map[string]any)
			if resp.StatusCode != c.status || errObj == nil || errObj["message"] == "" || (c.code != "" && errObj["code"] != c.code) {
				t.Errorf("status %d, body %v; want %d code %q", resp.StatusCode, out, c.status, c.code)
			}
		})
	}
}

func TestOpenAIKeyIsIssuedOnce(t *testing.T) {
	t.Setenv(openai.EnvAPIKey, "")
	dir := t.TempDir()
	key, created, err := openai.LoadOrCreateKey(dir)
	if err != nil || !created || !strings.HasPrefix(key, "sk-lathe-") || len(key) < 40 {
		t.Fatalf("first start: %q, %v, %v", key, created, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, openai.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v", fi, err)
	}
	again, created, err := openai.LoadOrCreateKey(dir)
	if err != nil || created || again != key {
		t.Errorf("second start: %q, %v, %v; want the same key", again, created, err)
	}
	t.Setenv(openai.EnvAPIKey, "sk-from-env")
	if k, created, _ := openai.LoadOrCreateKey(dir); k != "sk-from-env" || created {
		t.Errorf("with %s set: %q, %v", openai.EnvAPIKey, k, created)
	}
}

// Requests OpenAI refuses are refused the same way: an unknown role names the role and the member,
// a body over 8 MiB is a 413 (not a body cut short and reported as broken JSON).
func TestOpenAIRefusesUnknownRolesAndLargeBodies(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	e.deploy(t, "stories", baseModelContainer("raw"))
	resp, out := openAICall(t, e, "POST", "/v1/chat/completions", openAIKey,
		`{"model":"stories","messages":[{"role":"user","content":"hi"},{"role":"wizard","content":"x"}]}`)
	want := map[string]any{"message": "Invalid value: 'wizard'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
		"type": "invalid_request_error", "param": "messages[1].role", "code": "invalid_value"}
	if got, _ := out["error"].(map[string]any); resp.StatusCode != 400 || !maps.Equal(got, want) {
		t.Errorf("unknown role: %d %v, want 400 %v", resp.StatusCode, out, want)
	}
	big := `{"model":"stories","prompt":"` + strings.Repeat("a", 8<<20) + `"}`
	resp, out = openAICall(t, e, "POST", "/v1/completions", openAIKey, big)
	if got, _ := out["error"].(map[string]any); resp.StatusCode != 413 || got["code"] != "request_too_large" || !strings.Contains(got["message"].(string), "8 MiB") {
		t.Errorf("9 MiB body: %d %v, want 413 request_too_large", resp.StatusCode, out)
	}
}

// logprobs and top_logprobs come back in OpenAI's shapes. Greedy, the chosen token is the most
// likely: the first alternative, with the same log-probability, which is also what the TGI route's
// details report for the same prompt. Chat tokens concatenate to the content, with their UTF-8 bytes;
// the stream carries the same entries chunk by chunk; completions list tokens, token_logprobs, the
// alternatives as an object and text offsets counted from the start of the prompt.
func TestOpenAILogprobs(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	e.deploy(t, "stories", baseModelContainer("raw"))
	const prompt = "Once upon a time, there was a little girl named Lily."

	type entry struct {
		Token       string  `json:"token"`
		Logprob     float64 `json:"logprob"`
		Bytes       []int   `json:"bytes"`
		TopLogprobs []struct {
			Token   string  `json:"token"`
			Logprob float64 `json:"logprob"`
			Bytes   []int   `json:"bytes"`
		} `json:"top_logprobs"`
	}
	decode := func(v any, into any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	body := `{"model":"stories","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":12,"temperature":0,"logprobs":true,"top_logprobs":3%s}`
	_, chat := openAICall(t, e, "POST", "/v1/chat/completions", openAIKey, strings.Replace(body, "%s", "", 1))
	choice := chat["choices"].([]any)[0].(map[string]any)
	lp, _ := choice["logprobs"].(map[string]any)
	if lp == nil || len(lp) != 2 || lp["refusal"] != nil {
		t.Fatalf("chat logprobs = %v, want {content, refusal: null}", choice["logprobs"])
	}
	var content []entry
	decode(lp["content"], &content)
	var text strings.Builder
	for i, c := range content {
		text.WriteString(c.Token)
		if len(c.TopLogprobs) != 3 || c.TopLogprobs[0].Token != c.Token || c.TopLogprobs[0].Logprob != c.Logprob || c.Logprob > 0 {
			t.Errorf("token %d: %+v, want 3 alternatives led by the chosen token", i, c)
		}
		if !slices.Equal(c.Bytes, bytesOf(c.Token)) {
			t.Errorf("token %d: bytes %v, want %v", i, c.Bytes, bytesOf(c.Token))
		}
		for k := 1; k < len(c.TopLogprobs); k++ {
			if c.TopLogprobs[k].Logprob > c.TopLogprobs[k-1].Logprob || !slices.Equal(c.TopLogprobs[k].Bytes, bytesOf(c.TopLogprobs[k].Token)) {
				t.Errorf("token %d: alternatives %+v not most likely first, or bytes wrong", i, c.TopLogprobs)
			}
		}
	}
	if len(content) != 12 || text.String() != choice["message"].(map[string]any)["content"] {
		t.Errorf("%d entries spelling %q; want 12 spelling the content %q", len(content), text.String(), choice["message"].(map[string]any)["content"])
	}

	// The stream's chunks carry the same entries.
	req, _ := http.NewRequest("POST", e.url+"/v1/chat/completions", strings.NewReader(strings.Replace(body, "%s", `,"stream":true`, 1)))
	req.Header.Set("Authorization", "Bearer "+openAIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var streamed []entry
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var chunk struct {
			Choices []struct {
				Logprobs *struct {
					Content []entry `json:"content"`
				} `json:"logprobs"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatal(err)
		}
		for _, c := range chunk.Choices {
			if c.Logprobs != nil {
				streamed = append(streamed, c.Logprobs.Content...)
			}
		}
	}
	if a, b := fmt.Sprint(streamed), fmt.Sprint(content); a != b {
		t.Errorf("stream logprobs\n%s\nwant\n%s", a, b)
	}

	// Completions: the legacy shape; greedy log-probabilities equal the TGI route's details.
	_, cmpl := openAICall(t, e, "POST", "/v1/completions", openAIKey,
		fmt.Sprintf(`{"model":"stories","prompt":%q,"max_tokens":8,"temperature":0,"logprobs":2}`, prompt))
	var legacy struct {
		Tokens        []string             `json:"tokens"`
		TokenLogprobs []float64            `json:"token_logprobs"`
		TopLogprobs   []map[string]float64 `json:"top_logprobs"`
		TextOffset    []int                `json:"text_offset"`
	}
	decode(cmpl["choices"].([]any)[0].(map[string]any)["logprobs"], &legacy)
	tgi, _ := invoke(t, e, "stories", fmt.Sprintf(`{"inputs":%q,"parameters":{"max_new_tokens":8,"details":true}}`, prompt))
	if len(legacy.Tokens) != 8 || len(legacy.TokenLogprobs) != 8 || len(legacy.TopLogprobs) != 8 || len(legacy.TextOffset) != 8 {
		t.Fatalf("completion logprobs %+v, want 8 of each", legacy)
	}
	offset := len([]rune(prompt))
	for i, tok := range legacy.Tokens {
		want := tgi[0].Details.Tokens[i]
		if tok != want.Text || math.Abs(legacy.TokenLogprobs[i]-*want.Logprob) > 1e-6 {
			t.Errorf("token %d: %q %g, TGI details say %q %g", i, tok, legacy.TokenLogprobs[i], want.Text, *want.Logprob)
		}
		if top := legacy.TopLogprobs[i]; len(top) != 2 || top[tok] != legacy.TokenLogprobs[i] {
			t.Errorf("token %d: top_logprobs %v, want two holding the chosen token", i, top)
		}
		if legacy.TextOffset[i] != offset {
			t.Errorf("token %d: text_offset %d, want %d", i, legacy.TextOffset[i], offset)
		}
		offset += len([]rune(tok))
	}

	// Without logprobs, none: the member is null.
	_, plain := openAICall(t, e, "POST", "/v1/completions", openAIKey, `{"model":"stories","prompt":"x","max_tokens":2}`)
	if c := plain["choices"].([]any)[0].(map[string]any); c["logprobs"] != nil {
		t.Errorf("logprobs unasked: %v", c["logprobs"])
	}
}

func bytesOf(s string) []int {
	out := []int{}
	for _, b := range []byte(s) {
		out = append(out, int(b))
	}
	return out
}
