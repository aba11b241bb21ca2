package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// maxJSONBody bounds a SageMaker call the page sends (the front door's own limit is 1 MiB).
const maxJSONBody = 1 << 20

// apiError is an API's refusal, in its own code and words.
type apiError struct {
	Status        int
	Code, Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// signed builds a request for the front door, signed with the session's keys as an SDK would sign
// it, from the browser's request r (whose context, remote address and TLS state it keeps, so that
// cancellation and the aws:SourceIp / aws:SecureTransport conditions are the browser's).
func (c *Console) signed(r *http.Request, s *session, method, escapedPath, rawQuery string, body io.Reader, length int64,
	service, payloadHash string, header http.Header) (*http.Request, error) {
	decoded, err := url.PathUnescape(escapedPath)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", escapedPath, err)
	}
	u := &url.URL{Scheme: "http", Host: r.Host, Path: decoded, RawPath: escapedPath, RawQuery: rawQuery}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	req, err := http.NewRequestWithContext(r.Context(), method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", service, err)
	}
	req.URL = u
	req.Host = r.Host
	req.RequestURI = escapedPath
	if rawQuery != "" {
		req.RequestURI += "?" + rawQuery
	}
	req.RemoteAddr, req.TLS = r.RemoteAddr, r.TLS
	req.ContentLength = length
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", "lathe-console/1")
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: s.accessKeyID, SecretAccessKey: s.secretAccessKey, SessionToken: s.sessionToken}
	err = v4.NewSigner().SignHTTP(r.Context(), creds, req, payloadHash, service, c.cfg.Region, time.Now(),
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" })
	if err != nil {
		return nil, fmt.Errorf("sign %s request: %w", service, err)
	}
	return req, nil
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// buffered is a ResponseWriter that keeps the whole answer (for the JSON and Query calls, whose
// answers are small).
type buffered struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func newBuffered() *buffered                    { return &buffered{h: http.Header{}} }
func (b *buffered) Header() http.Header         { return b.h }
func (b *buffered) Write(p []byte) (int, error) { b.setStatus(http.StatusOK); return b.body.Write(p) }
func (b *buffered) WriteHeader(code int)        { b.setStatus(code) }
func (b *buffered) setStatus(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *buffered) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// roundTrip sends a signed request through the front door and keeps its answer.
func (c *Console) roundTrip(req *http.Request) *buffered {
	b := newBuffered()
	c.api.ServeHTTP(b, req)
	return b
}

// callSageMaker runs one SageMaker JSON operation as the session's principal.
func (c *Console) callSageMaker(r *http.Request, s *session, op string, body []byte) (*buffered, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amz-Target", "SageMaker."+op)
	req, err := c.signed(r, s, http.MethodPost, "/", "", bytes.NewReader(body), int64(len(body)), "sagemaker", hashHex(body), h)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(req), nil
}

// sageMaker relays POST /console/api/sagemaker/<Operation> (a JSON body) to the control plane and
// its answer, success or the API's own error, back to the page.
func (c *Console) sageMaker(w http.ResponseWriter, r *http.Request, s *session, op string) {
	if op == "" || strings.ContainsAny(op, "/.?") {
		writeError(w, http.StatusBadRequest, "ValidationException", "The operation name in the path is not valid.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "The request body is larger than the 1 MiB this API accepts.")
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	b, err := c.callSageMaker(r, s, op, body)
	if err != nil {
		c.internal(w, "sagemaker "+op, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if t := b.h.Get("X-Amzn-ErrorType"); t != "" {
		w.Header().Set("X-Amzn-ErrorType", t)
	}
	w.WriteHeader(b.code())
	_, _ = w.Write(b.body.Bytes())
}

func (c *Console) internal(w http.ResponseWriter, what string, err error) {
	c.log.Error("console call", "call", what, "err", err)
	writeError(w, http.StatusInternalServerError, "InternalFailure", "The console could not make the call; see the server's log.")
}

// identity is STS GetCallerIdentity's answer.
type identity struct {
	Arn     string `xml:"GetCallerIdentityResult>Arn"`
	UserID  string `xml:"GetCallerIdentityResult>UserId"`
	Account string `xml:"GetCallerIdentityResult>Account"`
}

// queryError is the Query protocol's error document.
type queryError struct {
	Code    string `xml:"Error>Code"`
	Message string `xml:"Error>Message"`
}

// identify asks STS who the session's keys belong to, through the front door: a wrong key or
// secret fails there exactly as it would for an SDK. A server without IAM (STS not served) has
// only its root key; a signed ListAutoMLJobs then checks the keys.
func (c *Console) identify(r *http.Request, s *session) (identity, error) {
	form := []byte("Action=GetCallerIdentity&Version=2011-06-15")
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req, err := c.signed(r, s, http.MethodPost, "/", "", bytes.NewReader(form), int64(len(form)), "sts", hashHex(form), h)
	if err != nil {
		return identity{}, err
	}
	b := c.roundTrip(req)
	if b.code() == http.StatusOK {
		var id identity
		if err := xml.Unmarshal(b.body.Bytes(), &id); err != nil || id.Arn == "" {
			return identity{}, fmt.Errorf("read GetCallerIdentity's answer %q: %v", b.body.String(), err)
		}
		return id, nil
	}
	var qe queryError
	if xml.Unmarshal(b.body.Bytes(), &qe) == nil && qe.Code != "" && qe.Code != "NotImplemented" && b.code() != http.StatusNotImplemented {
		return identity{}, &apiError{Status: b.code(), Code: qe.Code, Message: qe.Message}
	}
	// No STS here: the keys are right if a signed SageMaker call goes through.
	jb, err := c.callSageMaker(r, s, "ListAutoMLJobs", []byte(`{"MaxResults":1}`))
	if err != nil {
		return identity{}, err
	}
	if jb.code() != http.StatusOK {
		var je struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(jb.body.Bytes(), &je)
		return identity{}, &apiError{Status: jb.code(), Code: je.Type, Message: je.Message}
	}
	return identity{Arn: "arn:aws:iam::" + c.cfg.AccountID + ":root", UserID: c.cfg.AccountID, Account: c.cfg.AccountID}, nil
}

// s3Headers are the answer headers a browser needs from S3 (the rest are AWS's bookkeeping).
var s3Headers = []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified", "X-Amz-Version-Id"}

// s3 relays /console/api/s3/<bucket>/<key>?<query> to the S3 API, streaming both bodies. A GET
// with download=1 is answered as an attachment (the pages' download links). Errors come back as
// JSON (code and message from S3's XML), like every other console answer.
func (c *Console) s3(w http.ResponseWriter, r *http.Request, s *session) {
	escaped := strings.TrimPrefix(r.URL.EscapedPath(), apiPrefix+"s3")
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidURI", "The object path is not valid.")
		return
	}
	escaped = s3Escape(decoded)
	if escaped == "" {
		escaped = "/"
	}
	q := r.URL.Query()
	download := q.Get("download") == "1"
	q.Del("download")
	h := http.Header{}
	for _, k := range []string{"Content-Type", "Range"} {
		if v := r.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	var body io.Reader
	if r.ContentLength != 0 {
		body = r.Body
	}
	req, err := c.signed(r, s, r.Method, escaped, strings.ReplaceAll(q.Encode(), "+", "%20"), body, r.ContentLength, "s3", "UNSIGNED-PAYLOAD", h)
	if err != nil {
		c.internal(w, "s3", err)
		return
	}
	rw := &s3Relay{out: w, h: http.Header{}}
	if download {
		rw.disposition = mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(decoded)})
	}
	c.api.ServeHTTP(rw, req)
	rw.finish()
}

// s3Escape escapes a decoded S3 path the way the SDKs do: every byte but the unreserved ones and '/'.
func s3Escape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		ch := p[i]
		if ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || strings.IndexByte("-_.~/", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

// s3Relay passes a successful S3 answer through as it streams, and turns an error document into
// the console's JSON error.
type s3Relay struct {
	out         http.ResponseWriter
	h           http.Header
	status      int
	errBody     *bytes.Buffer // set when the answer is an error
	disposition string
}

func (w *s3Relay) Header() http.Header { return w.h }

func (w *s3Relay) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if code >= 400 {
		w.errBody = &bytes.Buffer{}
		return
	}
	if code < 200 { // 100 Continue: nothing to relay
		w.status = 0
		return
	}
	for _, k := range s3Headers {
		if v := w.h.Values(k); len(v) > 0 {
			w.out.Header()[k] = v
		}
	}
	if w.disposition != "" && code == http.StatusOK {
		w.out.Header().Set("Content-Disposition", w.disposition)
	}
	w.out.WriteHeader(code)
}

func (w *s3Relay) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.errBody != nil {
		return w.errBody.Write(p)
	}
	return w.out.Write(p)
}

func (w *s3Relay) Flush() {
	if f, ok := w.out.(http.Flusher); ok && w.errBody == nil && w.status != 0 {
		f.Flush()
	}
}

func (w *s3Relay) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.errBody == nil {
		return
	}
	var e struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(w.errBody.Bytes(), &e) != nil || e.Code == "" {
		e.Code, e.Message = http.StatusText(w.status), strings.TrimSpace(w.errBody.String())
	}
	writeError(w.out, w.status, e.Code, e.Message)
}

// permissionChecks are the actions whose controls the pages hide from a principal IAM would refuse
// (on any resource of the kind). They are hints for the pages only: every call is still decided
// by the front door.
var permissionChecks = []struct{ Action, Resource string }{
	{"sagemaker:CreateAutoMLJobV2", "arn:aws:sagemaker:%[1]s:%[2]s:automl-job/*"},
	{"sagemaker:StopAutoMLJob", "arn:aws:sagemaker:%[1]s:%[2]s:automl-job/*"},
	{"sagemaker:DeleteEndpoint", "arn:aws:sagemaker:%[1]s:%[2]s:endpoint/*"},
	{"sagemaker:InvokeEndpoint", "arn:aws:sagemaker:%[1]s:%[2]s:endpoint/*"},
	{"s3:CreateBucket", "arn:aws:s3:::*"},
	{"s3:PutObject", "arn:aws:s3:::*/*"},
	{"s3:DeleteObject", "arn:aws:s3:::*/*"},
}

// Authorizer is what the front door offers the console for permissionChecks (server's
// ConsoleAuthorized): whether IAM allows the key's principal an action on a resource.
type Authorizer interface {
	ConsoleAuthorized(r *http.Request, accessKeyID, sessionToken, action, resource string) (bool, error)
}

// permissions answers GET /console/api/permissions: {"sagemaker:CreateAutoMLJobV2": true, ...}.
func (c *Console) permissions(w http.ResponseWriter, r *http.Request, s *session) {
	out := map[string]bool{}
	az, ok := c.api.(Authorizer)
	for _, pc := range permissionChecks {
		allowed := true
		if ok && !s.root {
			var err error
			allowed, err = az.ConsoleAuthorized(r, s.accessKeyID, s.sessionToken, pc.Action, fmt.Sprintf(pc.Resource, c.cfg.Region, s.account))
			if err != nil {
				c.internal(w, "permissions", err)
				return
			}
		}
		out[pc.Action] = allowed
	}
	writeJSON(w, http.StatusOK, out)
}
