package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// doFunc is an HTTP client whose Do plays what net/http's transport does with a request body when
// the response came first: the SDK closes its body, then the transport's excess check reads it.
type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// sdkRequest is a request built the way the SDK builds it (its body the SDK's own safe closer).
func sdkRequest(t *testing.T, body []byte) *http.Request {
	t.Helper()
	req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	req.Method = http.MethodPost
	req.URL.Scheme, req.URL.Host, req.URL.Path = "http", "127.0.0.1:1", "/endpoints/e/invocations-response-stream"
	req.ContentLength = int64(len(body))
	var err error
	if req, err = req.SetStream(bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	return req.Build(context.Background())
}

// excessCheck is the transport's last read of a body it has sent whole: io.Copy into io.Discard.
func excessCheck(sdkBody io.Closer) doFunc {
	return func(r *http.Request) (*http.Response, error) {
		sent := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, sent); err != nil {
			return nil, err
		}
		_ = sdkBody.Close() // the SDK, once the response headers are in
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return nil, err // the transport would close the connection under the response
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, r.Body.Close()
	}
}

func TestHTTPClientKeepsAnEarlyClosedBodyFromFailingTheWrite(t *testing.T) {
	body := []byte(`{"inputs":"Once upon a time","stream":true}`)

	// The SDK's body alone: its WriteTo after Close reports io.EOF, which io.Copy returns as an
	// error. If this stops failing, the SDK fixed it and bodyOwningClient can go.
	raw := sdkRequest(t, body)
	if _, err := excessCheck(raw.Body).Do(raw); !errors.Is(err, io.EOF) {
		t.Errorf("SDK body read after its Close: err %v, want io.EOF (the race HTTPClient works around)", err)
	}

	req := sdkRequest(t, body)
	c := bodyOwningClient{next: excessCheck(req.Body)}
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("through HTTPClient: %v", err)
	}
}
