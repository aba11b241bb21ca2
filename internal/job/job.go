// Package job is the contract between the AutoML control plane (which stores jobs, claims them and
// moves them through their statuses) and the executor that does the work of a job (the fine-tuning
// pipeline). The control plane knows nothing of training; the executor knows nothing of the queue.
package job

import (
	"context"
	"time"
)

// Secondary statuses an executor may report while it works (AutoMLJobSecondaryStatus values).
const (
	PhaseAnalyzingData  = "AnalyzingData"
	PhaseTrainingModels = "TrainingModels"
	PhaseDeployingModel = "DeployingModel"
)

// Channel is one input channel of the job, as resolved from the request (defaults applied).
type Channel struct {
	Type        string // "training" or "validation"
	ContentType string // "text/csv;header=present" or "x-application/vnd.amazon+parquet"
	S3URI       string // s3://bucket/prefix
	// Compression is the channel's CompressionType, "None" or "Gzip"; "" (a local run, or a job
	// stored before it was recorded) detects gzip by its magic bytes.
	Compression string `json:",omitempty"`
}

// Spec is everything an executor needs to know about a job.
type Spec struct {
	Name               string
	ARN                string
	Channels           []Channel
	OutputPath         string            // OutputDataConfig.S3OutputPath
	BaseModel          string            // resolved BaseModelName (catalog name)
	HyperParameters    map[string]string // TextGenerationHyperParameters, validated
	ValidationFraction float64           // resolved (0.2 by default); 0 when a validation channel is given
	// EndpointName is the endpoint to create after training; empty when no deployment is asked for.
	EndpointName string
	// MaxRuntimePerTrainingJob bounds the training phase (0 = no bound).
	MaxRuntimePerTrainingJob time.Duration
	CreationTime             time.Time
	// RunAs is the principal whose permissions the job reads and writes S3 with: the execution
	// role's ARN when the role exists, else the creator's ARN; "" means unrestricted (the root).
	RunAs string `json:",omitempty"`
	// OutputKMSKey encrypts the artifacts (OutputDataConfig.KmsKeyId, resolved to a key ARN);
	// VolumeKMSKey the checkpoints (SecurityConfig.VolumeKmsKeyId). "" leaves them plain.
	OutputKMSKey string `json:",omitempty"`
	VolumeKMSKey string `json:",omitempty"`
}

// Progress is what a running job shows in DescribeAutoMLJobV2 (as extra members) and in the CLI.
type Progress struct {
	Phase           string  `json:"Phase"`
	Step            int     `json:"Step"`
	TotalSteps      int     `json:"TotalSteps"`
	Epoch           float64 `json:"Epoch"`
	Loss            float64 `json:"Loss"`
	TokensPerSecond float64 `json:"TokensPerSecond"`
	ETASeconds      float64 `json:"EtaSeconds"`
	Message         string  `json:"Message,omitempty"`
}

// Reporter receives an executor's status changes and progress. Implementations persist them.
type Reporter interface {
	// SetPhase moves the job to a secondary status (one of the Phase constants).
	SetPhase(ctx context.Context, secondaryStatus string) error
	// Progress records the latest progress; callers may call it often, implementations may throttle.
	Progress(ctx context.Context, p Progress) error
}

// Metric is one MetricDatum of the candidate (StandardMetricName, Value, Set).
type Metric struct {
	Name  string  // Rouge1, Rouge2, RougeL, RougeLSum, Perplexity, ValidationLoss, TrainingLoss
	Value float64 //
	Set   string  // "Train" or "Validation"
}

// Result is what a successful execution produced; it becomes the job's BestCandidate.
type Result struct {
	CandidateName   string
	TrainingJobName string // CandidateSteps[0].CandidateStepName
	Image           string // InferenceContainers[0].Image
	ModelDataURL    string // InferenceContainers[0].ModelDataUrl: s3:// URI of the model artifact
	Environment     map[string]string
	ArtifactsPrefix string // s3:// prefix holding metrics, logs and reports
	Metrics         []Metric
	// EndpointName is set when the executor deployed the model; DeployError when deploying failed
	// (the job then ends Completed / ModelDeploymentError and keeps the trained model).
	EndpointName string
	DeployError  string
}

// Executor runs one job to completion. It must return promptly with ctx.Err() when ctx is cancelled
// (StopAutoMLJob, runtime limit), keeping whatever checkpoint it has, so that a later Execute of the
// same Spec resumes from it. Any other error fails the job; its text becomes the FailureReason, so it
// must tell the user what to fix.
type Executor interface {
	Execute(ctx context.Context, spec Spec, r Reporter) (*Result, error)
}
