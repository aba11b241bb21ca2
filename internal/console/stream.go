package console

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// maxInvokeBody bounds a playground request (InvokeEndpoint's own limit is 6 MiB).
const maxInvokeBody = 6 << 20

// invokeStream relays POST /console/api/invoke/<endpoint> (a TGI JSON payload) to
// InvokeEndpointWithResponseStream and answers with the stream's payload as it arrives: the TGI
// server-sent events the model writes (`data:{"token":...}`), and an `event: error` for a
// ModelStreamError. EventSource cannot POST, so the page reads this with fetch.
func (c *Console) invokeStream(w http.ResponseWriter, r *http.Request, s *session, name string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInvokeBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "ValidationError", "The request body is larger than InvokeEndpoint accepts.")
		return
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-SageMaker-Accept", "application/json")
	req, err := c.signed(r, s, http.MethodPost, "/endpoints/"+url.PathEscape(name)+"/invocations-response-stream", "",
		bytes.NewReader(body), int64(len(body)), "sagemaker", hashHex(body), h)
	if err != nil {
		c.internal(w, "invoke", err)
		return
	}
	rw := &frameRelay{out: w, h: http.Header{}}
	c.api.ServeHTTP(rw, req)
	rw.finish()
}

// frameRelay decodes the AWS event-stream frames the runtime writes as they come and writes
// their payloads to the browser, flushing after each.
type frameRelay struct {
	out     http.ResponseWriter
	h       http.Header
	status  int
	errBody *bytes.Buffer
	pending []byte // the start of a frame not yet complete
	dec     *eventstream.Decoder
}

func (w *frameRelay) Header() http.Header { return w.h }

func (w *frameRelay) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return
	}
	w.status = code
	if code >= 300 {
		w.errBody = &bytes.Buffer{}
		return
	}
	w.dec = eventstream.NewDecoder()
	w.out.Header().Set("Content-Type", "text/event-stream")
	w.out.WriteHeader(code)
}

func (w *frameRelay) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.errBody != nil {
		return w.errBody.Write(p)
	}
	w.pending = append(w.pending, p...)
	for len(w.pending) >= 4 {
		n := int(binary.BigEndian.Uint32(w.pending))
		if n < 16 || len(w.pending) < n {
			break
		}
		msg, err := w.dec.Decode(bytes.NewReader(w.pending[:n]), nil)
		w.pending = w.pending[n:]
		if err != nil {
			return len(p), err
		}
		if err := w.relay(msg); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

func (w *frameRelay) relay(msg eventstream.Message) error {
	var out []byte
	if v := msg.Headers.Get(":message-type"); v != nil && v.String() == "exception" {
		var e struct{ Message, ErrorCode string }
		_ = json.Unmarshal(msg.Payload, &e)
		code := "ModelStreamError"
		if t := msg.Headers.Get(":exception-type"); t != nil {
			code = t.String()
		}
		b, _ := json.Marshal(map[string]string{"__type": code, "message": e.Message})
		out = append(append([]byte("event: error\ndata: "), b...), '\n', '\n')
	} else {
		out = msg.Payload
	}
	if _, err := w.out.Write(out); err != nil {
		return err
	}
	if f, ok := w.out.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (w *frameRelay) Flush() {}

func (w *frameRelay) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.errBody == nil {
		return
	}
	// The runtime's errors are AWS JSON ({"__type"...} or {"message"...}) with X-Amzn-ErrorType.
	var e struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	_ = json.Unmarshal(w.errBody.Bytes(), &e)
	if e.Type == "" {
		e.Type = w.h.Get("X-Amzn-ErrorType")
	}
	if e.Message == "" {
		e.Message = e.Message2
	}
	writeError(w.out, w.status, e.Type, e.Message)
}
