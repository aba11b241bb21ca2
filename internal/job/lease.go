package job

import (
	"context"
	"errors"
)

// ErrLeaseLost says the job is no longer this run's: its lease was taken over by another worker
// (after this one stalled past the lease), released, or the job ended. An executor that sees it
// stops writing anything of the job (checkpoints, artifacts, an endpoint) and returns it: whatever
// it would write now could overwrite the work of the run that holds the job.
var ErrLeaseLost = errors.New("the job's lease was taken over by another run")

// Checkpoint says where a job's latest training state is saved. The worker records it with the
// job (under the run's lease) so that the run that takes the job over knows what it resumes from.
type Checkpoint struct {
	URI  string `json:"URI"`  // s3:// URI of the checkpoint object
	Step int    `json:"Step"` // the optimizer steps it holds
}

// Leased is implemented by the Reporter of a job that runs under a lease (a worker's). Reporters of
// runs that nobody else can take over (a local fine-tune, tests) need not implement it.
type Leased interface {
	// CheckLease confirms that the run still holds the job and extends its lease, so a write that
	// follows at once is made while no other run may hold the job. It returns an error wrapping
	// ErrLeaseLost when the lease is gone.
	CheckLease(ctx context.Context) error
	// SetCheckpoint records the job's latest checkpoint (ErrLeaseLost as above).
	SetCheckpoint(ctx context.Context, c Checkpoint) error
}

// CheckLease calls r's CheckLease when r runs under a lease; nil otherwise.
func CheckLease(ctx context.Context, r Reporter) error {
	if l, ok := r.(Leased); ok {
		return l.CheckLease(ctx)
	}
	return nil
}

// RecordCheckpoint calls r's SetCheckpoint when r runs under a lease; nil otherwise.
func RecordCheckpoint(ctx context.Context, r Reporter, c Checkpoint) error {
	if l, ok := r.(Leased); ok {
		return l.SetCheckpoint(ctx, c)
	}
	return nil
}
