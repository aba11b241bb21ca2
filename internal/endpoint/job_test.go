package endpoint_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// A job with ModelDeployConfig fine-tunes Stories260K on a tiny question-answer task, deploys it,
// and the endpoint answers the training questions as taught (through the plain template the job
// trained with). The endpoint's ARN takes tags.
func TestModelDeployConfigJob(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	e.artifact(t, "unused") // creates the bucket
	qa := [][2]string{{"What says moo?", "A cow says moo."}, {"What says woof?", "A dog says woof."},
		{"What says meow?", "A cat says meow."}, {"What says quack?", "A duck says quack."}}
	var csv strings.Builder
	csv.WriteString("input,output\n")
	for range 40 {
		for _, p := range qa {
			fmt.Fprintf(&csv, "%s,%s\n", p[0], p[1])
		}
	}
	if err := e.objects.PutBytes(ctx, "s3://"+bucket+"/train/data.csv", []byte(csv.String()), "text/csv"); err != nil {
		t.Fatal(err)
	}
	_, err := e.sm.CreateAutoMLJobV2(ctx, &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String("qa"),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{ChannelType: types.AutoMLChannelTypeTraining,
			ContentType: aws.String("text/csv;header=present"), CompressionType: types.CompressionTypeNone,
			DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix,
				S3Uri: aws.String("s3://" + bucket + "/train/")}}}},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
			BaseModelName: aws.String("Stories260K"),
			TextGenerationHyperParameters: map[string]string{"epochCount": "3", "batchSize": "8", "learningRate": "0.003",
				"learningRateWarmupSteps": "10"}}},
		OutputDataConfig:  &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://" + bucket + "/out/")},
		RoleArn:           aws.String("arn:aws:iam::123456789012:role/r"),
		ModelDeployConfig: &types.ModelDeployConfig{EndpointName: aws.String("qa-endpoint")},
	})
	if err != nil {
		t.Fatal(err)
	}
	var d *sagemaker.DescribeAutoMLJobV2Output
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if d, err = e.sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("qa")}); err != nil {
			t.Fatal(err)
		}
		if s := d.AutoMLJobStatus; s == types.AutoMLJobStatusCompleted || s == types.AutoMLJobStatusFailed || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d.AutoMLJobStatus != types.AutoMLJobStatusCompleted || d.AutoMLJobSecondaryStatus != types.AutoMLJobSecondaryStatusCompleted ||
		d.ModelDeployResult == nil || aws.ToString(d.ModelDeployResult.EndpointName) != "qa-endpoint" {
		t.Fatalf("job ended %s/%s (%s), deploy result %+v", d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus, aws.ToString(d.FailureReason), d.ModelDeployResult)
	}
	ep, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("qa-endpoint")})
	if err != nil || ep.EndpointStatus != types.EndpointStatusInService || aws.ToString(ep.EndpointConfigName) != "qa-config" {
		t.Fatalf("endpoint: %+v, %v", ep, err)
	}
	for _, p := range qa {
		res, _ := invoke(t, e, "qa-endpoint", fmt.Sprintf(`{"inputs":%q,"parameters":{"max_new_tokens":32}}`, p[0]))
		if got := strings.TrimSpace(res[0].GeneratedText); got != p[1] {
			t.Errorf("%q answered %q, want %q (as trained)", p[0], got, p[1])
		}
	}

	arn := aws.ToString(ep.EndpointArn)
	if _, err := e.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(arn),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ml")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn)})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "ml" {
		t.Errorf("ListTags = %+v, %v", tags, err)
	}
}
