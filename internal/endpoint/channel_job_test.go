package endpoint_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// runJob creates a Stories260K job over the objects under prefix with the channel's compression,
// waits for it to end and returns its description.
func runJob(t *testing.T, e *env, name, prefix string, compression types.CompressionType) *sagemaker.DescribeAutoMLJobV2Output {
	t.Helper()
	ctx := context.Background()
	_, err := e.sm.CreateAutoMLJobV2(ctx, &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String(name),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{ChannelType: types.AutoMLChannelTypeTraining,
			ContentType: aws.String("text/csv;header=present"), CompressionType: compression,
			DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix,
				S3Uri: aws.String("s3://" + bucket + "/" + prefix)}}}},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
			BaseModelName:                 aws.String("Stories260K"),
			TextGenerationHyperParameters: map[string]string{"epochCount": "1", "batchSize": "4"}}},
		OutputDataConfig: &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://" + bucket + "/out/")},
		RoleArn:          aws.String("arn:aws:iam::123456789012:role/r"),
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := e.sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if s := d.AutoMLJobStatus; s == types.AutoMLJobStatusCompleted || s == types.AutoMLJobStatusFailed {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", name, d.AutoMLJobStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CompressionType Gzip trains on gzip-compressed CSV; CompressionType None with gzip bytes, and a JSON
// Lines file in a CSV channel, fail in AnalyzingData with a FailureReason that names the real
// problem. A failed job leaves no folder in the data dir's work/.
func TestChannelCompressionAndFormatProblems(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	e.artifact(t, "unused") // creates the bucket
	var csv strings.Builder
	csv.WriteString("input,output\n")
	for range 8 {
		csv.WriteString("What says moo?,A cow says moo.\n")
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(csv.String()))
	zw.Close()
	put := func(uri string, data []byte) {
		if err := e.objects.PutBytes(ctx, "s3://"+bucket+"/"+uri, data, "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	put("gz/train.csv.gz", gz.Bytes())
	put("jsonl/train.csv", []byte("{\"input\": \"What says moo?\", \"output\": \"A cow says moo.\"}\n{\"input\": \"q\", \"output\": \"a\"}\n"))

	if d := runJob(t, e, "gzip-ok", "gz/", types.CompressionTypeGzip); d.AutoMLJobStatus != types.AutoMLJobStatusCompleted {
		t.Errorf("Gzip channel of gzip CSV: %s (%s), want Completed", d.AutoMLJobStatus, aws.ToString(d.FailureReason))
	}
	for _, c := range []struct {
		name, prefix string
		compression  types.CompressionType
		reason       string
	}{
		{"gzip-as-none", "gz/", types.CompressionTypeNone,
			"s3://" + bucket + "/gz/train.csv.gz: is gzip-compressed, but the channel's CompressionType is None: set CompressionType to Gzip"},
		{"jsonl-as-csv", "jsonl/", types.CompressionTypeNone,
			"s3://" + bucket + "/jsonl/train.csv: is JSON Lines, not CSV"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := runJob(t, e, c.name, c.prefix, c.compression)
			if d.AutoMLJobStatus != types.AutoMLJobStatusFailed || !strings.Contains(aws.ToString(d.FailureReason), c.reason) {
				t.Errorf("job %s: %s (%s), want Failed with a reason containing %q", c.name, d.AutoMLJobStatus, aws.ToString(d.FailureReason), c.reason)
			}
			if _, err := os.Stat(filepath.Join(e.dataDir, "work", c.name)); !os.IsNotExist(err) {
				t.Errorf("failed job %s left work/%s behind (stat: %v)", c.name, c.name, err)
			}
		})
	}
}
