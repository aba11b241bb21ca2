package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"

	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/console"
	"github.com/lathe-ml/lathe/internal/hubtest"
	"github.com/lathe-ml/lathe/internal/iam"
	iamsqlite "github.com/lathe-ml/lathe/internal/iam/sqlite"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/internal/s3api"
	"github.com/lathe-ml/lathe/internal/server"
	"github.com/lathe-ml/lathe/internal/store/storeopen"
)

const storiesGGUF = "../../../shared/models/stories260K.gguf"

var rootCreds = server.Credentials{AccessKeyID: "AKIACONSOLETEST00001", SecretAccessKey: "console/test/secret+key/0123456789abcdef"}

const (
	region  = "us-east-1"
	account = "111122223333"
)

// clock is the console's session clock, moved by the tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	url   string
	clock *clock
	cfg   aws.Config
}

// newEnv serves the front door as lathe serve does (SageMaker AutoML operations over SQLite, the
// embedded S3, IAM) with the console, on a random port.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := storeopen.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := automl.New(automl.Config{Store: st, Region: region, AccountID: account})
	if err != nil {
		t.Fatal(err)
	}
	iamStore, err := iamsqlite.Open(ctx, filepath.Join(dir, "iam.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iamStore.Close() })
	iamSvc, err := iam.New(iam.Config{Store: iamStore, AccountID: account, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	s3h, err := s3api.New(filepath.Join(dir, "s3"), logger)
	if err != nil {
		t.Fatal(err)
	}
	models, err := modelstore.Open(filepath.Join(dir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	// A local hub with Stories260K where the catalog says the real one is.
	hubDir := filepath.Join(dir, "hub", "ggml-org", "models", "tinyllamas")
	if err := os.MkdirAll(hubDir, 0o755); err != nil {
		t.Fatal(err)
	}
	gguf, err := os.ReadFile(storiesGGUF)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hubDir, "stories260K.gguf"), gguf, 0o644); err != nil {
		t.Fatal(err)
	}
	hub := httptest.NewServer(hubtest.Hub{Root: filepath.Join(dir, "hub")})
	t.Cleanup(hub.Close)
	clk := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	h, err := server.New(server.Config{Region: region, AccountID: account, Credentials: rootCreds,
		SageMaker: svc.Operations(), S3: s3h, IAM: iamSvc, Logger: logger,
		Console: console.Handler(console.Config{Region: region, AccountID: account, Logger: logger, Now: clk.Now,
			ModelStore: models, PullOptions: modelstore.PullOptions{Endpoint: hub.URL},
			IdleTimeout: time.Hour, MaxLifetime: 4 * time.Hour})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{url: srv.URL, clock: clk, cfg: aws.Config{Region: region, HTTPClient: srv.Client(), Retryer: func() aws.Retryer { return aws.NopRetryer{} },
		Credentials: credentials.NewStaticCredentialsProvider(rootCreds.AccessKeyID, rootCreds.SecretAccessKey, "")}}
}

func (e *env) s3Client(id, secret string) *s3.Client {
	cfg := e.cfg.Copy()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(e.url); o.UsePathStyle = true })
}

func (e *env) sageMaker(id, secret string) *sagemaker.Client {
	cfg := e.cfg.Copy()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(e.url) })
}

// browser is a client with a cookie jar, as a browser holds the session cookie.
type browser struct {
	t    *testing.T
	env  *env
	c    *http.Client
	csrf string
}

func (e *env) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, env: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the console's (the API's) error code and message.
func (a answer) errorCode() (string, string) {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Type, e.Message
}

func (b *browser) do(method, path string, body []byte, header map[string]string) answer {
	b.t.Helper()
	req, err := http.NewRequest(method, b.env.url+path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, data}
}

func (b *browser) signIn(id, secret string) answer {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"accessKeyId": id, "secretAccessKey": secret})
	a := b.do("POST", "/console/api/session", body, map[string]string{"Content-Type": "application/json"})
	if a.status == http.StatusOK {
		var s struct{ CSRFToken string }
		if err := json.Unmarshal(a.body, &s); err != nil {
			b.t.Fatal(err)
		}
		b.csrf = s.CSRFToken
	}
	return a
}

// call runs a SageMaker operation through the console, with the session's CSRF token.
func (b *browser) call(op, body string) answer {
	return b.do("POST", "/console/api/sagemaker/"+op, []byte(body), map[string]string{"Content-Type": "application/json", "X-CSRF-Token": b.csrf})
}

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, id, secret string
		status           int
		code             string
	}{
		{"a wrong secret is refused with the signature error", rootCreds.AccessKeyID, rootCreds.SecretAccessKey + "x", 401, "SignatureDoesNotMatch"},
		{"an unknown key is refused", "AKIANOSUCHKEY0000000", rootCreds.SecretAccessKey, 401, "InvalidClientTokenId"},
		{"an empty secret is refused before any call", rootCreds.AccessKeyID, "", 400, "ValidationException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := e.browser(t)
			a := b.signIn(c.id, c.secret)
			if code, msg := a.errorCode(); a.status != c.status || code != c.code {
				t.Fatalf("sign-in answered %d %s (%s), want %d %s", a.status, code, msg, c.status, c.code)
			}
			if len(a.header.Values("Set-Cookie")) != 0 {
				t.Errorf("a refused sign-in set a cookie: %v", a.header.Values("Set-Cookie"))
			}
			if a := b.do("GET", "/console/api/session", nil, nil); a.status != http.StatusUnauthorized {
				t.Errorf("after a refused sign-in GET session answered %d, want 401", a.status)
			}
		})
	}

	b := e.browser(t)
	a := b.signIn(rootCreds.AccessKeyID, rootCreds.SecretAccessKey)
	if a.status != http.StatusOK {
		t.Fatalf("root sign-in: %d %s", a.status, a.body)
	}
	cookie := a.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(string(a.body), rootCreds.SecretAccessKey) {
		t.Error("the sign-in answer carries the secret key")
	}
	var s struct {
		Arn       string
		CSRFToken string
	}
	if err := json.Unmarshal(b.do("GET", "/console/api/session", nil, nil).body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Arn != "arn:aws:iam::"+account+":root" || s.CSRFToken == "" {
		t.Errorf("session = %+v, want the root's ARN and a CSRF token", s)
	}
	if a := b.call("ListAutoMLJobs", "{}"); a.status != http.StatusOK {
		t.Fatalf("ListAutoMLJobs through the console: %d %s", a.status, a.body)
	}

	// Sign-out ends the session on the server: the old cookie no longer works.
	if a := b.do("DELETE", "/console/api/session", nil, map[string]string{"X-CSRF-Token": b.csrf}); a.status != http.StatusNoContent {
		t.Fatalf("sign-out: %d %s", a.status, a.body)
	}
	if a := b.call("ListAutoMLJobs", "{}"); a.status != http.StatusUnauthorized {
		t.Errorf("a call after sign-out answered %d %s, want 401", a.status, a.body)
	}
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	if a := b.signIn(rootCreds.AccessKeyID, rootCreds.SecretAccessKey); a.status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", a.status, a.body)
	}
	// Used every 50 minutes, a session outlives its one-hour idle timeout...
	for i := 0; i < 4; i++ {
		e.clock.Add(50 * time.Minute)
		if a := b.call("ListAutoMLJobs", "{}"); a.status != http.StatusOK {
			t.Fatalf("call %d, %v after sign-in: %d %s", i, time.Duration(i+1)*50*time.Minute, a.status, a.body)
		}
	}
	// ...but not its four-hour lifetime.
	e.clock.Add(50 * time.Minute)
	a := b.call("ListAutoMLJobs", "{}")
	if code, _ := a.errorCode(); a.status != http.StatusUnauthorized || code != "NotSignedIn" {
		t.Errorf("after 4h10m: %d %s, want 401 NotSignedIn", a.status, a.body)
	}

	// A session left idle for an hour has ended.
	if a := b.signIn(rootCreds.AccessKeyID, rootCreds.SecretAccessKey); a.status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", a.status, a.body)
	}
	e.clock.Add(59 * time.Minute)
	if a := b.do("GET", "/console/api/session", nil, nil); a.status != http.StatusOK {
		t.Fatalf("after 59 idle minutes: %d, want 200", a.status)
	}
	e.clock.Add(time.Hour)
	if a := b.do("GET", "/console/api/session", nil, nil); a.status != http.StatusUnauthorized {
		t.Errorf("after an idle hour: %d, want 401", a.status)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	if a := b.signIn(rootCreds.AccessKeyID, rootCreds.SecretAccessKey); a.status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", a.status, a.body)
	}
	create := `{"AutoMLJobName":"csrf-job","AutoMLJobInputDataConfig":[{"ChannelType":"training","ContentType":"text/csv;header=present",
		"DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/train/"}}}],"OutputDataConfig":{"S3OutputPath":"s3://b/out/"},
		"AutoMLProblemTypeConfig":{"TextGenerationJobConfig":{"BaseModelName":"Falcon7BInstruct"}},"RoleArn":"arn:aws:iam::111122223333:role/r"}`
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
	}{
		{"a job created without the token", "POST", "/console/api/sagemaker/CreateAutoMLJobV2", create, nil},
		{"a job created with another token", "POST", "/console/api/sagemaker/CreateAutoMLJobV2", create, map[string]string{"X-CSRF-Token": "not-the-token"}},
		{"a job created from another site, token and all", "POST", "/console/api/sagemaker/CreateAutoMLJobV2", create,
			map[string]string{"X-CSRF-Token": b.csrf, "Origin": "http://evil.example"}},
		{"a bucket created without the token", "PUT", "/console/api/s3/csrf-bucket", "", nil},
		{"sign-out without the token", "DELETE", "/console/api/session", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := b.do(c.method, c.path, []byte(c.body), c.header)
			if code, _ := a.errorCode(); a.status != http.StatusForbidden || code != "InvalidCSRFToken" {
				t.Errorf("%s %s: %d %s, want 403 InvalidCSRFToken", c.method, c.path, a.status, a.body)
			}
		})
	}
	// Nothing happened: no job, no bucket, and the session still works.
	jobs, err := e.sageMaker(rootCreds.AccessKeyID, rootCreds.SecretAccessKey).ListAutoMLJobs(context.Background(), &sagemaker.ListAutoMLJobsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.AutoMLJobSummaries) != 0 {
		t.Errorf("refused requests created %d jobs", len(jobs.AutoMLJobSummaries))
	}
	_, err = e.s3Client(rootCreds.AccessKeyID, rootCreds.SecretAccessKey).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("csrf-bucket")})
	if err == nil {
		t.Error("a refused request created the bucket")
	}
	if a := b.do("PUT", "/console/api/s3/csrf-bucket", nil, map[string]string{"X-CSRF-Token": b.csrf}); a.status != http.StatusOK {
		t.Errorf("with the token, CreateBucket: %d %s", a.status, a.body)
	}
}

// TestReadOnlyUser signs in as an IAM user with AWS's ReadOnlyAccess policy: reading works, the
// pages are told what is denied, and a create or an upload is refused in the API's own words.
func TestReadOnlyUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := awsiam.NewFromConfig(e.cfg, func(o *awsiam.Options) { o.BaseEndpoint = aws.String(e.url) })
	if _, err := admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("viewer")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("viewer"),
		PolicyArn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")}); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("viewer")})
	if err != nil {
		t.Fatal(err)
	}
	id, secret := *key.AccessKey.AccessKeyId, *key.AccessKey.SecretAccessKey
	if _, err := e.s3Client(rootCreds.AccessKeyID, rootCreds.SecretAccessKey).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}

	b := e.browser(t)
	a := b.signIn(id, secret)
	if a.status != http.StatusOK {
		t.Fatalf("viewer sign-in: %d %s", a.status, a.body)
	}
	var s struct{ Arn string }
	_ = json.Unmarshal(a.body, &s)
	if s.Arn != "arn:aws:iam::"+account+":user/viewer" {
		t.Errorf("session ARN %q, want the user's", s.Arn)
	}
	var perms map[string]bool
	if err := json.Unmarshal(b.do("GET", "/console/api/permissions", nil, nil).body, &perms); err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]bool{"sagemaker:CreateAutoMLJobV2": false, "sagemaker:StopAutoMLJob": false, "s3:PutObject": false, "s3:DeleteObject": false} {
		if perms[action] != want {
			t.Errorf("permissions[%s] = %v, want %v", action, perms[action], want)
		}
	}
	if a := b.call("ListAutoMLJobs", "{}"); a.status != http.StatusOK {
		t.Errorf("ListAutoMLJobs as the viewer: %d %s", a.status, a.body)
	}
	if a := b.do("GET", "/console/api/s3/data?list-type=2", nil, nil); a.status != http.StatusOK {
		t.Errorf("ListObjectsV2 as the viewer: %d %s", a.status, a.body)
	}

	// The console's refusal is the API's: the same code and message an SDK gets for the same call.
	create := `{"AutoMLJobName":"denied","AutoMLJobInputDataConfig":[{"ChannelType":"training",
		"DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://data/train/"}}}],"OutputDataConfig":{"S3OutputPath":"s3://data/out/"},
		"AutoMLProblemTypeConfig":{"TextGenerationJobConfig":{}},"RoleArn":"arn:aws:iam::111122223333:role/r"}`
	a = b.call("CreateAutoMLJobV2", create)
	code, msg := a.errorCode()
	if a.status != http.StatusBadRequest || code != "AccessDeniedException" {
		t.Fatalf("CreateAutoMLJobV2 as the viewer: %d %s, want 400 AccessDeniedException", a.status, a.body)
	}
	_, err = e.sageMaker(id, secret).CreateAutoMLJobV2(ctx, createInput())
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code || apiErr.ErrorMessage() != msg {
		t.Errorf("the SDK got %v; the console got %s: %s", err, code, msg)
	}
	if !strings.Contains(msg, "user/viewer") || !strings.Contains(msg, "sagemaker:CreateAutoMLJobV2") {
		t.Errorf("denial message %q does not name the user and the action", msg)
	}

	a = b.do("PUT", "/console/api/s3/data/train/x.csv", []byte("input,output\na,b\n"), map[string]string{"X-CSRF-Token": b.csrf})
	if code, _ := a.errorCode(); a.status != http.StatusForbidden || code != "AccessDenied" {
		t.Errorf("PutObject as the viewer: %d %s, want 403 AccessDenied", a.status, a.body)
	}
}

// createInput is the console test's create request in the SDK's shapes.
func createInput() *sagemaker.CreateAutoMLJobV2Input {
	return &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String("denied"),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{ChannelType: types.AutoMLChannelTypeTraining,
			DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix, S3Uri: aws.String("s3://data/train/")}}}},
		OutputDataConfig:        &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://data/out/")},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{}},
		RoleArn:                 aws.String("arn:aws:iam::111122223333:role/r"),
	}
}

// TestRoot: a browser opening / is sent to the console; an SDK's signed GET / is still S3's
// ListBuckets, and an unsigned non-browser GET / still gets S3's answer.
func TestRoot(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	a := b.do("GET", "/", nil, map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
	if a.status != http.StatusFound || a.header.Get("Location") != "/console/" {
		t.Errorf("browser GET /: %d Location %q, want 302 /console/", a.status, a.header.Get("Location"))
	}
	a = b.do("GET", "/console/", nil, nil)
	if a.status != http.StatusOK || !strings.Contains(string(a.body), "/console/static/app.js") {
		t.Errorf("GET /console/: %d", a.status)
	}
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("console page CSP %q", csp)
	}
	ctx := context.Background()
	c := e.s3Client(rootCreds.AccessKeyID, rootCreds.SecretAccessKey)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("console")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(out.Buckets) != 1 {
		t.Fatalf("ListBuckets with the SDK: %v %v", out, err)
	}
	// A bucket named "console" stays S3's for signed requests.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("console"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("PutObject into the bucket console: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("console"), Key: aws.String("k")}); err != nil {
		t.Fatalf("HeadObject in the bucket console: %v", err)
	}
	a = b.do("GET", "/", nil, nil)
	if a.status != http.StatusForbidden || !strings.Contains(string(a.body), "<Error>") {
		t.Errorf("unsigned GET / without Accept: text/html: %d %s, want S3's 403", a.status, a.body)
	}
}

// TestObjects: upload, list, download and delete through the console, with the SDK seeing the same
// bytes under the same key (spaces and pluses included).
func TestObjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.s3Client(rootCreds.AccessKeyID, rootCreds.SecretAccessKey)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("files")}); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	if a := b.signIn(rootCreds.AccessKeyID, rootCreds.SecretAccessKey); a.status != http.StatusOK {
		t.Fatal(a.status)
	}
	key := "my data/a+b é.csv"
	data := []byte("input,output\nhello,world\n")
	path := "/console/api/s3/files/" + strings.ReplaceAll(url.PathEscape(key), "%2F", "/")
	if a := b.do("PUT", path, data, map[string]string{"X-CSRF-Token": b.csrf, "Content-Type": "text/csv"}); a.status != http.StatusOK {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("files"), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("the SDK reading the upload: %v", err)
	}
	sdkBytes, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(sdkBytes, data) {
		t.Errorf("the SDK read %q, want %q", sdkBytes, data)
	}
	a := b.do("GET", path+"?download=1", nil, nil)
	if a.status != http.StatusOK || !bytes.Equal(a.body, data) || !strings.HasPrefix(a.header.Get("Content-Disposition"), "attachment") {
		t.Errorf("download: %d %q %q", a.status, a.body, a.header.Get("Content-Disposition"))
	}
	if a := b.do("DELETE", path, nil, map[string]string{"X-CSRF-Token": b.csrf}); a.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", a.status, a.body)
	}
	a = b.do("GET", path, nil, nil)
	if code, _ := a.errorCode(); a.status != http.StatusNotFound || code != "NoSuchKey" {
		t.Errorf("after delete: %d %s, want 404 NoSuchKey", a.status, a.body)
	}
}

// modelRow returns the Models page's row for name.
func (b *browser) modelRow(name string) (console.Model, bool) {
	b.t.Helper()
	var out struct{ Models []console.Model }
	if err := json.Unmarshal(b.do("GET", "/console/api/models", nil, nil).body, &out); err != nil {
		b.t.Fatal(err)
	}
	for _, m := range out.Models {
		if m.Name == name {
			return m, true
		}
	}
	return console.Model{}, false
}

// waitInStore polls the Models page until name is in the store, failing on a failed transfer.
func (b *browser) waitInStore(name string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, ok := b.modelRow(name)
		if ok && m.InStore && m.Transfer == nil {
			return
		}
		if ok && m.Transfer != nil && m.Transfer.State == "failed" {
			b.t.Fatalf("%s: %s failed: %s", name, m.Transfer.Kind, m.Transfer.Error)
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s is not in the store after 60 s: %+v", name, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestModels: the root pulls a catalog model from the hub and imports a GGUF file from a bucket;
// an IAM user, even an administrator, may do neither (the store has no IAM actions).
func TestModels(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser(t)
	if a := b.signIn(rootCreds.AccessKeyID, rootCreds.SecretAccessKey); a.status != http.StatusOK {
		t.Fatal(a.status)
	}
	post := func(b *browser, path, body string) answer {
		return b.do("POST", path, []byte(body), map[string]string{"Content-Type": "application/json", "X-CSRF-Token": b.csrf})
	}
	if m, ok := b.modelRow("Stories260K"); !ok || m.InStore || !m.Runnable || m.Family != "llama" {
		t.Fatalf("before the pull, Stories260K is %+v", m)
	}
	if a := post(b, "/console/api/models/pull", `{"name":"Stories260K"}`); a.status != http.StatusAccepted {
		t.Fatalf("pull: %d %s", a.status, a.body)
	}
	b.waitInStore("Stories260K")
	if a := post(b, "/console/api/models/pull", `{"name":"NoSuchModel"}`); a.status != http.StatusBadRequest {
		t.Errorf("pull of an unknown name: %d %s", a.status, a.body)
	}

	c := e.s3Client(rootCreds.AccessKeyID, rootCreds.SecretAccessKey)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	gguf, err := os.ReadFile(storiesGGUF)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("tiny/stories.gguf"), Body: bytes.NewReader(gguf)}); err != nil {
		t.Fatal(err)
	}
	if a := post(b, "/console/api/models/import", `{"s3Uri":"s3://models/tiny/missing.gguf","name":"Missing"}`); a.status != http.StatusNotFound {
		t.Errorf("import of a missing object: %d %s, want S3's 404", a.status, a.body)
	}
	if a := post(b, "/console/api/models/import", `{"s3Uri":"s3://models/tiny/stories.gguf","name":"MyStories"}`); a.status != http.StatusAccepted {
		t.Fatalf("import: %d %s", a.status, a.body)
	}
	b.waitInStore("MyStories")
	if m, _ := b.modelRow("MyStories"); m.Family != "llama" || !m.Runnable {
		t.Errorf("the imported model reads %+v", m)
	}

	admin := awsiam.NewFromConfig(e.cfg, func(o *awsiam.Options) { o.BaseEndpoint = aws.String(e.url) })
	if _, err := admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("admin")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("admin"),
		PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("admin")})
	if err != nil {
		t.Fatal(err)
	}
	u := e.browser(t)
	if a := u.signIn(*key.AccessKey.AccessKeyId, *key.AccessKey.SecretAccessKey); a.status != http.StatusOK {
		t.Fatal(a.status)
	}
	for _, path := range []string{"/console/api/models/pull", "/console/api/models/import"} {
		a := post(u, path, `{"name":"SmolLM2-135M","s3Uri":"s3://models/tiny/stories.gguf"}`)
		if code, _ := a.errorCode(); a.status != http.StatusForbidden || code != "AccessDeniedException" {
			t.Errorf("%s as an IAM user: %d %s, want 403 AccessDeniedException", path, a.status, a.body)
		}
	}
}
