package openai

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/runtime"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// oneEndpoint routes the model "e" to a loaded model and every other name nowhere.
type oneEndpoint struct{ t runtime.Target }

func (o oneEndpoint) Route(name, _ string) (runtime.Target, error) {
	if name != "e" {
		return runtime.Target{}, runtime.ErrEndpointNotFound
	}
	return o.t, nil
}

func (o oneEndpoint) InService() []string { return []string{"e"} }

// FuzzCompletions drives the real /v1/chat/completions and /v1/completions handlers, on
// stories260K, with any body: the answer is a 200 (a completion object or an event stream) or a
// 4xx in OpenAI's error shape ({"error": {"message", "type", "param", "code"}}), never a 5xx or a
// panic.
func FuzzCompletions(f *testing.F) {
	eng, err := serving.Load("../../../../shared/models/stories260K.gguf", serving.Options{MaxBatch: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(eng.Close)
	h, err := New(Config{Router: oneEndpoint{runtime.Target{Engine: eng, Variant: "AllTraffic"}}, APIKey: "k"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"model":"e","messages":[{"role":"user","content":"Hi"}],"max_tokens":3}`,
		`{"model":"e","messages":[{"role":"system","content":"Be brief"},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_completion_tokens":2,"logprobs":true,"top_logprobs":3,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"e","prompt":"Once","max_tokens":2,"logprobs":2,"echo":true,"stop":["a","b"],"seed":3,"temperature":0.7,"top_p":0.5}`,
		`{"model":"e","prompt":["Once"],"max_tokens":2,"n":1,"stop":"x"}`,
		`{"model":"e","messages":[{"role":"wizard","content":"Hi"}]}`,
		`{"model":"e","messages":[]}`,
		`{"model":"nope","prompt":"x"}`,
		`{"prompt":"x"}`,
		`{"model":"e","prompt":"x","max_tokens":-1,"temperature":9,"n":5,"top_logprobs":99}`,
		`{"model":"e","messages":[{"role":"user","content":7}],"logprobs":"yes"}`,
		`{"model":"e","prompt":{"a":1},"stop":[1,2]}`,
		`not json`, ``, `null`, `[]`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		path := "/v1/completions"
		if chat {
			path = "/v1/chat/completions"
		}
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer k")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusOK && w.Header().Get("Content-Type") == "text/event-stream":
		case w.Code == http.StatusOK:
			var out struct {
				ID      string           `json:"id"`
				Choices []map[string]any `json:"choices"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.ID == "" || len(out.Choices) == 0 {
				t.Fatalf("200 with body %q, not a completion: %v", w.Body.Bytes(), err)
			}
		case w.Code >= 400 && w.Code < 500:
			var e struct {
				Error *struct {
					Message *string `json:"message"`
					Type    *string `json:"type"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Message == nil || *e.Error.Message == "" ||
				e.Error.Type == nil || *e.Error.Type == "" {
				t.Fatalf("%d with body %q, not OpenAI's error shape: %v", w.Code, w.Body.Bytes(), err)
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.Bytes())
		}
	})
}
