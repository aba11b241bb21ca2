// Package s3proxy serves Lathe's S3 routes from an external S3 service (AWS S3, versitygw, MinIO,
// Ceph, another Lathe): a streaming reverse proxy that signs each request again with the external
// service's credentials.
//
// It sits behind the front door (package server), which has already checked the caller's
// signature, authorized the request against Lathe's IAM and decoded an aws-chunked body; what it
// forwards is the plain request, so the external service sees Lathe as its one client and never
// the caller's keys. Bodies stream both ways: nothing is buffered beyond the copy buffers.
package s3proxy

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Options says which S3 to forward to and how to sign for it.
type Options struct {
	// Endpoint is the external S3's base URL, e.g. "http://127.0.0.1:7070" or
	// "https://s3.eu-west-1.amazonaws.com".
	Endpoint string
	// PathStyle forwards http://host/bucket/key as is; false moves the bucket into the host name
	// (http://bucket.host/key), as AWS prefers.
	PathStyle bool
	// Region is the region requests are signed for.
	Region string
	// Credentials sign the forwarded requests (the standard AWS chain, typically).
	Credentials aws.CredentialsProvider
	// Transport carries the forwarded requests; nil means a pooled transport of its own.
	Transport http.RoundTripper
	// Logger receives forwarding failures; nil means slog.Default().
	Logger *slog.Logger
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
	// SpoolDir holds uploads whose length the caller did not say (an aws-chunked stream without
	// x-amz-decoded-content-length) until they are complete: S3 services need Content-Length.
	// Empty means os.TempDir().
	SpoolDir string
}

// MaxSpooled is the largest upload of unknown length that is accepted: S3's limit on one PUT.
const MaxSpooled = 5 << 30

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// New returns the handler that forwards S3 requests to opts.Endpoint.
func New(opts Options) (http.Handler, error) {
	base, err := url.Parse(opts.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("s3proxy: endpoint %q is not an http(s) URL", opts.Endpoint)
	}
	if opts.Credentials == nil {
		return nil, errors.New("s3proxy: no credentials to sign with")
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Bodies pass through as the service sent them (a transparent gunzip would change their
		// length and ETag's meaning).
		t.DisableCompression = true
		t.MaxIdleConnsPerHost = 64
		opts.Transport = t
	}
	p := &proxy{opts: opts, base: base,
		signer: v4.NewSigner(func(o *v4.SignerOptions) {
			// S3 signs the path as sent, not escaped a second time.
			o.DisableURIPathEscaping = true
		})}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      signingTransport{p},
		FlushInterval:  -1, // a GetObject streams as it arrives
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return p, nil
}

type proxy struct {
	opts   Options
	base   *url.URL
	signer *v4.Signer
	rp     *httputil.ReverseProxy
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		f, n, err := p.spool(r.Body)
		if err != nil {
			p.opts.Logger.Warn("s3 proxy: spool upload", "method", r.Method, "path", r.URL.Path, "err", err)
			if errors.Is(err, errTooLarge) {
				writeError(w, r, http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
				return
			}
			writeError(w, r, http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
			return
		}
		defer func() {
			f.Close()
			os.Remove(f.Name())
		}()
		r.Body, r.ContentLength = io.NopCloser(f), n
	}
	p.rp.ServeHTTP(w, r)
}

var errTooLarge = errors.New("upload larger than 5 GiB")

// spool copies body into a temporary file and returns it rewound, with its length.
func (p *proxy) spool(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp(p.opts.SpoolDir, "s3proxy-upload-*")
	if err != nil {
		return nil, 0, fmt.Errorf("create spool file: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(body, MaxSpooled+1))
	if err == nil && n > MaxSpooled {
		err = errTooLarge
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	return f, n, nil
}

// Query parameters of a presigned URL: the caller's signature, which the front door has checked.
var presignParams = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId", "Signature", "Expires"}

// Headers of the caller's signature and of the aws-chunked encoding the front door has undone.
var callerHeaders = []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token",
	"X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "Expect"}

// rewrite points the request at the external S3, in its addressing style.
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	out, in := pr.Out, pr.In
	path := in.URL.Path
	host := p.base.Host
	if !p.opts.PathStyle {
		bucket, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if bucket != "" {
			host = bucket + "." + host
			path = "/" + rest
		}
	}
	path = strings.TrimSuffix(p.base.Path, "/") + path
	out.URL = &url.URL{Scheme: p.base.Scheme, Host: host, Path: path, RawPath: escapePath(path)}
	out.Host = ""

	q := in.URL.Query()
	for _, k := range presignParams {
		q.Del(k)
	}
	// S3 reads "+" in a query as a plus; spaces are %20, as the SDKs send them.
	out.URL.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")

	// A trailing checksum was checked and dropped with the aws-chunked framing; without it, the
	// algorithm header would promise the service a checksum that never comes.
	if in.Header.Get("X-Amz-Trailer") != "" {
		out.Header.Del("X-Amz-Sdk-Checksum-Algorithm")
	}
	for _, h := range callerHeaders {
		out.Header.Del(h)
	}
	out.Trailer = nil
	// The caller's framing (chunked, when it sent aws-chunked without a length) is not ours: the
	// body goes out with its Content-Length, which S3 services require.
	out.TransferEncoding = nil
}

// escapePath percent-encodes every byte of path but the unreserved characters and "/", as the
// AWS SDKs send S3 keys: the form every S3 server computes its canonical request from.
func escapePath(path string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// signingTransport signs each forwarded request just before it goes out.
type signingTransport struct{ p *proxy }

func (t signingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.p.sign(r.Context(), r); err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	return t.p.opts.Transport.RoundTrip(r)
}

func (p *proxy) sign(ctx context.Context, r *http.Request) error {
	creds, err := p.opts.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("s3proxy: credentials for %s: %w", p.opts.Endpoint, err)
	}
	// The body streams through unhashed: hashing it first would mean holding all of it.
	hash := "UNSIGNED-PAYLOAD"
	if r.Body == nil || r.ContentLength == 0 {
		hash = emptySHA256
	}
	r.Header.Set("X-Amz-Content-Sha256", hash)
	if err := p.signer.SignHTTP(ctx, creds, r, hash, "s3", p.opts.Region, p.opts.Now()); err != nil {
		return fmt.Errorf("s3proxy: sign %s %s: %w", r.Method, r.URL.Path, err)
	}
	return nil
}

// modifyResponse keeps the front door's request id (the one its logs and the caller's error
// documents carry) rather than adding the service's beside it.
func (p *proxy) modifyResponse(resp *http.Response) error {
	resp.Header.Del("X-Amz-Request-Id")
	resp.Header.Del("X-Amzn-Requestid")
	return nil
}

// errorHandler answers a request the service could not be asked (unreachable, credentials
// missing) with S3's InternalError, which the SDKs retry.
func (p *proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the caller went away
	}
	p.opts.Logger.Error("s3 proxy: forward", "method", r.Method, "path", r.URL.Path, "endpoint", p.opts.Endpoint, "err", err)
	writeError(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
}

// writeError answers with S3's XML error document.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	b, _ := xml.Marshal(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
		Message string
	}{Code: code, Message: message})
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}
