package endpoint_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
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
