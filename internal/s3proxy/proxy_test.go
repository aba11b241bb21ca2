package s3proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/lathe-ml/lathe/internal/s3proxy"
	"github.com/lathe-ml/lathe/internal/s3test"
	"github.com/lathe-ml/lathe/internal/server"
)

// The caller's keys: Lathe's own, which the external service never sees.
var frontCreds = server.Credentials{AccessKeyID: "AKIAFRONTDOOR0000001", SecretAccessKey: "front/door/secret+key/0123456789abcdefgh"}

// frontDoor is Lathe's front door (TLS, so that the SDK streams unseekable bodies aws-chunked)
// serving its S3 routes from ext through the proxy.
type frontDoor struct {
	*httptest.Server
	ext s3test.Service
}

func startFrontDoor(t *testing.T, ext s3test.Service) *frontDoor {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := s3proxy.New(s3proxy.Options{Endpoint: ext.URL, PathStyle: true, Region: ext.Region,
		Credentials: credentials.NewStaticCredentialsProvider(ext.AccessKeyID, ext.SecretAccessKey, ""), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{Region: "us-east-1", AccountID: "123456789012", Credentials: frontCreds, S3: p, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	fd := &frontDoor{Server: httptest.NewTLSServer(h), ext: ext}
	t.Cleanup(fd.Close)
	return fd
}

func (fd *frontDoor) httpClient() aws.HTTPClient {
	pool := x509.NewCertPool()
	pool.AddCert(fd.Certificate())
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.TLSClientConfig = &tls.Config{RootCAs: pool} })
}

func (fd *frontDoor) client(creds server.Credentials) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(fd.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		HTTPClient:  fd.httpClient(), Retryer: aws.NopRetryer{}})
}

// direct talks to the external service itself, to see what landed there.
func direct(ext s3test.Service) *s3.Client {
	return s3.New(s3.Options{Region: ext.Region, BaseEndpoint: aws.String(ext.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ext.AccessKeyID, ext.SecretAccessKey, ""),
		HTTPClient:  awshttp.NewBuildableClient(), Retryer: aws.NopRetryer{}})
}

func get(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 11))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// onlyReader hides Seek, so the SDK streams the body aws-chunked with a trailing checksum.
type onlyReader struct{ io.Reader }

var backends = []struct {
	name  string
	start func(testing.TB) s3test.Service
}{
	{"versitygw", s3test.VersityGW},
	{"another lathe", s3test.Lathe},
}

func TestProxy(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ext := be.start(t)
			fd := startFrontDoor(t, ext)
			testProxy(t, fd)
		})
	}
}

func testProxy(t *testing.T, fd *frontDoor) {
	ctx := context.Background()
	c, ext := fd.client(frontCreds), direct(fd.ext)

	// The bucket a caller creates through Lathe is the external service's.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("proxied")}); err != nil {
		t.Fatalf("CreateBucket through the front door: %v", err)
	}
	if _, err := ext.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("proxied")}); err != nil {
		t.Fatalf("the external service has no bucket proxied: %v", err)
	}

	// Keys with characters that S3 signs escaped: what lands is the caller's key and content.
	keys := []string{"train/train.csv", "a b+c=d/ünïcødé.txt", "odd/x;y,z@!$'()*&.txt", "deep//double/slash", "~tilde/%41"}
	for i, key := range keys {
		body := []byte(strings.Repeat(key+"\n", i+1))
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("proxied"), Key: aws.String(key), Body: bytes.NewReader(body),
			ContentType: aws.String("text/csv")}); err != nil {
			t.Fatalf("PutObject %q: %v", key, err)
		}
		if got := get(t, ext, "proxied", key); !bytes.Equal(got, body) {
			t.Fatalf("external has %q under %q, want %q", got, key, body)
		}
		if got := get(t, c, "proxied", key); !bytes.Equal(got, body) {
			t.Fatalf("GET %q through the front door: %q, want %q", key, got, body)
		}
	}

	// A streamed upload (aws-chunked, trailing CRC32) arrives decoded, its length exact.
	streamed := randomBytes(300_000)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("proxied"), Key: aws.String("streamed.bin"),
		Body: onlyReader{bytes.NewReader(streamed)}}); err != nil {
		t.Fatalf("streamed PutObject: %v", err)
	}
	if got := get(t, ext, "proxied", "streamed.bin"); !bytes.Equal(got, streamed) {
		t.Fatalf("external has %d bytes of the streamed object, want %d", len(got), len(streamed))
	}

	// Multipart, as the job pipeline writes large artifacts, then a ranged read.
	big := randomBytes(11<<20 + 123)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("proxied"), Key: aws.String("model/model.safetensors")})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	var parts []types.CompletedPart
	for n, off := int32(1), 0; off < len(big); n, off = n+1, off+5<<20 {
		end := min(off+5<<20, len(big))
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("proxied"), Key: aws.String("model/model.safetensors"),
			UploadId: up.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(big[off:end])})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", n, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("proxied"), Key: aws.String("model/model.safetensors"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	if got := get(t, ext, "proxied", "model/model.safetensors"); !bytes.Equal(got, big) {
		t.Fatalf("external has %d bytes of the multipart object, want %d", len(got), len(big))
	}
	rng, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("proxied"), Key: aws.String("model/model.safetensors"), Range: aws.String("bytes=6000000-6000099")})
	if err != nil {
		t.Fatalf("ranged GetObject: %v", err)
	}
	got, _ := io.ReadAll(rng.Body)
	rng.Body.Close()
	if !bytes.Equal(got, big[6000000:6000100]) || aws.ToString(rng.ContentRange) != "bytes 6000000-6000099/"+strconv.Itoa(len(big)) {
		t.Fatalf("ranged GET: %d bytes, Content-Range %q", len(got), aws.ToString(rng.ContentRange))
	}

	// Listing with a prefix and a delimiter, pages of two.
	var listed []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("proxied"), Prefix: aws.String("a b+c=d/"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		for _, o := range page.Contents {
			listed = append(listed, aws.ToString(o.Key))
		}
	}
	if !slices.Equal(listed, []string{"a b+c=d/ünïcødé.txt"}) {
		t.Fatalf("listed %q", listed)
	}
	delim, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("proxied"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, cp := range delim.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(cp.Prefix))
	}
	if !slices.Equal(prefixes, []string{"a b+c=d/", "deep/", "model/", "odd/", "train/", "~tilde/"}) {
		t.Fatalf("common prefixes %q", prefixes)
	}

	// A presigned GET checked by Lathe, fetched from the external service.
	ps, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("proxied"), Key: aws.String("train/train.csv")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, ps.URL, nil)
	resp, err := (&http.Client{Transport: fd.Client().Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(pb) != "train/train.csv\n" {
		t.Fatalf("presigned GET: %s %q", resp.Status, pb)
	}

	// The external service's errors reach the caller as S3 errors.
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("proxied"), Key: aws.String("missing")}); errorCode(err) != "NoSuchKey" {
		t.Fatalf("GetObject of a missing key: %v, want NoSuchKey", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("proxied"), Key: aws.String("missing")}); errorCode(err) != "NotFound" {
		t.Fatalf("HeadObject of a missing key: %v, want NotFound", err)
	}

	// Lathe's signature check stays in front: a wrong secret is refused and nothing is written.
	bad := fd.client(server.Credentials{AccessKeyID: frontCreds.AccessKeyID, SecretAccessKey: "wrong"})
	if _, err := bad.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("proxied"), Key: aws.String("forged"), Body: strings.NewReader("x")}); errorCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("PutObject with a wrong secret: %v, want SignatureDoesNotMatch", err)
	}
	// The external service's own keys are not Lathe's.
	extKeys := fd.client(server.Credentials{AccessKeyID: fd.ext.AccessKeyID, SecretAccessKey: fd.ext.SecretAccessKey})
	if _, err := extKeys.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("proxied"), Key: aws.String("forged"), Body: strings.NewReader("x")}); errorCode(err) != "InvalidAccessKeyId" {
		t.Fatalf("PutObject signed with the external service's keys: %v, want InvalidAccessKeyId", err)
	}
	if _, err := ext.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("proxied"), Key: aws.String("forged")}); errorCode(err) != "NotFound" {
		t.Fatalf("a refused upload reached the external service: %v", err)
	}
	// The reserved bucket name is refused before the external service is asked.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("metrics")}); errorCode(err) != "BucketAlreadyExists" {
		t.Fatalf("CreateBucket metrics: %v, want BucketAlreadyExists", err)
	}
	if _, err := ext.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("metrics")}); err == nil {
		t.Fatal("the bucket metrics was created on the external service")
	}

	// DeleteObjects (a POST with a checksummed XML body) empties the bucket; then it goes.
	var ids []types.ObjectIdentifier
	for _, k := range append(keys, "streamed.bin", "model/model.safetensors") {
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("proxied"), Delete: &types.Delete{Objects: ids}})
	if err != nil || len(del.Deleted) != len(ids) || len(del.Errors) != 0 {
		t.Fatalf("DeleteObjects: %v, %d deleted, errors %+v", err, len(del.Deleted), del.Errors)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("proxied")}); err != nil {
		t.Fatalf("DeleteBucket: %v", err)
	}
	if _, err := ext.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("proxied")}); err == nil {
		t.Fatal("the bucket is still on the external service")
	}
}

// An external service that does not answer is S3's InternalError, not a hung or dropped request.
func TestProxyUnreachable(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	fd := startFrontDoor(t, s3test.Service{URL: url, AccessKeyID: "a", SecretAccessKey: "b", Region: "us-east-1"})
	_, err := fd.client(frontCreds).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	var re *awshttp.ResponseError
	if errorCode(err) != "InternalError" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError {
		t.Fatalf("GetObject with the external service down: %v, want 500 InternalError", err)
	}
}
