package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// FuzzSageMakerFrontDoor sends signed JSON 1.1 requests with arbitrary targets and bodies: no client
// input may produce a 5xx, and every answer is a JSON object with a request id.
//
//	go test -fuzz FuzzSageMakerFrontDoor ./internal/server
func FuzzSageMakerFrontDoor(f *testing.F) {
	h, err := New(Config{Credentials: testCreds, SageMaker: testOperations(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("SageMaker.ListAutoMLJobs", []byte(`{"MaxResults":5,"NameContains":"x"}`))
	f.Add("SageMaker.DescribeAutoMLJobV2", []byte(`{"AutoMLJobName":"missing"}`))
	f.Add("SageMaker.DescribeAutoMLJobV2", []byte(`{"AutoMLJobName":["array"]}`))
	f.Add("SageMaker.StopAutoMLJob", []byte(``))
	f.Add("SageMaker.", []byte(`{`))
	f.Add("SageMaker.ListAutoMLJobs", []byte("{\"a\":\"\xff\"}"))
	f.Add("SageMaker.ListAutoMLJobs", []byte(`{} trailing`))
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: testCreds.SecretAccessKey}
	f.Fuzz(func(t *testing.T, target string, body []byte) {
		if target == "SageMaker.DescribeAutoMLJobV2" && bytes.Contains(body, []byte("boom")) || bytes.Contains(body, []byte("panic")) {
			return // the test table's deliberate server faults
		}
		r := httptest.NewRequest("POST", "http://lathe.test/", bytes.NewReader(body))
		r.Header.Set("Content-Type", jsonContentType)
		r.Header["X-Amz-Target"] = []string{target}
		if err := signer.SignHTTP(context.Background(), creds, r, sha256Hex(body), "sagemaker", testRegion, time.Now()); err != nil {
			t.Skip(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for target %q body %q: %s", w.Code, target, body, w.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer %q is not a JSON object: %v", w.Body, err)
		}
		if w.Code != http.StatusOK && (out["__type"] == nil || w.Header().Get("X-Amzn-ErrorType") == "") {
			t.Fatalf("error answer without a code: %d %s", w.Code, w.Body)
		}
		if w.Header().Get("x-amzn-RequestId") == "" {
			t.Fatalf("no request id")
		}
	})
}
