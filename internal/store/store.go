// Package store defines the metadata store that the AutoML control plane and the workers share: the
// job rows (which are also the work queue), the tags of SageMaker resources, the hosting resources
// (models, endpoint configs, endpoints) and the fleet's workers and endpoint replicas. Backends live in
// sub-packages (store/sqlite, the embedded default, and store/postgres, for a fleet of processes) and
// implement Store; package storetest holds the conformance suite both pass.
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
	ErrBadCursor = errors.New("bad list cursor")
	// ErrFenced refuses a write made under a lease that is no longer the job's current one: the
	// lease was taken over by a later claim (whose token is higher), released, or the job finished.
	ErrFenced = errors.New("lease fenced off")
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
	// Checkpoint is the latest checkpoint document the running job recorded (where its state is
	// saved, at which step), so a worker that claims it after a crash resumes from there.
	Checkpoint    json.RawMessage
	StopRequested bool
	LeaseOwner    string
	LeaseExpiry   time.Time // by the store's clock
	// LeaseToken is the fencing token of the latest claim: every claim of the job gets a larger one.
	LeaseToken int64
	// Attempts counts the claims of the job that did not end in ReleaseLease: the run in progress
	// and the runs whose worker died.
	Attempts int
}

// Lease returns the lease of the job as its claimer holds it.
func (j *Job) Lease() Lease {
	return Lease{Job: j.Name, Owner: j.LeaseOwner, Token: j.LeaseToken}
}

// Lease is a worker's hold on a job. Every write a worker makes to its job carries the lease; the
// store accepts it only while Token is still the job's token and the lease has not been released,
// so a worker that stalled past its lease (a long GC pause, a network partition) and was replaced
// cannot overwrite what its successor writes.
type Lease struct {
	Job   string // the job's name
	Owner string // the worker's id
	Token int64  // the fencing token
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

// Queue is what a worker needs: the job rows are the queue, a lease says who runs a job. Lease
// times are kept by the store's clock (the database server's, for a shared database), so workers
// on machines whose clocks disagree still agree on when a lease ran out.
type Queue interface {
	// ClaimJob leases one runnable job (InProgress or Stopping, with no lease or an expired one,
	// oldest first) to owner for the duration d, gives the claim a fencing token larger than any
	// before it on that job, and counts the attempt. It returns nil, nil when there is nothing to
	// claim. Two callers never get the same job while its lease is live. A zero d makes a lease that
	// has already run out (a worker that dies at once).
	ClaimJob(ctx context.Context, owner string, d time.Duration) (*Job, error)
	// RenewLease extends the lease to d from now and reports whether a stop was requested;
	// ErrFenced when l is no longer the job's lease.
	RenewLease(ctx context.Context, l Lease, d time.Duration) (stopRequested bool, err error)
	// SetSecondaryStatus records a phase of a running job (ErrFenced as above).
	SetSecondaryStatus(ctx context.Context, l Lease, secondary string, now time.Time) error
	// SetProgress records the latest progress document of a running job (ErrFenced as above).
	SetProgress(ctx context.Context, l Lease, progress json.RawMessage, now time.Time) error
	// SetCheckpoint records the latest checkpoint document of a running job (ErrFenced as above).
	SetCheckpoint(ctx context.Context, l Lease, checkpoint json.RawMessage) error
	// FinishJob writes the final state and drops the lease (ErrFenced as above).
	FinishJob(ctx context.Context, l Lease, f FinalState) error
	// ReleaseLease gives the job back to the queue unchanged, so another worker can resume it; the
	// claim is not counted in Attempts (ErrFenced as above).
	ReleaseLease(ctx context.Context, l Lease) error
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
	Workers
	Replicas
	Hosting
	Close() error
}
