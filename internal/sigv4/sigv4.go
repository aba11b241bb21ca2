// Package sigv4 verifies AWS Signature Version 4 on the server side: the Authorization header form
// used by every SDK call and the presigned-URL query form used by S3 links, plus the aws-chunked
// body framing that S3 uploads may use (see chunked.go).
//
// The canonical request is rebuilt from what arrived on the wire rather than re-signed with an SDK,
// because the server has to reproduce exactly what each client signed: botocore never signs
// content-length, S3 signs the path as sent while every other service escapes it twice, and S3
// clients may declare the payload UNSIGNED-PAYLOAD or STREAMING-*.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted (SigV4A's ECDSA variant is not).
const Algorithm = "AWS4-HMAC-SHA256"

// Values of X-Amz-Content-Sha256 that are not a hex digest.
const (
	UnsignedPayload                 = "UNSIGNED-PAYLOAD"
	StreamingSignedPayload          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingSignedPayloadTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// MaxSkew is how far the request time may be from the server's clock, as on AWS.
const MaxSkew = 15 * time.Minute

const (
	emptySHA256                      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	amzDateFormat                    = "20060102T150405Z"
	maxPresignedExpiry               = 7 * 24 * time.Hour
	headerContentSHA256              = "X-Amz-Content-Sha256"
	headerAmzDate                    = "X-Amz-Date"
	headerAuthorization              = "Authorization"
	queryAlgorithm                   = "X-Amz-Algorithm"
	querySignature                   = "X-Amz-Signature"
	streamingPrefix                  = "STREAMING-"
	streamingUnsupportedSigV4APrefix = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
)

// SecretLookup returns the secret access key of an access key id, or ok=false when the key is unknown.
type SecretLookup func(accessKeyID string) (secret string, ok bool)

// Kind says which way a request failed authentication, so each API can answer in its own wire form.
type Kind int

// The ways authentication fails.
const (
	KindMissing             Kind = iota + 1 // no Authorization header and no X-Amz-Algorithm query
	KindMalformed                           // an Authorization header or presigned query that does not parse
	KindUnknownAccessKey                    // the access key id is not known
	KindSignatureMismatch                   // the signature does not match the request
	KindSkewed                              // request time more than MaxSkew from the server clock
	KindExpired                             // a presigned URL used after X-Amz-Date + X-Amz-Expires
	KindPayloadHashMismatch                 // X-Amz-Content-Sha256 is a hex digest the body does not have
	KindInvalidPayloadHash                  // X-Amz-Content-Sha256 is neither a digest nor a known keyword
)

var kindNames = map[Kind]string{
	KindMissing:             "missing authentication",
	KindMalformed:           "malformed authorization",
	KindUnknownAccessKey:    "unknown access key",
	KindSignatureMismatch:   "signature mismatch",
	KindSkewed:              "request time too skewed",
	KindExpired:             "presigned URL expired",
	KindPayloadHashMismatch: "payload hash mismatch",
	KindInvalidPayloadHash:  "invalid x-amz-content-sha256",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is an authentication failure. The front door turns Kind into the protocol's error code; the
// other fields let it write messages like AWS's.
type Error struct {
	Kind   Kind
	Detail string // what exactly is wrong, for the client and the log

	AccessKeyID string // KindUnknownAccessKey, KindSignatureMismatch

	// KindSignatureMismatch: what the server computed, as AWS reports it to help debug a client.
	CanonicalRequest string
	StringToSign     string
	SignatureGiven   string

	// KindSkewed and KindExpired.
	RequestTime time.Time
	ServerTime  time.Time
	Expires     time.Time // KindExpired: when the presigned URL stopped working
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "sigv4: " + e.Kind.String()
	}
	return "sigv4: " + e.Kind.String() + ": " + e.Detail
}

// Is makes errors.Is(err, sigv4.ErrSkewed) and friends match on Kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Detail == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrMissing             = &Error{Kind: KindMissing}
	ErrMalformed           = &Error{Kind: KindMalformed}
	ErrUnknownAccessKey    = &Error{Kind: KindUnknownAccessKey}
	ErrSignatureMismatch   = &Error{Kind: KindSignatureMismatch}
	ErrSkewed              = &Error{Kind: KindSkewed}
	ErrExpired             = &Error{Kind: KindExpired}
	ErrPayloadHashMismatch = &Error{Kind: KindPayloadHashMismatch}
	ErrInvalidPayloadHash  = &Error{Kind: KindInvalidPayloadHash}
)

func malformed(format string, args ...any) *Error {
	return &Error{Kind: KindMalformed, Detail: fmt.Sprintf(format, args...)}
}

// Result describes a request whose signature checked out.
type Result struct {
	AccessKeyID string
	Date        string // yyyymmdd of the credential scope
	Region      string
	Service     string
	Time        time.Time // X-Amz-Date
	Signature   string    // the request's signature; the seed of aws-chunked chunk signatures
	// PayloadHash is what the canonical request carried: a hex SHA-256 (which the caller must
	// check against the body when it streamed it, see NewPayloadHashReader), UNSIGNED-PAYLOAD or
	// one of the STREAMING-* values (decode the body with NewChunkedReader).
	PayloadHash string
	Presigned   bool

	signingKey []byte
}

// Scope is the credential scope, date/region/service/aws4_request.
func (r *Result) Scope() string {
	return r.Date + "/" + r.Region + "/" + r.Service + "/aws4_request"
}

// Streaming reports whether the body is aws-chunked framing that NewChunkedReader must decode.
func (r *Result) Streaming() bool { return strings.HasPrefix(r.PayloadHash, streamingPrefix) }

// HexPayloadHash reports whether PayloadHash is a hex SHA-256 digest that the body must match.
func (r *Result) HexPayloadHash() bool { return isHexSHA256(r.PayloadHash) }

// Authorization is a parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
type Authorization struct {
	AccessKeyID   string
	Date          string // yyyymmdd
	Region        string
	Service       string
	SignedHeaders []string // lower case, in the order given
	Signature     string   // 64 lower-case hex digits
}

// ParseAuthorization parses the value of a SigV4 Authorization header.
func ParseAuthorization(value string) (Authorization, error) {
	var a Authorization
	rest, ok := strings.CutPrefix(value, Algorithm)
	if !ok {
		alg, _, _ := strings.Cut(value, " ")
		return a, malformed("unsupported authorization type %q, expected %s", truncate(alg, 40), Algorithm)
	}
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return a, malformed("expected a space after %s", Algorithm)
	}
	var credential, signedHeaders, signature string
	var haveCredential, haveSignedHeaders, haveSignature bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, malformed("authorization header component %q is not key=value", truncate(part, 40))
		}
		switch key {
		case "Credential":
			credential, haveCredential = val, true
		case "SignedHeaders":
			signedHeaders, haveSignedHeaders = val, true
		case "Signature":
			signature, haveSignature = val, true
		default:
			return a, malformed("unknown authorization header component %q", truncate(key, 40))
		}
	}
	var missing []string
	if !haveCredential {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !haveSignedHeaders {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if !haveSignature {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if len(missing) > 0 {
		return a, malformed("%s", strings.Join(missing, " "))
	}
	var err error
	if a.AccessKeyID, a.Date, a.Region, a.Service, err = parseCredential(credential); err != nil {
		return a, err
	}
	if a.SignedHeaders, err = parseSignedHeaders(signedHeaders); err != nil {
		return a, err
	}
	if !isHexSHA256(signature) {
		return a, malformed("signature must be 64 lower-case hex digits")
	}
	a.Signature = signature
	return a, nil
}

// parseCredential splits AKID/yyyymmdd/region/service/aws4_request.
func parseCredential(c string) (akid, date, region, service string, err error) {
	parts := strings.Split(c, "/")
	if len(parts) != 5 {
		return "", "", "", "", malformed("credential %q must have the form <access key>/<yyyymmdd>/<region>/<service>/aws4_request", truncate(c, 80))
	}
	akid, date, region, service = parts[0], parts[1], parts[2], parts[3]
	if akid == "" || region == "" || service == "" {
		return "", "", "", "", malformed("credential %q has an empty component", truncate(c, 80))
	}
	if _, perr := time.Parse("20060102", date); perr != nil || len(date) != 8 {
		return "", "", "", "", malformed("credential date %q is not yyyymmdd", truncate(date, 20))
	}
	if parts[4] != "aws4_request" {
		return "", "", "", "", malformed("credential should be scoped with a valid terminator: 'aws4_request', not %q", truncate(parts[4], 40))
	}
	return akid, date, region, service, nil
}

func parseSignedHeaders(s string) ([]string, error) {
	if s == "" {
		return nil, malformed("SignedHeaders is empty")
	}
	names := strings.Split(s, ";")
	hasHost := false
	for _, n := range names {
		if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") {
			return nil, malformed("SignedHeaders %q must be lower-case header names separated by ';'", truncate(s, 80))
		}
		if n == "host" {
			hasHost = true
		}
	}
	if !hasHost {
		return nil, malformed("SignedHeaders must include host")
	}
	return names, nil
}

// Presigned reports whether r carries a presigned-URL signature in its query.
func Presigned(r *http.Request) bool {
	return r.URL.Query().Has(queryAlgorithm)
}

// Signed reports whether r carries any signature at all (header or query form).
func Signed(r *http.Request) bool {
	return r.Header.Get(headerAuthorization) != "" || Presigned(r) || PresignedV2(r)
}

// Verify checks the signature of a request whose whole body the caller holds. The payload hash is
// X-Amz-Content-Sha256 when present (a hex value must equal sha256(body)), else sha256(body).
func Verify(r *http.Request, body []byte, lookup SecretLookup, now time.Time) (*Result, error) {
	sum := sha256.Sum256(body)
	return verify(r, hex.EncodeToString(sum[:]), lookup, now)
}

// VerifyStreaming checks the signature of a request without reading its body: the payload hash is
// taken from X-Amz-Content-Sha256 (UNSIGNED-PAYLOAD for a presigned URL that has none, the empty
// body's hash for a header-signed request that has none). When Result.HexPayloadHash is true the
// caller must check the body while streaming it (NewPayloadHashReader); when Result.Streaming is
// true it must decode it (NewChunkedReader).
func VerifyStreaming(r *http.Request, lookup SecretLookup, now time.Time) (*Result, error) {
	return verify(r, "", lookup, now)
}

// verify does the work; bodyHash is the body's hex SHA-256, or "" when the body is streamed.
func verify(r *http.Request, bodyHash string, lookup SecretLookup, now time.Time) (*Result, error) {
	if r.Header.Get(headerAuthorization) != "" {
		return verifyHeader(r, bodyHash, lookup, now)
	}
	if Presigned(r) {
		return verifyPresigned(r, lookup, now)
	}
	if PresignedV2(r) {
		return verifyPresignedV2(r, lookup, now)
	}
	return nil, &Error{Kind: KindMissing, Detail: "request has no Authorization header and no X-Amz-Signature"}
}

func verifyHeader(r *http.Request, bodyHash string, lookup SecretLookup, now time.Time) (*Result, error) {
	values := r.Header.Values(headerAuthorization)
	if len(values) != 1 {
		return nil, malformed("request has %d Authorization headers", len(values))
	}
	auth, err := ParseAuthorization(values[0])
	if err != nil {
		return nil, err
	}
	amzDate := r.Header.Get(headerAmzDate)
	if amzDate == "" {
		return nil, malformed("Authorization header requires existence of a 'X-Amz-Date' header")
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return nil, malformed("X-Amz-Date %q is not in the form yyyymmddThhmmssZ", truncate(amzDate, 40))
	}
	if auth.Date != amzDate[:8] {
		return nil, malformed("date in Credential scope %q does not match %q from X-Amz-Date", auth.Date, amzDate[:8])
	}
	payloadHash, err := headerPayloadHash(r, bodyHash)
	if err != nil {
		return nil, err
	}
	secret, ok := lookup(auth.AccessKeyID)
	if !ok {
		return nil, &Error{Kind: KindUnknownAccessKey, AccessKeyID: auth.AccessKeyID, Detail: "access key " + truncate(auth.AccessKeyID, 40) + " is not known"}
	}
	if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return nil, &Error{Kind: KindSkewed, RequestTime: t, ServerTime: now,
			Detail: fmt.Sprintf("request time %s is %s away from server time %s", amzDate, d.Round(time.Second), now.UTC().Format(amzDateFormat))}
	}
	res := &Result{
		AccessKeyID: auth.AccessKeyID, Date: auth.Date, Region: auth.Region, Service: auth.Service,
		Time: t, Signature: auth.Signature, PayloadHash: payloadHash,
		signingKey: cachedSigningKey(secret, auth.Date, auth.Region, auth.Service),
	}
	query := canonicalQuery(r.URL.RawQuery, false)
	if err := checkSignature(r, res, amzDate, query, auth.SignedHeaders); err != nil {
		return nil, err
	}
	return res, nil
}

// headerPayloadHash decides the payload hash of a header-signed request.
func headerPayloadHash(r *http.Request, bodyHash string) (string, error) {
	declared := r.Header.Get(headerContentSHA256)
	switch {
	case declared == "":
		if bodyHash != "" {
			return bodyHash, nil
		}
		return emptySHA256, nil
	case declared == UnsignedPayload:
		return declared, nil
	case strings.HasPrefix(declared, streamingUnsupportedSigV4APrefix):
		return "", &Error{Kind: KindInvalidPayloadHash, Detail: "SigV4A (ECDSA) streaming signatures are not supported; sign with " + Algorithm}
	case declared == StreamingSignedPayload, declared == StreamingSignedPayloadTrailer, declared == StreamingUnsignedPayloadTrailer:
		return declared, nil
	case isHexSHA256(declared):
		if bodyHash != "" && declared != bodyHash {
			return "", &Error{Kind: KindPayloadHashMismatch, Detail: "x-amz-content-sha256 " + declared + " does not match the body's " + bodyHash}
		}
		return declared, nil
	default:
		return "", &Error{Kind: KindInvalidPayloadHash, Detail: fmt.Sprintf("x-amz-content-sha256 %q must be UNSIGNED-PAYLOAD, STREAMING-*, or a lower-case hex SHA-256", truncate(declared, 80))}
	}
}

func verifyPresigned(r *http.Request, lookup SecretLookup, now time.Time) (*Result, error) {
	q := r.URL.Query()
	get := func(name string) (string, error) {
		v := q[name]
		if len(v) != 1 || v[0] == "" {
			return "", malformed("query-string authentication requires exactly one %s parameter", name)
		}
		return v[0], nil
	}
	alg, err := get(queryAlgorithm)
	if err != nil {
		return nil, err
	}
	if alg != Algorithm {
		return nil, malformed("X-Amz-Algorithm only supports %q", Algorithm)
	}
	credential, err := get("X-Amz-Credential")
	if err != nil {
		return nil, err
	}
	akid, date, region, service, err := parseCredential(credential)
	if err != nil {
		return nil, err
	}
	amzDate, err := get("X-Amz-Date")
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return nil, malformed("X-Amz-Date %q is not in the form yyyymmddThhmmssZ", truncate(amzDate, 40))
	}
	if date != amzDate[:8] {
		return nil, malformed("date in Credential scope %q does not match %q from X-Amz-Date", date, amzDate[:8])
	}
	expiresStr, err := get("X-Amz-Expires")
	if err != nil {
		return nil, err
	}
	expiresSec, err := strconv.ParseInt(expiresStr, 10, 64)
	if err != nil || expiresSec < 1 {
		return nil, malformed("X-Amz-Expires %q must be a positive number of seconds", truncate(expiresStr, 20))
	}
	if time.Duration(expiresSec)*time.Second > maxPresignedExpiry {
		return nil, malformed("X-Amz-Expires must be less than a week (in seconds) that is; 604800")
	}
	signedHeadersStr, err := get("X-Amz-SignedHeaders")
	if err != nil {
		return nil, err
	}
	signedHeaders, err := parseSignedHeaders(signedHeadersStr)
	if err != nil {
		return nil, err
	}
	signature, err := get(querySignature)
	if err != nil {
		return nil, err
	}
	if !isHexSHA256(signature) {
		return nil, malformed("X-Amz-Signature must be 64 lower-case hex digits")
	}
	payloadHash := UnsignedPayload
	if v := q.Get(headerContentSHA256); v != "" {
		payloadHash = v
	} else if v := r.Header.Get(headerContentSHA256); v != "" && contains(signedHeaders, "x-amz-content-sha256") {
		payloadHash = v
	}
	if payloadHash != UnsignedPayload && !isHexSHA256(payloadHash) {
		return nil, &Error{Kind: KindInvalidPayloadHash, Detail: "a presigned URL needs UNSIGNED-PAYLOAD or a hex SHA-256 as its payload hash"}
	}
	secret, ok := lookup(akid)
	if !ok {
		return nil, &Error{Kind: KindUnknownAccessKey, AccessKeyID: akid, Detail: "access key " + truncate(akid, 40) + " is not known"}
	}
	if t.Sub(now) > MaxSkew {
		return nil, &Error{Kind: KindSkewed, RequestTime: t, ServerTime: now, Detail: "presigned URL is not valid yet: X-Amz-Date " + amzDate + " is in the future"}
	}
	expires := t.Add(time.Duration(expiresSec) * time.Second)
	if now.After(expires) {
		return nil, &Error{Kind: KindExpired, RequestTime: t, ServerTime: now, Expires: expires,
			Detail: "presigned URL expired at " + expires.UTC().Format(time.RFC3339)}
	}
	res := &Result{
		AccessKeyID: akid, Date: date, Region: region, Service: service, Time: t,
		Signature: signature, PayloadHash: payloadHash, Presigned: true,
		signingKey: cachedSigningKey(secret, date, region, service),
	}
	query := canonicalQuery(r.URL.RawQuery, true)
	if err := checkSignature(r, res, amzDate, query, signedHeaders); err != nil {
		return nil, err
	}
	return res, nil
}

// checkSignature rebuilds the canonical request for each plausible form of the path and accepts
// the request when one of them yields res.Signature.
func checkSignature(r *http.Request, res *Result, amzDate, query string, signedHeaders []string) error {
	headers, err := canonicalHeaders(r, signedHeaders, trimAll)
	if err != nil {
		return err
	}
	headerForms := []string{headers}
	if spaced, _ := canonicalHeaders(r, signedHeaders, trimSpaces); spaced != headers {
		headerForms = append(headerForms, spaced)
	}
	scope := res.Scope()
	var first *Error
	for _, path := range canonicalPaths(r, res.Service) {
		for _, headers := range headerForms {
			creq := strings.Join([]string{r.Method, path, query, headers, strings.Join(signedHeaders, ";"), res.PayloadHash}, "\n")
			sts := stringToSign(amzDate, scope, creq)
			want := hex.EncodeToString(hmacSHA256(res.signingKey, sts))
			if hmac.Equal([]byte(want), []byte(res.Signature)) {
				return nil
			}
			if first == nil {
				first = &Error{Kind: KindSignatureMismatch, AccessKeyID: res.AccessKeyID,
					CanonicalRequest: creq, StringToSign: sts, SignatureGiven: res.Signature,
					Detail: "the signature does not match the canonical request"}
			}
		}
	}
	return first
}

func stringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// SigningKey derives the SigV4 signing key: HMAC chain over date, region, service, "aws4_request".
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
