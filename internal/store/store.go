// Package store defines the metadata store that the AutoML control plane and the workers share: the
// job rows (which are also the work queue) and the tags of SageMaker resources. Backends live in
// sub-packages (store/sqlite today; store/postgres later) and implement Store.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors a backend returns; callers test them with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrExists    = errors.New("already exists")
	ErrLeaseLost = errors.New("lease lost") // the caller no longer holds the job's lease
	ErrBadCursor = errors.New("bad list cursor")
)

// AutoMLJobStatus values that the queue logic depends on.
const (
	StatusInProgress = "InProgress"
	StatusStopping   = "Stopping"
	StatusStopped    = "Stopped"
	StatusCompleted  = "Completed"
	StatusFailed     = "Failed"
)

// Job is one AutoML job row. The request and resolved spec are opaque JSON documents owned by the
// API layer; the store only indexes the columns it filters and sorts on.
type Job struct {
	Name      string // as the user spelled it
	ARN       string
	Request   json.RawMessage // the CreateAutoMLJobV2 request as accepted
	Spec      json.RawMessage // the resolved job.Spec
	Status    string
	Secondary string // AutoMLJobSecondaryStatus
	Created   time.Time
	Modified  time.Time
	Ended     time.Time // zero while the job runs
	// Deadline is when MaxAutoMLJobRuntimeInSeconds runs out; zero when unbounded.
	Deadline      time.Time
	FailureReason string
	Result        json.RawMessage // the job.Result, once there is one
	Progress      json.RawMessage // the latest job.Progress, while it runs
	StopRequested bool
	LeaseOwner    string
	LeaseExpiry   time.Time
	// Attempts counts the claims of the job that did not end in ReleaseLease: the run in progress
	// and the runs whose worker died.
	Attempts int
}

// Tag is one resource tag.
type Tag struct {
	Key   string
	Value string
}

// Sort keys for ListJobs.
const (
	SortByName         = "Name"
	SortByCreationTime = "CreationTime"
	SortByStatus       = "Status"
)

// JobQuery selects, orders and pages jobs. Zero values mean "no filter".
type JobQuery struct {
	NameContains   string // case-insensitive substring of the name
	Status         string
	CreatedAfter   time.Time // strictly after
	CreatedBefore  time.Time // strictly before
	ModifiedAfter  time.Time
	ModifiedBefore time.Time
	SortBy         string // SortByName (default), SortByCreationTime or SortByStatus
	Descending     bool
	// After is the cursor returned with the previous page (empty for the first page).
	After string
	Limit int // rows to return (at most); must be > 0
}

// JobPage is one page of ListJobs. Next is the cursor of the next page, empty on the last one.
type JobPage struct {
	Jobs []Job
	Next string
}

// FinalState is how a run of a job ended.
type FinalState struct {
	Status        string
	Secondary     string
	FailureReason string
	Result        json.RawMessage
	Ended         time.Time
}

// Jobs is what the API layer needs.
type Jobs interface {
	// CreateJob inserts the job and its tags in one transaction; ErrExists when a job with the same
	// name (case-insensitive) exists.
	CreateJob(ctx context.Context, j *Job, tags []Tag) error
	// GetJob finds a job by name, case-insensitively; ErrNotFound when there is none.
	GetJob(ctx context.Context, name string) (*Job, error)
	// ListJobs returns one page of job summaries: Name, ARN, Status, Secondary, Created, Modified,
	// Ended and FailureReason are set, the rest is left zero. ErrBadCursor when q.After was not made
	// for this query.
	ListJobs(ctx context.Context, q JobQuery) (*JobPage, error)
	// RequestStop moves an InProgress job to Stopping/Stopping and flags it for its worker. It
	// returns the job as it is afterwards; a job in another status is returned unchanged.
	RequestStop(ctx context.Context, name string, now time.Time) (*Job, error)
}

// Queue is what a worker needs: the job rows are the queue, a lease says who runs a job.
type Queue interface {
	// ClaimJob leases one runnable job (InProgress or Stopping, with no lease or an expired one,
	// oldest first) to owner until leaseUntil and counts the attempt. It returns nil, nil when there
	// is nothing to claim. Two callers never get the same job while its lease is live.
	ClaimJob(ctx context.Context, owner string, now, leaseUntil time.Time) (*Job, error)
	// RenewLease extends the lease and reports whether a stop was requested; ErrLeaseLost when owner
	// no longer holds it.
	RenewLease(ctx context.Context, name, owner string, leaseUntil time.Time) (stopRequested bool, err error)
	// SetSecondaryStatus records a phase of a running job (ErrLeaseLost as above).
	SetSecondaryStatus(ctx context.Context, name, owner, secondary string, now time.Time) error
	// SetProgress records the latest progress document of a running job (ErrLeaseLost as above).
	SetProgress(ctx context.Context, name, owner string, progress json.RawMessage, now time.Time) error
	// FinishJob writes the final state and drops the lease (ErrLeaseLost as above).
	FinishJob(ctx context.Context, name, owner string, f FinalState) error
	// ReleaseLease gives the job back to the queue unchanged, so another worker can resume it; the
	// claim is not counted in Attempts.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Tags stores resource tags by ARN.
type Tags interface {
	// AddTags sets the tags (overwriting values of existing keys). It fails with ErrTooManyTags when
	// the resource would hold more than maxTags tags, leaving the tags unchanged.
	AddTags(ctx context.Context, arn string, tags []Tag, maxTags int) error
	// ListTags returns up to limit tags of the resource ordered by key, starting after the key
	// afterKey (empty for the first page), and whether more follow.
	ListTags(ctx context.Context, arn, afterKey string, limit int) (tags []Tag, more bool, err error)
	// DeleteTags removes the given keys; missing keys are ignored.
	DeleteTags(ctx context.Context, arn string, keys []string) error
}

// ErrTooManyTags is returned by AddTags when the tag limit would be exceeded.
var ErrTooManyTags = errors.New("too many tags")

// Store is a complete metadata store.
type Store interface {
	Jobs
	Queue
	Tags
	Close() error
}
