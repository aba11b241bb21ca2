// Package server is Lathe's HTTP front door: one port carrying the SageMaker control plane (AWS
// JSON 1.1, routed by X-Amz-Target), the SageMaker Runtime (/endpoints/{name}/invocations), an
// OpenAI-compatible API under /v1/ and, for everything else, the path-style S3 API.
//
// It checks SigV4 signatures for the AWS APIs (the OpenAI handler authenticates itself), decodes
// aws-chunked S3 uploads, bounds request bodies, and turns errors into each protocol's wire form in
// one place. It knows protocols, not training: the operations and the S3 and runtime handlers come
// from Config.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/audit"
	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/kms"
	"github.com/lathe-ml/lathe/internal/sigv4"
)

// Body limits.
const (
	// MaxSageMakerBody bounds a control-plane request; SageMaker's largest requests are a few KiB.
	MaxSageMakerBody = 1 << 20
	// MaxRuntimeBody is InvokeEndpoint's documented payload limit.
	MaxRuntimeBody = 6291456
)

// Operation handles one SageMaker control-plane operation. It decodes body (a JSON object) itself
// and returns a JSON-marshalable output (nil for `{}`) or an error; an *awserr.Error is sent to the
// client as is, any other error becomes a 500 InternalFailure with a generic message.
type Operation = func(ctx context.Context, body []byte) (any, error)

// Config wires the front door.
type Config struct {
	Region    string // e.g. us-east-1; not enforced on signatures (any region a client signs for is accepted)
	AccountID string // 12 digits, for messages such as the runtime's "Endpoint X of account Y not found."

	// Credentials is the root key pair every request may be signed with.
	Credentials Credentials
	// LookupSecret, when set, is asked for access keys other than the root one; nil with IAM set
	// means IAM's users and sessions.
	LookupSecret sigv4.SecretLookup
	// IAM, when set, serves IAM and STS (Query protocol) on the port and authorizes every request
	// signed by a key other than the root one. Nil: every key is the root.
	IAM *iam.Service
	// ResourceTags, when set, returns the tags of a SageMaker resource by ARN, for aws:ResourceTag
	// conditions.
	ResourceTags func(ctx context.Context, arn string) (map[string]string, error)

	// Audit, when set, receives one line per request (audit.go).
	Audit *audit.Log

	// KMS, when set, serves KMS (JSON 1.1, X-Amz-Target TrentService.*) on the port; S3's SSE-KMS
	// uses the same keys (see kms.go).
	KMS *kms.Service

	// SageMaker maps operation names ("CreateAutoMLJobV2") to their handlers.
	SageMaker map[string]Operation
	// Runtime serves /endpoints/{name}/invocations[-response-stream]; the body it sees is already
	// read (at most MaxRuntimeBody) and signature-checked. Nil answers 404.
	Runtime http.Handler
	// OpenAI serves /v1/...; it authenticates requests itself (bearer keys). Nil answers 404.
	OpenAI http.Handler
	// Console, when set, builds the web console's handler around the front door it is given (so the
	// console's API calls are routed, signed and authorized as any client's); see console.go.
	Console func(api http.Handler) http.Handler
	// S3 serves every other path (path-style S3) after the signature check, with aws-chunked bodies
	// decoded and hex payload hashes checked as the body streams. Nil answers 501.
	S3 http.Handler

	// Metrics, when set, serves GET /metrics (Prometheus' text format) without a signature; the
	// path is never the S3 bucket "metrics", which cannot be created (see reservedBucket).
	Metrics http.Handler
	// Observe, when set, is told about every answered request (for the metrics).
	Observe func(RequestInfo)

	// Ready reports whether the server is ready; GET /_lathe/health answers 503 until it is. Nil
	// means always ready.
	Ready func() bool
	// Logger receives access logs and internal errors; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock signatures are checked against; nil means time.Now.
	Now func() time.Time
}

type server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	lookup sigv4.SecretLookup

	console http.Handler // nil without Config.Console
}

// New returns the front door's handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.Credentials.AccessKeyID == "" || cfg.Credentials.SecretAccessKey == "" {
		if cfg.LookupSecret == nil {
			return nil, errors.New("server: Config.Credentials has no access key id or secret")
		}
	}
	for name, op := range cfg.SageMaker {
		if op == nil {
			return nil, fmt.Errorf("server: SageMaker operation %q has a nil handler", name)
		}
	}
	s := &server{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.LookupSecret == nil && cfg.IAM != nil {
		cfg.LookupSecret = cfg.IAM.LookupSecret
	}
	root := cfg.Credentials
	s.lookup = func(akid string) (string, bool) {
		if root.AccessKeyID != "" && akid == root.AccessKeyID {
			return root.SecretAccessKey, true
		}
		if cfg.LookupSecret != nil {
			return cfg.LookupSecret(akid)
		}
		return "", false
	}
	if cfg.Console != nil {
		s.console = cfg.Console(s)
	}
	return s, nil
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	callerKey
)

// RequestID returns the id of the request being served (also sent as x-amzn-RequestId).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Caller returns the verified signature of the request being served, or nil (health, /v1/).
func Caller(ctx context.Context) *sigv4.Result {
	res, _ := ctx.Value(callerKey).(*sigv4.Result)
	return res
}

// withCaller records a verified signature on the request, and on its connection, which then no
// longer counts against Limits.MaxUnauthenticatedPerIP.
func withCaller(r *http.Request, res *sigv4.Result) *http.Request {
	if c := connFrom(r.Context()); c != nil {
		c.authenticate()
	}
	markAuthenticated(r.Context())
	return r.WithContext(context.WithValue(r.Context(), callerKey, res))
}

// newRequestID returns a random id in the UUID layout AWS uses for x-amzn-RequestId.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// api names the protocol a request was routed to (for logs and for answering a panic).
type api int

const (
	apiS3 api = iota
	apiSageMaker
	apiRuntime
	apiOpenAI
	apiLathe
	apiIAM
	apiMetrics
	apiKMS
)

var apiNames = [...]string{"s3", "sagemaker", "runtime", "openai", "lathe", "iam", "metrics", "kms"}

// runtimePath matches the SageMaker Runtime's two invocation paths.
var runtimePath = regexp.MustCompile(`^/endpoints/([^/]+)/(invocations|invocations-response-stream)$`)

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.console != nil && isConsole(r) {
		s.serveConsole(w, r)
		return
	}
	start := time.Now()
	id := newRequestID()
	w.Header().Set("x-amzn-RequestId", id)
	rec := &recorder{ResponseWriter: w}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
	if c := connFrom(r.Context()); c != nil {
		rec.conn = c
		if r.ContentLength != 0 {
			rec.body = watchBody(w, r, c.srv.limits.BodyReadTimeout)
			r.Body = rec.body
		}
	}
	which := route(r)
	if which == apiS3 {
		w.Header().Set("x-amz-request-id", id)
	}
	r = s.startAudit(r, which)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "request_id", id, "api", apiNames[which], "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				s.writeInternal(rec, r, which)
			}
		}
		s.logAccess(r, rec, which, start)
		s.observe(r, rec, which, start)
		s.writeAudit(r, rec, which)
	}()
	switch which {
	case apiLathe:
		s.serveLathe(rec, r)
	case apiMetrics:
		s.serveMetrics(rec, r)
	case apiOpenAI:
		s.serveOpenAI(rec, r)
		// The OpenAI handler checks its bearer key itself: any answer but 401/403 means it passed.
		if rec.conn != nil && rec.wrote && rec.status != http.StatusUnauthorized && rec.status != http.StatusForbidden {
			rec.conn.authenticate()
		}
	case apiSageMaker:
		s.serveSageMaker(rec, r)
	case apiRuntime:
		s.serveRuntime(rec, r)
	case apiIAM:
		s.serveIAM(rec, r)
	case apiKMS:
		s.serveKMS(rec, r)
	default:
		s.serveS3(rec, r)
	}
}

// route picks the API a request is for. Bucket names cannot contain '_' and have at least three
// characters, so /_lathe/ and /v1/ never shadow a bucket. A bucket may be called "endpoints", so a
// runtime-looking path signed for the s3 service stays with S3.
func route(r *http.Request) api {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/_lathe/"):
		return apiLathe
	case p == metricsPath && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		return apiMetrics
	case p == "/v1" || strings.HasPrefix(p, "/v1/"):
		return apiOpenAI
	case isQueryProtocol(r):
		return apiIAM
	case p == "/" && r.Method == http.MethodPost && isKMS(r):
		return apiKMS
	case p == "/" && r.Method == http.MethodPost && (r.Header.Get("X-Amz-Target") != "" ||
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json")):
		return apiSageMaker
	case r.Method == http.MethodPost && runtimePath.MatchString(p) && signingService(r) != "s3":
		return apiRuntime
	}
	return apiS3
}

// signingService returns the service of a request's credential scope, or "" when it has none.
func signingService(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, after, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return ""
		}
		cred, _, _ = strings.Cut(after, ",")
	}
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}

func (s *server) writeInternal(w http.ResponseWriter, r *http.Request, which api) {
	switch which {
	case apiS3:
		s.writeS3Error(w, r, s3Error{Status: http.StatusInternalServerError, Code: "InternalError",
			Message: "We encountered an internal error. Please try again."})
	default:
		writeJSONError(w, which, http.StatusInternalServerError, "InternalFailure", internalMessage)
	}
}

const internalMessage = "We encountered an internal error. Please try again."

func (s *server) logAccess(r *http.Request, rec *recorder, which api, start time.Time) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []any{
		"method", r.Method, "path", r.URL.Path, "api", apiNames[which], "status", status,
		"duration", time.Since(start), "bytes", rec.bytes, "request_id", RequestID(r.Context()),
	}
	if rec.op != "" {
		attrs = append(attrs, "op", rec.op)
	}
	if rec.accessKey != "" {
		attrs = append(attrs, "access_key", rec.accessKey)
	}
	level := slog.LevelInfo
	if (which == apiLathe || which == apiMetrics) && status < 400 {
		level = slog.LevelDebug // health probes and scrapes every few seconds would drown the log
	}
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request", attrs...)
}

// recorder remembers the status and size of a response, and the operation, for the access log.
type recorder struct {
	http.ResponseWriter
	status    int
	bytes     int64
	wrote     bool
	op        string
	accessKey string

	conn *trackedConn // nil unless served by an HTTPServer
	body *watchedBody // nil when the request has no body
}

// beforeHeader runs once, just before the status line goes out. A connection on which nothing
// has authenticated is closed after an answer sent before its body was read (a refused
// signature): otherwise the server would keep reading, to reuse the connection, a body its
// sender need never finish.
func (w *recorder) beforeHeader() {
	if w.conn != nil && w.body != nil && !w.conn.authenticated() && !w.body.complete() {
		w.Header().Set("Connection", "close")
	}
}

func (w *recorder) WriteHeader(code int) {
	if !w.wrote {
		w.beforeHeader()
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.beforeHeader()
		w.status, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers (invocations-response-stream) push frames through the recorder.
func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wrote {
			w.beforeHeader()
			w.status, w.wrote = http.StatusOK, true
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
