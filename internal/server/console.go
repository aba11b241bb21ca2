package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// ConsolePath is where the web console is served (Config.Console).
const ConsolePath = "/console/"

// isConsole reports whether a request is for the web console: a path under /console, or a
// browser's plain GET of / (which is redirected there). Neither may carry a SigV4 signature: a
// signed request is an SDK's, so GET / stays S3's ListBuckets and a bucket named "console" stays
// reachable through the S3 API with signed (or presigned) requests.
func isConsole(r *http.Request) bool {
	if hasSignature(r) {
		return false
	}
	p := r.URL.Path
	if p == "/console" || strings.HasPrefix(p, ConsolePath) {
		return true
	}
	return isBrowserRoot(r)
}

// isBrowserRoot reports whether a request is a browser opening the server's root: GET /, asking
// for HTML, unsigned. The caller has checked that it is unsigned.
func isBrowserRoot(r *http.Request) bool {
	return r.URL.Path == "/" && r.URL.RawQuery == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}

// hasSignature reports whether a request carries SigV4 credentials, in its headers or as a
// presigned URL.
func hasSignature(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Date") != "" {
		return true
	}
	q := r.URL.Query()
	return q.Has("X-Amz-Credential") || q.Has("X-Amz-Signature") || q.Has("AWSAccessKeyId")
}

// serveConsole hands a console request to Config.Console's handler; / is redirected to the
// console's start page. The console's own API calls come back through ServeHTTP signed, and are
// logged there with their operations.
func (s *server) serveConsole(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	if r.URL.Path == "/" || r.URL.Path == "/console" {
		http.Redirect(rec, r, ConsolePath, http.StatusFound)
	} else {
		s.console.ServeHTTP(rec, r)
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	s.log.Log(r.Context(), slog.LevelDebug, "console request", "method", r.Method, "path", r.URL.Path,
		"status", status, "bytes", rec.bytes, "duration", time.Since(start))
}

// ConsoleAuthorized reports whether IAM allows the principal of an access key (and session token)
// action on resource: the console asks, for a signed-in session, which controls to show. It is the
// same question authorize asks for a signed request; the API still decides every call.
func (s *server) ConsoleAuthorized(r *http.Request, accessKeyID, sessionToken, action, resource string) (bool, error) {
	if s.cfg.IAM == nil || accessKeyID == s.cfg.Credentials.AccessKeyID {
		return true, nil
	}
	p, err := s.cfg.IAM.Resolve(r.Context(), accessKeyID, sessionToken)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", accessKeyID, err)
	}
	denied, err := s.authorize(r, p, action, resource, requestContext(r, nil), nil)
	return denied == "", err
}
