package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"
)

const (
	rolesAccount = "000000000000"
	// The guide's trust policy of a SageMaker execution role.
	sageMakerTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	// The guide's inline policy for the JumpStart bucket, as it prints it.
	jumpStartPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],
	  "Resource":["arn:aws:s3:::jumpstart-cache-prod-us-east-1","arn:aws:s3:::jumpstart-cache-prod-us-east-1/*"]}]}`
	// Full access to the input bucket.
	tuningPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::tuning","arn:aws:s3:::tuning/*"]}]}`
)

type rolesEnv struct {
	addr, dataDir string
	root          aws.Config
	iam           *awsiam.Client
	kms           *awskms.Client
	s3            *s3.Client
}

func (e *rolesEnv) sm(cfg aws.Config) *sagemaker.Client {
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("http://" + e.addr) })
}

func startRolesServer(t *testing.T, args ...string) *rolesEnv {
	t.Helper()
	t.Setenv("LATHE_ROOT_ACCESS_KEY_ID", dbTestAccessKey)
	t.Setenv("LATHE_ROOT_SECRET_ACCESS_KEY", dbTestSecretKey)
	t.Setenv("LATHE_ACCOUNT_ID", rolesAccount)
	t.Setenv("LATHE_MASTER_KEY", "")
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1")
	dataDir := t.TempDir()
	if _, err := runModels(t, "import", "../../../shared/models/stories260K.gguf", "--name", "Stories260K", "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	e := &rolesEnv{dataDir: dataDir, root: awsConfig(dbTestAccessKey, dbTestSecretKey)}
	e.addr = serveArgs(t, dataDir, args...)
	url := aws.String("http://" + e.addr)
	e.iam = awsiam.NewFromConfig(e.root, func(o *awsiam.Options) { o.BaseEndpoint = url })
	e.kms = awskms.NewFromConfig(e.root, func(o *awskms.Options) { o.BaseEndpoint = url })
	e.s3 = s3.NewFromConfig(e.root, func(o *s3.Options) { o.BaseEndpoint = url; o.UsePathStyle = true })
	return e
}

func (e *rolesEnv) role(t *testing.T, name string, policies ...string) string {
	t.Helper()
	ctx := context.Background()
	out, err := e.iam.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(sageMakerTrust)})
	if err != nil {
		t.Fatal(err)
	}
	for i, doc := range policies {
		if _, err := e.iam.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(fmt.Sprintf("p%d", i)),
			PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	return aws.ToString(out.Role.Arn)
}

func (e *rolesEnv) user(t *testing.T, name, doc string) aws.Config {
	t.Helper()
	ctx := context.Background()
	if _, err := e.iam.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.iam.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	key, err := e.iam.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return awsConfig(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey))
}

// guideRequest is the guide's full example request, on Stories260K.
func guideRequest(name, roleARN, kmsKey string) *sagemaker.CreateAutoMLJobV2Input {
	in := &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String(name),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{ChannelType: types.AutoMLChannelTypeTraining,
			ContentType: aws.String("text/csv;header=present"), CompressionType: types.CompressionTypeNone,
			DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix,
				S3Uri: aws.String("s3://tuning/train/")}}}},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
			BaseModelName:      aws.String("Stories260K"),
			CompletionCriteria: &types.AutoMLJobCompletionCriteria{MaxAutoMLJobRuntimeInSeconds: aws.Int32(3600)},
			TextGenerationHyperParameters: map[string]string{"epochCount": "1", "batchSize": "8", "learningRate": "0.003",
				"learningRateWarmupSteps": "1"},
			ModelAccessConfig: &types.ModelAccessConfig{AcceptEula: aws.Bool(true)}}},
		OutputDataConfig: &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://tuning/out/")},
		DataSplitConfig:  &types.AutoMLDataSplitConfig{ValidationFraction: aws.Float32(0.2)},
		RoleArn:          aws.String(roleARN),
		Tags:             []types.Tag{{Key: aws.String("project"), Value: aws.String("moo")}},
	}
	if kmsKey != "" {
		in.OutputDataConfig.KmsKeyId = aws.String(kmsKey)
		in.SecurityConfig = &types.AutoMLSecurityConfig{VolumeKmsKeyId: aws.String(kmsKey)}
	}
	return in
}

func waitRoleJob(t *testing.T, sm *sagemaker.Client, name string) *sagemaker.DescribeAutoMLJobV2Output {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := sm.DescribeAutoMLJobV2(context.Background(), &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if s := d.AutoMLJobStatus; s == types.AutoMLJobStatusCompleted || s == types.AutoMLJobStatusFailed || s == types.AutoMLJobStatusStopped {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s/%s after 3 minutes", name, d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func wantAPIError(t *testing.T, err error, code, contains string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), contains) {
		t.Fatalf("err = %v, want %s containing %q", err, code, contains)
	}
}

// The guide, with a real execution role and a real KMS key, as a data scientist who may only use
// SageMaker and pass that role: the job runs as the role to Completed and every artifact is
// SSE-KMS on disk; a role that lacks the input bucket or the JumpStart statement fails the job
// with the denied action and resource; passing a role needs iam:PassRole; a key that is missing or
// disabled refuses the request, and disabling the key afterwards makes the artifacts unreadable.
func TestJobRunsAsItsRoleWithKMSArtifacts(t *testing.T) {
	e := startRolesServer(t)
	ctx := context.Background()
	if _, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tuning")}); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("input,output\n")
	for i := range 40 {
		fmt.Fprintf(&csv, "What says moo %d?,A cow says moo.\n", i)
	}
	if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tuning"), Key: aws.String("train/data.csv"), Body: strings.NewReader(csv.String())}); err != nil {
		t.Fatal(err)
	}
	key, err := e.kms.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	if _, err := e.kms.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/artifacts"), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	// The role encrypts its artifacts with the key: it needs kms:GenerateDataKey on it, as on SageMaker.
	keyPolicy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"` + keyARN + `"}]}`
	trainer := e.role(t, "trainer", tuningPolicy, jumpStartPolicy, keyPolicy)
	noKMS := e.role(t, "no-kms", tuningPolicy, jumpStartPolicy)
	noInput := e.role(t, "no-input", jumpStartPolicy)
	noJumpStart := e.role(t, "no-jumpstart", tuningPolicy)
	ds := e.sm(e.user(t, "ds", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"},
	  {"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::`+rolesAccount+`:role/*"}]}`))
	noPass := e.sm(e.user(t, "nopass", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"}]}`))

	_, err = noPass.CreateAutoMLJobV2(ctx, guideRequest("nopass", trainer, ""))
	wantAPIError(t, err, "AccessDeniedException", "User: arn:aws:iam::"+rolesAccount+":user/nopass is not authorized to perform: iam:PassRole on resource: "+trainer)
	_, err = ds.CreateAutoMLJobV2(ctx, guideRequest("nokey", trainer, "alias/missing"))
	wantAPIError(t, err, "ValidationException", "OutputDataConfig.KmsKeyId 'alias/missing' cannot be used: Alias arn:aws:kms:us-east-1:"+rolesAccount+":alias/missing is not found.")

	if _, err := ds.CreateAutoMLJobV2(ctx, guideRequest("moo", trainer, "alias/artifacts")); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.CreateAutoMLJobV2(ctx, guideRequest("moo-no-kms", noKMS, "alias/artifacts")); err != nil {
		t.Fatal(err)
	}
	// An SSE-KMS dataset: reading it needs kms:Decrypt on its key too.
	if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tuning"), Key: aws.String("train-enc/data.csv"), Body: strings.NewReader(csv.String()),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("alias/artifacts")}); err != nil {
		t.Fatal(err)
	}
	encInput := guideRequest("moo-enc-input", noKMS, "")
	encInput.AutoMLJobInputDataConfig[0].DataSource.S3DataSource.S3Uri = aws.String("s3://tuning/train-enc/")
	if _, err := ds.CreateAutoMLJobV2(ctx, encInput); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.CreateAutoMLJobV2(ctx, guideRequest("moo-no-input", noInput, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.CreateAutoMLJobV2(ctx, guideRequest("moo-no-jumpstart", noJumpStart, "")); err != nil {
		t.Fatal(err)
	}
	if d := waitRoleJob(t, ds, "moo"); d.AutoMLJobStatus != types.AutoMLJobStatusCompleted {
		t.Fatalf("job ended %s/%s: %s", d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus, aws.ToString(d.FailureReason))
	}
	d := waitRoleJob(t, ds, "moo-no-kms")
	if d.AutoMLJobStatus != types.AutoMLJobStatusFailed || !strings.Contains(aws.ToString(d.FailureReason),
		"User: arn:aws:sts::"+rolesAccount+":assumed-role/no-kms/SageMaker is not authorized to perform: kms:GenerateDataKey on resource: "+keyARN) {
		t.Fatalf("job whose role may not use the key: %s: %s", d.AutoMLJobStatus, aws.ToString(d.FailureReason))
	}
	d = waitRoleJob(t, ds, "moo-enc-input")
	if d.AutoMLJobStatus != types.AutoMLJobStatusFailed || !strings.Contains(aws.ToString(d.FailureReason),
		"User: arn:aws:sts::"+rolesAccount+":assumed-role/no-kms/SageMaker is not authorized to perform: kms:Decrypt on resource: "+keyARN) {
		t.Fatalf("job reading an SSE-KMS dataset without kms:Decrypt: %s: %s", d.AutoMLJobStatus, aws.ToString(d.FailureReason))
	}
	d = waitRoleJob(t, ds, "moo-no-input")
	if d.AutoMLJobStatus != types.AutoMLJobStatusFailed || !strings.Contains(aws.ToString(d.FailureReason),
		"User: arn:aws:sts::"+rolesAccount+":assumed-role/no-input/SageMaker is not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::tuning") {
		t.Fatalf("job without the input bucket: %s: %s", d.AutoMLJobStatus, aws.ToString(d.FailureReason))
	}
	d = waitRoleJob(t, ds, "moo-no-jumpstart")
	if d.AutoMLJobStatus != types.AutoMLJobStatusFailed || !strings.Contains(aws.ToString(d.FailureReason),
		"is not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::jumpstart-cache-prod-us-east-1") {
		t.Fatalf("job without the JumpStart statement: %s: %s", d.AutoMLJobStatus, aws.ToString(d.FailureReason))
	}

	// The model store is the JumpStart bucket: readable with the guide's statement, never writable.
	jsReader := s3.NewFromConfig(e.user(t, "js-reader", jumpStartPolicy), func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://" + e.addr)
		o.UsePathStyle = true
	})
	js := aws.String("jumpstart-cache-prod-us-east-1")
	models, err := jsReader.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: js, Prefix: aws.String("Stories260K/")})
	if err != nil || len(models.Contents) == 0 {
		t.Fatalf("list the JumpStart bucket: %+v %v", models, err)
	}
	var gguf string
	for _, o := range models.Contents {
		if strings.HasSuffix(aws.ToString(o.Key), ".gguf") {
			gguf = aws.ToString(o.Key)
		}
	}
	want, err := os.ReadFile("../../../shared/models/stories260K.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if got := readObject(t, jsReader, "jumpstart-cache-prod-us-east-1", gguf); !bytes.Equal(got, want) {
		t.Fatalf("GetObject %s from the JumpStart bucket: %d bytes, the imported file has %d", gguf, len(got), len(want))
	}
	_, err = e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: js, Key: aws.String("Stories260K/x"), Body: strings.NewReader("x")})
	wantAPIError(t, err, "AccessDenied", "Access Denied")
	_, err = jsReader.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tuning"), Key: aws.String("train/data.csv")})
	wantAPIError(t, err, "AccessDenied", "s3:GetObject")

	// Every artifact is SSE-KMS under the key, and its bytes on disk are not the plaintext.
	list, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("tuning"), Prefix: aws.String("out/moo/")})
	if err != nil || len(list.Contents) < 4 {
		t.Fatalf("artifacts: %v %v", list, err)
	}
	for _, o := range list.Contents {
		k := aws.ToString(o.Key)
		head, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tuning"), Key: aws.String(k)})
		if err != nil || head.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms || aws.ToString(head.SSEKMSKeyId) != keyARN {
			t.Errorf("%s: SSE %q key %q (%v)", k, head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId), err)
		}
	}
	metrics := readObject(t, e.s3, "tuning", "out/moo/metrics.json")
	// The embedded S3's file of out/moo/metrics.json (internal/s3api/layout.go).
	raw, err := os.ReadFile(filepath.Join(e.dataDir, "s3", "tuning", "out%2F", "moo%2F", "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(metrics, []byte(`"fine_tuned"`)) || bytes.Contains(raw, []byte(`"fine_tuned"`)) || bytes.Contains(raw, metrics[:32]) {
		t.Fatalf("metrics.json: %d bytes read back, on disk %d bytes that hold its plaintext", len(metrics), len(raw))
	}

	// The audit trail has the PassRole refusal and the S3 calls the jobs made as their roles.
	auditLines, err := os.ReadFile(filepath.Join(e.dataDir, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"principal":"arn:aws:iam::` + rolesAccount + `:user/nopass","accessKeyId":`,
		`"action":"iam:PassRole","resource":"` + trainer + `","allowed":false,"decision":"ImplicitDeny"`,
		`"principal":"arn:aws:sts::` + rolesAccount + `:assumed-role/trainer/SageMaker","api":"job","action":"s3:PutObject","resource":"arn:aws:s3:::tuning/out/moo/metrics.json","allowed":true,"decision":"Allow","policy":"role/trainer/p0"`,
		`"principal":"arn:aws:sts::` + rolesAccount + `:assumed-role/no-input/SageMaker","api":"job","action":"s3:ListBucket","resource":"arn:aws:s3:::tuning","allowed":false,"decision":"ImplicitDeny"`,
	} {
		if !bytes.Contains(auditLines, []byte(want)) {
			t.Errorf("the audit log has no line with %s", want)
		}
	}

	// A model made from the encrypted artifacts: its role must read and decrypt them.
	model := func(name, role string) error {
		_, err := ds.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(name), ExecutionRoleArn: aws.String(role),
			PrimaryContainer: &types.ContainerDefinition{Image: aws.String("lathe/engine:llama"), ModelDataSource: &types.ModelDataSource{
				S3DataSource: &types.S3ModelDataSource{S3Uri: aws.String("s3://tuning/out/moo/model/"), S3DataType: types.S3ModelDataTypeS3Prefix,
					CompressionType: types.ModelCompressionTypeNone}}}})
		return err
	}
	if err := model("moo-model", trainer); err != nil {
		t.Fatalf("CreateModel with a role that may decrypt: %v", err)
	}
	wantAPIError(t, model("moo-model-no-kms", noKMS), "ValidationException",
		"User: arn:aws:sts::"+rolesAccount+":assumed-role/no-kms/SageMaker is not authorized to perform: kms:Decrypt on resource: "+keyARN)
	wantAPIError(t, model("moo-model-no-input", noInput), "ValidationException",
		"Could not access model data at s3://tuning/out/moo/model/.")

	// A disabled key makes the artifacts unreadable, even to the root.
	if _, err := e.kms.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(keyARN)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tuning"), Key: aws.String("out/moo/metrics.json")})
	wantAPIError(t, err, "KMS.DisabledException", keyARN+" is disabled.")
	_, err = ds.CreateAutoMLJobV2(ctx, guideRequest("moo-disabled", trainer, keyARN))
	wantAPIError(t, err, "ValidationException", "OutputDataConfig.KmsKeyId '"+keyARN+"' cannot be used: "+keyARN+" is disabled.")
}

// With --require-roles, a RoleArn that names no role is refused at create time, in SageMaker's words.
func TestRequireRolesRefusesAMissingRole(t *testing.T) {
	e := startRolesServer(t, "--require-roles")
	_, err := e.sm(e.root).CreateAutoMLJobV2(context.Background(), guideRequest("moo", "arn:aws:iam::"+rolesAccount+":role/nobody", ""))
	wantAPIError(t, err, "ValidationException", "Could not assume role arn:aws:iam::"+rolesAccount+":role/nobody. Please ensure that the role exists and allows principal 'sagemaker.amazonaws.com' to assume the role.")
}
