package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/lathe-ml/lathe/internal/audit"
)

func (ks *kmsServer) auditEvents(t *testing.T) map[string]audit.Event {
	t.Helper()
	f, err := os.Open(filepath.Join(ks.auditDir, audit.File))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]audit.Event{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out[e.RequestID] = e
	}
	return out
}

// Every request leaves one line saying who did what to which resource from where, and whether
// IAM allowed it and by which statement.
func TestAuditLogHasOneLinePerRequest(t *testing.T) {
	ks := startKMSServer(t)
	ctx := context.Background()
	root := ks.s3(rootCreds)
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("logs")}); err != nil {
		t.Fatal(err)
	}
	reader := ks.s3(ks.newUser(t, "reader", `{"Version":"2012-10-17","Statement":[{"Sid":"ReadLogs","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::logs"},
	  {"Sid":"NoSecrets","Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::logs/secret*"}]}`))
	list, err := reader.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("logs"), Prefix: aws.String("a/")})
	if err != nil {
		t.Fatal(err)
	}
	// The front door's request id (x-amzn-RequestId; the embedded S3 sends its own x-amz-request-id).
	listID := awsmiddleware.GetRawResponse(list.ResultMetadata).(*smithyhttp.Response).Header.Get("x-amzn-RequestId")
	_, err = reader.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("logs"), Key: aws.String("secret.txt")})
	wantCode(t, err, "AccessDenied", "")
	// A signature an hour old is refused before anyone is authenticated.
	if resp, _ := do(t, signedRequest(t, http.MethodGet, ks.URL+"/logs", "s3", nil, nil, "UNSIGNED-PAYLOAD", time.Now().Add(-time.Hour))); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a skewed signature: %d", resp.StatusCode)
	}

	events := ks.auditEvents(t)
	var create, listed, denied, badSig *audit.Event
	for _, e := range events {
		e := e
		switch {
		case e.Action == "s3:CreateBucket":
			create = &e
		case e.Action == "s3:ListBucket" && e.Allowed:
			listed = &e
		case e.Action == "s3:GetObject" && !e.Allowed:
			denied = &e
		case e.Decision == "Unauthenticated":
			badSig = &e
		}
	}
	user := "arn:aws:iam::" + testAccount + ":user/reader"
	switch {
	case create == nil || create.Principal != "arn:aws:iam::"+testAccount+":root" || create.Decision != "Root" || !create.Allowed || create.SourceIP != "127.0.0.1":
		t.Fatalf("root's CreateBucket: %+v", create)
	case listed == nil || listed.Principal != user || listed.Resource != "arn:aws:s3:::logs" || listed.Decision != "Allow" ||
		listed.Statement != "ReadLogs" || listed.Policy != "user/reader/inline" || listed.RequestID != listID || listed.Status != 200:
		t.Fatalf("allowed ListBucket: %+v", listed)
	case denied == nil || denied.Principal != user || denied.Resource != "arn:aws:s3:::logs/secret.txt" || denied.Decision != "ExplicitDeny" ||
		denied.Statement != "NoSecrets" || denied.Status != http.StatusForbidden:
		t.Fatalf("denied GetObject: %+v", denied)
	case badSig == nil || badSig.Allowed || badSig.Principal != "":
		t.Fatalf("request with a bad signature: %+v", badSig)
	}
	if !strings.HasPrefix(badSig.AccessKey, "AKIA") {
		t.Fatalf("the refused request's access key: %+v", badSig)
	}
}
