package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
)

func TestMetricsPathIsNotABucket(t *testing.T) {
	var mu sync.Mutex
	var seen []RequestInfo
	ts := startServer(t, false, func(c *Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte("lathe_up 1\n"))
		})
		c.Observe = func(info RequestInfo) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, info)
		}
	})

	// A scraper needs no signature.
	resp, body := do(t, mustRequest(t, http.MethodGet, ts.URL+"/metrics"))
	if resp.StatusCode != http.StatusOK || string(body) != "lathe_up 1\n" {
		t.Fatalf("GET /metrics: %s %q", resp.Status, body)
	}

	// The bucket "metrics" cannot be created: S3's answer for a name somebody else holds.
	client := ts.s3Client(testCreds)
	_, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("metrics")})
	var taken *types.BucketAlreadyExists
	if !errors.As(err, &taken) {
		t.Fatalf("CreateBucket metrics: %v, want BucketAlreadyExists", err)
	}
	if got := ts.s3.lastRequest(); got.Path != "" {
		t.Errorf("the S3 handler saw %s %s", got.Method, got.Path)
	}
	// Objects of other buckets whose keys say "metrics" are S3's as usual.
	if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("metrics"),
		Body: bytes.NewReader([]byte("x"))}); err != nil {
		t.Fatalf("PutObject data/metrics: %v", err)
	}

	// Observe hears every answer, with the API, operation and error type.
	sm := ts.sageMaker(testCreds)
	_, _ = sm.DescribeAutoMLJobV2(context.Background(), &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("missing")})
	mu.Lock()
	defer mu.Unlock()
	want := []RequestInfo{
		{API: "metrics", Status: 200},
		{API: "s3", Operation: "CreateBucket", Status: 409},
		{API: "s3", Operation: "PutObject", Status: 200},
		{API: "sagemaker", Operation: "DescribeAutoMLJobV2", Status: 400, ErrorType: "ResourceNotFound"},
	}
	if len(seen) != len(want) {
		t.Fatalf("observed %d requests, want %d: %+v", len(seen), len(want), seen)
	}
	for i, w := range want {
		got := seen[i]
		got.Duration = 0
		if got != w {
			t.Errorf("request %d observed as %+v, want %+v", i, got, w)
		}
	}
}

func TestS3OperationNames(t *testing.T) {
	cases := []struct {
		method, target string
		header         string // X-Amz-Copy-Source
		want           string
	}{
		{"GET", "/", "", "ListBuckets"},
		{"PUT", "/b", "", "CreateBucket"},
		{"HEAD", "/b", "", "HeadBucket"},
		{"DELETE", "/b", "", "DeleteBucket"},
		{"GET", "/b?list-type=2&prefix=a%2F", "", "ListObjectsV2"},
		{"GET", "/b?prefix=a", "", "ListObjects"},
		{"GET", "/b?uploads", "", "ListMultipartUploads"},
		{"GET", "/b?location", "", "GetBucketLocation"},
		{"POST", "/b?delete", "", "DeleteObjects"},
		{"PUT", "/b/k/with/slashes", "", "PutObject"},
		{"PUT", "/b/k", "/src/k", "CopyObject"},
		{"GET", "/b/k", "", "GetObject"},
		{"HEAD", "/b/k", "", "HeadObject"},
		{"DELETE", "/b/k", "", "DeleteObject"},
		{"POST", "/b/k?uploads", "", "CreateMultipartUpload"},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "", "UploadPart"},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "/src/k", "UploadPartCopy"},
		{"GET", "/b/k?uploadId=u", "", "ListParts"},
		{"POST", "/b/k?uploadId=u", "", "CompleteMultipartUpload"},
		{"DELETE", "/b/k?uploadId=u", "", "AbortMultipartUpload"},
		{"GET", "/b/k?tagging", "", "GetObjectTagging"},
		{"GET", "/b/k?acl", "", ""},
		{"PATCH", "/b/k", "", ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, nil)
		if c.header != "" {
			r.Header.Set("X-Amz-Copy-Source", c.header)
		}
		if got := s3Operation(r); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.target, got, c.want)
		}
	}
}
