package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"
)

func TestSageMakerGoSDKParsesOutput(t *testing.T) {
	ts := startServer(t, false)
	out, err := ts.sageMaker(testCreds).ListAutoMLJobs(context.Background(), &sagemaker.ListAutoMLJobsInput{
		NameContains: aws.String("llama"), NextToken: aws.String("page2"), MaxResults: aws.Int32(7)})
	if err != nil {
		t.Fatalf("ListAutoMLJobs: %v", err)
	}
	if len(out.AutoMLJobSummaries) != 1 {
		t.Fatalf("got %d summaries", len(out.AutoMLJobSummaries))
	}
	s := out.AutoMLJobSummaries[0]
	if aws.ToString(s.AutoMLJobName) != "llama-job" || s.AutoMLJobStatus != types.AutoMLJobStatusCompleted ||
		!s.CreationTime.Equal(time.Unix(1700000000, 500_000_000)) || aws.ToString(out.NextToken) != "after-page2" {
		t.Errorf("parsed %+v, next token %q", s, aws.ToString(out.NextToken))
	}
	if id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); !ok || len(id) != 36 {
		t.Errorf("request id %q, %v", id, ok)
	}
	if _, err := ts.sageMaker(testCreds).StopAutoMLJob(context.Background(), &sagemaker.StopAutoMLJobInput{AutoMLJobName: aws.String("x")}); err != nil {
		t.Errorf("StopAutoMLJob (nil output): %v", err)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, "op=ListAutoMLJobs") || !strings.Contains(logs, "status=200") {
		t.Errorf("access log lacks the operation and status:\n%s", logs)
	}
}

func TestSageMakerGoSDKErrors(t *testing.T) {
	ts := startServer(t, false)
	cases := []struct {
		name, job     string
		creds         Credentials
		clockOffset   time.Duration
		status        int
		code, inMsg   string
		typedNotFound bool
	}{
		{name: "modeled error becomes a type", job: "missing", status: 400, code: "ResourceNotFound", inMsg: "Could not find AutoML job with name missing.", typedNotFound: true},
		{name: "validation error keeps code and message", job: "bad_name!", status: 400, code: "ValidationException", inMsg: "at 'autoMLJobName' failed to satisfy constraint"},
		{name: "internal error hides details", job: "boom", status: 500, code: "InternalFailure", inMsg: "internal error"},
		{name: "handler panic is a 500", job: "panic", status: 500, code: "InternalFailure", inMsg: "internal error"},
		{name: "wrong secret", job: "ok", creds: Credentials{testCreds.AccessKeyID, "not-the-secret"}, status: 403, code: "InvalidSignatureException", inMsg: "does not match the signature you provided"},
		{name: "unknown access key", job: "ok", creds: Credentials{"AKIAUNKNOWN000000000", "whatever"}, status: 403, code: "UnrecognizedClientException", inMsg: "security token included in the request is invalid"},
		{name: "unsigned request", job: "ok", creds: Credentials{}, status: 403, code: "MissingAuthenticationToken", inMsg: "Missing Authentication Token"},
		{name: "server clock 20 minutes ahead", job: "ok", creds: testCreds, clockOffset: 20 * time.Minute, status: 403, code: "InvalidSignatureException", inMsg: "Signature expired"},
		{name: "server clock 20 minutes behind", job: "ok", creds: testCreds, clockOffset: -20 * time.Minute, status: 403, code: "InvalidSignatureException", inMsg: "Signature not yet current"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts.offset.Store(int64(c.clockOffset))
			defer ts.offset.Store(0)
			creds := c.creds
			if creds == (Credentials{}) && c.code != "MissingAuthenticationToken" {
				creds = testCreds
			}
			_, err := ts.sageMaker(creds).DescribeAutoMLJobV2(context.Background(), &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String(c.job)})
			if err == nil {
				t.Fatal("call succeeded")
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("%v is not an API error", err)
			}
			if apiErr.ErrorCode() != c.code || !strings.Contains(apiErr.ErrorMessage(), c.inMsg) {
				t.Errorf("got %s: %q; want %s containing %q", apiErr.ErrorCode(), apiErr.ErrorMessage(), c.code, c.inMsg)
			}
			var respErr *awshttp.ResponseError
			if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != c.status {
				t.Errorf("status: %v, want %d", err, c.status)
			}
			var nf *types.ResourceNotFound
			if errors.As(err, &nf) != c.typedNotFound {
				t.Errorf("errors.As(*types.ResourceNotFound) = %v, want %v", !c.typedNotFound, c.typedNotFound)
			}
			var generic *smithy.GenericAPIError
			if !c.typedNotFound && !errors.As(err, &generic) {
				t.Errorf("%T is not a smithy.GenericAPIError", apiErr)
			}
			if strings.Contains(apiErr.ErrorMessage(), "secret internal detail") {
				t.Errorf("internal error leaked: %q", apiErr.ErrorMessage())
			}
		})
	}
	// The server survived the panic and still answers.
	if _, err := ts.sageMaker(testCreds).DescribeAutoMLJobV2(context.Background(), &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("ok")}); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
	if !strings.Contains(ts.logs.String(), "secret internal detail") {
		t.Errorf("the real internal error was not logged")
	}
}

// jsonCall sends a signed JSON 1.1 request with an arbitrary body and target.
func jsonCall(t *testing.T, ts *testServer, target string, body []byte) (*http.Response, map[string]string) {
	t.Helper()
	h := http.Header{"Content-Type": {jsonContentType}}
	if target != "" {
		h.Set("X-Amz-Target", target)
	}
	resp, b := do(t, signedRequest(t, "POST", ts.URL+"/", "sagemaker", h, body, "", time.Now()))
	var out map[string]string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("response %q is not a JSON object: %v", b, err)
	}
	return resp, out
}

func TestSageMakerFrontDoorRejectsBadRequests(t *testing.T) {
	ts := startServer(t, false)
	cases := []struct {
		name, target string
		body         []byte
		status       int
		code         string
	}{
		{"malformed JSON", "SageMaker.ListAutoMLJobs", []byte(`{"MaxResults": `), 400, "SerializationException"},
		{"JSON array", "SageMaker.ListAutoMLJobs", []byte(`[]`), 400, "SerializationException"},
		{"JSON string", "SageMaker.ListAutoMLJobs", []byte(`"x"`), 400, "SerializationException"},
		{"two objects", "SageMaker.ListAutoMLJobs", []byte(`{}{}`), 400, "SerializationException"},
		{"unknown operation", "SageMaker.CreateTrainingJob", []byte(`{}`), 400, "UnknownOperationException"},
		{"other service's target", "AmazonS3.ListBuckets", []byte(`{}`), 400, "UnknownOperationException"},
		{"no target", "", []byte(`{}`), 400, "UnknownOperationException"},
		{"body over 1 MiB", "SageMaker.ListAutoMLJobs", append(append([]byte(`{"NameContains":"`), bytes.Repeat([]byte("a"), MaxSageMakerBody)...), `"}`...), 413, "RequestEntityTooLargeException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, out := jsonCall(t, ts, c.target, c.body)
			if resp.StatusCode != c.status || out["__type"] != c.code || resp.Header.Get("X-Amzn-ErrorType") != c.code || out["message"] == "" {
				t.Errorf("got %d %v (X-Amzn-ErrorType %q), want %d %s", resp.StatusCode, out, resp.Header.Get("X-Amzn-ErrorType"), c.status, c.code)
			}
			if resp.Header.Get("x-amzn-RequestId") == "" {
				t.Errorf("no x-amzn-RequestId")
			}
		})
	}
	resp, out := jsonCall(t, ts, "SageMaker.StopAutoMLJob", []byte(`{"AutoMLJobName":"x"}`))
	if resp.StatusCode != 200 || len(out) != 0 || resp.Header.Get("Content-Type") != jsonContentType {
		t.Errorf("nil output: %d %v %q, want 200 {}", resp.StatusCode, out, resp.Header.Get("Content-Type"))
	}
}

// countingReader counts what the server read of a body.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestOversizedBodyIsRefusedBeforeItIsRead(t *testing.T) {
	h, err := New(Config{Credentials: testCreds, SageMaker: testOperations(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path    string
		contentLength int64
		maxRead       int64
	}{
		{"declared length", "/", 100 << 20, 0},
		{"unknown length", "/", -1, MaxSageMakerBody + 1},
		{"runtime declared length", "/endpoints/e1/invocations", 100 << 20, 0},
		{"runtime unknown length", "/endpoints/e1/invocations", -1, MaxRuntimeBody + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := &countingReader{r: io.LimitReader(zeros{}, 100<<20)}
			r := httptest.NewRequest("POST", c.path, body)
			r.ContentLength = c.contentLength
			r.Header.Set("Content-Type", jsonContentType)
			r.Header.Set("X-Amz-Target", "SageMaker.ListAutoMLJobs")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413: %s", w.Code, w.Body)
			}
			if body.n > c.maxRead {
				t.Errorf("server read %d bytes of the body, at most %d expected", body.n, c.maxRead)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestHealth(t *testing.T) {
	ts := startServer(t, false)
	ts.ready.Store(false)
	resp, body := do(t, mustRequest(t, "GET", ts.URL+"/_lathe/health"))
	if resp.StatusCode != 503 {
		t.Errorf("before ready: %d %s", resp.StatusCode, body)
	}
	ts.ready.Store(true)
	resp, body = do(t, mustRequest(t, "GET", ts.URL+"/_lathe/health"))
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` || resp.Header.Get("x-amzn-RequestId") == "" {
		t.Errorf("when ready: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, mustRequest(t, "GET", ts.URL+"/_lathe/other"))
	if resp.StatusCode != 404 {
		t.Errorf("/_lathe/other: %d", resp.StatusCode)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRuntimeAndOpenAIRouting(t *testing.T) {
	var gotBody, gotPath string
	runtime := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotPath = string(b), r.URL.Path
		if Caller(r.Context()) == nil {
			t.Errorf("runtime handler has no caller in its context")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `[{"generated_text":"hi"}]`)
	})
	openai := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	ts := startServer(t, false, func(c *Config) { c.Runtime, c.OpenAI = runtime, openai })

	payload := []byte(`{"inputs":"hello"}`)
	resp, body := do(t, signedRequest(t, "POST", ts.URL+"/endpoints/my-endpoint/invocations", "sagemaker",
		http.Header{"Content-Type": {"application/json"}}, payload, "", time.Now()))
	if resp.StatusCode != 200 || string(body) != `[{"generated_text":"hi"}]` || gotBody != string(payload) || gotPath != "/endpoints/my-endpoint/invocations" {
		t.Errorf("invocations: %d %s; handler saw %q at %q", resp.StatusCode, body, gotBody, gotPath)
	}
	// Unsigned runtime calls are refused before the handler.
	r, _ := http.NewRequest("POST", ts.URL+"/endpoints/my-endpoint/invocations", strings.NewReader("{}"))
	resp, body = do(t, r)
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationToken" {
		t.Errorf("unsigned invocation: %d %s", resp.StatusCode, body)
	}
	// A bucket called "endpoints" still belongs to S3 when the request is signed for s3.
	resp, body = do(t, signedRequest(t, "POST", ts.URL+"/endpoints/my-endpoint/invocations", "s3",
		http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}, nil, "UNSIGNED-PAYLOAD", time.Now()))
	if resp.StatusCode != http.StatusMethodNotAllowed || ts.s3.lastRequest().Path != "" && ts.s3.lastRequest().Path != "/endpoints/my-endpoint/invocations" {
		t.Errorf("s3-signed POST to /endpoints/...: %d %s", resp.StatusCode, body)
	}
	// /v1/ goes to the OpenAI handler without a SigV4 check.
	resp, _ = do(t, mustRequest(t, "GET", ts.URL+"/v1/models"))
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("/v1/models: %d", resp.StatusCode)
	}

	// Without handlers: JSON 404s.
	bare := startServer(t, false)
	resp, body = do(t, signedRequest(t, "POST", bare.URL+"/endpoints/e/invocations", "sagemaker", nil, payload, "", time.Now()))
	if resp.StatusCode != 404 || !json.Valid(body) {
		t.Errorf("runtime without handler: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, mustRequest(t, "GET", bare.URL+"/v1/models"))
	if resp.StatusCode != 404 || !json.Valid(body) {
		t.Errorf("openai without handler: %d %s", resp.StatusCode, body)
	}
}

func TestRuntimeGoSDKInvokeEndpoint(t *testing.T) {
	var seen string
	runtime := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = r.URL.Path + " " + r.Header.Get("Content-Type") + " " + string(b)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-Amzn-Invoked-Production-Variant", "AllTraffic")
		_, _ = io.WriteString(w, `[{"generated_text":"Once upon a time"}]`)
	})
	ts := startServer(t, false, func(c *Config) { c.Runtime = runtime })
	client := sagemakerruntime.New(sagemakerruntime.Options{
		Region: testRegion, BaseEndpoint: aws.String(ts.URL), Credentials: staticCreds(testCreds),
		HTTPClient: ts.sdkHTTPClient(), Retryer: aws.NopRetryer{},
	})
	out, err := client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("stories-ft"), ContentType: aws.String("application/json"),
		Body: []byte(`{"inputs":"Once","parameters":{"max_new_tokens":8}}`)})
	if err != nil {
		t.Fatalf("InvokeEndpoint: %v", err)
	}
	if string(out.Body) != `[{"generated_text":"Once upon a time"}]` || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" {
		t.Errorf("output %q variant %q", out.Body, aws.ToString(out.InvokedProductionVariant))
	}
	if seen != `/endpoints/stories-ft/invocations application/json {"inputs":"Once","parameters":{"max_new_tokens":8}}` {
		t.Errorf("handler saw %q", seen)
	}
	_, err = client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("stories-ft"), Body: bytes.Repeat([]byte("x"), MaxRuntimeBody+1)})
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized invocation: %v", err)
	}
}
