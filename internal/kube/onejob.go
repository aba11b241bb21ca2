package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
)

// JobFailedError is the outcome of `lathe worker --job` for a job that ended Failed.
type JobFailedError struct{ Name, Reason string }

func (e *JobFailedError) Error() string { return fmt.Sprintf("job %s failed: %s", e.Name, e.Reason) }

// OneJob is the queue of `lathe worker --job NAME`: a store.Queue that offers the worker that one
// job, once, as soon as it is claimable (a pod that replaces a dead one waits for the dead one's
// lease to run out), and records how the run ended.
type OneJob struct {
	Store
	Name string

	mu      sync.Mutex
	claimed bool
	done    chan struct{}
	status  string // the job's final status, or "" when the run ended without one
	reason  string
	err     error
}

// NewOneJob returns the queue of the job called name.
func NewOneJob(st Store, name string) *OneJob {
	return &OneJob{Store: st, Name: name, done: make(chan struct{})}
}

// Done is closed once the run has ended: the outcome written, the lease given back or lost, or the
// job found ended or missing.
func (q *OneJob) Done() <-chan struct{} { return q.done }

func (q *OneJob) end(status, reason string, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.done:
		return
	default:
	}
	q.status, q.reason, q.err = status, reason, err
	close(q.done)
}

// ClaimJob claims the job the first time it is claimable; nil afterwards, and nil while another
// process holds it.
func (q *OneJob) ClaimJob(ctx context.Context, owner string, d time.Duration) (*store.Job, error) {
	q.mu.Lock()
	claimed := q.claimed
	q.mu.Unlock()
	if claimed {
		return nil, nil
	}
	j, err := q.Store.ClaimNamedJob(ctx, q.Name, owner, d)
	if err != nil || j != nil {
		if j != nil {
			q.mu.Lock()
			q.claimed = true
			q.mu.Unlock()
		}
		return j, err
	}
	cur, err := q.Store.GetJob(ctx, q.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		q.end("", "", fmt.Errorf("job %s does not exist", q.Name))
	case err != nil:
		return nil, err
	case cur.Status != store.StatusInProgress && cur.Status != store.StatusStopping:
		// Ended already (this pod replaces one that wrote the outcome and died before exiting).
		q.end(cur.Status, cur.FailureReason, nil)
	}
	return nil, nil
}

// FinishJob writes the outcome and ends the run.
func (q *OneJob) FinishJob(ctx context.Context, l store.Lease, f store.FinalState) error {
	err := q.Store.FinishJob(ctx, l, f)
	if err != nil {
		q.end("", "", fmt.Errorf("write the outcome of job %s: %w", q.Name, err))
		return err
	}
	q.end(f.Status, f.FailureReason, nil)
	return nil
}

// ReleaseLease gives the job back (the worker is shutting down) and ends the run: the Job's next pod
// resumes it.
func (q *OneJob) ReleaseLease(ctx context.Context, l store.Lease) error {
	err := q.Store.ReleaseLease(ctx, l)
	q.end("", "", fmt.Errorf("job %s given back unfinished (shutting down); the next pod resumes it", q.Name))
	return err
}

// RenewLease renews the lease; a lease taken over ends the run (another process runs the job).
func (q *OneJob) RenewLease(ctx context.Context, l store.Lease, d time.Duration) (bool, error) {
	stop, err := q.Store.RenewLease(ctx, l, d)
	if errors.Is(err, store.ErrFenced) {
		q.end("", "", fmt.Errorf("job %s: lease taken over by another process: %w", q.Name, err))
	}
	return stop, err
}

// Run runs a worker over q (run is its Run) until the job's run ends, then stops the worker. It
// returns nil for a job that ended Completed or Stopped, a *JobFailedError for one that ended
// Failed, and an error when the run ended without an outcome (so the pod fails and the Job retries).
func (q *OneJob) Run(ctx context.Context, run func(context.Context) error) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(wctx) }()
	var runErr error
	select {
	case <-q.done:
		cancel()
		runErr = <-errc
	case runErr = <-errc:
	}
	select {
	case <-q.done:
	default:
		if runErr == nil {
			runErr = context.Cause(ctx)
		}
		return fmt.Errorf("job %s not run: %w", q.Name, runErr)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.err != nil:
		return q.err
	case q.status == store.StatusFailed:
		return &JobFailedError{Name: q.Name, Reason: q.reason}
	}
	return nil
}
