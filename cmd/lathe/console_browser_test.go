package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"

	"github.com/lathe-ml/lathe/internal/client"
)

const (
	consoleTestAccessKey = "AKIACONSOLEBROWSER01"
	consoleTestSecretKey = "console/browser/secret/0123456789abcdefgh"
)

// chromiumPath finds Debian's chromium (or another Chrome). Without one the test is skipped, except
// under CI=true, where a missing browser is a failure: CI must install it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("LATHE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium on PATH for the console's browser test: apt-get install chromium (or set LATHE_CHROMIUM)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startConsoleServe runs `lathe serve` in-process with known root keys and Stories260K in its model
// store, and returns its URL.
func startConsoleServe(t *testing.T) string {
	t.Helper()
	t.Setenv("LATHE_ROOT_ACCESS_KEY_ID", consoleTestAccessKey)
	t.Setenv("LATHE_ROOT_SECRET_ACCESS_KEY", consoleTestSecretKey)
	t.Setenv("LATHE_S3_ENDPOINT", "")
	dataDir := t.TempDir()
	if _, err := runModels(t, "import", "../../../shared/models/stories260K.gguf", "--name", "Stories260K", "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cmd := serveCommand()
	cmd.SetArgs([]string{"--addr", addr, "--data-dir", dataDir})
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("lathe serve: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("lathe serve did not stop within 60 s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/_lathe/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("lathe serve exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("lathe serve not healthy within 60 s")
		}
	}
}

// TestConsoleInBrowser drives the console in headless Chromium against a real lathe serve: a wrong
// key cannot sign in; the root signs in, makes a bucket, uploads a CSV from the create form and
// creates a Stories260K job that deploys an endpoint; the job reaches Completed with one point of
// the loss curve per logged step and the seven metrics; the endpoint's playground streams an
// answer; a read-only IAM user sees no create button and is refused with the API's message.
// Screenshots of each page go to LATHE_CONSOLE_SCREENSHOTS when it names a folder.
func TestConsoleInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	base := startConsoleServe(t)
	shots := os.Getenv("LATHE_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	// A small training set (from the quickstart's) so that the job trains in seconds.
	csvPath := filepath.Join(t.TempDir(), "stories.csv")
	writeHead(t, "../../examples/data/train.csv", csvPath, 81)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	defer cancelBrowser()
	// The first action starts the browser under a context without a deadline (a deadline there
	// would bound the browser's life); the rest run under one.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 12*time.Minute)
	defer cancel()
	b := &page{t: t, ctx: ctx}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	shot := func(name string) {
		t.Helper()
		png := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(id, secret string) {
		t.Helper()
		b.do("sign in as "+id, chromedp.WaitVisible(css("#akid")),
			chromedp.SetValue(css("#akid"), id), chromedp.SetValue(css("#secret"), secret),
			chromedp.Click(css("#signin")))
	}

	// A browser opening / lands on the sign-in page; a wrong secret is refused in the API's words.
	b.do("open /", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#signin-form")))
	if loc := run(b, "location", chromedp.Location()); !strings.HasPrefix(loc, base+"/console/") {
		t.Errorf("/ led the browser to %s, want /console/", loc)
	}
	shot("signin")
	signIn(consoleTestAccessKey, consoleTestSecretKey+"x")
	b.do("wrong key refused", chromedp.WaitVisible(css("#signin-form .alert")))
	if refusal := b.text("#signin-form .alert"); !strings.Contains(refusal, "SignatureDoesNotMatch") {
		t.Errorf("a wrong secret showed %q, want SignatureDoesNotMatch", refusal)
	}

	signIn(consoleTestAccessKey, consoleTestSecretKey)
	b.do("jobs page", chromedp.WaitVisible(css("#jobs")))
	stored := run(b, "storage", chromedp.Evaluate[string](`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie`))
	if strings.Contains(stored, consoleTestSecretKey) || strings.Contains(stored, "lathe_console") {
		t.Errorf("the page's script can read %q", stored)
	}

	// A bucket from the Buckets page, then the job from the form with the CSV uploaded into it.
	b.do("create bucket", chromedp.Navigate(base+"/console/#/buckets"), chromedp.WaitVisible(css("#new-bucket")),
		chromedp.SetValue(css("#new-bucket"), "data"), chromedp.Click(css("#create-bucket button")),
		chromedp.WaitVisible(css(`#buckets a[href="#/buckets/data/"]`)))
	b.do("create form", chromedp.Navigate(base+"/console/#/jobs/new"), chromedp.WaitVisible(css("#create-job")),
		chromedp.WaitReady(css(`#base-model option[value="Stories260K"]`)))
	// The API's own validation message for a bad name comes back to the form.
	b.do("bad name", chromedp.SetValue(css("#job-name"), "bad_name!"), chromedp.SetValue(css("#output-path"), "s3://data/output/"),
		chromedp.SetValue(css("#train-uri"), "s3://data/train/"), chromedp.Click(css("#create")),
		chromedp.WaitVisible(css("#create-errors .alert")))
	if invalid := b.text("#create-errors .alert"); !strings.Contains(invalid, "ValidationException") || !strings.Contains(invalid, "autoMLJobName") {
		t.Errorf("a bad name showed %q, want the API's ValidationException naming autoMLJobName", invalid)
	}
	const job, endpoint = "console-stories", "console-stories"
	for _, f := range []struct{ sel, value string }{
		{"#job-name", job}, {"#upload-bucket", "data"}, {"#val-fraction", "0.2"},
		{"#base-model", "Stories260K"}, {"#hp-epochCount", "2"}, {"#hp-batchSize", "8"}, {"#hp-learningRate", "0.002"},
		{"#hp-learningRateWarmupSteps", "2"}, {"#endpoint-name", endpoint},
	} {
		b.do("set "+f.sel, chromedp.SetValue(css(f.sel), f.value))
	}
	b.do("choose the CSV and deploy", chromedp.Clear(css("#train-uri")), chromedp.SetUploadFiles(css("#upload-file"), []string{csvPath}), chromedp.Click(css("#deploy")))
	// SetValue fires no input event; the form's change handler redraws the request preview.
	run(b, "preview", chromedp.Evaluate[bool](`document.querySelector('#create-job').dispatchEvent(new Event('change'))`))
	if cli := b.text("#request-cli"); !strings.Contains(cli, "aws sagemaker create-auto-ml-job-v2") || !strings.Contains(cli, `"AutoMLJobName":"`+job+`"`) {
		t.Errorf("the CLI preview reads %q", cli)
	}
	shot("create-job")
	b.do("create", chromedp.Click(css("#create")), chromedp.WaitVisible(css("#job-status")))

	// The detail page polls until the job ends.
	deadline := time.Now().Add(8 * time.Minute)
	for {
		status := b.text("#job-status")
		if status == "Completed" {
			break
		}
		if status == "Failed" || status == "Stopped" {
			t.Fatalf("the job ended %s: %s", status, run(b, "failure", chromedp.Evaluate[string](`(document.querySelector('#failure-reason') || {}).textContent || ''`)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job is still %s after 8 minutes", status)
		}
		time.Sleep(time.Second)
	}
	b.do("metrics shown", chromedp.WaitVisible(css("#metrics-table")), chromedp.WaitVisible(css("#samples-table")),
		chromedp.WaitVisible(css("#artifacts-table")))

	// One point per logged step: the page's curve against the log the job wrote.
	steps := loggedSteps(t, base, "output/"+job+"/training-log.jsonl")
	if steps == 0 {
		t.Fatal("the training log has no steps")
	}
	run(b, "loss curve", chromedp.Poll[bool](fmt.Sprintf(`(() => { const s = document.querySelector('#loss-svg');
		return !!s && s.dataset.points === '%d' && !!document.querySelector('#train-path'); })()`, steps), chromedp.WithPollingTimeout(30*time.Second)))
	points := run(b, "curve points", chromedp.Evaluate[int](`document.querySelector('#train-path').getAttribute('d').split(/[ML]/).filter(x => x.trim()).length`))
	if points != steps {
		t.Errorf("the curve has %d points, the log %d steps", points, steps)
	}
	if rows := run(b, "metric rows", chromedp.Evaluate[int](`document.querySelectorAll('#metrics-table tbody tr').length`)); rows != 7 {
		t.Errorf("the metrics table has %d rows, want the seven metrics", rows)
	}
	shot("job")
	b.do("jobs list", chromedp.Navigate(base+"/console/#/jobs"), chromedp.WaitVisible(css(`#jobs tr[data-job="`+job+`"]`)))
	shot("jobs")

	// On a phone the pages fit the screen's width: wide tables scroll inside their own box.
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(base+"/console/#/jobs/"+job),
		chromedp.WaitVisible(css("#metrics-table")))
	if w := run(b, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("at 390 px the job page is %d px wide", w)
	}
	shot("job-phone")
	b.do("desktop", chromedp.EmulateViewport(1280, 900))

	// The playground streams an answer from the job's endpoint.
	b.do("playground", chromedp.Navigate(base+"/console/#/endpoints/"+endpoint), chromedp.WaitVisible(css("#generate")))
	run(b, "in service", chromedp.Poll[bool](`(document.querySelector('.status') || {}).textContent === 'InService'`, chromedp.WithPollingTimeout(2*time.Minute)))
	b.do("generate", chromedp.SetValue(css("#max-new-tokens"), "24"), chromedp.Click(css("#generate")),
		chromedp.WaitReady(css(`#playground-output[data-done="true"]`)))
	if answer, stats := b.text("#playground-output"), b.text("#playground-stats"); strings.TrimSpace(answer) == "" || !strings.Contains(stats, "tokens") {
		t.Errorf("the playground streamed %q (%s)", answer, stats)
	}
	shot("playground")
	b.do("models", chromedp.Navigate(base+"/console/#/models"), chromedp.WaitVisible(css(`#models-table tr[data-model="Stories260K"]`)))
	shot("models")
	b.do("objects", chromedp.Navigate(base+"/console/#/buckets/data/"), chromedp.WaitVisible(css("#objects")))
	shot("buckets")

	// A file of 17 MiB goes up in parts (8 MiB each) and comes back whole.
	big := filepath.Join(t.TempDir(), "big.bin")
	bigData := make([]byte, 17<<20)
	for i := range bigData {
		bigData[i] = byte(i * 7 % 251)
	}
	if err := os.WriteFile(big, bigData, 0o644); err != nil {
		t.Fatal(err)
	}
	b.do("multipart upload", chromedp.SetUploadFiles(css("#upload"), []string{big}), chromedp.Click(css("#upload-form button")))
	run(b, "uploaded", chromedp.Poll[bool](`[...document.querySelectorAll('#objects td')].some(td => td.textContent === 'big.bin')`,
		chromedp.WithPollingTimeout(2*time.Minute)))
	s3c := s3.NewFromConfig(consoleTestConfig(), func(o *s3.Options) { o.BaseEndpoint = aws.String(base); o.UsePathStyle = true })
	got, err := s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	gotData, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(gotData, bigData) || !strings.HasSuffix(aws.ToString(got.ETag), `-3"`) {
		t.Errorf("the upload came back as %d bytes (equal: %v), ETag %s, want 17 MiB in 3 parts", len(gotData), bytes.Equal(gotData, bigData), aws.ToString(got.ETag))
	}

	// A read-only IAM user: no create button, and the API's refusal when it tries anyway.
	viewerID, viewerSecret := readOnlyUser(t, base)
	b.do("sign out", chromedp.Navigate(base+"/console/#/jobs"), chromedp.WaitVisible(css("#jobs")), chromedp.Click(css("#signout")),
		chromedp.WaitVisible(css("#signin-form")))
	signIn(viewerID, viewerSecret)
	b.do("read-only jobs", chromedp.WaitVisible(css("#read-only")), chromedp.WaitVisible(css(`#jobs tr[data-job="`+job+`"]`)))
	if n := run(b, "create buttons", chromedp.Evaluate[int](`document.querySelectorAll('#new-job').length`)); n != 0 {
		t.Error("a read-only user is shown the create button")
	}
	b.do("read-only create", chromedp.Navigate(base+"/console/#/jobs/new"), chromedp.WaitVisible(css("#create-job")),
		chromedp.SetValue(css("#job-name"), "viewer-job"), chromedp.SetValue(css("#train-uri"), "s3://data/train/"),
		chromedp.SetValue(css("#output-path"), "s3://data/output/"), chromedp.Click(css("#create")),
		chromedp.WaitVisible(css("#create-errors .alert")))
	if denied := b.text("#create-errors .alert"); !strings.Contains(denied, "AccessDeniedException") || !strings.Contains(denied, "user/viewer") {
		t.Errorf("a read-only create showed %q, want the API's AccessDeniedException", denied)
	}
}

// page drives one browser tab for a test.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return run(p, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func run[T any](p *page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, a)
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// writeHead copies the header and the first n rows of a CSV.
func writeHead(t *testing.T, src, dst string, lines int) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; i < lines && sc.Scan(); i++ {
		b.WriteString(sc.Text() + "\n")
	}
	if err := os.WriteFile(dst, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func consoleTestConfig() aws.Config {
	return aws.Config{Region: "us-east-1", HTTPClient: client.HTTPClient(), Retryer: func() aws.Retryer { return aws.NopRetryer{} },
		Credentials: credentials.NewStaticCredentialsProvider(consoleTestAccessKey, consoleTestSecretKey, "")}
}

// loggedSteps counts the step lines of a training log in the bucket data, read with the S3 SDK.
func loggedSteps(t *testing.T, base, key string) int {
	t.Helper()
	c := s3.NewFromConfig(consoleTestConfig(), func(o *s3.Options) { o.BaseEndpoint = aws.String(base); o.UsePathStyle = true })
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	defer out.Body.Close()
	n := 0
	sc := bufio.NewScanner(out.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct{ Event string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "step" {
			n++
		}
	}
	return n
}

// readOnlyUser makes the IAM user viewer with AWS's ReadOnlyAccess and returns its keys.
func readOnlyUser(t *testing.T, base string) (string, string) {
	t.Helper()
	ctx := context.Background()
	c := awsiam.NewFromConfig(consoleTestConfig(), func(o *awsiam.Options) { o.BaseEndpoint = aws.String(base) })
	if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("viewer")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("viewer"),
		PolicyArn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")}); err != nil {
		t.Fatal(err)
	}
	key, err := c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("viewer")})
	if err != nil {
		t.Fatal(err)
	}
	return *key.AccessKey.AccessKeyId, *key.AccessKey.SecretAccessKey
}
