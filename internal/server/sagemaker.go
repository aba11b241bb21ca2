package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/iam/policy"
	"github.com/lathe-ml/lathe/internal/sigv4"
)

const (
	jsonContentType = "application/x-amz-json-1.1"
	targetPrefix    = "SageMaker."
	signingName     = "sagemaker" // the control plane and the runtime both sign as "sagemaker"
)

// serveSageMaker answers an AWS JSON 1.1 call: size check, signature, operation, JSON check, handler.
func (s *server) serveSageMaker(w *recorder, r *http.Request) {
	body, aerr := readBounded(r, MaxSageMakerBody)
	if aerr != nil {
		writeJSONError(w, apiSageMaker, aerr.Status, aerr.Code, aerr.Message)
		return
	}
	res, err := sigv4.Verify(r, body, s.lookup, s.now())
	if err == nil {
		err = checkService(res, signingName)
	}
	if err != nil {
		s.writeJSONAuthError(w, r, apiSageMaker, err)
		return
	}
	w.accessKey = res.AccessKeyID
	r = withCaller(r, res)

	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, targetPrefix)
	op := s.cfg.SageMaker[name]
	if !ok || op == nil {
		w.op = target
		writeJSONError(w, apiSageMaker, http.StatusBadRequest, "UnknownOperationException",
			fmt.Sprintf("Operation %q is not supported by this server.", target))
		return
	}
	w.op = name
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := checkJSONObject(body); err != nil {
		writeJSONError(w, apiSageMaker, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	if !s.allowJSON(w, r, apiSageMaker, res, "sagemaker:"+name, func() (string, policy.Context) { return s.sageMakerResource(name, body) }) {
		return
	}
	r = s.withPrincipal(r, res)
	out, err := s.call(r.Context(), name, op, body)
	if err != nil {
		if e := awserr.As(err); e != nil {
			status := e.Status
			if status == 0 {
				status = http.StatusBadRequest
			}
			writeJSONError(w, apiSageMaker, status, e.Code, e.Message)
			return
		}
		s.log.Error("operation failed", "op", name, "request_id", RequestID(r.Context()), "err", err)
		writeJSONError(w, apiSageMaker, http.StatusInternalServerError, "InternalFailure", internalMessage)
		return
	}
	payload := []byte("{}")
	if out != nil {
		if payload, err = json.Marshal(out); err != nil {
			s.log.Error("encode operation output", "op", name, "request_id", RequestID(r.Context()), "err", err)
			writeJSONError(w, apiSageMaker, http.StatusInternalServerError, "InternalFailure", internalMessage)
			return
		}
		if bytes.Equal(payload, []byte("null")) { // a typed nil pointer
			payload = []byte("{}")
		}
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

// call runs an operation, turning a panic into an error so one bad request cannot stop the server.
func (s *server) call(ctx context.Context, name string, op Operation, body []byte) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("operation panicked", "op", name, "request_id", RequestID(ctx), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out, err = nil, fmt.Errorf("operation %s panicked: %v", name, p)
		}
	}()
	return op(ctx, body)
}

// checkJSONObject reports why body is not a single JSON object.
func checkJSONObject(body []byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("the request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("the request body has data after its JSON object")
	}
	return nil
}

// readBounded reads the whole body, refusing one longer than limit without reading it all.
func readBounded(r *http.Request, limit int64) ([]byte, *awserr.Error) {
	tooLarge := awserr.New(http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
		"The request body is larger than the %d bytes this API accepts.", limit)
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, awserr.New(http.StatusBadRequest, "SerializationException", "Could not read the request body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	return body, nil
}

func checkService(res *sigv4.Result, want string) error {
	if res.Service != want {
		return &sigv4.Error{Kind: sigv4.KindMalformed,
			Detail: fmt.Sprintf("Credential should be scoped to correct service: '%s'.", want)}
	}
	return nil
}

// writeJSONError writes an AWS JSON error: {"__type":code,"message":msg} with X-Amzn-ErrorType,
// which every SDK reads the code from (the Go SDK turns ResourceNotFound and friends into types).
func writeJSONError(w http.ResponseWriter, which api, status int, code, message string) {
	ct := jsonContentType
	if which != apiSageMaker && which != apiKMS {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, message})
	_, _ = w.Write(b)
}

// writeJSONAuthError answers a failed signature check the way AWS's JSON services do.
func (s *server) writeJSONAuthError(w *recorder, r *http.Request, which api, err error) {
	var e *sigv4.Error
	if !errors.As(err, &e) {
		s.log.Error("signature check failed", "request_id", RequestID(r.Context()), "err", err)
		writeJSONError(w, which, http.StatusInternalServerError, "InternalFailure", internalMessage)
		return
	}
	w.accessKey = e.AccessKeyID
	s.log.Info("authentication failed", "request_id", RequestID(r.Context()), "reason", e.Error())
	switch e.Kind {
	case sigv4.KindMissing:
		writeJSONError(w, which, http.StatusForbidden, "MissingAuthenticationToken", "Missing Authentication Token")
	case sigv4.KindUnknownAccessKey:
		writeJSONError(w, which, http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid.")
	case sigv4.KindSignatureMismatch:
		writeJSONError(w, which, http.StatusForbidden, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n"+
				"The Canonical String for this request should have been\n'"+e.CanonicalRequest+"'\n\n"+
				"The String-to-Sign should have been\n'"+e.StringToSign+"'\n")
	case sigv4.KindSkewed, sigv4.KindExpired:
		writeJSONError(w, which, http.StatusForbidden, "InvalidSignatureException", skewMessage(e))
	case sigv4.KindPayloadHashMismatch, sigv4.KindInvalidPayloadHash:
		writeJSONError(w, which, http.StatusForbidden, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided: "+e.Detail)
	default: // malformed
		writeJSONError(w, which, http.StatusBadRequest, "IncompleteSignatureException", e.Detail)
	}
}

// skewMessage words a time failure as AWS does:
// "Signature expired: 20130524T000000Z is now earlier than 20130524T001500Z (20130524T003000Z - 15 min.)"
func skewMessage(e *sigv4.Error) string {
	const f = "20060102T150405Z"
	req, now := e.RequestTime.UTC(), e.ServerTime.UTC()
	if e.Kind == sigv4.KindExpired {
		return fmt.Sprintf("Signature expired: the presigned request expired at %s; it is now %s.", e.Expires.UTC().Format(f), now.Format(f))
	}
	if req.Before(now) {
		return fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.)",
			req.Format(f), now.Add(-sigv4.MaxSkew).Format(f), now.Format(f), int(sigv4.MaxSkew/time.Minute))
	}
	return fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %d min.)",
		req.Format(f), now.Add(sigv4.MaxSkew).Format(f), now.Format(f), int(sigv4.MaxSkew/time.Minute))
}
