package s3proxy_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lathe-ml/lathe/internal/s3proxy"
	"github.com/lathe-ml/lathe/internal/server"
	"github.com/lathe-ml/lathe/internal/sigv4"
)

// seen is what the upstream received, after checking its signature with the upstream's keys.
type seen struct {
	Host, Path, Query, Auth string
	Body                    []byte
	SignedBy                string
}

// verifyingUpstream is an S3 stand-in that accepts only requests signed with its own keys (checked
// by Lathe's SigV4 verifier, as an S3 server checks them) and records them.
func verifyingUpstream(t *testing.T) (*httptest.Server, func() seen) {
	var mu sync.Mutex
	var last seen
	lookup := func(akid string) (string, bool) { return "upstream-secret", akid == "UPSTREAMKEY" }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		res, err := sigv4.Verify(r, body, lookup, time.Now())
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<Error><Code>SignatureDoesNotMatch</Code><Message>"+err.Error()+"</Message></Error>")
			return
		}
		mu.Lock()
		last = seen{Host: r.Host, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), Body: body, SignedBy: res.AccessKeyID}
		mu.Unlock()
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() seen {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// The request arrives at the service in its addressing style, signed for it, under the endpoint's
// base path.
func TestProxyAddressing(t *testing.T) {
	cases := []struct {
		name      string
		pathStyle bool
		basePath  string
		wantHost  string // with "HOST" for the upstream's address
		wantPath  string
	}{
		{"path style", true, "", "HOST", "/data/dir/a%20b%2Bc.csv"},
		{"path style under a base path", true, "/s3", "HOST", "/s3/data/dir/a%20b%2Bc.csv"},
		{"virtual-hosted", false, "", "data.HOST", "/dir/a%20b%2Bc.csv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up, last := verifyingUpstream(t)
			upAddr := strings.TrimPrefix(up.URL, "http://")
			// Every host name (data.127.0.0.1:PORT included) reaches the upstream, as DNS would.
			tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, upAddr)
			}}
			p, err := s3proxy.New(s3proxy.Options{Endpoint: up.URL + c.basePath, PathStyle: c.pathStyle, Region: "eu-west-1",
				Credentials: credentials.NewStaticCredentialsProvider("UPSTREAMKEY", "upstream-secret", ""), Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			h, err := server.New(server.Config{Region: "us-east-1", AccountID: "123456789012", Credentials: frontCreds, S3: p})
			if err != nil {
				t.Fatal(err)
			}
			front := httptest.NewServer(h)
			defer front.Close()
			client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(front.URL), UsePathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider(frontCreds.AccessKeyID, frontCreds.SecretAccessKey, ""), Retryer: aws.NopRetryer{}})
			body := []byte("input,output\nhi,hello\n")
			if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/a b+c.csv"),
				Body: bytes.NewReader(body)}); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			got := last()
			if want := strings.ReplaceAll(c.wantHost, "HOST", upAddr); got.Host != want {
				t.Errorf("Host %q, want %q", got.Host, want)
			}
			if got.Path != c.wantPath || !bytes.Equal(got.Body, body) || got.SignedBy != "UPSTREAMKEY" {
				t.Errorf("upstream got %s (%q), signed by %s; want %s", got.Path, got.Body, got.SignedBy, c.wantPath)
			}
			if !strings.Contains(got.Auth, "/eu-west-1/s3/aws4_request") {
				t.Errorf("signed for another scope: %s", got.Auth)
			}

			// A presigned GET: the caller's signature parameters stay with Lathe.
			ps, err := s3.NewPresignClient(client).PresignGetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/a b+c.csv")})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(ps.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("presigned GET: %s", resp.Status)
			}
			if q := last().Query; strings.Contains(q, "X-Amz-") {
				t.Errorf("the caller's presign parameters reached the upstream: %s", q)
			}
		})
	}
}
