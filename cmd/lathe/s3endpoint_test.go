package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lathe-ml/lathe/internal/client"
	"github.com/lathe-ml/lathe/internal/s3test"
)

// serveArgs runs `lathe serve` in-process on a free port with the given extra arguments and data
// dir, and returns its address once it is healthy; it stops when the test ends.
func serveArgs(t *testing.T, dataDir string, args ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cmd := serveCommand()
	cmd.SetArgs(append([]string{"--addr", addr, "--data-dir", dataDir}, args...))
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
				return addr
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

// awsConfig is a client configuration for endpoint signed with the given keys.
func awsConfig(access, secret string) aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(access, secret, ""),
		HTTPClient: client.HTTPClient(), Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
}

// `lathe serve --s3-endpoint URL` keeps everything on the external S3: a bucket and dataset created
// through Lathe land there, a job on Stories260K writes its artifacts there and deploys an endpoint
// from them, Lathe's S3 API reads them back, and /metrics counts what happened.
func TestServeWithExternalS3(t *testing.T) {
	for _, be := range []struct {
		name  string
		start func(testing.TB) s3test.Service
	}{{"versitygw", s3test.VersityGW}, {"another lathe", s3test.Lathe}} {
		t.Run(be.name, func(t *testing.T) {
			ext := be.start(t)
			testServeWithExternalS3(t, ext)
		})
	}
}

func testServeWithExternalS3(t *testing.T, ext s3test.Service) {
	ctx := context.Background()
	t.Setenv("LATHE_ROOT_ACCESS_KEY_ID", dbTestAccessKey)
	t.Setenv("LATHE_ROOT_SECRET_ACCESS_KEY", dbTestSecretKey)
	// The external service's keys come from the standard AWS chain, here the environment.
	t.Setenv("AWS_ACCESS_KEY_ID", ext.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ext.SecretAccessKey)
	t.Setenv("AWS_REGION", ext.Region)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	// No hub: the base model can only come from the shared copy on the external S3.
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1")
	// The model is imported once, from another data dir, and published on the external S3.
	out, err := runModels(t, "import", "../../../shared/models/stories260K.gguf", "--name", "Stories260K",
		"--data-dir", t.TempDir(), "--s3-endpoint", ext.URL, "--models-bucket", "fleet")
	if err != nil || !strings.Contains(out, "published Stories260K to s3://fleet/_lathe/models/Stories260K/") {
		t.Fatalf("models import --s3-endpoint: %v\n%s", err, out)
	}
	if out, err := runModels(t, "list", "--data-dir", t.TempDir(), "--s3-endpoint", ext.URL, "--models-bucket", "fleet"); err != nil ||
		!strings.Contains(out, "Stories260K gguf llama 1.2 MB fine-tune, serve") {
		t.Fatalf("models list --s3-endpoint from an empty data dir: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	addr := serveArgs(t, dataDir, "--s3-endpoint", ext.URL, "--models-bucket", "fleet")
	front := awsConfig(dbTestAccessKey, dbTestSecretKey)
	lathe := s3.NewFromConfig(front, func(o *s3.Options) { o.BaseEndpoint = aws.String("http://" + addr); o.UsePathStyle = true })
	sm := sagemaker.NewFromConfig(front, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("http://" + addr) })
	rt := sagemakerruntime.NewFromConfig(front, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String("http://" + addr) })
	direct := s3.NewFromConfig(awsConfig(ext.AccessKeyID, ext.SecretAccessKey), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(ext.URL)
		o.UsePathStyle = true
	})

	// The user's side, through Lathe: a bucket and a dataset.
	if _, err := lathe.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tuning")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	var csv strings.Builder
	csv.WriteString("input,output\n")
	for i := range 40 {
		fmt.Fprintf(&csv, "What says moo %d?,A cow says moo.\n", i)
	}
	if _, err := lathe.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tuning"), Key: aws.String("train/data.csv"),
		Body: strings.NewReader(csv.String())}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if _, err := direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tuning"), Key: aws.String("train/data.csv")}); err != nil {
		t.Fatalf("the dataset is not on the external S3: %v", err)
	}

	_, err = sm.CreateAutoMLJobV2(ctx, &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String("moo"),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{ChannelType: types.AutoMLChannelTypeTraining,
			DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix,
				S3Uri: aws.String("s3://tuning/train/")}}}},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
			BaseModelName: aws.String("Stories260K"),
			TextGenerationHyperParameters: map[string]string{"epochCount": "1", "batchSize": "8", "learningRate": "0.003",
				"learningRateWarmupSteps": "1"}}},
		OutputDataConfig:  &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://tuning/out/")},
		RoleArn:           aws.String("arn:aws:iam::123456789012:role/r"),
		ModelDeployConfig: &types.ModelDeployConfig{EndpointName: aws.String("moo-endpoint")},
	})
	if err != nil {
		t.Fatal(err)
	}
	var d *sagemaker.DescribeAutoMLJobV2Output
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if d, err = sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("moo")}); err != nil {
			t.Fatal(err)
		}
		if s := d.AutoMLJobStatus; s == types.AutoMLJobStatusCompleted || s == types.AutoMLJobStatusFailed || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d.AutoMLJobStatus != types.AutoMLJobStatusCompleted {
		t.Fatalf("job ended %s/%s: %s", d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus, aws.ToString(d.FailureReason))
	}
	inv, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("moo-endpoint"),
		ContentType: aws.String("application/json"), Body: []byte(`{"inputs":"What says moo 3?","parameters":{"max_new_tokens":8}}`)})
	if err != nil || !bytes.Contains(inv.Body, []byte("generated_text")) {
		t.Fatalf("InvokeEndpoint: %v %+v", err, inv)
	}

	// The artifacts are the external service's, and Lathe's S3 API serves the same bytes.
	for _, key := range []string{"out/moo/model/model.safetensors", "out/moo/model/model.gguf", "out/moo/metrics.json", "out/moo/training-log.jsonl"} {
		want := readObject(t, direct, "tuning", key)
		if got := readObject(t, lathe, "tuning", key); !bytes.Equal(got, want) || len(want) == 0 {
			t.Errorf("%s: %d bytes through Lathe, %d on the external S3", key, len(got), len(want))
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "models", "Stories260K", "manifest.json")); err != nil {
		t.Errorf("the server did not cache the shared base model: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "s3")); !os.IsNotExist(err) {
		t.Errorf("the embedded S3's directory exists with --s3-endpoint: %v", err)
	}
	// Lathe's authorization stays in front of the external S3: an IAM user allowed to read the
	// bucket reads through Lathe, and is refused a write that never reaches the service.
	admin := awsiam.NewFromConfig(front, func(o *awsiam.Options) { o.BaseEndpoint = aws.String("http://" + addr) })
	if _, err := admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("reader")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("reader"), PolicyName: aws.String("read"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::tuning/*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("reader")})
	if err != nil {
		t.Fatal(err)
	}
	reader := s3.NewFromConfig(awsConfig(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey)), func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://" + addr)
		o.UsePathStyle = true
	})
	if got := readObject(t, reader, "tuning", "train/data.csv"); string(got) != csv.String() {
		t.Errorf("the reader got %d bytes of the dataset", len(got))
	}
	var ae smithy.APIError
	if _, err := reader.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tuning"), Key: aws.String("forged.csv"),
		Body: strings.NewReader("x")}); !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Fatalf("PutObject by a read-only user: %v, want AccessDenied", err)
	}
	if _, err := direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tuning"), Key: aws.String("forged.csv")}); err == nil {
		t.Fatal("a refused upload reached the external S3")
	}

	// An error for the metrics to count.
	if _, err := sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("nosuchjob")}); err == nil {
		t.Fatal("Describe of a missing job succeeded")
	}

	fams := scrapeMetrics(t, "http://"+addr+"/metrics")
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lathe_jobs", map[string]string{"status": "Completed"}, 1},
		{"lathe_jobs", map[string]string{"status": "InProgress"}, 0},
		{"lathe_job_queue_depth", nil, 0},
		{"lathe_endpoint_requests_total", map[string]string{"endpoint": "moo-endpoint", "operation": "InvokeEndpoint", "code": "200"}, 1},
		{"lathe_endpoint_request_duration_seconds", map[string]string{"endpoint": "moo-endpoint", "operation": "InvokeEndpoint"}, 1},
		{"lathe_http_requests_total", map[string]string{"api": "sagemaker", "operation": "CreateAutoMLJobV2", "code": "200"}, 1},
		{"lathe_http_requests_total", map[string]string{"api": "runtime", "operation": "InvokeEndpoint", "code": "200"}, 1},
		// The four artifacts and the reader's GET: the job itself reads and writes the external S3
		// directly, not through Lathe's S3 API.
		{"lathe_http_requests_total", map[string]string{"api": "s3", "operation": "CreateBucket", "code": "200"}, 1},
		{"lathe_http_requests_total", map[string]string{"api": "s3", "operation": "PutObject", "code": "200"}, 1},
		{"lathe_http_requests_total", map[string]string{"api": "s3", "operation": "GetObject", "code": "200"}, 5},
		{"lathe_http_requests_total", map[string]string{"api": "s3", "operation": "PutObject", "code": "403"}, 1},
		{"lathe_errors_total", map[string]string{"api": "s3", "type": "http_403"}, 1},
		{"lathe_errors_total", map[string]string{"api": "sagemaker", "type": "ResourceNotFound"}, 1},
	}
	for _, c := range checks {
		if got := sampleValue(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func readObject(t *testing.T, c *s3.Client, bucket, key string) []byte {
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

// scrapeMetrics GETs url as Prometheus does (no signature) and parses the text format strictly.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || expfmt.ResponseFormat(resp.Header).FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("GET /metrics: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sampleValue is the value (a histogram's count) of the one sample of name carrying labels.
func sampleValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	var found []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		n := 0
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n == len(labels) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d samples, want 1", name, labels, len(found))
	}
	switch m := found[0]; {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: no value", name)
	return 0
}
