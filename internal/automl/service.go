// Package automl implements SageMaker's AutoML V2 operations for text generation (fine-tuning):
// CreateAutoMLJobV2, DescribeAutoMLJobV2, ListAutoMLJobs, StopAutoMLJob, ListCandidatesForAutoMLJob
// and the tag operations on automl-job ARNs. It validates requests as SageMaker does, resolves the
// defaults, and keeps jobs in the metadata store, whose rows a worker (package worker) runs.
// It knows nothing of HTTP: the front door decodes the target and encodes the errors.
package automl

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/store"
)

// Store is the part of the metadata store the API needs.
type Store interface {
	store.Jobs
	store.Tags
}

// Notifier hears about queue events at once, so an in-process worker need not wait for its next poll.
type Notifier interface {
	JobCreated()
	StopRequested(name string)
}

// Config configures a Service.
type Config struct {
	Store     Store  // required
	Region    string // default "us-east-1"
	AccountID string // 12 digits; default "123456789012"
	// RegisteredModel reports the architecture of a base model registered in the model store (models
	// beyond the catalog). May be nil.
	RegisteredModel func(name string) (arch string, ok bool)
	// BaseModelAvailable is asked, at create time, whether the job will find its (resolved) base
	// model: nil when it is in the model store or can be pulled, else the error the job would fail
	// with, which refuses the request as a ValidationException in the same words. May be nil.
	BaseModelAvailable func(ctx context.Context, name string) error
	// Notifier is told about new jobs and stop requests. May be nil (workers then find them by polling).
	Notifier Notifier
	// TagResourceExists answers whether a SageMaker resource of another type (endpoint, model, ...)
	// exists, so the tag operations serve those ARNs too. May be nil: then only automl-job ARNs can
	// be tagged.
	TagResourceExists func(ctx context.Context, arn string) (bool, error)
	// ExecutionRole is asked at create time about the request's RoleArn: it returns the principal
	// the job runs as (see job.Spec.RunAs), or the error that refuses the request (an
	// AccessDeniedException without iam:PassRole on the role). May be nil: jobs run unrestricted.
	ExecutionRole func(ctx context.Context, roleARN string) (runAs string, err error)
	// KMSKey resolves a KMS key reference (id, key ARN, alias name or alias ARN) to the key's ARN,
	// failing when the key does not exist or cannot encrypt (disabled, pending deletion). May be
	// nil: KmsKeyId and VolumeKmsKeyId are then only checked for shape.
	KMSKey func(ctx context.Context, ref string) (string, error)
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Service implements the operations over a Store.
type Service struct {
	store             Store
	region, account   string
	registeredModel   func(string) (string, bool)
	baseModelReady    func(context.Context, string) error
	notifier          Notifier
	tagResourceExists func(context.Context, string) (bool, error)
	executionRole     func(context.Context, string) (string, error)
	kmsKey            func(context.Context, string) (string, error)
	now               func() time.Time

	requests requestCache // decoded stored requests, for Describe
}

var (
	reRegion  = regexp.MustCompile(`^[a-z0-9-]+$`)
	reAccount = regexp.MustCompile(`^[0-9]{12}$`)
)

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("automl: a store is required")
	}
	s := &Service{
		store: cfg.Store, region: cfg.Region, account: cfg.AccountID, registeredModel: cfg.RegisteredModel,
		baseModelReady: cfg.BaseModelAvailable,
		notifier:       cfg.Notifier, tagResourceExists: cfg.TagResourceExists, now: cfg.Now,
		executionRole: cfg.ExecutionRole, kmsKey: cfg.KMSKey,
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "123456789012"
	}
	if !reRegion.MatchString(s.region) {
		return nil, fmt.Errorf("automl: bad region %q", s.region)
	}
	if !reAccount.MatchString(s.account) {
		return nil, fmt.Errorf("automl: account id %q must be 12 digits", s.account)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Operations returns the operations keyed by SageMaker operation name (the X-Amz-Target suffix).
// Each decodes its JSON body and returns a JSON-marshalable output, or an error: an *awserr.Error
// for anything the client can fix, any other error for a server fault.
func (s *Service) Operations() map[string]func(ctx context.Context, body []byte) (any, error) {
	return map[string]func(context.Context, []byte) (any, error){
		"CreateAutoMLJobV2":          s.createAutoMLJobV2,
		"DescribeAutoMLJobV2":        s.describeAutoMLJobV2,
		"ListAutoMLJobs":             s.listAutoMLJobs,
		"StopAutoMLJob":              s.stopAutoMLJob,
		"ListCandidatesForAutoMLJob": s.listCandidatesForAutoMLJob,
		"AddTags":                    s.addTags,
		"ListTags":                   s.listTags,
		"DeleteTags":                 s.deleteTags,
	}
}

// arn builds the ARN of a resource; SageMaker lower-cases the name in ARNs.
func (s *Service) arn(kind, name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/%s", s.region, s.account, kind, strings.ToLower(name))
}

func jobNotFound(name string) error {
	return awserr.NotFound("Amazon SageMaker can't find an AutoML job called %s.", name)
}

// getJob loads a job, mapping a missing one to SageMaker's ResourceNotFound.
func (s *Service) getJob(ctx context.Context, name string) (*store.Job, error) {
	j, err := s.store.GetJob(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, jobNotFound(name)
	}
	return j, err
}

// validateJobName checks the AutoMLJobName member of Describe, Stop and ListCandidates.
func validateJobName(name *string) error {
	v := &violations{}
	v.checkString("autoMLJobName", name, true, strRule{min: 1, max: 32, pat: patJobName})
	return v.Err()
}
