package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
)

// awsChunk frames one signed chunk as the S3 documentation shows it.
func awsChunk(data []byte, signature string) string {
	return fmt.Sprintf("%x;chunk-signature=%s\r\n%s\r\n", len(data), signature, data)
}

// The bodies of AWS's two published streaming examples: 66560 bytes of 'a' in chunks of 65536,
// 1024 and 0 bytes, with the documented chunk signatures (and for the second, a signed crc32c trailer).
func signedExampleBody() string {
	a := bytes.Repeat([]byte("a"), 66560)
	return awsChunk(a[:65536], "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648") +
		awsChunk(a[65536:], "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497") +
		"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n"
}

func signedTrailerExampleBody() string {
	a := bytes.Repeat([]byte("a"), 66560)
	return awsChunk(a[:65536], "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2") +
		awsChunk(a[65536:], "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7") +
		"0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n" +
		"x-amz-checksum-crc32c:sOO8/Q==\r\n" +
		"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n"
}

// seedFor verifies the published example request named name and returns its result.
func seedFor(t *testing.T, name string) *Result {
	t.Helper()
	for _, e := range publishedExamples {
		if e.name == name {
			res, err := e.verify(e.build(e.signature))
			if err != nil {
				t.Fatalf("seed request: %v", err)
			}
			return res
		}
	}
	t.Fatalf("no example %q", name)
	return nil
}

// readAllIn reads r with a buffer of n bytes, to exercise chunk boundaries falling anywhere.
func readAllIn(r io.Reader, n int) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out.Write(buf[:k])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func crc32cBase64(data []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	return base64.StdEncoding.EncodeToString(b[:])
}

func TestChunkedReaderDecodesAWSExamples(t *testing.T) {
	want := bytes.Repeat([]byte("a"), 66560)
	cases := []struct {
		name, seed, mode, body string
		trailers               []string
	}{
		{"signed chunks", "S3 streaming PUT seed", StreamingSignedPayload, signedExampleBody(), nil},
		{"signed chunks and trailer", "S3 streaming PUT with trailer seed", StreamingSignedPayloadTrailer, signedTrailerExampleBody(), []string{"x-amz-checksum-crc32c"}},
	}
	for _, c := range cases {
		for _, bufSize := range []int{1, 7, 4096, 70000} {
			t.Run(fmt.Sprintf("%s/read %d", c.name, bufSize), func(t *testing.T) {
				cr, err := NewChunkedReader(strings.NewReader(c.body), ChunkedOptions{
					PayloadHash: c.mode, Seed: seedFor(t, c.seed), Trailers: c.trailers, DecodedLength: 66560})
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAllIn(cr, bufSize)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("decoded %d bytes, want the %d bytes of 'a'", len(got), len(want))
				}
				if c.trailers != nil {
					if got, want := cr.Trailer().Get("X-Amz-Checksum-Crc32c"), crc32cBase64(want); got != want || want != "sOO8/Q==" {
						t.Errorf("trailer crc32c = %q, want %q", got, want)
					}
				}
			})
		}
	}
}

func TestChunkedReaderRejectsForgery(t *testing.T) {
	corrupt := func(body string, at int) string { // flip one data byte of the second chunk
		b := []byte(body)
		i := strings.Index(body, "400;chunk-signature=") + 86 + at
		b[i] = 'b'
		return string(b)
	}
	cases := []struct {
		name, seed, mode, body string
		trailers               []string
		decoded                int64
		want                   error
	}{
		{"corrupted chunk data", "S3 streaming PUT seed", StreamingSignedPayload, corrupt(signedExampleBody(), 10), nil, 66560, ErrChunkSignatureMismatch},
		{"chunks reordered signature", "S3 streaming PUT seed", StreamingSignedPayload,
			strings.Replace(signedExampleBody(), "ad80c730", "0055627c", 1), nil, 66560, ErrChunkSignatureMismatch},
		{"seed of another request", "S3 streaming PUT with trailer seed", StreamingSignedPayload, signedExampleBody(), nil, 66560, ErrChunkSignatureMismatch},
		{"trailer value changed", "S3 streaming PUT with trailer seed", StreamingSignedPayloadTrailer,
			strings.Replace(signedTrailerExampleBody(), "sOO8/Q==", "AAAAAA==", 1), []string{"x-amz-checksum-crc32c"}, 66560, ErrChunkSignatureMismatch},
		{"trailer signature missing", "S3 streaming PUT with trailer seed", StreamingSignedPayloadTrailer,
			signedTrailerExampleBody()[:strings.Index(signedTrailerExampleBody(), "x-amz-trailer-signature")] + "\r\n", []string{"x-amz-checksum-crc32c"}, 66560, ErrMalformedChunkedBody},
		{"undeclared trailer", "S3 streaming PUT with trailer seed", StreamingSignedPayloadTrailer, signedTrailerExampleBody(), []string{"x-amz-checksum-sha256"}, 66560, ErrMalformedChunkedBody},
		{"truncated body", "S3 streaming PUT seed", StreamingSignedPayload, signedExampleBody()[:66000], nil, 66560, ErrIncompleteBody},
		{"decoded length too small", "S3 streaming PUT seed", StreamingSignedPayload, signedExampleBody(), nil, 66000, ErrIncompleteBody},
		{"decoded length too large", "S3 streaming PUT seed", StreamingSignedPayload, signedExampleBody(), nil, 70000, ErrIncompleteBody},
		{"chunk size not hex", "S3 streaming PUT seed", StreamingSignedPayload, "zz;chunk-signature=" + strings.Repeat("0", 64) + "\r\n", nil, -1, ErrMalformedChunkedBody},
		{"no chunk signature", "S3 streaming PUT seed", StreamingSignedPayload, "5\r\nhello\r\n0\r\n\r\n", nil, -1, ErrMalformedChunkedBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr, err := NewChunkedReader(strings.NewReader(c.body), ChunkedOptions{
				PayloadHash: c.mode, Seed: seedFor(t, c.seed), Trailers: c.trailers, DecodedLength: c.decoded})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(cr)
			if !errors.Is(err, c.want) {
				t.Fatalf("read: got %v, want %v", err, c.want)
			}
			if c.want == ErrChunkSignatureMismatch && bytes.Contains(got, []byte("b")) {
				t.Errorf("bytes of the forged chunk reached the reader")
			}
		})
	}
}

// unsignedTrailerBody frames data as the Go SDK and the JS SDK do for
// STREAMING-UNSIGNED-PAYLOAD-TRAILER (aws-sdk-go-v2 service/internal/checksum/aws_chunked_encoding.go).
func unsignedTrailerBody(chunks [][]byte, trailer string) string {
	var b strings.Builder
	for _, c := range chunks {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
	}
	b.WriteString("0\r\n" + trailer + "\r\n\r\n")
	return b.String()
}

func crc32Base64(data []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.ChecksumIEEE(data))
	return base64.StdEncoding.EncodeToString(b[:])
}

func TestChunkedReaderUnsignedTrailer(t *testing.T) {
	data := []byte(strings.Repeat("hello, unsigned world\n", 500))
	body := unsignedTrailerBody([][]byte{data[:8192], data[8192:]}, "x-amz-checksum-crc32:"+crc32Base64(data))
	cr, err := NewChunkedReader(strings.NewReader(body), ChunkedOptions{
		PayloadHash: StreamingUnsignedPayloadTrailer, Trailers: []string{"x-amz-checksum-crc32"}, DecodedLength: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cr.Trailer()["X-Amz-Checksum-Crc32"]; !ok {
		t.Errorf("declared trailer not announced before the body is read")
	}
	got, err := readAllIn(cr, 1000)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("decoded %d bytes, want %d", len(got), len(data))
	}
	if got := cr.Trailer().Get("X-Amz-Checksum-Crc32"); got != crc32Base64(data) {
		t.Errorf("trailer = %q, want %q", got, crc32Base64(data))
	}

	// An empty object: only the final chunk and the trailer.
	cr, _ = NewChunkedReader(strings.NewReader(unsignedTrailerBody(nil, "x-amz-checksum-crc32:AAAAAA==")), ChunkedOptions{
		PayloadHash: StreamingUnsignedPayloadTrailer, Trailers: []string{"x-amz-checksum-crc32"}, DecodedLength: 0})
	if got, err := io.ReadAll(cr); err != nil || len(got) != 0 {
		t.Errorf("empty object: %q, %v", got, err)
	}

	// A declared trailer that never comes.
	cr, _ = NewChunkedReader(strings.NewReader("5\r\nhello\r\n0\r\n\r\n"), ChunkedOptions{
		PayloadHash: StreamingUnsignedPayloadTrailer, Trailers: []string{"x-amz-checksum-crc32"}, DecodedLength: -1})
	if _, err := io.ReadAll(cr); !errors.Is(err, ErrMalformedChunkedBody) {
		t.Errorf("missing trailer: %v", err)
	}
}

func TestPayloadHashReader(t *testing.T) {
	body := "Welcome to Amazon S3."
	sum := sha256.Sum256([]byte(body))
	good := hex.EncodeToString(sum[:])
	if got, err := io.ReadAll(NewPayloadHashReader(strings.NewReader(body), good)); err != nil || string(got) != body {
		t.Fatalf("matching body: %q, %v", got, err)
	}
	_, err := io.ReadAll(NewPayloadHashReader(strings.NewReader(body+"!"), good))
	if !errors.Is(err, ErrContentSHA256Mismatch) {
		t.Fatalf("mismatching body: %v, want ErrContentSHA256Mismatch", err)
	}
}
