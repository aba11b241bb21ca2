package runtime

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// oneEndpoint routes the endpoint "e" to a loaded model and every other name nowhere.
type oneEndpoint struct{ t Target }

func (o oneEndpoint) Route(name, variant string) (Target, error) {
	switch {
	case name != "e":
		return Target{}, ErrEndpointNotFound
	case variant != "" && variant != o.t.Variant:
		return Target{}, ErrVariantNotFound
	}
	return o.t, nil
}

// FuzzInvokeEndpoint drives the real InvokeEndpoint handler, on stories260K, with any body: the
// answer is a 200 (TGI's list of generations, or an event stream) or a 4xx in the runtime API's
// error shape (X-Amzn-Errortype and {"ErrorCode", "Message"}; a ModelError also carries the
// container's status and message), never a 5xx or a panic.
func FuzzInvokeEndpoint(f *testing.F) {
	eng, err := serving.Load("../../../../shared/models/stories260K.gguf", serving.Options{MaxBatch: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(eng.Close)
	h := New(Config{Router: oneEndpoint{Target{eng, "AllTraffic"}}, AccountID: "123456789012"})
	for _, s := range []string{
		`{"inputs":"Once upon a time","parameters":{"max_new_tokens":4}}`,
		`{"inputs":["a","b"],"parameters":{"max_new_tokens":2,"details":true,"do_sample":true,"best_of":2,"top_k":5,"top_p":0.9}}`,
		`{"inputs":"x","parameters":{"max_new_tokens":3,"stop":["a","b"],"seed":7,"temperature":0.5,"return_full_text":true,"truncate":2}}`,
		`{"inputs":"x","parameters":{"max_new_tokens":0}}`,
		`{"inputs":"","parameters":{"best_of":3}}`,
		`{"inputs":[],"parameters":null}`,
		`{"inputs":7}`,
		`{"inputs":"x","parameters":{"max_new_tokens":1e99,"temperature":-1}}`,
		`{"inputs":"x","parameters":{"typical_p":1.5,"repetition_penalty":0,"stop":["","",""]}}`,
		`not json`, ``, `null`, `[]`, `{"inputs":"x"}{"trailing":1}`,
	} {
		f.Add([]byte(s), false, "")
	}
	f.Add([]byte(`{"inputs":"Hi","parameters":{"max_new_tokens":3,"details":true}}`), true, "")
	f.Add([]byte(`{"inputs":"Hi"}`), false, "Other")
	f.Fuzz(func(t *testing.T, body []byte, stream bool, variant string) {
		path := "/endpoints/e/invocations"
		if stream {
			path += "-response-stream"
		}
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		if variant != "" && validHeader(variant) {
			r.Header.Set(headerTargetVariant, variant)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusOK && stream:
		case w.Code == http.StatusOK:
			var out []map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out) == 0 {
				t.Fatalf("200 with body %q, not a list of generations: %v", w.Body.Bytes(), err)
			}
		case w.Code >= 400 && w.Code < 500:
			var e struct {
				ErrorCode, Message string
				OriginalStatusCode int
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.ErrorCode == "" || e.Message == "" || w.Header().Get(headerErrorType) == "" {
				t.Fatalf("%d with body %q, not the runtime's error shape: %v", w.Code, w.Body.Bytes(), err)
			}
			if w.Header().Get(headerErrorType) == "ModelError" && (w.Code != http.StatusFailedDependency || e.OriginalStatusCode >= 500) {
				t.Fatalf("ModelError %d with the container's status %d for body %q", w.Code, e.OriginalStatusCode, body)
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.Bytes())
		}
	})
}

// validHeader: net/http refuses to send a header value with control characters, so a client
// cannot send one.
func validHeader(v string) bool {
	for _, c := range []byte(v) {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
