package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/iam/policy"
	"github.com/lathe-ml/lathe/internal/kms"
	"github.com/lathe-ml/lathe/internal/sigv4"
)

// kmsTargetPrefix is the X-Amz-Target prefix of KMS's JSON 1.1 protocol ("TrentService.Encrypt").
const kmsTargetPrefix = "TrentService."

// isKMS reports whether a JSON call is for KMS rather than SageMaker.
func isKMS(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), kmsTargetPrefix)
}

// serveKMS answers a KMS call: size check, signature (service "kms"), operation, authorization of
// each key the request touches (the caller's identity policies and the key's policy), handler.
func (s *server) serveKMS(w *recorder, r *http.Request) {
	body, aerr := readBounded(r, MaxSageMakerBody)
	if aerr != nil {
		writeJSONError(w, apiKMS, aerr.Status, aerr.Code, aerr.Message)
		return
	}
	res, err := sigv4.Verify(r, body, s.lookup, s.now())
	if err == nil {
		err = checkService(res, "kms")
	}
	if err != nil {
		s.writeJSONAuthError(w, r, apiKMS, err)
		return
	}
	w.accessKey = res.AccessKeyID
	r = withCaller(r, res)
	target := r.Header.Get("X-Amz-Target")
	name := strings.TrimPrefix(target, kmsTargetPrefix)
	w.op = name
	if s.cfg.KMS == nil {
		writeJSONError(w, apiKMS, http.StatusNotImplemented, "UnsupportedOperationException", "This server does not serve KMS.")
		return
	}
	op := s.cfg.KMS.Operations()[name]
	if op == nil {
		writeJSONError(w, apiKMS, http.StatusBadRequest, "UnknownOperationException",
			"Operation "+target+" is not supported by this server.")
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := checkJSONObject(body); err != nil {
		writeJSONError(w, apiKMS, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	ctx := r.Context()
	p, ok := s.kmsPrincipal(w, r, res)
	if !ok {
		return
	}
	if p != nil && p.Type != iam.TypeRoot {
		perms, c, err := s.cfg.KMS.Permissions(ctx, name, body)
		if err != nil {
			s.writeKMSError(w, r, name, err)
			return
		}
		for k, v := range requestContext(r, res) {
			c[k] = v
		}
		for _, perm := range perms {
			denied, err := s.authorizeKey(r, p, perm.Action, perm.Resource, c, perm.Policy)
			if err != nil {
				s.writeKMSError(w, r, name, err)
				return
			}
			if denied != "" {
				writeJSONError(w, apiKMS, http.StatusBadRequest, "AccessDeniedException", denied)
				return
			}
		}
	}
	out, err := s.call(ctx, name, op, body)
	if err != nil {
		s.writeKMSError(w, r, name, err)
		return
	}
	payload := []byte("{}")
	if out != nil {
		if payload, err = json.Marshal(out); err != nil {
			s.writeKMSError(w, r, name, err)
			return
		}
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

// kmsPrincipal resolves the caller (nil without IAM: every key is the root) and answers a token
// failure itself.
func (s *server) kmsPrincipal(w *recorder, r *http.Request, res *sigv4.Result) (*iam.Principal, bool) {
	if s.cfg.IAM == nil {
		return nil, true
	}
	p, status, code, msg := s.principal(r, res)
	if p == nil {
		switch code {
		case "ExpiredToken":
			writeJSONError(w, apiKMS, http.StatusBadRequest, "ExpiredTokenException", msg)
		case "InvalidClientTokenId":
			writeJSONError(w, apiKMS, http.StatusBadRequest, "UnrecognizedClientException", msg)
		default:
			writeJSONError(w, apiKMS, status, code, msg)
		}
		return nil, false
	}
	return p, true
}

func (s *server) writeKMSError(w *recorder, r *http.Request, op string, err error) {
	if e := awserr.As(err); e != nil {
		status := e.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		writeJSONError(w, apiKMS, status, e.Code, e.Message)
		return
	}
	s.log.Error("kms operation failed", "op", op, "request_id", RequestID(r.Context()), "err", err)
	writeJSONError(w, apiKMS, http.StatusInternalServerError, "KMSInternalException", internalMessage)
}

// withKMSCaller makes KMS keys used on the request's behalf (S3's SSE-KMS) be authorized as the
// caller's own KMS calls would be: kms:GenerateDataKey to write an encrypted object, kms:Decrypt to
// read one. The root (and a server without IAM) may use every key.
func (s *server) withKMSCaller(r *http.Request, res *sigv4.Result) *http.Request {
	if s.cfg.KMS == nil || s.cfg.IAM == nil {
		return r
	}
	p, _, _, _ := s.principal(r, res)
	if p == nil || p.Type == iam.TypeRoot {
		return r
	}
	c := requestContext(r, res)
	a := func(ctx context.Context, action, keyARN string, keyPolicy *policy.Policy) (string, error) {
		return s.authorizeKey(r.WithContext(ctx), p, action, keyARN, c, keyPolicy)
	}
	return r.WithContext(kms.WithAuthorizer(r.Context(), a))
}

// authorizeKey authorizes a kms action on a key as KMS does: the caller's identity policies and
// the key policy, where identity policies count only when the key policy delegates to IAM (gives
// the action to the account, as the default key policy does); otherwise the key policy itself must
// allow the caller.
func (s *server) authorizeKey(r *http.Request, p *iam.Principal, action, resource string, c policy.Context, keyPolicy *policy.Policy) (string, error) {
	denied, err := s.authorize(r, p, action, resource, c, keyPolicy)
	if err != nil || denied != "" || keyPolicy == nil || p == nil || p.Type == iam.TypeRoot {
		return denied, err
	}
	if kms.DelegatesToIAM(keyPolicy, p.Account, action, resource) {
		return "", nil
	}
	principals := []string{p.ARN}
	if p.RoleARN != "" {
		principals = append(principals, p.RoleARN)
	}
	if kms.PolicyAllows(keyPolicy, principals, p.Account, action, resource, c) {
		return "", nil
	}
	msg := fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no resource-based policy allows the %s action",
		p.ARN, action, resource, action)
	noteDecision(r.Context(), p, action, resource, iam.Decision{Message: msg})
	return msg, nil
}
