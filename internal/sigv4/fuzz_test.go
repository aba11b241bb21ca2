package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// go test -fuzz FuzzParseAuthorization ./internal/sigv4
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024")
	f.Add("AWS4-HMAC-SHA256 Credential=A/20130524/r/s/aws4_request,SignedHeaders=host,Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024")
	f.Add("AWS4-HMAC-SHA256 Credential=//////, SignedHeaders=;;, Signature=")
	f.Add("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=")
	f.Add("AWS4-HMAC-SHA256 ,,,,=")
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseAuthorization(header)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !isHexSHA256(a.Signature) || !contains(a.SignedHeaders, "host") || len(a.Date) != 8 || a.AccessKeyID == "" {
			t.Fatalf("accepted an invalid header: %+v", a)
		}
		// What parsed must render back to a header that parses the same.
		again := Algorithm + " Credential=" + a.AccessKeyID + "/" + a.Date + "/" + a.Region + "/" + a.Service +
			"/aws4_request, SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature
		b, err := ParseAuthorization(again)
		if err != nil || b.AccessKeyID != a.AccessKeyID || b.Region != a.Region || b.Service != a.Service ||
			strings.Join(b.SignedHeaders, ";") != strings.Join(a.SignedHeaders, ";") {
			t.Fatalf("round trip of %q: %+v, %v", again, b, err)
		}
	})
}

// go test -fuzz FuzzChunkedReader ./internal/sigv4
func FuzzChunkedReader(f *testing.F) {
	f.Add([]byte(signedExampleBody()), uint8(0))
	f.Add([]byte(signedTrailerExampleBody()), uint8(1))
	f.Add([]byte(unsignedTrailerBody([][]byte{[]byte("hello")}, "x-amz-checksum-crc32:NhCmhg==")), uint8(2))
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint8(2))
	f.Add([]byte("ffffffffffffffff;chunk-signature=00\r\n"), uint8(0))
	f.Add([]byte("0\r\n\r\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		opts := []ChunkedOptions{
			{PayloadHash: StreamingSignedPayload, DecodedLength: -1},
			{PayloadHash: StreamingSignedPayloadTrailer, Trailers: []string{"x-amz-checksum-crc32c"}, DecodedLength: -1},
			{PayloadHash: StreamingUnsignedPayloadTrailer, Trailers: []string{"x-amz-checksum-crc32"}, DecodedLength: -1},
		}[int(mode)%3]
		if opts.PayloadHash != StreamingUnsignedPayloadTrailer {
			opts.Seed = seedFor(t, map[bool]string{true: "S3 streaming PUT with trailer seed", false: "S3 streaming PUT seed"}[mode%3 == 1])
		}
		opts.MaxChunkSize = 1 << 20
		cr, err := NewChunkedReader(bytes.NewReader(body), opts)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(cr)
		if len(out) > len(body) {
			t.Fatalf("decoded %d bytes from a %d byte body", len(out), len(body))
		}
		if err != nil && awserr.As(err) == nil {
			t.Fatalf("error %v is not a client-visible *awserr.Error", err)
		}
		if err == nil && opts.Seed != nil && len(out) > 0 && !bytes.Equal(out, bytes.Repeat([]byte("a"), len(out))) {
			t.Fatalf("signed mode released bytes that no valid signature covers: %q", out[:min(len(out), 40)])
		}
	})
}

// FuzzVerifySDKSigned signs arbitrary requests (method, path, query, one extra header, body,
// header or presigned form, S3 or another service) with the AWS SDK's own signer, sends them
// through an HTTP/1.1 wire round trip, and checks them: what the SDK signed verifies, and the
// same request with one signature digit changed does not. A failure here is a request an AWS SDK
// would sign that Lathe refuses, or a forgery it accepts.
//
//	go test -fuzz FuzzVerifySDKSigned ./internal/sigv4
func FuzzVerifySDKSigned(f *testing.F) {
	f.Add("PUT", "/bucket/key with space/ü", "b=2&a=1&a=0&empty=", "X-Amz-Meta-Note", "  two  spaces  ", []byte("body"), false, true)
	f.Add("GET", "/bucket/a%2Fb/~tilde/(paren)", "list-type=2&prefix=x%2Fy&delimiter=%2F", "Range", "bytes=0-9", []byte(nil), true, true)
	f.Add("POST", "/", "", "X-Amz-Target", "SageMaker.ListAutoMLJobs", []byte(`{"MaxResults":5}`), false, false)
	f.Add("DELETE", "/b/k", "uploadId=abc%2B%3D&x-id=AbortMultipartUpload", "Content-Type", "text/plain; charset=utf-8", []byte(nil), true, true)
	f.Add("GET", "/b/%E6%97%A5%20%25", "versionId=null&space=a%20b&plus=a+b", "X-Amz-Meta-Tab", "a\tb", []byte(nil), false, true)
	// The S3 client signs the path as it sends it; every other client escapes it once more.
	s3Signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	otherSigner := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: exampleAKID, SecretAccessKey: exampleSecret}
	f.Fuzz(func(t *testing.T, method, path, rawQuery, hdrName, hdrValue string, body []byte, presign, s3 bool) {
		if method == "" || strings.ContainsAny(method, " \t\r\n/") || !strings.HasPrefix(path, "/") || len(body) > 1<<16 {
			return
		}
		u := &url.URL{Scheme: "http", Host: "lathe.test", RawQuery: rawQuery}
		if err := setPath(u, path); err != nil {
			return
		}
		r, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
		if err != nil || r.URL.RawQuery != rawQuery {
			return
		}
		if hdrName != "" {
			if !validHeaderName(hdrName) || !validHeaderValue(hdrValue) {
				return
			}
			r.Header.Set(hdrName, hdrValue)
		}
		service, signer := "sagemaker", otherSigner
		if s3 {
			service, signer = "s3", s3Signer
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		now := time.Now().UTC()
		if presign {
			hash = UnsignedPayload
			// The SDK's presigners put X-Amz-Expires in the query before signing.
			q := r.URL.Query()
			if q.Has("X-Amz-Expires") {
				return
			}
			r.URL.RawQuery = strings.TrimPrefix(rawQuery+"&X-Amz-Expires=900", "&")
			signed, _, err := signer.PresignHTTP(context.Background(), creds, r, hash, service, "us-east-1", now)
			if err != nil {
				return
			}
			if r, err = http.NewRequest(method, signed, bytes.NewReader(body)); err != nil {
				return
			}
			if hdrName != "" {
				r.Header.Set(hdrName, hdrValue)
			}
		} else {
			if s3 {
				r.Header.Set("X-Amz-Content-Sha256", hash)
			}
			if err := signer.SignHTTP(context.Background(), creds, r, hash, service, "us-east-1", now); err != nil {
				return
			}
		}
		// What the server sees: the request as written on the wire and parsed back.
		var wire bytes.Buffer
		if err := r.Write(&wire); err != nil {
			return
		}
		raw := wire.Bytes()
		got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		if _, err := Verify(got, body, exampleLookup, now); err != nil {
			t.Fatalf("an SDK-signed request is refused: %v\n%s", err, raw)
		}
		// One signature digit changed: refused as a mismatch.
		sig := "Signature="
		if presign {
			sig = "X-Amz-Signature="
		}
		i := bytes.Index(raw, []byte(sig)) + len(sig)
		forged := bytes.Clone(raw)
		forged[i] = "01"[boolIndex(forged[i] == '0')] // any other digit
		got, err = http.ReadRequest(bufio.NewReader(bytes.NewReader(forged)))
		if err != nil {
			t.Fatalf("forged request does not parse: %v", err)
		}
		_, err = Verify(got, body, exampleLookup, now)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindSignatureMismatch {
			t.Fatalf("a request with a changed signature: got %v, want a signature mismatch\n%s", err, forged)
		}
	})
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setPath sets u's path from a client-side path that may hold percent-escapes, as a caller of
// an SDK would (the SDK escapes the key itself).
func setPath(u *url.URL, p string) error {
	dec, err := url.PathUnescape(p)
	if err != nil {
		return err
	}
	u.Path, u.RawPath = dec, p
	if u.EscapedPath() != p {
		u.RawPath = ""
	}
	return nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	lower := strings.ToLower(s)
	// Headers the client transport writes itself or the signer leaves out.
	return lower != "host" && lower != "content-length" && lower != "transfer-encoding" && lower != "authorization" &&
		lower != "connection" && lower != "trailer" && lower != "te" && lower != "upgrade" && lower != "expect" &&
		!strings.HasPrefix(lower, "x-amz-") || strings.HasPrefix(lower, "x-amz-meta-") || lower == "x-amz-target"
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzChunkedRoundTrip encodes an arbitrary payload as aws-chunked, cut into chunks where the
// fuzzer says, either signed chunk by chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, signatures
// computed here from the SigV4 documentation) or unsigned with a CRC32 trailer (what the SDKs send
// over TLS), and reads it back through buffers of a fuzzed size: the payload and the trailer come
// back exactly.
//
//	go test -fuzz FuzzChunkedRoundTrip ./internal/sigv4
func FuzzChunkedRoundTrip(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{5}, true, uint8(3))
	f.Add([]byte("hello, world"), []byte{1, 0, 200}, false, uint8(1))
	f.Add(bytes.Repeat([]byte("z"), 70000), []byte{255, 255, 7}, true, uint8(255))
	f.Add([]byte{}, []byte{}, true, uint8(0))
	f.Add([]byte("\r\n0\r\n\r\n"), []byte{2}, false, uint8(2))
	f.Fuzz(func(t *testing.T, payload, cuts []byte, signed bool, bufSize uint8) {
		// Chunk sizes: each cut byte times 64 (so large payloads need few cuts), the rest in one.
		var chunks [][]byte
		rest := payload
		for _, c := range cuts {
			n := min(int(c)*64+1, len(rest))
			if n == 0 {
				break
			}
			chunks, rest = append(chunks, rest[:n]), rest[n:]
		}
		if len(rest) > 0 {
			chunks = append(chunks, rest)
		}
		opts := ChunkedOptions{DecodedLength: int64(len(payload)), MaxChunkSize: 1 << 20}
		var body string
		crc := crc32Base64(payload)
		if signed {
			seed := seedFor(t, "S3 streaming PUT seed")
			opts.PayloadHash, opts.Seed = StreamingSignedPayload, seed
			amzDate := seed.Time.UTC().Format("20060102T150405Z")
			prev := seed.Signature
			sign := func(data []byte) string {
				sum := sha256.Sum256(data)
				sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + seed.Scope() + "\n" + prev + "\n" + emptyHash + "\n" + hex.EncodeToString(sum[:])
				prev = hex.EncodeToString(hmacSHA256(seed.signingKey, sts))
				return prev
			}
			var b strings.Builder
			for _, c := range chunks {
				b.WriteString(awsChunk(c, sign(c)))
			}
			b.WriteString("0;chunk-signature=" + sign(nil) + "\r\n\r\n")
			body = b.String()
		} else {
			opts.PayloadHash, opts.Trailers = StreamingUnsignedPayloadTrailer, []string{"x-amz-checksum-crc32"}
			body = unsignedTrailerBody(chunks, "x-amz-checksum-crc32:"+crc)
		}
		cr, err := NewChunkedReader(strings.NewReader(body), opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAllIn(cr, int(bufSize)+1)
		if err != nil {
			t.Fatalf("decoding %d chunks (signed %v): %v", len(chunks), signed, err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("decoded %d bytes, want the %d encoded", len(got), len(payload))
		}
		if !signed && cr.Trailer().Get("x-amz-checksum-crc32") != crc {
			t.Fatalf("trailer %q, want x-amz-checksum-crc32 %s", cr.Trailer(), crc)
		}
	})
}
