package automl_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"

	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/client"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/server"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
	"github.com/lathe-ml/lathe/internal/worker"
)

// instantExecutor completes every job at once with a fixed result: a test double of the pipeline,
// so the end-to-end tests can see a completed job through the SDK.
type instantExecutor struct{}

func (instantExecutor) Execute(ctx context.Context, spec job.Spec, r job.Reporter) (*job.Result, error) {
	for _, p := range []string{job.PhaseAnalyzingData, job.PhaseTrainingModels} {
		if err := r.SetPhase(ctx, p); err != nil {
			return nil, err
		}
	}
	return &job.Result{
		CandidateName: spec.Name + "-candidate", TrainingJobName: spec.Name + "-training",
		Image: "lathe/inference", ModelDataURL: spec.OutputPath + spec.Name + "/model.tar.gz",
		Metrics: []job.Metric{{Name: "ValidationLoss", Value: 1.5, Set: "Validation"}, {Name: "RougeLSum", Value: 0.25, Set: "Validation"}},
	}, nil
}

const (
	testAccessKey = "AKIAIOSFODNN7EXAMPLE"
	testSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// startServer runs the front door with the AutoML service and a worker on 127.0.0.1:0 and returns
// a sagemaker client pointed at it.
func startServer(t testing.TB, exec job.Executor) *sagemaker.Client {
	sm, _ := startStack(t, exec)
	return sm
}

// startStack is startServer that also returns the service, so benchmarks can fill the store fast.
func startStack(t testing.TB, exec job.Executor) (*sagemaker.Client, *automl.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lathe.db"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	w := worker.New(st, exec, worker.Options{PollInterval: 10 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond, Logger: quiet})
	svc, err := automl.New(automl.Config{Store: st, Notifier: w})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{
		Region: "us-east-1", AccountID: "123456789012",
		Credentials: server.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey},
		SageMaker:   svc.Operations(),
		Logger:      quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); w.Run(ctx) }()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-workerDone
		st.Close()
	})
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		// A buildable client: a plain http.Client breaks where AWS_CA_BUNDLE is set.
		HTTPClient: client.HTTPClient(),
		Retryer:    func() aws.Retryer { return aws.NopRetryer{} },
	}
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("http://" + l.Addr().String()) }), svc
}

// sampleInput is the SageMaker docs sample as aws-sdk-go-v2 input (the captured request of reference §2).
func sampleInput(name string) *sagemaker.CreateAutoMLJobV2Input {
	return &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String(name),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{
			ChannelType: types.AutoMLChannelTypeTraining, CompressionType: types.CompressionTypeNone,
			ContentType: aws.String("text/csv;header=present"),
			DataSource:  &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix, S3Uri: aws.String("s3://b/train/")}},
		}},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
			BaseModelName: aws.String("Llama2-7B"),
			CompletionCriteria: &types.AutoMLJobCompletionCriteria{
				MaxAutoMLJobRuntimeInSeconds: aws.Int32(3600), MaxRuntimePerTrainingJobInSeconds: aws.Int32(3000),
			},
			ModelAccessConfig:             &types.ModelAccessConfig{AcceptEula: aws.Bool(true)},
			TextGenerationHyperParameters: map[string]string{"epochCount": "3", "learningRate": "0.0001"},
		}},
		DataSplitConfig:   &types.AutoMLDataSplitConfig{ValidationFraction: aws.Float32(0.1)},
		ModelDeployConfig: &types.ModelDeployConfig{AutoGenerateEndpointName: aws.Bool(true)},
		OutputDataConfig:  &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://b/out/")},
		RoleArn:           aws.String("arn:aws:iam::123456789012:role/r"),
		Tags:              []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	}
}

func TestSDKEndToEnd(t *testing.T) {
	ctx := context.Background()
	sm := startServer(t, instantExecutor{})

	created, err := sm.CreateAutoMLJobV2(ctx, sampleInput("Sample-Job"))
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(created.AutoMLJobArn); got != "arn:aws:sagemaker:us-east-1:123456789012:automl-job/sample-job" {
		t.Fatalf("ARN %s", got)
	}

	var d *sagemaker.DescribeAutoMLJobV2Output
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err = sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("sample-job")})
		if err != nil {
			t.Fatal(err)
		}
		if d.AutoMLJobStatus == types.AutoMLJobStatusCompleted || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d.AutoMLJobStatus != types.AutoMLJobStatusCompleted || d.AutoMLJobSecondaryStatus != types.AutoMLJobSecondaryStatusCompleted {
		t.Fatalf("status %s/%s (%s)", d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus, aws.ToString(d.FailureReason))
	}
	if d.AutoMLProblemTypeConfigName != types.AutoMLProblemTypeConfigNameTextGeneration || aws.ToString(d.AutoMLJobName) != "Sample-Job" ||
		d.CreationTime == nil || d.EndTime == nil || d.EndTime.Before(*d.CreationTime) || time.Since(*d.CreationTime) > time.Minute {
		t.Fatalf("describe: %+v", d)
	}
	tg, ok := d.AutoMLProblemTypeConfig.(*types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig)
	if !ok || aws.ToString(tg.Value.BaseModelName) != "Llama2-7B" || tg.Value.TextGenerationHyperParameters["learningRate"] != "0.0001" {
		t.Fatalf("echoed problem type config: %#v", d.AutoMLProblemTypeConfig)
	}
	resolved, ok := d.ResolvedAttributes.AutoMLProblemTypeResolvedAttributes.(*types.AutoMLProblemTypeResolvedAttributesMemberTextGenerationResolvedAttributes)
	if !ok || aws.ToString(resolved.Value.BaseModelName) != "Llama2-7B" ||
		aws.ToInt32(d.ResolvedAttributes.CompletionCriteria.MaxCandidates) != 1 ||
		aws.ToInt32(d.ResolvedAttributes.CompletionCriteria.MaxRuntimePerTrainingJobInSeconds) != 3000 {
		t.Fatalf("resolved attributes: %#v", d.ResolvedAttributes)
	}
	if v := aws.ToFloat32(d.DataSplitConfig.ValidationFraction); v != 0.1 {
		t.Fatalf("ValidationFraction %v", v)
	}
	bc := d.BestCandidate
	if bc == nil || aws.ToString(bc.CandidateName) != "Sample-Job-candidate" || bc.CandidateStatus != types.CandidateStatusCompleted ||
		bc.ObjectiveStatus != types.ObjectiveStatusSucceeded || len(bc.InferenceContainers) != 1 ||
		aws.ToString(bc.InferenceContainers[0].ModelDataUrl) != "s3://b/out/Sample-Job/model.tar.gz" ||
		len(bc.InferenceContainerDefinitions["CPU"]) != 1 || len(bc.CandidateSteps) != 1 ||
		bc.CandidateSteps[0].CandidateStepType != types.CandidateStepTypeTraining {
		t.Fatalf("best candidate: %+v", bc)
	}
	m := bc.CandidateProperties.CandidateMetrics
	if len(m) != 2 || m[1].StandardMetricName != types.AutoMLMetricExtendedEnumRougelSum || aws.ToFloat32(m[1].Value) != 0.25 ||
		m[1].Set != types.MetricSetSourceValidation || m[1].MetricName != "" {
		t.Fatalf("metrics: %+v", m)
	}

	cands, err := sm.ListCandidatesForAutoMLJob(ctx, &sagemaker.ListCandidatesForAutoMLJobInput{AutoMLJobName: aws.String("Sample-Job")})
	if err != nil || len(cands.Candidates) != 1 || aws.ToString(cands.Candidates[0].CandidateName) != "Sample-Job-candidate" {
		t.Fatalf("candidates %+v %v", cands, err)
	}

	// Typed errors.
	_, err = sm.CreateAutoMLJobV2(ctx, sampleInput("SAMPLE-JOB"))
	var inUse *types.ResourceInUse
	if !errors.As(err, &inUse) || !strings.Contains(inUse.ErrorMessage(), "SAMPLE-JOB") {
		t.Fatalf("duplicate: %v", err)
	}
	_, err = sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("ghost")})
	var notFound *types.ResourceNotFound
	if !errors.As(err, &notFound) || notFound.ErrorMessage() != "Amazon SageMaker can't find an AutoML job called ghost." {
		t.Fatalf("missing job: %v", err)
	}
	bad := sampleInput("bad_name!")
	_, err = sm.CreateAutoMLJobV2(ctx, bad)
	var apiErr *smithy.GenericAPIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" ||
		apiErr.ErrorMessage() != "1 validation error detected: Value 'bad_name!' at 'autoMLJobName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}" {
		t.Fatalf("bad name: %#v", err)
	}
	tab := sampleInput("tab")
	tab.AutoMLProblemTypeConfig = &types.AutoMLProblemTypeConfigMemberTabularJobConfig{Value: types.TabularJobConfig{TargetAttributeName: aws.String("y")}}
	_, err = sm.CreateAutoMLJobV2(ctx, tab)
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" || !strings.Contains(apiErr.ErrorMessage(), "text generation models only") {
		t.Fatalf("tabular: %v", err)
	}

	// Tags.
	arn := created.AutoMLJobArn
	if _, err := sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("nlp")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 2 || aws.ToString(tags.Tags[0].Key) != "k" || aws.ToString(tags.Tags[1].Value) != "nlp" {
		t.Fatalf("tags %+v %v", tags, err)
	}
	if _, err := sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: arn, TagKeys: []string{"k"}}); err != nil {
		t.Fatal(err)
	}
	if tags, _ := sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: arn}); len(tags.Tags) != 1 {
		t.Fatalf("after delete: %+v", tags.Tags)
	}
}

func TestSDKListStopAndPaginate(t *testing.T) {
	ctx := context.Background()
	sm := startServer(t, nil) // no executor: claimed jobs fail honestly
	const n = 25
	for i := range n {
		if _, err := sm.CreateAutoMLJobV2(ctx, sampleInput(fmt.Sprintf("job-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	p := sagemaker.NewListAutoMLJobsPaginator(sm, &sagemaker.ListAutoMLJobsInput{
		SortOrder: types.AutoMLSortOrderAscending, MaxResults: aws.Int32(7),
		CreationTimeAfter: aws.Time(time.Now().Add(-time.Hour)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.AutoMLJobSummaries {
			names = append(names, aws.ToString(s.AutoMLJobName))
		}
	}
	if len(names) != n || names[0] != "job-00" || names[n-1] != "job-24" {
		t.Fatalf("paginated names: %v", names)
	}
	// Every job fails: there is no executor.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := sm.ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{StatusEquals: types.AutoMLJobStatusFailed, MaxResults: aws.Int32(100)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.AutoMLJobSummaries) == n {
			if r := aws.ToString(out.AutoMLJobSummaries[0].FailureReason); r != "no training executor is configured on this Lathe server" {
				t.Fatalf("FailureReason %q", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs failed", len(out.AutoMLJobSummaries), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := sm.StopAutoMLJob(ctx, &sagemaker.StopAutoMLJobInput{AutoMLJobName: aws.String("job-00")})
	var apiErr *smithy.GenericAPIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Fatalf("stop of a failed job: %v", err)
	}
	_, err = sm.StopAutoMLJob(ctx, &sagemaker.StopAutoMLJobInput{AutoMLJobName: aws.String("ghost")})
	var notFound *types.ResourceNotFound
	if !errors.As(err, &notFound) {
		t.Fatalf("stop of a missing job: %v", err)
	}
}
