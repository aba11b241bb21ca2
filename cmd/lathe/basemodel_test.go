package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"

	"github.com/lathe-ml/lathe/internal/hubtest"
)

// A catalog model that is not in the store, with no hub to pull it from, is refused when the job is
// created, in the words the job would have failed with; with a hub that has the repository the job
// is accepted (and pulls at start).
func TestCreateChecksTheBaseModelCanBePulled(t *testing.T) {
	t.Setenv("LATHE_ROOT_ACCESS_KEY_ID", dbTestAccessKey)
	t.Setenv("LATHE_ROOT_SECRET_ACCESS_KEY", dbTestSecretKey)
	// Nothing listens on port 1 (a closed test server's port could be reused by the next one).
	const noHub = "http://127.0.0.1:1"
	hubRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(hubRoot, "HuggingFaceTB", "SmolLM2-135M"), 0o755); err != nil {
		t.Fatal(err)
	}
	hub := httptest.NewServer(hubtest.Hub{Root: hubRoot})
	t.Cleanup(hub.Close)

	in := func(name string) *sagemaker.CreateAutoMLJobV2Input {
		return &sagemaker.CreateAutoMLJobV2Input{
			AutoMLJobName: aws.String(name),
			AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{ChannelType: types.AutoMLChannelTypeTraining,
				DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix, S3Uri: aws.String("s3://nobucket/train/")}}}},
			AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
				BaseModelName: aws.String("SmolLM2-135M")}}, // startServe's store holds only Stories260K
			OutputDataConfig: &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://nobucket/out/")},
			RoleArn:          aws.String("arn:aws:iam::123456789012:role/r"),
		}
	}
	ctx := context.Background()

	t.Setenv("HF_ENDPOINT", noHub)
	sm := startServe(t, "")
	_, err := sm.CreateAutoMLJobV2(ctx, in("no-hub"))
	var ae smithy.APIError
	want := "model SmolLM2-135M is not in the model store and could not be downloaded from " + noHub + " (resolve HuggingFaceTB/SmolLM2-135M@main: "
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || !strings.HasPrefix(ae.ErrorMessage(), want) ||
		!strings.HasSuffix(ae.ErrorMessage(), `run "lathe models import /path/to/SmolLM2-135M --name SmolLM2-135M" or set HF_ENDPOINT to a mirror`) {
		t.Errorf("create with no hub: %v\nwant a ValidationException starting %q", err, want)
	}

	t.Setenv("HF_ENDPOINT", hub.URL)
	if _, err := startServe(t, "").CreateAutoMLJobV2(ctx, in("with-hub")); err != nil {
		t.Errorf("create with a hub that has the repository: %v", err)
	}
}
