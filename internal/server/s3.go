package server

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/lathe-ml/lathe/internal/sigv4"
)

// serveS3 checks an S3 request's signature, prepares its body and hands it to the S3 handler.
//
// The body is never buffered here: a hex X-Amz-Content-Sha256 is checked as the handler reads
// (the read fails at EOF with sigv4.ErrContentSHA256Mismatch), and an aws-chunked body is decoded
// on the fly, its chunk signatures checked, its trailing checksums put into r.Trailer.
func (s *server) serveS3(w *recorder, r *http.Request) {
	if auth := r.Header.Get("Authorization"); auth != "" && !strings.HasPrefix(auth, sigv4.Algorithm) {
		s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest",
			Message: "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."})
		return
	}
	presigned := sigv4.Presigned(r) || sigv4.PresignedV2(r)
	if !presigned && r.Header.Get("Authorization") != "" && r.Header.Get("X-Amz-Content-Sha256") == "" && r.ContentLength != 0 {
		s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest",
			Message: "Missing required header for this request: x-amz-content-sha256"})
		return
	}
	res, err := sigv4.VerifyStreaming(r, s.lookup, s.now())
	if err == nil {
		err = checkService(res, "s3")
	}
	if err != nil {
		s.writeS3AuthError(w, r, err, presigned)
		return
	}
	w.accessKey = res.AccessKeyID
	r = withCaller(r, res)
	if !s.allowS3(w, r, res) {
		return
	}
	r = s.withKMSCaller(r, res)

	switch {
	case res.Streaming():
		if err := decodeAWSChunked(r, res); err != nil {
			s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: err.Error()})
			return
		}
	case res.HexPayloadHash():
		r.Body = readCloser{sigv4.NewPayloadHashReader(r.Body, res.PayloadHash), r.Body}
	}
	if s.serveS3IAM(w, r, res) {
		return
	}
	if reservedBucket(r) {
		s.writeReservedBucket(w, r)
		return
	}
	if s.cfg.S3 == nil {
		s.writeS3Error(w, r, s3Error{Status: http.StatusNotImplemented, Code: "NotImplemented",
			Message: "This server has no S3 API configured."})
		return
	}
	// botocore sends Expect: 100-continue even with an empty body and waits for the interim answer;
	// Go's server sends none when there is no body to read, and botocore then misreads the next
	// response on the connection (a stall until its read timeout). S3 answers 100 Continue here.
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.ResponseWriter.WriteHeader(http.StatusContinue)
	}
	s.cfg.S3.ServeHTTP(w, r)
}

// decodeAWSChunked replaces r.Body with the decoded payload and makes the request look as if it
// had been sent plain: Content-Length is the decoded length, aws-chunked is gone from
// Content-Encoding, and the declared trailers are keys of r.Trailer (values after EOF).
func decodeAWSChunked(r *http.Request, res *sigv4.Result) error {
	decoded := int64(-1)
	if v := r.Header.Get("X-Amz-Decoded-Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("x-amz-decoded-content-length %q is not a length", v)
		}
		decoded = n
	}
	var trailers []string
	for _, v := range r.Header.Values("X-Amz-Trailer") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				trailers = append(trailers, name)
			}
		}
	}
	cr, err := sigv4.NewChunkedReader(r.Body, sigv4.ChunkedOptions{
		PayloadHash: res.PayloadHash, Seed: res, Trailers: trailers, DecodedLength: decoded})
	if err != nil {
		return err
	}
	r.Body = readCloser{cr, r.Body}
	r.ContentLength = decoded
	if decoded >= 0 {
		r.Header.Set("Content-Length", strconv.FormatInt(decoded, 10))
	} else {
		r.Header.Del("Content-Length")
	}
	var encodings []string
	for _, v := range r.Header.Values("Content-Encoding") {
		for enc := range strings.SplitSeq(v, ",") {
			if enc = strings.TrimSpace(enc); enc != "" && !strings.EqualFold(enc, "aws-chunked") {
				encodings = append(encodings, enc)
			}
		}
	}
	if len(encodings) > 0 {
		r.Header.Set("Content-Encoding", strings.Join(encodings, ","))
	} else {
		r.Header.Del("Content-Encoding")
	}
	r.Trailer = cr.Trailer()
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// s3Error is S3's XML error document.
type s3Error struct {
	XMLName xml.Name `xml:"Error"`
	Status  int      `xml:"-"`
	Code    string   `xml:"Code"`
	Message string   `xml:"Message"`

	AWSAccessKeyID             string `xml:"AWSAccessKeyId,omitempty"`
	StringToSign               string `xml:"StringToSign,omitempty"`
	SignatureProvided          string `xml:"SignatureProvided,omitempty"`
	CanonicalRequest           string `xml:"CanonicalRequest,omitempty"`
	RequestTime                string `xml:"RequestTime,omitempty"`
	ServerTime                 string `xml:"ServerTime,omitempty"`
	MaxAllowedSkewMilliseconds string `xml:"MaxAllowedSkewMilliseconds,omitempty"`
	Expires                    string `xml:"Expires,omitempty"`

	RequestID string `xml:"RequestId"`
	HostID    string `xml:"HostId"`
}

func (s *server) writeS3Error(w http.ResponseWriter, r *http.Request, e s3Error) {
	e.RequestID = RequestID(r.Context())
	e.HostID = e.RequestID
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	b, err := xml.Marshal(e)
	if err != nil {
		return
	}
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}

// writeS3AuthError answers a failed signature check the way S3 does.
func (s *server) writeS3AuthError(w *recorder, r *http.Request, err error, presigned bool) {
	var e *sigv4.Error
	if !errors.As(err, &e) {
		s.log.Error("signature check failed", "request_id", RequestID(r.Context()), "err", err)
		s.writeS3Error(w, r, s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: internalMessage})
		return
	}
	w.accessKey = e.AccessKeyID
	s.log.Info("authentication failed", "request_id", RequestID(r.Context()), "reason", e.Error())
	const httpTime = "2006-01-02T15:04:05Z"
	var out s3Error
	switch e.Kind {
	case sigv4.KindMissing:
		out = s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Access Denied"}
	case sigv4.KindUnknownAccessKey:
		out = s3Error{Status: http.StatusForbidden, Code: "InvalidAccessKeyId",
			Message: "The AWS Access Key Id you provided does not exist in our records.", AWSAccessKeyID: e.AccessKeyID}
	case sigv4.KindSignatureMismatch:
		out = s3Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch",
			Message:        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
			AWSAccessKeyID: e.AccessKeyID, StringToSign: e.StringToSign, SignatureProvided: e.SignatureGiven, CanonicalRequest: e.CanonicalRequest}
	case sigv4.KindSkewed:
		if presigned {
			out = s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Request is not valid yet"}
			break
		}
		out = s3Error{Status: http.StatusForbidden, Code: "RequestTimeTooSkewed",
			Message:     "The difference between the request time and the current time is too large.",
			RequestTime: e.RequestTime.UTC().Format(httpTime), ServerTime: e.ServerTime.UTC().Format(httpTime),
			MaxAllowedSkewMilliseconds: strconv.FormatInt(sigv4.MaxSkew.Milliseconds(), 10)}
	case sigv4.KindExpired:
		out = s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Request has expired",
			Expires: e.Expires.UTC().Format(httpTime), ServerTime: e.ServerTime.UTC().Format(httpTime)}
	case sigv4.KindPayloadHashMismatch:
		out = s3Error{Status: http.StatusBadRequest, Code: "XAmzContentSHA256Mismatch",
			Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	case sigv4.KindInvalidPayloadHash:
		out = s3Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: e.Detail}
	default: // malformed
		code, msg := "AuthorizationHeaderMalformed", "The authorization header is malformed; "+e.Detail
		if presigned {
			code, msg = "AuthorizationQueryParametersError", e.Detail
		}
		out = s3Error{Status: http.StatusBadRequest, Code: code, Message: msg}
	}
	s.writeS3Error(w, r, out)
}
