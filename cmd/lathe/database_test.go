package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/lathe-ml/lathe/internal/client"
	"github.com/lathe-ml/lathe/internal/hubtest"
	"github.com/lathe-ml/lathe/internal/store/pgtest"
)

const (
	dbTestAccessKey = "AKIAIOSFODNN7EXAMPLE"
	dbTestSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// startServe runs `lathe serve --database URL` in-process on a free port with a data dir of its own
// (holding the base model Stories260K) and returns a SageMaker client for it; the server stops when
// the test ends.
func startServe(t *testing.T, database string) *sagemaker.Client {
	t.Helper()
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
	cmd.SetArgs([]string{"--addr", addr, "--data-dir", dataDir, "--database", database})
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
				break
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
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(dbTestAccessKey, dbTestSecretKey, ""),
		HTTPClient:  client.HTTPClient(),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("http://" + addr) })
}

// Two API nodes on one PostgreSQL database serve one set of jobs: a job created through one is
// described identically, listed, tagged and stopped through the other.
func TestServeWithPostgres(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	t.Setenv("LATHE_ROOT_ACCESS_KEY_ID", dbTestAccessKey)
	t.Setenv("LATHE_ROOT_SECRET_ACCESS_KEY", dbTestSecretKey)
	// A hub that has Stories260K's repository but not its file: the job is accepted (create checks
	// that the hub answers) and fails at once when it pulls the model.
	hubRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(hubRoot, "ggml-org", "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	hub := httptest.NewServer(hubtest.Hub{Root: hubRoot})
	t.Cleanup(hub.Close)
	t.Setenv("HF_ENDPOINT", hub.URL)
	ctx := context.Background()
	a, b := startServe(t, url), startServe(t, url)

	in := &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String("Shared-Job"),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{
			ChannelType: types.AutoMLChannelTypeTraining,
			DataSource:  &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix, S3Uri: aws.String("s3://nobucket/train/")}},
		}},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
			BaseModelName: aws.String("Stories260K"),
		}},
		OutputDataConfig: &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://nobucket/out/")},
		RoleArn:          aws.String("arn:aws:iam::123456789012:role/r"),
		Tags:             []types.Tag{{Key: aws.String("team"), Value: aws.String("nlp")}},
	}
	created, err := a.CreateAutoMLJobV2(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// The name is taken on every node.
	var inUse *types.ResourceInUse
	if _, err := b.CreateAutoMLJobV2(ctx, in); !errors.As(err, &inUse) {
		t.Fatalf("create of the same name on the other node: %v, want ResourceInUse", err)
	}

	// Whichever node's worker claims it, the job ends (its bucket does not exist).
	var da *sagemaker.DescribeAutoMLJobV2Output
	deadline := time.Now().Add(120 * time.Second)
	for {
		da, err = a.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("shared-job")})
		if err != nil {
			t.Fatal(err)
		}
		if da.AutoMLJobStatus == types.AutoMLJobStatusFailed || da.AutoMLJobStatus == types.AutoMLJobStatusCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s/%s after 120 s", da.AutoMLJobStatus, da.AutoMLJobSecondaryStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("job ended %s: %s", da.AutoMLJobStatus, aws.ToString(da.FailureReason))
	db, err := b.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("SHARED-JOB")})
	if err != nil {
		t.Fatal(err)
	}
	da.ResultMetadata, db.ResultMetadata = middleware.Metadata{}, middleware.Metadata{}
	if !reflect.DeepEqual(da, db) {
		t.Fatalf("the nodes describe the job differently:\n%+v\n%+v", da, db)
	}
	if *da.AutoMLJobArn != *created.AutoMLJobArn {
		t.Fatalf("ARN %s, created as %s", *da.AutoMLJobArn, *created.AutoMLJobArn)
	}

	list, err := b.ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{})
	if err != nil || len(list.AutoMLJobSummaries) != 1 || *list.AutoMLJobSummaries[0].AutoMLJobName != "Shared-Job" {
		t.Fatalf("list on the other node: %+v, %v", list, err)
	}
	if _, err := b.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: created.AutoMLJobArn, Tags: []types.Tag{{Key: aws.String("stage"), Value: aws.String("dev")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := a.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: created.AutoMLJobArn})
	if err != nil || len(tags.Tags) != 2 || *tags.Tags[0].Key != "stage" || *tags.Tags[1].Key != "team" {
		t.Fatalf("tags through the first node: %+v, %v", tags, err)
	}
}
