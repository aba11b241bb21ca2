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
	closed := httptest.NewServer(nil)
	closed.Close()
	hubRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(hubRoot, "ggml-org", "models"), 0o755); err != nil {
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
				BaseModelName: aws.String("Stories260K")}},
			OutputDataConfig: &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://nobucket/out/")},
			RoleArn:          aws.String("arn:aws:iam::123456789012:role/r"),
		}
	}
	ctx := context.Background()

	t.Setenv("HF_ENDPOINT", closed.URL)
	sm := startServe(t, "")
	_, err := sm.CreateAutoMLJobV2(ctx, in("no-hub"))
	var ae smithy.APIError
	want := "model Stories260K is not in the model store and could not be downloaded from " + closed.URL + " (resolve ggml-org/models@main: "
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || !strings.HasPrefix(ae.ErrorMessage(), want) ||
		!strings.HasSuffix(ae.ErrorMessage(), `run "lathe models import /path/to/stories260K.gguf --name Stories260K" or set HF_ENDPOINT to a mirror`) {
		t.Errorf("create with no hub: %v\nwant a ValidationException starting %q", err, want)
	}

	t.Setenv("HF_ENDPOINT", hub.URL)
	if _, err := startServe(t, "").CreateAutoMLJobV2(ctx, in("with-hub")); err != nil {
		t.Errorf("create with a hub that has the repository: %v", err)
	}
}
