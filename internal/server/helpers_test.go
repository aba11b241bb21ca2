package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/lathe-ml/lathe/internal/awserr"
)

var testCreds = Credentials{AccessKeyID: "AKIALATHETEST0000001", SecretAccessKey: "lathe/test/secret+key/0123456789abcdefghij"}

const testRegion = "us-east-1"

// testOperations is a small SageMaker operation table that exercises each way an operation ends.
func testOperations() map[string]Operation {
	return map[string]Operation{
		"ListAutoMLJobs": func(ctx context.Context, body []byte) (any, error) {
			var in struct {
				MaxResults   int
				NameContains string
				NextToken    string
			}
			if err := json.Unmarshal(body, &in); err != nil {
				return nil, awserr.Validation("bad input: %v", err)
			}
			// The output echoes the input, so a test sees the body arrived intact. A next token only
			// answers a request that had one, so paginating clients (the AWS CLI) stop.
			out := map[string]any{
				"AutoMLJobSummaries": []map[string]any{{
					"AutoMLJobName":            in.NameContains + "-job",
					"AutoMLJobArn":             "arn:aws:sagemaker:us-east-1:123456789012:automl-job/" + in.NameContains + "-job",
					"AutoMLJobStatus":          "Completed",
					"AutoMLJobSecondaryStatus": "Completed",
					"CreationTime":             1700000000.5,
					"LastModifiedTime":         1700000100,
				}},
			}
			if in.NextToken != "" {
				out["NextToken"] = "after-" + in.NextToken
			}
			return out, nil
		},
		"DescribeAutoMLJobV2": func(ctx context.Context, body []byte) (any, error) {
			var in struct{ AutoMLJobName string }
			if err := json.Unmarshal(body, &in); err != nil {
				return nil, awserr.Validation("bad input: %v", err)
			}
			switch in.AutoMLJobName {
			case "missing":
				return nil, awserr.NotFound("Could not find AutoML job with name %s.", in.AutoMLJobName)
			case "bad_name!":
				return nil, awserr.Validation("1 validation error detected: Value '%s' at 'autoMLJobName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", in.AutoMLJobName)
			case "boom":
				return nil, errors.New("database file is locked: secret internal detail")
			case "panic":
				panic("handler bug")
			}
			return map[string]any{"AutoMLJobName": in.AutoMLJobName, "AutoMLJobStatus": "InProgress"}, nil
		},
		"StopAutoMLJob": func(ctx context.Context, body []byte) (any, error) { return nil, nil },
	}
}

// memS3 is a tiny path-style S3 stand-in that keeps objects in memory and records what the front
// door handed it: the decoded body, its length, encodings and trailers.
type memS3 struct {
	mu      sync.Mutex
	objects map[string][]byte
	last    seenRequest
}

type seenRequest struct {
	Method, Path    string
	Body            []byte
	ContentLength   int64
	ContentEncoding string
	TrailerCRC32    string
	HeaderCRC32     string
}

func newMemS3() *memS3 { return &memS3{objects: map[string][]byte{}} }

func (m *memS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		e := awserr.As(err)
		if e == nil {
			e = awserr.Internal("%v", err)
		}
		w.WriteHeader(e.Status)
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName xml.Name `xml:"Error"`
			Code    string
			Message string
		}{Code: e.Code, Message: e.Message})
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = seenRequest{Method: r.Method, Path: r.URL.Path, Body: body, ContentLength: r.ContentLength,
		ContentEncoding: r.Header.Get("Content-Encoding"), HeaderCRC32: r.Header.Get("X-Amz-Checksum-Crc32")}
	if r.Trailer != nil {
		m.last.TrailerCRC32 = r.Trailer.Get("X-Amz-Checksum-Crc32")
	}
	switch r.Method {
	case http.MethodPut:
		m.objects[r.URL.Path] = body
		sum := sha256.Sum256(body)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	case http.MethodGet, http.MethodHead:
		obj, ok := m.objects[r.URL.Path]
		if !ok {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			if r.Method == http.MethodGet {
				_, _ = io.WriteString(w, "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>")
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(obj)))
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		sum := sha256.Sum256(obj)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		if r.Method == http.MethodGet {
			_, _ = w.Write(obj)
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (m *memS3) lastRequest() seenRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// testServer is the front door on 127.0.0.1 with the test operation table and memS3.
type testServer struct {
	*httptest.Server
	s3     *memS3
	offset atomic.Int64 // added to the server clock, in nanoseconds
	ready  atomic.Bool
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServer(t *testing.T, tlsServer bool, edit ...func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{s3: newMemS3(), logs: &syncBuffer{}}
	ts.ready.Store(true)
	cfg := Config{
		Region: testRegion, AccountID: "123456789012", Credentials: testCreds,
		SageMaker: testOperations(), S3: ts.s3,
		Ready:  ts.ready.Load,
		Logger: slog.New(slog.NewTextHandler(ts.logs, nil)),
		Now:    func() time.Time { return time.Now().Add(time.Duration(ts.offset.Load())) },
	}
	for _, e := range edit {
		e(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tlsServer {
		ts.Server = httptest.NewTLSServer(h)
	} else {
		ts.Server = httptest.NewServer(h)
	}
	t.Cleanup(ts.Close)
	return ts
}

// sdkHTTPClient is the SDK's own buildable client (a plain http.Client trips over AWS_CA_BUNDLE),
// trusting the test server's certificate when it has one.
func (ts *testServer) sdkHTTPClient() aws.HTTPClient {
	c := awshttp.NewBuildableClient()
	if ts.TLS != nil {
		pool := x509.NewCertPool()
		pool.AddCert(ts.Certificate())
		c = c.WithTransportOptions(func(tr *http.Transport) { tr.TLSClientConfig = &tls.Config{RootCAs: pool} })
	}
	return c
}

func (ts *testServer) sageMaker(creds Credentials) *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{
		Region: testRegion, BaseEndpoint: aws.String(ts.URL),
		Credentials: staticCreds(creds),
		HTTPClient:  ts.sdkHTTPClient(),
		Retryer:     aws.NopRetryer{},
	})
}

func (ts *testServer) s3Client(creds Credentials) *s3.Client {
	return s3.New(s3.Options{
		Region: testRegion, BaseEndpoint: aws.String(ts.URL), UsePathStyle: true,
		Credentials: staticCreds(creds),
		HTTPClient:  ts.sdkHTTPClient(),
		Retryer:     aws.NopRetryer{},
	})
}

func staticCreds(c Credentials) aws.CredentialsProvider {
	if c.AccessKeyID == "" {
		return aws.AnonymousCredentials{}
	}
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")
}

// signedRequest builds a request signed by the SDK's signer, for what the SDK clients cannot send.
func signedRequest(t *testing.T, method, url, service string, header http.Header, body []byte, payloadHash string, at time.Time) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		r.Header[k] = v
	}
	if payloadHash == "" {
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	creds := aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: testCreds.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, payloadHash, service, testRegion, at); err != nil {
		t.Fatal(err)
	}
	return r
}

func do(t *testing.T, r *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func crc32Base64(data []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.ChecksumIEEE(data))
	return base64.StdEncoding.EncodeToString(b[:])
}
