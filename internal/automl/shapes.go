package automl

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
)

// Request and response shapes of the AutoML V2 operations, named and nested as in the SageMaker model
// (botocore sagemaker/2017-07-24). Optional scalars are pointers so that "absent" and "zero" differ;
// every member is omitted when unset, as the SDKs expect.

type channel struct {
	ChannelType     *string     `json:",omitempty"`
	ContentType     *string     `json:",omitempty"`
	CompressionType *string     `json:",omitempty"`
	DataSource      *dataSource `json:",omitempty"`
}

type dataSource struct {
	S3DataSource *s3DataSource `json:",omitempty"`
}

type s3DataSource struct {
	S3DataType *string `json:",omitempty"`
	S3Uri      *string `json:",omitempty"`
}

type outputDataConfig struct {
	KmsKeyId     *string `json:",omitempty"`
	S3OutputPath *string `json:",omitempty"`
}

type tag struct {
	Key   *string `json:",omitempty"`
	Value *string `json:",omitempty"`
}

type vpcConfig struct {
	SecurityGroupIds []string `json:",omitempty"`
	Subnets          []string `json:",omitempty"`
}

type securityConfig struct {
	VolumeKmsKeyId                        *string    `json:",omitempty"`
	EnableInterContainerTrafficEncryption *bool      `json:",omitempty"`
	VpcConfig                             *vpcConfig `json:",omitempty"`
}

type jobObjective struct {
	MetricName *string `json:",omitempty"`
}

type modelDeployConfig struct {
	AutoGenerateEndpointName *bool   `json:",omitempty"`
	EndpointName             *string `json:",omitempty"`
}

type dataSplitConfig struct {
	ValidationFraction *float64 `json:",omitempty"`
}

type emrServerlessComputeConfig struct {
	ExecutionRoleARN *string `json:",omitempty"`
}

type computeConfig struct {
	EmrServerlessComputeConfig *emrServerlessComputeConfig `json:",omitempty"`
}

type completionCriteria struct {
	MaxCandidates                     *int32 `json:",omitempty"`
	MaxRuntimePerTrainingJobInSeconds *int32 `json:",omitempty"`
	MaxAutoMLJobRuntimeInSeconds      *int32 `json:",omitempty"`
}

type modelAccessConfig struct {
	AcceptEula *bool `json:",omitempty"`
}

type textGenerationJobConfig struct {
	CompletionCriteria            *completionCriteria `json:",omitempty"`
	BaseModelName                 *string             `json:",omitempty"`
	TextGenerationHyperParameters hyperParams         `json:",omitempty"`
	ModelAccessConfig             *modelAccessConfig  `json:",omitempty"`
}

// hyperParams is TextGenerationHyperParameters: a map of strings whose type errors name the key.
type hyperParams map[string]string

func (h *hyperParams) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*h = nil
		return nil
	}
	out := make(hyperParams, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return &json.UnmarshalTypeError{Value: jsonKind(v), Type: reflect.TypeFor[string](), Field: k}
		}
		out[k] = s
	}
	*h = out
	return nil
}

// problemTypeMembers are the members of the AutoMLProblemTypeConfig union.
var problemTypeMembers = []string{
	"ImageClassificationJobConfig", "TextClassificationJobConfig", "TimeSeriesForecastingJobConfig",
	"TabularJobConfig", "TextGenerationJobConfig",
}

// problemTypeConfig is the AutoMLProblemTypeConfig union. Only the text-generation member is decoded;
// the others are only noted, to refuse them with a clear message.
type problemTypeConfig struct {
	TextGenerationJobConfig *textGenerationJobConfig `json:",omitempty"`
	set                     []string                 // the members present (non-null), in model order
}

func (p *problemTypeConfig) UnmarshalJSON(b []byte) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return err
	}
	if members == nil {
		return nil
	}
	p.set = nil
	for _, name := range problemTypeMembers {
		raw, ok := members[name]
		if !ok || string(raw) == "null" {
			continue
		}
		p.set = append(p.set, name)
	}
	if raw, ok := members["TextGenerationJobConfig"]; ok {
		if err := json.Unmarshal(raw, &p.TextGenerationJobConfig); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				te.Field = strings.TrimSuffix("TextGenerationJobConfig."+te.Field, ".")
			}
			return err
		}
	}
	return nil
}

// createRequest is CreateAutoMLJobV2's input. Stored (with defaults resolved) as the job's request
// document, and echoed by DescribeAutoMLJobV2.
type createRequest struct {
	AutoMLJobName            *string            `json:",omitempty"`
	AutoMLJobInputDataConfig []channel          `json:",omitempty"`
	OutputDataConfig         *outputDataConfig  `json:",omitempty"`
	AutoMLProblemTypeConfig  *problemTypeConfig `json:",omitempty"`
	RoleArn                  *string            `json:",omitempty"`
	Tags                     []tag              `json:",omitempty"`
	SecurityConfig           *securityConfig    `json:",omitempty"`
	AutoMLJobObjective       *jobObjective      `json:",omitempty"`
	ModelDeployConfig        *modelDeployConfig `json:",omitempty"`
	DataSplitConfig          *dataSplitConfig   `json:",omitempty"`
	AutoMLComputeConfig      *computeConfig     `json:",omitempty"`
}

type createResponse struct {
	AutoMLJobArn string
}

type jobNameRequest struct {
	AutoMLJobName *string `json:",omitempty"`
}

type resolvedAttributes struct {
	CompletionCriteria                  *completionCriteria            `json:",omitempty"`
	AutoMLProblemTypeResolvedAttributes *problemTypeResolvedAttributes `json:",omitempty"`
}

type problemTypeResolvedAttributes struct {
	TextGenerationResolvedAttributes *textGenerationResolvedAttributes `json:",omitempty"`
}

type textGenerationResolvedAttributes struct {
	BaseModelName string
}

type candidateStep struct {
	CandidateStepType string
	CandidateStepArn  string
	CandidateStepName string
}

type inferenceContainer struct {
	Image        string
	ModelDataUrl string
	Environment  map[string]string `json:",omitempty"`
}

type metricDatum struct {
	StandardMetricName string
	Value              float64
	Set                string
}

type candidateProperties struct {
	CandidateMetrics []metricDatum `json:",omitempty"`
}

type candidate struct {
	CandidateName                 string
	ObjectiveStatus               string
	CandidateSteps                []candidateStep
	CandidateStatus               string
	InferenceContainers           []inferenceContainer            `json:",omitempty"`
	InferenceContainerDefinitions map[string][]inferenceContainer `json:",omitempty"`
	CreationTime                  epochTime
	EndTime                       epochTime `json:",omitzero"`
	LastModifiedTime              epochTime
	CandidateProperties           *candidateProperties `json:",omitempty"`
}

type modelDeployResult struct {
	EndpointName string `json:",omitempty"`
}

type describeResponse struct {
	AutoMLJobName               string
	AutoMLJobArn                string
	AutoMLJobInputDataConfig    []channel
	OutputDataConfig            *outputDataConfig
	RoleArn                     *string
	AutoMLJobObjective          *jobObjective      `json:",omitempty"`
	AutoMLProblemTypeConfig     *problemTypeConfig `json:",omitempty"`
	AutoMLProblemTypeConfigName string
	CreationTime                epochTime
	EndTime                     epochTime `json:",omitzero"`
	LastModifiedTime            epochTime
	FailureReason               string     `json:",omitempty"`
	BestCandidate               *candidate `json:",omitempty"`
	AutoMLJobStatus             string
	AutoMLJobSecondaryStatus    string
	ResolvedAttributes          *resolvedAttributes `json:",omitempty"`
	ModelDeployConfig           *modelDeployConfig  `json:",omitempty"`
	ModelDeployResult           *modelDeployResult  `json:",omitempty"`
	DataSplitConfig             *dataSplitConfig    `json:",omitempty"`
	SecurityConfig              *securityConfig     `json:",omitempty"`
	// TrainingProgress is Lathe's own member (the SDKs ignore unknown members): the latest progress
	// of a running job.
	TrainingProgress json.RawMessage `json:",omitempty"`
}

type listJobsRequest struct {
	CreationTimeAfter      *epochTime `json:",omitempty"`
	CreationTimeBefore     *epochTime `json:",omitempty"`
	LastModifiedTimeAfter  *epochTime `json:",omitempty"`
	LastModifiedTimeBefore *epochTime `json:",omitempty"`
	NameContains           *string    `json:",omitempty"`
	StatusEquals           *string    `json:",omitempty"`
	SortOrder              *string    `json:",omitempty"`
	SortBy                 *string    `json:",omitempty"`
	MaxResults             *int32     `json:",omitempty"`
	NextToken              *string    `json:",omitempty"`
}

type jobSummary struct {
	AutoMLJobName            string
	AutoMLJobArn             string
	AutoMLJobStatus          string
	AutoMLJobSecondaryStatus string
	CreationTime             epochTime
	EndTime                  epochTime `json:",omitzero"`
	LastModifiedTime         epochTime
	FailureReason            string `json:",omitempty"`
}

type listJobsResponse struct {
	AutoMLJobSummaries []jobSummary
	NextToken          string `json:",omitempty"`
}

type listCandidatesRequest struct {
	AutoMLJobName       *string `json:",omitempty"`
	StatusEquals        *string `json:",omitempty"`
	CandidateNameEquals *string `json:",omitempty"`
	SortOrder           *string `json:",omitempty"`
	SortBy              *string `json:",omitempty"`
	MaxResults          *int32  `json:",omitempty"`
	NextToken           *string `json:",omitempty"`
}

type listCandidatesResponse struct {
	Candidates []candidate
	NextToken  string `json:",omitempty"`
}

type addTagsRequest struct {
	ResourceArn *string `json:",omitempty"`
	Tags        []tag   `json:",omitempty"`
}

type tagsResponse struct {
	Tags      []tagOut
	NextToken string `json:",omitempty"`
}

type tagOut struct {
	Key   string
	Value string
}

type listTagsRequest struct {
	ResourceArn *string `json:",omitempty"`
	NextToken   *string `json:",omitempty"`
	MaxResults  *int32  `json:",omitempty"`
}

type deleteTagsRequest struct {
	ResourceArn *string  `json:",omitempty"`
	TagKeys     []string `json:",omitempty"`
}

type empty struct{}
