// Package worker runs AutoML jobs. The job rows of the metadata store are the queue: a worker claims
// a runnable job with a lease that a heartbeat renews, runs it through a job.Executor, and writes the
// outcome. A worker that dies leaves a lease that expires, after which another worker (or the same
// process restarted) claims the job again and the executor resumes from its checkpoint.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/store"
)

// NoExecutorReason is the FailureReason of a job claimed by a worker that has no executor.
const NoExecutorReason = "no training executor is configured on this Lathe server"

// maxFailureReason is the length limit of FailureReason in the SageMaker model.
const maxFailureReason = 1024

// Options tune a Worker. Zero values take the defaults.
type Options struct {
	// Owner identifies this worker in leases; default host-pid-random.
	Owner string
	// Concurrency is how many jobs run at once; default 1 (training uses every core).
	Concurrency int
	// LeaseDuration is how long a claim lasts without a heartbeat; default 30 s.
	LeaseDuration time.Duration
	// HeartbeatInterval is how often the lease is renewed and the stop flag read; default LeaseDuration/3.
	HeartbeatInterval time.Duration
	// PollInterval is how often the queue is polled when idle; default 1 s.
	PollInterval time.Duration
	// ProgressInterval is the least time between two progress writes of a job; default 1 s.
	ProgressInterval time.Duration
	// MaxAttempts bounds how many times a job is run when its worker keeps dying under it (a crash,
	// the kernel's out-of-memory killer): the claim after that many fails the job instead of
	// crash-looping every worker on it. Graceful shutdowns do not count. Default 3.
	MaxAttempts int
	// Registry, when set, lists this worker in the fleet's registry (lathe workers list): Run
	// registers it, renews its entry every HeartbeatInterval whether it runs a job or not, and
	// removes it when it returns.
	Registry store.Workers
	Logger   *slog.Logger
}

// Worker claims and runs jobs.
type Worker struct {
	q    store.Queue
	exec job.Executor
	opts Options
	log  *slog.Logger
	wake chan struct{}
	// stops is signalled when a stop is requested for a job this worker does not run: Run then
	// closes the Stopping jobs waiting in the queue without waiting for a free slot.
	stops chan struct{}

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // by lower-cased job name
}

// Why a job's context was cancelled.
var (
	errStopRequested = errors.New("stop requested")
	errRuntimeLimit  = errors.New("MaxAutoMLJobRuntimeInSeconds reached")
	errShutdown      = errors.New("worker shutting down")
	errLeaseLost     = errors.New("lease lost")
)

// New returns a worker over the queue. exec may be nil: claimed jobs then fail with NoExecutorReason.
func New(q store.Queue, exec job.Executor, opts Options) *Worker {
	if opts.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		opts.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = 30 * time.Second
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = opts.LeaseDuration / 3
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Worker{
		q: q, exec: exec, opts: opts, log: opts.Logger.With("worker", opts.Owner),
		wake: make(chan struct{}, 1), stops: make(chan struct{}, 1), running: map[string]context.CancelCauseFunc{},
	}
}

// Owner is the id this worker writes into its leases.
func (w *Worker) Owner() string { return w.opts.Owner }

// JobCreated wakes the worker to claim a new job now rather than at its next poll.
func (w *Worker) JobCreated() { w.poke() }

// StopRequested cancels the job at once if this worker runs it (other workers see the stop flag at
// their next heartbeat). A job still waiting in the queue is closed as Stopped at once too, even
// while every slot is busy: a stop takes effect in seconds, not after the job ahead of it.
func (w *Worker) StopRequested(name string) {
	w.mu.Lock()
	cancel := w.running[strings.ToLower(name)]
	w.mu.Unlock()
	if cancel != nil {
		cancel(errStopRequested)
		return
	}
	select {
	case w.stops <- struct{}{}:
	default:
	}
}

func (w *Worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs jobs until ctx is cancelled. On cancellation it cancels the running jobs,
// gives their leases back without changing their status (so a restart resumes them) and returns
// once they have all returned.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if w.opts.Registry != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.register(ctx)
		}()
	}
	slots := make(chan struct{}, w.opts.Concurrency)
	poll := time.NewTicker(w.opts.PollInterval)
	defer poll.Stop()
	for {
		for len(slots) < cap(slots) && ctx.Err() == nil {
			j, err := w.q.ClaimJob(ctx, w.opts.Owner, w.opts.LeaseDuration)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Error("claim job", "err", err)
				}
				break
			}
			if j == nil {
				break
			}
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.runJob(ctx, j)
				<-slots
				w.poke()
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.stops:
			w.closeStopped(ctx)
		case <-w.wake:
		case <-poll.C:
		}
	}
}

// register keeps this worker's entry in the registry fresh until ctx ends, then removes it.
func (w *Worker) register(ctx context.Context) {
	host, _ := os.Hostname()
	started := time.Now()
	t := time.NewTicker(w.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		bctx, cancel := context.WithTimeout(ctx, w.opts.HeartbeatInterval)
		if err := w.opts.Registry.WorkerHeartbeat(bctx, w.opts.Owner, host, started); err != nil && ctx.Err() == nil {
			w.log.Warn("worker heartbeat", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := w.opts.Registry.RemoveWorker(rctx, w.opts.Owner); err != nil {
				w.log.Warn("remove worker from the registry", "err", err)
			}
			return
		case <-t.C:
		}
	}
}

// maxStopSweep bounds the claims of one closeStopped: how far down the queue it looks.
const maxStopSweep = 1000

// closeStopped finishes, as Stopped, the Stopping jobs that no worker runs, without a free slot.
// Claims come oldest first, so it claims job after job, holding each only until the sweep ends so
// that the next claim reaches further down the queue. Then it gives back the jobs that were not
// stopped, unchanged (a released claim is not counted as an attempt), and closes the Stopping ones
// as runJob would, in that order: once a job shows Stopped, the queue is as it was. A job that
// another worker runs is not claimable; that worker's heartbeat stops it.
func (w *Worker) closeStopped(ctx context.Context) {
	var held, stopped []*store.Job
	for range maxStopSweep {
		j, err := w.q.ClaimJob(ctx, w.opts.Owner, w.opts.LeaseDuration)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("claim job to close stopped ones", "err", err)
			}
			break
		}
		if j == nil {
			break
		}
		if j.Status == store.StatusStopping || j.StopRequested {
			stopped = append(stopped, j)
		} else {
			held = append(held, j)
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, j := range held {
		if err := w.q.ReleaseLease(rctx, j.Lease()); err != nil {
			w.log.Error("give back a queued job after closing stopped ones", "job", j.Name, "err", err)
		}
	}
	for _, j := range stopped {
		w.finish(w.log.With("job", j.Name, "lease", j.LeaseToken), j.Lease(), store.StatusStopped, "Stopped", "", nil)
	}
}

// runJob runs one claimed job to its outcome.
func (w *Worker) runJob(parent context.Context, j *store.Job) {
	log := w.log.With("job", j.Name, "attempt", j.Attempts, "lease", j.LeaseToken)
	lease := j.Lease()
	now := time.Now()
	switch {
	case j.Status == store.StatusStopping || j.StopRequested:
		w.finish(log, lease, store.StatusStopped, "Stopped", "", nil)
		return
	case !j.Deadline.IsZero() && !now.Before(j.Deadline):
		w.finish(log, lease, store.StatusStopped, "MaxAutoMLJobRuntimeReached", "", nil)
		return
	case j.Attempts > w.opts.MaxAttempts:
		w.finish(log, lease, store.StatusFailed, "Failed", fmt.Sprintf(
			"the job's worker stopped without finishing it %d times (a crash, or the machine ran out of memory); giving up",
			j.Attempts-1), nil)
		return
	case w.exec == nil:
		w.finish(log, lease, store.StatusFailed, "Failed", NoExecutorReason, nil)
		return
	}
	var spec job.Spec
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		w.finish(log, lease, store.StatusFailed, "Failed", fmt.Sprintf("internal error: the stored job spec cannot be read: %v", err), nil)
		return
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stopParent := context.AfterFunc(parent, func() { cancel(errShutdown) })
	defer stopParent()
	if !j.Deadline.IsZero() {
		t := time.AfterFunc(time.Until(j.Deadline), func() { cancel(errRuntimeLimit) })
		defer t.Stop()
	}
	key := strings.ToLower(j.Name)
	w.mu.Lock()
	w.running[key] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, key)
		w.mu.Unlock()
	}()

	rep := &reporter{w: w, name: j.Name, lease: lease, cancel: cancel}
	hbDone := make(chan struct{})
	hbStopped := make(chan struct{})
	go func() {
		defer close(hbStopped)
		w.heartbeat(rep, hbDone)
	}()

	log.Info("job started")
	res, err := w.execute(ctx, spec, rep)
	close(hbDone)
	<-hbStopped

	switch cause := context.Cause(ctx); {
	case err == nil && res != nil:
		b, merr := json.Marshal(res)
		if merr != nil {
			w.finish(log, lease, store.StatusFailed, "Failed", fmt.Sprintf("internal error: the result cannot be stored: %v", merr), nil)
			return
		}
		secondary := "Completed"
		if res.DeployError != "" {
			secondary = "ModelDeploymentError"
		}
		w.finish(log, lease, store.StatusCompleted, secondary, res.DeployError, b)
	case err == nil:
		w.finish(log, lease, store.StatusFailed, "Failed", "internal error: the training executor returned no result", nil)
	case ctx.Err() != nil && errors.Is(cause, errShutdown):
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		if err := w.q.ReleaseLease(rctx, lease); err != nil {
			log.Error("release lease", "err", err)
			return
		}
		log.Info("job released for another worker", "reason", cause)
	case errors.Is(err, job.ErrLeaseLost) || ctx.Err() != nil && errors.Is(cause, errLeaseLost):
		// Another worker holds the job now (this one stalled past its lease): it writes the outcome.
		log.Warn("job given up: its lease was taken over; this worker writes nothing more of it", "err", err)
	case ctx.Err() != nil && errors.Is(cause, errStopRequested):
		w.finish(log, lease, store.StatusStopped, "Stopped", "", nil)
	case ctx.Err() != nil && errors.Is(cause, errRuntimeLimit):
		w.finish(log, lease, store.StatusStopped, "MaxAutoMLJobRuntimeReached", "", nil)
	default:
		w.finish(log, lease, store.StatusFailed, "Failed", err.Error(), nil)
	}
}

// execute calls the executor, turning a panic into an error so one bad job cannot kill the worker.
func (w *Worker) execute(ctx context.Context, spec job.Spec, rep *reporter) (res *job.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("executor panic", "job", spec.Name, "panic", p)
			res, err = nil, fmt.Errorf("internal error in the training executor: %v", p)
		}
	}()
	return w.exec.Execute(ctx, spec, rep)
}

// heartbeat renews the lease, reads the stop flag and flushes throttled progress until done closes.
func (w *Worker) heartbeat(rep *reporter, done <-chan struct{}) {
	t := time.NewTicker(w.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(context.Background(), w.opts.HeartbeatInterval)
		stop, err := w.q.RenewLease(rctx, rep.lease, w.opts.LeaseDuration)
		if err == nil {
			rep.flush(rctx)
		}
		cancel()
		switch {
		case errors.Is(err, store.ErrFenced):
			w.log.Warn("lease taken over: giving up the job", "job", rep.name, "lease", rep.lease.Token)
			rep.cancel(errLeaseLost)
		case err != nil:
			// A transient store error: the lease stays valid until it expires; try again next beat.
			w.log.Warn("renew lease", "job", rep.name, "err", err)
		case stop:
			rep.cancel(errStopRequested)
		}
	}
}

// finish writes a job's final state. It uses its own context: a shutdown must not stop the write of
// an outcome that is already known.
func (w *Worker) finish(log *slog.Logger, lease store.Lease, status, secondary, reason string, result json.RawMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.q.FinishJob(ctx, lease, store.FinalState{
		Status: status, Secondary: secondary, FailureReason: truncate(reason, maxFailureReason),
		Result: result, Ended: time.Now(),
	})
	if errors.Is(err, store.ErrFenced) {
		// The job was taken over (or ended) while this run finished: the run that holds it now writes
		// the outcome, so the job is never completed twice.
		log.Warn("job given up: its lease was taken over before the outcome was written", "status", status)
		return
	}
	if err != nil {
		log.Error("finish job", "status", status, "err", err)
		return
	}
	log.Info("job finished", "status", status, "secondary", secondary, "reason", reason)
}

// truncate cuts s to at most n runes.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// reporter is the job.Reporter of one running job: phases are written at once, progress at most once
// per ProgressInterval (the latest one is kept and flushed by the heartbeat).
type reporter struct {
	w      *Worker
	name   string
	lease  store.Lease
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	lastWrite time.Time
	pending   json.RawMessage
}

func (r *reporter) SetPhase(ctx context.Context, secondaryStatus string) error {
	return r.fenced(r.w.q.SetSecondaryStatus(ctx, r.lease, secondaryStatus, time.Now()))
}

// CheckLease renews the lease at once (job.Leased): the executor calls it right before it uploads a
// checkpoint or the job's artifacts, so the upload starts with a whole lease duration ahead of it.
func (r *reporter) CheckLease(ctx context.Context) error {
	stop, err := r.w.q.RenewLease(ctx, r.lease, r.w.opts.LeaseDuration)
	if err != nil {
		return r.fenced(fmt.Errorf("renew the lease of job %s: %w", r.name, err))
	}
	if stop {
		r.cancel(errStopRequested)
	}
	return nil
}

// SetCheckpoint records the job's latest checkpoint under the lease (job.Leased).
func (r *reporter) SetCheckpoint(ctx context.Context, c job.Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	return r.fenced(r.w.q.SetCheckpoint(ctx, r.lease, b))
}

// fenced turns a write refused for a stale lease into job.ErrLeaseLost and cancels the run, which
// must not write anything more of the job.
func (r *reporter) fenced(err error) error {
	if errors.Is(err, store.ErrFenced) {
		r.cancel(errLeaseLost)
		return fmt.Errorf("%w (%w)", job.ErrLeaseLost, err)
	}
	return err
}

func (r *reporter) Progress(ctx context.Context, p job.Progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode progress: %w", err)
	}
	r.mu.Lock()
	if time.Since(r.lastWrite) < r.w.opts.ProgressInterval {
		r.pending = b
		r.mu.Unlock()
		return nil
	}
	r.pending = nil
	r.lastWrite = time.Now()
	r.mu.Unlock()
	return r.write(ctx, b)
}

func (r *reporter) flush(ctx context.Context) {
	r.mu.Lock()
	b := r.pending
	r.pending = nil
	if b != nil {
		r.lastWrite = time.Now()
	}
	r.mu.Unlock()
	if b != nil {
		if err := r.write(ctx, b); err != nil {
			r.w.log.Warn("write progress", "job", r.name, "err", err)
		}
	}
}

func (r *reporter) write(ctx context.Context, b json.RawMessage) error {
	return r.fenced(r.w.q.SetProgress(ctx, r.lease, b, time.Now()))
}
