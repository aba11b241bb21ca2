package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Keys a user may well have: spaces, '+', '=', unicode, nested "directories".
var trickyKeys = []string{"plain.csv", "with space/and+plus=eq.csv", "données/ünïcode-文字.parquet", "a%2Fpercent&amp;?.txt"}

func TestS3GoSDKPutGetRoundTrip(t *testing.T) {
	ts := startServer(t, false)
	client := ts.s3Client(testCreds)
	data := bytes.Repeat([]byte("input,output\nhello,world\n"), 4000) // ~100 KB
	for _, key := range trickyKeys {
		t.Run(key, func(t *testing.T) {
			_, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("datasets"), Key: aws.String(key), Body: bytes.NewReader(data)})
			if err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			seen := ts.s3.lastRequest()
			if seen.Path != "/datasets/"+key || !bytes.Equal(seen.Body, data) || seen.ContentLength != int64(len(data)) {
				t.Fatalf("handler saw %s %q, %d bytes (content-length %d)", seen.Method, seen.Path, len(seen.Body), seen.ContentLength)
			}
			out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("datasets"), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("GetObject: %v", err)
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if !bytes.Equal(got, data) {
				t.Fatalf("GetObject returned %d bytes, want %d", len(got), len(data))
			}
		})
	}
}

// onlyReader hides Seek, so the SDK must stream the body: over TLS it sends aws-chunked with a
// trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
type onlyReader struct{ io.Reader }

func TestS3GoSDKStreamingUploadIsDecoded(t *testing.T) {
	ts := startServer(t, true)
	data := bytes.Repeat([]byte("0123456789abcdef"), 50_000) // 800 KB, several chunks
	_, err := ts.s3Client(testCreds).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("datasets"), Key: aws.String("stream.bin"),
		Body: onlyReader{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	seen := ts.s3.lastRequest()
	if !bytes.Equal(seen.Body, data) {
		t.Fatalf("handler got %d bytes, want the %d sent (aws-chunked framing not decoded?)", len(seen.Body), len(data))
	}
	if seen.ContentLength != int64(len(data)) || strings.Contains(seen.ContentEncoding, "aws-chunked") {
		t.Errorf("handler saw content-length %d, content-encoding %q", seen.ContentLength, seen.ContentEncoding)
	}
	if seen.TrailerCRC32 != crc32Base64(data) {
		t.Errorf("trailer x-amz-checksum-crc32 = %q, want %q", seen.TrailerCRC32, crc32Base64(data))
	}
}

func TestS3GoSDKAuthFailures(t *testing.T) {
	ts := startServer(t, false)
	cases := []struct {
		name   string
		creds  Credentials
		offset time.Duration
		code   string
		status int
	}{
		{"wrong secret", Credentials{testCreds.AccessKeyID, "wrong"}, 0, "SignatureDoesNotMatch", 403},
		{"unknown access key", Credentials{"AKIAUNKNOWN000000000", "x"}, 0, "InvalidAccessKeyId", 403},
		{"unsigned", Credentials{}, 0, "AccessDenied", 403},
		{"skewed clock", testCreds, time.Hour, "RequestTimeTooSkewed", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts.offset.Store(int64(c.offset))
			defer ts.offset.Store(0)
			_, err := ts.s3Client(c.creds).PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String("datasets"), Key: aws.String("x.csv"), Body: strings.NewReader("a,b\n")})
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
			var respErr *awshttp.ResponseError
			if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != c.status {
				t.Errorf("status %v, want %d", err, c.status)
			}
		})
	}
}

func TestS3PresignedURLs(t *testing.T) {
	ts := startServer(t, false)
	presign := s3.NewPresignClient(ts.s3Client(testCreds))
	ctx := context.Background()
	key := "with space/and+plus=eq-ü.csv"
	data := []byte("input,output\nquestion,answer\n")

	put, err := presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("datasets"), Key: aws.String(key)},
		s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(put.Method, put.URL, bytes.NewReader(data))
	for k, v := range put.SignedHeader {
		r.Header[k] = v
	}
	if resp, body := do(t, r); resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d %s", resp.StatusCode, body)
	}
	if got := ts.s3.lastRequest(); got.Path != "/datasets/"+key || !bytes.Equal(got.Body, data) {
		t.Fatalf("handler saw %q with %q", got.Path, got.Body)
	}

	get, err := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("datasets"), Key: aws.String(key)},
		s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, mustRequest(t, "GET", get.URL))
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, body)
	}

	u, _ := url.Parse(get.URL)
	otherKey := *u
	otherKey.RawPath = strings.Replace(u.EscapedPath(), "eq-", "eq2-", 1)
	otherKey.Path, _ = url.PathUnescape(otherKey.RawPath)
	longer := *u
	q := longer.Query()
	q.Set("X-Amz-Expires", "604800")
	longer.RawQuery = q.Encode()

	for _, c := range []struct {
		name, url string
		offset    time.Duration
		status    int
		code      string
	}{
		{"another key", otherKey.String(), 0, 403, "SignatureDoesNotMatch"},
		{"stretched expiry", longer.String(), 0, 403, "SignatureDoesNotMatch"},
		{"after expiry", get.URL, 11 * time.Minute, 403, "AccessDenied"},
		{"method changed", get.URL, 0, 403, "SignatureDoesNotMatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts.offset.Store(int64(c.offset))
			defer ts.offset.Store(0)
			method := "GET"
			if c.name == "method changed" {
				method = "DELETE"
			}
			resp, body := do(t, mustRequest(t, method, c.url))
			if resp.StatusCode != c.status || !strings.Contains(string(body), "<Code>"+c.code+"</Code>") {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
		})
	}
}

func TestS3PayloadHashCheckedWhileStreaming(t *testing.T) {
	ts := startServer(t, false)
	signedFor := []byte("the body that was signed")
	sum := sha256.Sum256(signedFor)
	r := signedRequest(t, "PUT", ts.URL+"/datasets/tampered.csv", "s3",
		http.Header{"X-Amz-Content-Sha256": {hex.EncodeToString(sum[:])}}, []byte("a different body of the same"), hex.EncodeToString(sum[:]), time.Now())
	resp, body := do(t, r)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "XAmzContentSHA256Mismatch") {
		t.Errorf("got %d %s, want 400 XAmzContentSHA256Mismatch", resp.StatusCode, body)
	}
	// A header-signed S3 request with a body must say how its payload was hashed.
	r = signedRequest(t, "PUT", ts.URL+"/datasets/x.csv", "s3", nil, []byte("abc"), "", time.Now())
	r.Header.Del("X-Amz-Content-Sha256")
	resp, body = do(t, r)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "x-amz-content-sha256") {
		t.Errorf("missing x-amz-content-sha256: %d %s", resp.StatusCode, body)
	}
}

// The AWS documentation's signed streaming upload, replayed against the server with the
// documentation's credentials and clock.
func TestS3SignedChunkedUpload(t *testing.T) {
	docTime := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	ts := startServer(t, false, func(c *Config) {
		c.Credentials = Credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
		c.Now = func() time.Time { return docTime }
	})
	a := bytes.Repeat([]byte("a"), 66560)
	chunk := func(data []byte, sig string) string {
		return fmt.Sprintf("%x;chunk-signature=%s\r\n%s\r\n", len(data), sig, data)
	}
	body := chunk(a[:65536], "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648") +
		chunk(a[65536:], "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497") +
		"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n"
	send := func(body string) (*http.Response, []byte) {
		r, _ := http.NewRequest("PUT", ts.URL+"/examplebucket/chunkObject.txt", strings.NewReader(body))
		r.Host = "s3.amazonaws.com"
		r.Header.Set("X-Amz-Date", "20130524T000000Z")
		r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
		r.Header.Set("Content-Encoding", "aws-chunked")
		r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
		r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"+
			"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"+
			"Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
		return do(t, r)
	}
	if resp, out := send(body); resp.StatusCode != 200 {
		t.Fatalf("documented upload: %d %s", resp.StatusCode, out)
	}
	if got := ts.s3.lastRequest(); !bytes.Equal(got.Body, a) || got.ContentLength != 66560 || got.ContentEncoding != "" {
		t.Fatalf("handler saw %d bytes, content-length %d, encoding %q", len(got.Body), got.ContentLength, got.ContentEncoding)
	}
	corrupted := strings.Replace(body, "aaaa\r\n0;", "aaab\r\n0;", 1)
	if resp, out := send(corrupted); resp.StatusCode != 403 || !strings.Contains(string(out), "SignatureDoesNotMatch") {
		t.Fatalf("corrupted chunk: %d %s", resp.StatusCode, out)
	}
}

// Query strings with characters that need escaping must verify too; memS3 answers NoSuchKey to any
// listing, so reaching it (rather than SignatureDoesNotMatch) proves the signature checked out.
func TestS3GoSDKQuerySigning(t *testing.T) {
	ts := startServer(t, false)
	_, err := ts.s3Client(testCreds).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
		Bucket: aws.String("datasets"), Prefix: aws.String("with space/ü+=&?/"), Delimiter: aws.String("/"),
		StartAfter: aws.String("a%2Fb"), MaxKeys: aws.Int32(3)})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchKey" {
		t.Fatalf("got %v, want memS3's NoSuchKey (the signature was refused?)", err)
	}
}

// botocore sends "Expect: 100-continue" even with an empty PutObject body and waits for the interim
// answer before it reads the final one; without it, botocore misreads the next response on the same
// connection and stalls until its read timeout. S3 answers 100 Continue there, and so must Lathe.
func TestS3EmptyBodyExpectContinue(t *testing.T) {
	ts := startServer(t, false)
	r := signedRequest(t, http.MethodPut, ts.URL+"/datasets/empty.csv", "s3",
		http.Header{"Expect": {"100-continue"}}, nil, "", time.Now())
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := r.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	interim, err := http.ReadResponse(br, r)
	if err != nil {
		t.Fatal(err)
	}
	if interim.StatusCode != http.StatusContinue {
		t.Fatalf("first answer %s, want 100 Continue before the final one", interim.Status)
	}
	final, err := http.ReadResponse(br, r)
	if err != nil {
		t.Fatal(err)
	}
	if final.StatusCode != http.StatusOK {
		t.Errorf("final answer %s", final.Status)
	}
}
