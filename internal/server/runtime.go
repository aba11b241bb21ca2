package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/lathe-ml/lathe/internal/iam/policy"
	"github.com/lathe-ml/lathe/internal/sigv4"
)

// serveRuntime checks an InvokeEndpoint call and hands it, body already read, to Config.Runtime.
func (s *server) serveRuntime(w *recorder, r *http.Request) {
	w.op = "InvokeEndpoint"
	if m := runtimePath.FindStringSubmatch(r.URL.Path); m != nil && m[2] == "invocations-response-stream" {
		w.op = "InvokeEndpointWithResponseStream"
	}
	body, aerr := readBounded(r, MaxRuntimeBody)
	if aerr != nil {
		writeJSONError(w, apiRuntime, aerr.Status, aerr.Code, aerr.Message)
		return
	}
	res, err := sigv4.Verify(r, body, s.lookup, s.now())
	if err == nil {
		err = checkService(res, signingName)
	}
	if err != nil {
		s.writeJSONAuthError(w, r, apiRuntime, err)
		return
	}
	w.accessKey = res.AccessKeyID
	if s.cfg.Runtime == nil {
		writeJSONError(w, apiRuntime, http.StatusNotFound, "UnknownOperationException",
			"This server does not serve the SageMaker Runtime API.")
		return
	}
	r = withCaller(r, res)
	if m := runtimePath.FindStringSubmatch(r.URL.Path); m != nil {
		name, _ := url.PathUnescape(m[1])
		resource := "arn:aws:sagemaker:" + s.cfg.Region + ":" + s.cfg.AccountID + ":endpoint/" + strings.ToLower(name)
		if !s.allowJSON(w, r, apiRuntime, res, "sagemaker:"+w.op, func() (string, policy.Context) { return resource, policy.Context{} }) {
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	s.cfg.Runtime.ServeHTTP(w, r)
}

// serveOpenAI passes /v1/ to the OpenAI-compatible handler, which checks its own bearer keys.
func (s *server) serveOpenAI(w *recorder, r *http.Request) {
	if s.cfg.OpenAI == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"message": "This server does not serve the OpenAI-compatible API.",
			"type":    "invalid_request_error", "code": "not_found",
		}})
		return
	}
	s.cfg.OpenAI.ServeHTTP(w, r)
}

// serveLathe answers Lathe's own unauthenticated paths: only the health check so far.
func (s *server) serveLathe(w *recorder, r *http.Request) {
	if r.URL.Path != "/_lathe/health" {
		writeJSONError(w, apiLathe, http.StatusNotFound, "NotFound", "No such path: "+r.URL.Path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, apiLathe, http.StatusMethodNotAllowed, "MethodNotAllowed", "Use GET.")
		return
	}
	status, body := http.StatusOK, `{"status":"ok"}`
	if s.cfg.Ready != nil && !s.cfg.Ready() {
		status, body = http.StatusServiceUnavailable, `{"status":"starting"}`
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		_, _ = io.WriteString(w, body+"\n")
	}
}
