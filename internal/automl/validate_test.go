package automl_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/store"
)

const valChannel = `{"ChannelType":"validation","ContentType":"text/csv;header=present","DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/val/"}}}`

func jsonValue(t *testing.T, s string) any {
	var v any
	if err := jsonUnmarshal(s, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCreateValidation(t *testing.T) {
	trainChannel := `{"ChannelType":"training","ContentType":"text/csv;header=present","DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/train/"}}}`
	manyTags := "["
	for i := range 51 {
		if i > 0 {
			manyTags += ","
		}
		manyTags += `{"Key":"k` + strings.Repeat("x", i) + `","Value":"v"}`
	}
	manyTags += "]"
	const tg = "AutoMLProblemTypeConfig.TextGenerationJobConfig."
	const hp = tg + "TextGenerationHyperParameters."
	cases := []struct {
		name    string
		body    func(t *testing.T) string
		code    string
		message string   // exact, when given
		parts   []string // substrings the message must hold
	}{
		{name: "name with underscore", body: c(change{"AutoMLJobName", "x_y"}), code: "ValidationException",
			message: "1 validation error detected: Value 'x_y' at 'autoMLJobName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}"},
		{name: "name missing", body: c(change{"AutoMLJobName", del}), code: "ValidationException",
			message: "1 validation error detected: Value null at 'autoMLJobName' failed to satisfy constraint: Member must not be null"},
		{name: "name too long", body: c(change{"AutoMLJobName", strings.Repeat("a", 33)}), code: "ValidationException",
			parts: []string{"2 validation errors detected", "at 'autoMLJobName' failed to satisfy constraint: Member must have length less than or equal to 32", "regular expression pattern"}},
		{name: "name empty", body: c(change{"AutoMLJobName", ""}), code: "ValidationException",
			parts: []string{"2 validation errors detected: Value '' at 'autoMLJobName' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '' at 'autoMLJobName'"}},
		{name: "name is a number", body: c(change{"AutoMLJobName", 5}), code: "SerializationException",
			parts: []string{"'autoMLJobName'", "expected a string"}},
		{name: "three errors at once", body: c(change{"AutoMLJobName", "a_b"}, change{"RoleArn", del}, change{"OutputDataConfig", del}), code: "ValidationException",
			parts: []string{"3 validation errors detected", "'autoMLJobName'", "Value null at 'roleArn'", "Value null at 'outputDataConfig'"}},
		{name: "channels missing", body: c(change{"AutoMLJobInputDataConfig", del}), code: "ValidationException",
			parts: []string{"Value null at 'autoMLJobInputDataConfig' failed to satisfy constraint: Member must not be null"}},
		{name: "no channels", body: c(change{"AutoMLJobInputDataConfig", []any{}}), code: "ValidationException",
			parts: []string{"Value '[]' at 'autoMLJobInputDataConfig' failed to satisfy constraint: Member must have length greater than or equal to 1"}},
		{name: "three channels", body: func(t *testing.T) string {
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig", jsonValue(t, "["+trainChannel+","+valChannel+","+valChannel+"]")})
		}, code: "ValidationException", parts: []string{"at 'autoMLJobInputDataConfig' failed to satisfy constraint: Member must have length less than or equal to 2"}},
		{name: "channel type not in enum", body: c(change{"AutoMLJobInputDataConfig.0.ChannelType", "test"}), code: "ValidationException",
			message: "1 validation error detected: Value 'test' at 'autoMLJobInputDataConfig.1.member.channelType' failed to satisfy constraint: Member must satisfy enum value set: [training, validation]"},
		{name: "compression not in enum", body: c(change{"AutoMLJobInputDataConfig.0.CompressionType", "Zip"}), code: "ValidationException",
			parts: []string{"'autoMLJobInputDataConfig.1.member.compressionType'", "enum value set: [None, Gzip]"}},
		{name: "json content type", body: c(change{"AutoMLJobInputDataConfig.0.ContentType", "application/json"}), code: "ValidationException",
			parts: []string{"ContentType 'application/json'", "text/csv;header=present", "x-application/vnd.amazon+parquet"}},
		{name: "content type too long", body: c(change{"AutoMLJobInputDataConfig.0.ContentType", strings.Repeat("a", 257)}), code: "ValidationException",
			parts: []string{"'autoMLJobInputDataConfig.1.member.contentType'", "length less than or equal to 256"}},
		{name: "manifest input", body: c(change{"AutoMLJobInputDataConfig.0.DataSource.S3DataSource.S3DataType", "ManifestFile"}), code: "ValidationException",
			parts: []string{"S3DataType 'ManifestFile'", "only S3Prefix"}},
		{name: "s3 data type not in enum", body: c(change{"AutoMLJobInputDataConfig.0.DataSource.S3DataSource.S3DataType", "Folder"}), code: "ValidationException",
			parts: []string{"'autoMLJobInputDataConfig.1.member.dataSource.s3DataSource.s3DataType'", "enum value set: [ManifestFile, S3Prefix, AugmentedManifestFile]"}},
		{name: "s3 uri missing", body: c(change{"AutoMLJobInputDataConfig.0.DataSource.S3DataSource.S3Uri", del}), code: "ValidationException",
			parts: []string{"Value null at 'autoMLJobInputDataConfig.1.member.dataSource.s3DataSource.s3Uri'"}},
		{name: "s3 uri not a url", body: c(change{"AutoMLJobInputDataConfig.0.DataSource.S3DataSource.S3Uri", "bucket/key"}), code: "ValidationException",
			parts: []string{"Value 'bucket/key' at 'autoMLJobInputDataConfig.1.member.dataSource.s3DataSource.s3Uri'", "(https|s3)://([^/]+)/?(.*)"}},
		{name: "https input", body: c(change{"AutoMLJobInputDataConfig.0.DataSource.S3DataSource.S3Uri", "https://b/train"}), code: "ValidationException",
			parts: []string{"S3Uri 'https://b/train'", "s3:// URI"}},
		{name: "no data source", body: c(change{"AutoMLJobInputDataConfig.0.DataSource", del}), code: "ValidationException",
			parts: []string{"AutoMLJobInputDataConfig[0].DataSource is required"}},
		{name: "two training channels", body: func(t *testing.T) string {
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig", jsonValue(t, "["+trainChannel+","+trainChannel+"]")})
		}, code: "ValidationException", parts: []string{"exactly one channel with ChannelType training", "it has 2"}},
		{name: "validation channel only", body: func(t *testing.T) string {
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig", jsonValue(t, "["+valChannel+"]")}, change{"DataSplitConfig", del})
		}, code: "ValidationException", parts: []string{"exactly one channel with ChannelType training", "it has 0"}},
		{name: "two validation channels", body: func(t *testing.T) string {
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig", jsonValue(t, "["+valChannel+","+valChannel+"]")}, change{"DataSplitConfig", del})
		}, code: "ValidationException", parts: []string{"exactly one channel with ChannelType training"}},
		{name: "channels with different content types", body: func(t *testing.T) string {
			v := strings.Replace(valChannel, "text/csv;header=present", "x-application/vnd.amazon+parquet", 1)
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig", jsonValue(t, "["+trainChannel+","+v+"]")}, change{"DataSplitConfig", del})
		}, code: "ValidationException", parts: []string{"same ContentType"}},
		{name: "validation channel and fraction", body: func(t *testing.T) string {
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig", jsonValue(t, "["+trainChannel+","+valChannel+"]")})
		}, code: "ValidationException", parts: []string{"DataSplitConfig.ValidationFraction", "validation channel"}},
		{name: "fraction above 1", body: c(change{"DataSplitConfig.ValidationFraction", 1.5}), code: "ValidationException",
			message: "1 validation error detected: Value '1.5' at 'dataSplitConfig.validationFraction' failed to satisfy constraint: Member must have value less than or equal to 1"},
		{name: "fraction negative", body: c(change{"DataSplitConfig.ValidationFraction", -0.1}), code: "ValidationException",
			parts: []string{"'dataSplitConfig.validationFraction'", "greater than or equal to 0"}},
		{name: "fraction 0", body: c(change{"DataSplitConfig.ValidationFraction", 0}), code: "ValidationException",
			parts: []string{"ValidationFraction must be greater than 0 and less than 1"}},
		{name: "fraction 1", body: c(change{"DataSplitConfig.ValidationFraction", 1}), code: "ValidationException",
			parts: []string{"ValidationFraction must be greater than 0 and less than 1; it is 1"}},
		{name: "fraction is a string", body: c(change{"DataSplitConfig.ValidationFraction", "0.1"}), code: "SerializationException",
			parts: []string{"'dataSplitConfig.validationFraction'", "expected a number"}},
		{name: "output config missing", body: c(change{"OutputDataConfig", del}), code: "ValidationException",
			parts: []string{"Value null at 'outputDataConfig'"}},
		{name: "output path missing", body: c(change{"OutputDataConfig.S3OutputPath", del}), code: "ValidationException",
			parts: []string{"Value null at 'outputDataConfig.s3OutputPath'"}},
		{name: "output path https", body: c(change{"OutputDataConfig.S3OutputPath", "https://b/out"}), code: "ValidationException",
			parts: []string{"OutputDataConfig.S3OutputPath 'https://b/out' must be an s3:// URI"}},
		{name: "output path too long", body: c(change{"OutputDataConfig.S3OutputPath", "s3://b/" + strings.Repeat("o", 1020)}), code: "ValidationException",
			parts: []string{"'outputDataConfig.s3OutputPath'", "length less than or equal to 1024"}},
		{name: "kms key with space", body: c(change{"OutputDataConfig.KmsKeyId", "a b"}), code: "ValidationException",
			parts: []string{"Value 'a b' at 'outputDataConfig.kmsKeyId'", "[a-zA-Z0-9:/_-]*"}},
		{name: "problem type missing", body: c(change{"AutoMLProblemTypeConfig", del}), code: "ValidationException",
			parts: []string{"Value null at 'autoMLProblemTypeConfig'"}},
		{name: "problem type empty union", body: c(change{"AutoMLProblemTypeConfig", map[string]any{}}), code: "ValidationException",
			parts: []string{"'autoMLProblemTypeConfig'", "exactly one member"}},
		{name: "problem type two members", body: c(change{"AutoMLProblemTypeConfig.TabularJobConfig", map[string]any{"TargetAttributeName": "y"}}), code: "ValidationException",
			parts: []string{"'autoMLProblemTypeConfig'", "exactly one member", "2 are set"}},
		{name: "tabular", body: c(change{"AutoMLProblemTypeConfig", map[string]any{"TabularJobConfig": map[string]any{"TargetAttributeName": "y"}}}), code: "ValidationException",
			parts: []string{"Lathe fine-tunes text generation models only", "TabularJobConfig"}},
		{name: "image classification", body: c(change{"AutoMLProblemTypeConfig", map[string]any{"ImageClassificationJobConfig": map[string]any{}}}), code: "ValidationException",
			parts: []string{"Lathe fine-tunes text generation models only", "ImageClassificationJobConfig"}},
		{name: "problem type is a string", body: c(change{"AutoMLProblemTypeConfig", "TextGeneration"}), code: "SerializationException",
			parts: []string{"'autoMLProblemTypeConfig'"}},
		{name: "role missing", body: c(change{"RoleArn", del}), code: "ValidationException",
			message: "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"},
		{name: "role with short account", body: c(change{"RoleArn", "arn:aws:iam::1234:role/r"}), code: "ValidationException",
			parts: []string{"Value 'arn:aws:iam::1234:role/r' at 'roleArn'", `arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`}},
		{name: "role too short", body: c(change{"RoleArn", "r"}), code: "ValidationException",
			parts: []string{"2 validation errors", "at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20"}},
		{name: "51 tags", body: func(t *testing.T) string { return edit(t, sampleRequest, change{"Tags", jsonValue(t, manyTags)}) }, code: "ValidationException",
			parts: []string{"at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"}},
		{name: "tag key missing", body: c(change{"Tags.0.Key", del}), code: "ValidationException",
			parts: []string{"Value null at 'tags.1.member.key'"}},
		{name: "tag value missing", body: c(change{"Tags.0.Value", del}), code: "ValidationException",
			parts: []string{"Value null at 'tags.1.member.value'"}},
		{name: "tag key bad character", body: c(change{"Tags.0.Key", "a!b"}), code: "ValidationException",
			parts: []string{"Value 'a!b' at 'tags.1.member.key'", "regular expression pattern"}},
		{name: "tag key reserved", body: c(change{"Tags.0.Key", "aws:owner"}), code: "ValidationException",
			parts: []string{"Tag key 'aws:owner'", "reserved"}},
		{name: "hyperparameter unknown", body: c(change{hp + "dropout", "0.1"}), code: "ValidationException",
			parts: []string{"unknown hyperparameter 'dropout'", "epochCount"}},
		{name: "epochCount 0", body: c(change{hp + "epochCount", "0"}), code: "ValidationException",
			parts: []string{"epochCount must be an integer from 1 to 10; it is '0'"}},
		{name: "epochCount 11", body: c(change{hp + "epochCount", "11"}), code: "ValidationException",
			parts: []string{"epochCount must be an integer from 1 to 10; it is '11'"}},
		{name: "epochCount fraction", body: c(change{hp + "epochCount", "2.5"}), code: "ValidationException",
			parts: []string{"epochCount must be an integer"}},
		{name: "epochCount word", body: c(change{hp + "epochCount", "three"}), code: "ValidationException",
			parts: []string{"epochCount must be an integer"}},
		{name: "epochCount as JSON number", body: c(change{hp + "epochCount", 3}), code: "SerializationException",
			parts: []string{"at 'autoMLProblemTypeConfig.textGenerationJobConfig.textGenerationHyperParameters.epochCount': expected a string, got number"}},
		{name: "batchSize 65", body: c(change{hp + "batchSize", "65"}), code: "ValidationException",
			parts: []string{"batchSize must be an integer from 1 to 64"}},
		{name: "learningRate 2", body: c(change{hp + "learningRate", "2"}), code: "ValidationException",
			parts: []string{"learningRate must be a number from 0 to 1; it is '2'"}},
		{name: "learningRate NaN", body: c(change{hp + "learningRate", "NaN"}), code: "ValidationException",
			parts: []string{"learningRate must be a number"}},
		{name: "warmup 251", body: c(change{hp + "learningRateWarmupSteps", "251"}), code: "ValidationException",
			parts: []string{"learningRateWarmupSteps must be an integer from 0 to 250"}},
		{name: "hyperparameter value too long", body: c(change{hp + "learningRate", "0.00000000000000001"}), code: "ValidationException",
			parts: []string{"at 'autoMLProblemTypeConfig.textGenerationJobConfig.textGenerationHyperParameters'", "Map value must satisfy constraint: [Member must have length less than or equal to 16]"}},
		{name: "hyperparameter value bad character", body: c(change{hp + "learningRate", "1e-4 "}), code: "ValidationException",
			parts: []string{"Map value must satisfy constraint", "[a-zA-Z0-9._-]+"}},
		{name: "max candidates 2", body: c(change{tg + "CompletionCriteria.MaxCandidates", 2}), code: "ValidationException",
			parts: []string{"MaxCandidates must be 1"}},
		{name: "max candidates 0", body: c(change{tg + "CompletionCriteria.MaxCandidates", 0}), code: "ValidationException",
			message: "1 validation error detected: Value '0' at 'autoMLProblemTypeConfig.textGenerationJobConfig.completionCriteria.maxCandidates' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{name: "max candidates 751", body: c(change{tg + "CompletionCriteria.MaxCandidates", 751}), code: "ValidationException",
			parts: []string{"'autoMLProblemTypeConfig.textGenerationJobConfig.completionCriteria.maxCandidates'", "less than or equal to 750"}},
		{name: "max candidates fraction", body: c(change{tg + "CompletionCriteria.MaxCandidates", 1.5}), code: "SerializationException",
			parts: []string{"'autoMLProblemTypeConfig.textGenerationJobConfig.completionCriteria.maxCandidates'", "expected an integer"}},
		{name: "per-job runtime 0", body: c(change{tg + "CompletionCriteria.MaxRuntimePerTrainingJobInSeconds", 0}), code: "ValidationException",
			parts: []string{"'autoMLProblemTypeConfig.textGenerationJobConfig.completionCriteria.maxRuntimePerTrainingJobInSeconds'", "greater than or equal to 1"}},
		{name: "job runtime 0", body: c(change{tg + "CompletionCriteria.MaxAutoMLJobRuntimeInSeconds", 0}), code: "ValidationException",
			parts: []string{"'autoMLProblemTypeConfig.textGenerationJobConfig.completionCriteria.maxAutoMLJobRuntimeInSeconds'", "greater than or equal to 1"}},
		{name: "job runtime over int32", body: c(change{tg + "CompletionCriteria.MaxAutoMLJobRuntimeInSeconds", 1 << 40}), code: "SerializationException",
			parts: []string{"maxAutoMLJobRuntimeInSeconds"}},
		{name: "auto endpoint name and name", body: c(change{"ModelDeployConfig.EndpointName", "ep"}), code: "ValidationException",
			parts: []string{"ModelDeployConfig", "EndpointName must not be given when AutoGenerateEndpointName is true"}},
		{name: "endpoint name bad", body: c(change{"ModelDeployConfig", map[string]any{"EndpointName": "my_ep"}}), code: "ValidationException",
			parts: []string{"Value 'my_ep' at 'modelDeployConfig.endpointName'", "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"}},
		{name: "deploy config with neither", body: c(change{"ModelDeployConfig", map[string]any{"AutoGenerateEndpointName": false}}), code: "ValidationException",
			parts: []string{"ModelDeployConfig: give EndpointName"}},
		{name: "unknown base model", body: c(change{tg + "BaseModelName", "GPT5"}), code: "ValidationException",
			parts: []string{"BaseModelName 'GPT5' is not a supported base model", "Llama2-7B"}},
		{name: "base model bad pattern", body: c(change{tg + "BaseModelName", "my model"}), code: "ValidationException",
			parts: []string{"Value 'my model' at 'autoMLProblemTypeConfig.textGenerationJobConfig.baseModelName'", "regular expression pattern"}},
		{name: "llama without eula", body: c(change{tg + "ModelAccessConfig", del}), code: "ValidationException",
			parts: []string{"Llama2-7B", "AcceptEula"}},
		{name: "llama with eula false", body: c(change{tg + "ModelAccessConfig.AcceptEula", false}), code: "ValidationException",
			parts: []string{"Llama2-7B", "AcceptEula to true"}},
		{name: "model access without accept", body: c(change{tg + "ModelAccessConfig", map[string]any{}}), code: "ValidationException",
			parts: []string{"Value null at 'autoMLProblemTypeConfig.textGenerationJobConfig.modelAccessConfig.acceptEula'"}},
		{name: "compute config", body: c(change{"AutoMLComputeConfig.EmrServerlessComputeConfig.ExecutionRoleARN", "arn:aws:iam::123456789012:role/emr"}), code: "ValidationException",
			parts: []string{"AutoMLComputeConfig applies to tabular and time-series jobs only"}},
		{name: "compute config without role", body: c(change{"AutoMLComputeConfig.EmrServerlessComputeConfig", map[string]any{}}), code: "ValidationException",
			parts: []string{"Value null at 'autoMLComputeConfig.emrServerlessComputeConfig.executionRoleARN'"}},
		{name: "objective not in enum", body: c(change{"AutoMLJobObjective.MetricName", "Loss"}), code: "ValidationException",
			parts: []string{"Value 'Loss' at 'autoMLJobObjective.metricName'", "enum value set: [Accuracy"}},
		{name: "six security groups", body: c(change{"SecurityConfig.VpcConfig", map[string]any{"SecurityGroupIds": []any{"a", "b", "c", "d", "e", "f"}, "Subnets": []any{"s"}}}), code: "ValidationException",
			parts: []string{"at 'securityConfig.vpcConfig.securityGroupIds' failed to satisfy constraint: Member must have length less than or equal to 5"}},
		{name: "vpc without subnets", body: c(change{"SecurityConfig.VpcConfig", map[string]any{"SecurityGroupIds": []any{"sg-1"}}}), code: "ValidationException",
			parts: []string{"Value null at 'securityConfig.vpcConfig.subnets'"}},
		{name: "malformed JSON", body: func(*testing.T) string { return `{"AutoMLJobName":` }, code: "SerializationException",
			parts: []string{"Malformed JSON"}},
		{name: "body is a list", body: func(*testing.T) string { return `[]` }, code: "SerializationException",
			parts: []string{"expected a JSON object"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, automl.Config{})
			_, err := e.call(t, "CreateAutoMLJobV2", tc.body(t))
			if err == nil {
				t.Fatal("request accepted")
			}
			if err.Code != tc.code || err.Status != 400 {
				t.Fatalf("error %s (%d): %s; want %s (400)", err.Code, err.Status, err.Message, tc.code)
			}
			if tc.message != "" && err.Message != tc.message {
				t.Errorf("message:\n got %s\nwant %s", err.Message, tc.message)
			}
			for _, p := range tc.parts {
				if !strings.Contains(err.Message, p) {
					t.Errorf("message %q does not contain %q", err.Message, p)
				}
			}
			page, lerr := e.store.ListJobs(context.Background(), store.JobQuery{Limit: 10})
			if lerr != nil || len(page.Jobs) != 0 {
				t.Errorf("a refused request stored jobs: %v %v", page, lerr)
			}
			tags, _, _ := e.store.ListTags(context.Background(), "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1", "", 50)
			if len(tags) != 0 {
				t.Errorf("a refused request stored tags: %v", tags)
			}
		})
	}
}

// c returns a body builder that applies changes to the sample request.
func c(changes ...change) func(t *testing.T) string {
	return func(t *testing.T) string { return edit(t, sampleRequest, changes...) }
}

func TestCreateAccepts(t *testing.T) {
	const tg = "AutoMLProblemTypeConfig.TextGenerationJobConfig."
	trainParquet := `{"ContentType":"x-application/vnd.amazon+parquet","DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/train/"}}}`
	valParquet := strings.Replace(valChannel, "text/csv;header=present", "x-application/vnd.amazon+parquet", 1)
	cases := []struct {
		name string
		body func(t *testing.T) string
	}{
		{"the SageMaker sample", func(*testing.T) string { return sampleRequest }},
		{"minimal, runnable model, no optional members", func(t *testing.T) string {
			return `{"AutoMLJobName":"m","AutoMLJobInputDataConfig":[{"DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/t"}}}],` +
				`"OutputDataConfig":{"S3OutputPath":"s3://b/o"},"RoleArn":"arn:aws:iam::123456789012:role/r",` +
				`"AutoMLProblemTypeConfig":{"TextGenerationJobConfig":{"BaseModelName":"Stories260K"}}}`
		}},
		{"BaseModelName left out: the default, Falcon7BInstruct", func(t *testing.T) string {
			return edit(t, sampleRequest, change{tg + "BaseModelName", del})
		}},
		{"dolly (gpt_neox)", func(t *testing.T) string {
			return edit(t, sampleRequest, change{tg + "BaseModelName", "Dolly3B"})
		}},
		{"falcon 40B", func(t *testing.T) string {
			return edit(t, sampleRequest, change{tg + "BaseModelName", "Falcon40BInstruct"})
		}},
		{"mpt", func(t *testing.T) string {
			return edit(t, sampleRequest, change{tg + "BaseModelName", "MPT7BInstruct"})
		}},
		{"flan-t5 (an encoder-decoder)", func(t *testing.T) string {
			return edit(t, sampleRequest, change{tg + "BaseModelName", "FlanT5XL"})
		}},
		{"parquet training and validation channels", func(t *testing.T) string {
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig", jsonValue(t, "["+trainParquet+","+valParquet+"]")}, change{"DataSplitConfig", del})
		}},
		{"gzip-compressed CSV", func(t *testing.T) string {
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig.0.CompressionType", "Gzip"})
		}},
		{"gzip-compressed Parquet", func(t *testing.T) string {
			gz := strings.Replace(trainParquet, "{", `{"CompressionType":"Gzip",`, 1)
			return edit(t, sampleRequest, change{"AutoMLJobInputDataConfig", jsonValue(t, "["+gz+"]")})
		}},
		{"all hyperparameters at their bounds", func(t *testing.T) string {
			return edit(t, sampleRequest, change{tg + "TextGenerationHyperParameters", map[string]any{
				"epochCount": "10", "batchSize": "64", "learningRate": "1", "learningRateWarmupSteps": "0"}})
		}},
		{"named endpoint, unknown members ignored", func(t *testing.T) string {
			return edit(t, sampleRequest, change{"ModelDeployConfig", map[string]any{"EndpointName": "my-ep"}}, change{"SomeFutureMember", 1})
		}},
		{"unicode tags, null optional member", func(t *testing.T) string {
			return edit(t, sampleRequest, change{"Tags", []any{map[string]any{"Key": "équipe", "Value": "nlp 2"}}}, change{"SecurityConfig", nil})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, automl.Config{})
			out := e.mustCall(t, "CreateAutoMLJobV2", tc.body(t))
			if arn, _ := out["AutoMLJobArn"].(string); !strings.HasPrefix(arn, "arn:aws:sagemaker:us-east-1:123456789012:automl-job/") {
				t.Fatalf("ARN %v", out)
			}
		})
	}
}

// TestEveryCatalogModelIsAccepted: no name in the catalog (the guide's 18 and Lathe's own) is refused
// at create time; the ones that need it get their licence accepted.
func TestEveryCatalogModelIsAccepted(t *testing.T) {
	const tg = "AutoMLProblemTypeConfig.TextGenerationJobConfig."
	e := newEnv(t, automl.Config{})
	for i, m := range catalog.All() {
		body := edit(t, sampleRequest, change{tg + "BaseModelName", m.Name}, change{"AutoMLJobName", fmt.Sprintf("every-model-%d", i)},
			change{tg + "ModelAccessConfig", map[string]any{"AcceptEula": true}})
		e.mustCall(t, "CreateAutoMLJobV2", body)
	}
}

func TestRegisteredModels(t *testing.T) {
	registered := map[string]string{"my-llama": "llama", "my-gpt2": "gpt2"}
	e := newEnv(t, automl.Config{RegisteredModel: func(name string) (string, bool) {
		a, ok := registered[name]
		return a, ok
	}})
	const path = "AutoMLProblemTypeConfig.TextGenerationJobConfig.BaseModelName"
	e.mustCall(t, "CreateAutoMLJobV2", edit(t, sampleRequest, change{path, "my-llama"}))
	_, err := e.call(t, "CreateAutoMLJobV2", edit(t, sampleRequest, change{"AutoMLJobName", "j2"}, change{path, "my-gpt2"}))
	if err == nil || err.Code != "ValidationException" || !strings.Contains(err.Message, "gpt2 architecture") {
		t.Fatalf("unrunnable registered model: %v", err)
	}
}

func TestDuplicateName(t *testing.T) {
	e := newEnv(t, automl.Config{})
	e.mustCall(t, "CreateAutoMLJobV2", sampleRequest)
	_, err := e.call(t, "CreateAutoMLJobV2", edit(t, sampleRequest, change{"AutoMLJobName", "J1"}, change{"Tags.0.Value", "other"}))
	if err == nil || err.Code != "ResourceInUse" || !strings.Contains(err.Message, "J1") {
		t.Fatalf("duplicate name: %v", err)
	}
	// The refused request did not overwrite the first job's tags.
	out := e.mustCall(t, "ListTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1"}`)
	if got := get(t, out, "Tags.0.Value"); got != "v" {
		t.Fatalf("tag value after refused duplicate = %v", got)
	}
}
