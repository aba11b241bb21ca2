package sigv4

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

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
