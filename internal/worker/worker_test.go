package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
	"github.com/lathe-ml/lathe/internal/worker"
)

// scriptedExecutor is a test double of the fine-tuning pipeline: each Execute announces itself on
// started and then does what the test tells it through the execution's commands, until told to
// return or until its context is cancelled (as a real executor must).
type scriptedExecutor struct {
	started chan *execution
	calls   sync.Map // job name -> *atomic.Int32
	// auto, when set, makes every Execute return this result at once.
	auto *job.Result
}

type execution struct {
	spec job.Spec
	ctx  context.Context
	cmds chan command
	done chan struct{} // closed when Execute returned
}

type command struct {
	phase    string
	progress *job.Progress
	// checkLease and checkpoint call the reporter's job.Leased methods.
	checkLease bool
	checkpoint *job.Checkpoint
	ret        bool
	res        *job.Result
	err        error
	reply      chan error
}

func newExecutor() *scriptedExecutor { return &scriptedExecutor{started: make(chan *execution, 16)} }

func (e *scriptedExecutor) Execute(ctx context.Context, spec job.Spec, r job.Reporter) (*job.Result, error) {
	n, _ := e.calls.LoadOrStore(spec.Name, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	if e.auto != nil {
		res := *e.auto
		return &res, nil
	}
	x := &execution{spec: spec, ctx: ctx, cmds: make(chan command), done: make(chan struct{})}
	defer close(x.done)
	e.started <- x
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("training interrupted: %w", ctx.Err())
		case c := <-x.cmds:
			switch {
			case c.phase != "":
				c.reply <- r.SetPhase(ctx, c.phase)
			case c.progress != nil:
				c.reply <- r.Progress(ctx, *c.progress)
			case c.checkLease:
				c.reply <- job.CheckLease(ctx, r)
			case c.checkpoint != nil:
				c.reply <- job.RecordCheckpoint(ctx, r, *c.checkpoint)
			default:
				c.reply <- nil
				return c.res, c.err
			}
		}
	}
}

func (e *scriptedExecutor) callsOf(name string) int {
	n, ok := e.calls.Load(name)
	if !ok {
		return 0
	}
	return int(n.(*atomic.Int32).Load())
}

func (e *scriptedExecutor) next(t *testing.T) *execution {
	t.Helper()
	select {
	case x := <-e.started:
		return x
	case <-time.After(10 * time.Second):
		t.Fatal("the executor was not started")
		return nil
	}
}

func (x *execution) send(t *testing.T, c command) {
	t.Helper()
	if err := x.try(t, c); err != nil {
		t.Fatalf("reporter: %v", err)
	}
}

// try sends a command and returns the reporter's answer.
func (x *execution) try(t *testing.T, c command) error {
	t.Helper()
	c.reply = make(chan error, 1)
	select {
	case x.cmds <- c:
	case <-time.After(10 * time.Second):
		t.Fatal("the execution does not take commands")
	}
	return <-c.reply
}

func (x *execution) phase(t *testing.T, p string) { t.Helper(); x.send(t, command{phase: p}) }
func (x *execution) progress(t *testing.T, p job.Progress) {
	t.Helper()
	x.send(t, command{progress: &p})
}
func (x *execution) finish(t *testing.T, res *job.Result, err error) {
	t.Helper()
	x.send(t, command{ret: true, res: res, err: err})
}

func (x *execution) waitReturned(t *testing.T) {
	t.Helper()
	select {
	case <-x.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Execute did not return after its context was cancelled")
	}
}

// rig is a store, a service and (optionally) a running worker.
type rig struct {
	path  string
	store *sqlite.Store
	svc   *automl.Service
	ops   map[string]func(context.Context, []byte) (any, error)
}

func fastOptions(owner string) worker.Options {
	return worker.Options{Owner: owner, PollInterval: 10 * time.Millisecond, HeartbeatInterval: 20 * time.Millisecond,
		LeaseDuration: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}
}

func newRig(t *testing.T, path string, cfg automl.Config) *rig {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "lathe.db")
	}
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	svc, err := automl.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{path: path, store: st, svc: svc, ops: svc.Operations()}
}

// notify rebuilds the service so that it tells w about new jobs and stops at once.
func (r *rig) notify(t *testing.T, w *worker.Worker) {
	t.Helper()
	svc, err := automl.New(automl.Config{Store: r.store, Notifier: w})
	if err != nil {
		t.Fatal(err)
	}
	r.svc, r.ops = svc, svc.Operations()
}

// start runs w until the test ends (or stop is called) and returns the stop function, which waits
// for Run to return.
func start(t *testing.T, w *worker.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (r *rig) call(t *testing.T, op, body string) map[string]any {
	t.Helper()
	out, err := r.ops[op](context.Background(), []byte(body))
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	b, _ := json.Marshal(out)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *rig) describe(t *testing.T, name string) map[string]any {
	t.Helper()
	return r.call(t, "DescribeAutoMLJobV2", `{"AutoMLJobName":"`+name+`"}`)
}

// waitStatus polls Describe until the job shows the status pair.
func (r *rig) waitStatus(t *testing.T, name, status, secondary string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		d := r.describe(t, name)
		if d["AutoMLJobStatus"] == status && d["AutoMLJobSecondaryStatus"] == secondary {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %v/%v (reason %v), want %s/%s", name, d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"], d["FailureReason"], status, secondary)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func createBody(name string, extra string) string {
	return `{"AutoMLJobName":"` + name + `","AutoMLJobInputDataConfig":[{"DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/train/"}}}],` +
		`"OutputDataConfig":{"S3OutputPath":"s3://b/out/"},"RoleArn":"arn:aws:iam::123456789012:role/r",` +
		`"ModelDeployConfig":{"AutoGenerateEndpointName":true},` +
		`"AutoMLProblemTypeConfig":{"TextGenerationJobConfig":{"BaseModelName":"Stories260K"` + extra + `}}}`
}

func get(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch n := v.(type) {
		case map[string]any:
			v = n[p]
		case []any:
			var i int
			fmt.Sscan(p, &i)
			if i >= len(n) {
				return nil
			}
			v = n[i]
		default:
			return nil
		}
	}
	return v
}

var result = &job.Result{
	CandidateName:   "j1-candidate",
	TrainingJobName: "j1-training",
	Image:           "lathe/inference:latest",
	ModelDataURL:    "s3://b/out/j1/model.tar.gz",
	Environment:     map[string]string{"HF_MODEL_ID": "/opt/ml/model"},
	ArtifactsPrefix: "s3://b/out/j1/",
	Metrics: []job.Metric{
		{Name: "TrainingLoss", Value: 1.25, Set: "Train"},
		{Name: "ValidationLoss", Value: 1.5, Set: "Validation"},
		{Name: "Rouge1", Value: 0.4, Set: "Validation"},
	},
	EndpointName: "j1-endpoint",
}

func TestLifecycleToCompleted(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	w := worker.New(r.store, exec, fastOptions("w1"))
	r.notify(t, w)
	start(t, w)
	r.call(t, "CreateAutoMLJobV2", createBody("j1", `,"CompletionCriteria":{"MaxRuntimePerTrainingJobInSeconds":3000},"TextGenerationHyperParameters":{"epochCount":"2"}`))

	x := exec.next(t)
	if x.spec.Name != "j1" || x.spec.BaseModel != "Stories260K" || x.spec.EndpointName != "j1-endpoint" ||
		x.spec.ValidationFraction != 0.2 || x.spec.MaxRuntimePerTrainingJob != 3000*time.Second ||
		x.spec.HyperParameters["epochCount"] != "2" || x.spec.OutputPath != "s3://b/out/" ||
		x.spec.ARN != "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1" || x.spec.CreationTime.IsZero() {
		t.Fatalf("spec %+v", x.spec)
	}
	for _, phase := range []string{job.PhaseAnalyzingData, job.PhaseTrainingModels} {
		x.phase(t, phase)
		if d := r.describe(t, "j1"); d["AutoMLJobStatus"] != "InProgress" || d["AutoMLJobSecondaryStatus"] != phase {
			t.Fatalf("after phase %s: %v/%v", phase, d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"])
		}
	}
	x.progress(t, job.Progress{Phase: job.PhaseTrainingModels, Step: 5, TotalSteps: 10, Loss: 2.5, TokensPerSecond: 1000})
	d := r.describe(t, "j1")
	if get(d, "TrainingProgress.Step") != 5.0 || get(d, "TrainingProgress.TotalSteps") != 10.0 || get(d, "TrainingProgress.Loss") != 2.5 {
		t.Fatalf("TrainingProgress = %v", d["TrainingProgress"])
	}
	x.phase(t, job.PhaseDeployingModel)
	x.finish(t, result, nil)

	d = r.waitStatus(t, "j1", "Completed", "Completed")
	for path, want := range map[string]any{
		"BestCandidate.CandidateName":                                             "j1-candidate",
		"BestCandidate.CandidateStatus":                                           "Completed",
		"BestCandidate.ObjectiveStatus":                                           "Succeeded",
		"BestCandidate.CandidateSteps.0.CandidateStepType":                        "AWS::SageMaker::TrainingJob",
		"BestCandidate.CandidateSteps.0.CandidateStepName":                        "j1-training",
		"BestCandidate.CandidateSteps.0.CandidateStepArn":                         "arn:aws:sagemaker:us-east-1:123456789012:training-job/j1-training",
		"BestCandidate.InferenceContainers.0.Image":                               "lathe/inference:latest",
		"BestCandidate.InferenceContainers.0.ModelDataUrl":                        "s3://b/out/j1/model.tar.gz",
		"BestCandidate.InferenceContainers.0.Environment.HF_MODEL_ID":             "/opt/ml/model",
		"BestCandidate.InferenceContainerDefinitions.CPU.0.ModelDataUrl":          "s3://b/out/j1/model.tar.gz",
		"BestCandidate.CandidateProperties.CandidateMetrics.0.StandardMetricName": "TrainingLoss",
		"BestCandidate.CandidateProperties.CandidateMetrics.0.Value":              1.25,
		"BestCandidate.CandidateProperties.CandidateMetrics.0.Set":                "Train",
		"BestCandidate.CandidateProperties.CandidateMetrics.2.StandardMetricName": "Rouge1",
		"BestCandidate.CandidateProperties.CandidateMetrics.0.MetricName":         nil,
		"ModelDeployResult.EndpointName":                                          "j1-endpoint",
		"TrainingProgress":                                                        nil,
		"FailureReason":                                                           nil,
	} {
		if got := get(d, path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	if et, ct := d["EndTime"].(float64), d["CreationTime"].(float64); et < ct {
		t.Errorf("EndTime %v before CreationTime %v", et, ct)
	}
	if get(d, "BestCandidate.EndTime") != d["EndTime"] {
		t.Errorf("candidate EndTime %v, job EndTime %v", get(d, "BestCandidate.EndTime"), d["EndTime"])
	}

	// ListCandidatesForAutoMLJob returns the same candidate, and honours its filters.
	lc := r.call(t, "ListCandidatesForAutoMLJob", `{"AutoMLJobName":"J1"}`)
	b1, _ := json.Marshal(get(lc, "Candidates.0"))
	b2, _ := json.Marshal(d["BestCandidate"])
	if len(lc["Candidates"].([]any)) != 1 || string(b1) != string(b2) {
		t.Fatalf("candidates %s\nbest %s", b1, b2)
	}
	for _, body := range []string{
		`{"AutoMLJobName":"j1","StatusEquals":"Failed"}`,
		`{"AutoMLJobName":"j1","CandidateNameEquals":"other"}`,
	} {
		if n := len(r.call(t, "ListCandidatesForAutoMLJob", body)["Candidates"].([]any)); n != 0 {
			t.Errorf("%s: %d candidates", body, n)
		}
	}
	if exec.callsOf("j1") != 1 {
		t.Errorf("executed %d times", exec.callsOf("j1"))
	}
}

func TestNoCandidateBeforeCompletion(t *testing.T) {
	r := newRig(t, "", automl.Config{})
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	if c := r.call(t, "ListCandidatesForAutoMLJob", `{"AutoMLJobName":"j1"}`)["Candidates"].([]any); len(c) != 0 {
		t.Fatalf("candidates of a new job: %v", c)
	}
}

func TestOutcomes(t *testing.T) {
	long := strings.Repeat("é", 3000)
	deployFailed := *result
	deployFailed.DeployError = "endpoint j1-endpoint: the model does not load"
	cases := []struct {
		name                    string
		res                     *job.Result
		err                     error
		status, secondary       string
		reason                  string
		deployResult, candidate bool
	}{
		{"deploy error", &deployFailed, nil, "Completed", "ModelDeploymentError", deployFailed.DeployError, false, true},
		{"pipeline error", nil, errors.New("read channel s3://b/train/: no such bucket"), "Failed", "Failed", "read channel s3://b/train/: no such bucket", false, false},
		{"long error is cut to 1024", nil, errors.New(long), "Failed", "Failed", strings.Repeat("é", 1023) + "…", false, false},
		{"no result and no error", nil, nil, "Failed", "Failed", "internal error: the training executor returned no result", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exec := newExecutor()
			r := newRig(t, "", automl.Config{})
			start(t, worker.New(r.store, exec, fastOptions("w1")))
			r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
			exec.next(t).finish(t, tc.res, tc.err)
			d := r.waitStatus(t, "j1", tc.status, tc.secondary)
			if got, _ := d["FailureReason"].(string); got != tc.reason {
				t.Errorf("FailureReason = %q (%d runes), want %q", got[:min(len(got), 80)], utf8.RuneCountInString(got), tc.reason[:min(len(tc.reason), 80)])
			}
			if _, ok := d["ModelDeployResult"]; ok != tc.deployResult {
				t.Errorf("ModelDeployResult present = %v", ok)
			}
			if _, ok := d["BestCandidate"]; ok != tc.candidate {
				t.Errorf("BestCandidate present = %v", ok)
			}
			if _, ok := d["EndTime"]; !ok {
				t.Error("no EndTime")
			}
		})
	}
}

func TestNoExecutorFailsHonestly(t *testing.T) {
	r := newRig(t, "", automl.Config{})
	start(t, worker.New(r.store, nil, fastOptions("w1")))
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	d := r.waitStatus(t, "j1", "Failed", "Failed")
	if d["FailureReason"] != "no training executor is configured on this Lathe server" {
		t.Fatalf("FailureReason = %v", d["FailureReason"])
	}
	if _, ok := d["BestCandidate"]; ok {
		t.Fatal("a job completed a candidate without an executor")
	}
}

func TestStop(t *testing.T) {
	for _, inProcess := range []bool{true, false} {
		t.Run(fmt.Sprintf("in-process notification %v", inProcess), func(t *testing.T) {
			exec := newExecutor()
			r := newRig(t, "", automl.Config{})
			w := worker.New(r.store, exec, fastOptions("w1"))
			if inProcess {
				r.notify(t, w)
			} // else the worker sees the stop flag at its next heartbeat
			start(t, w)
			r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
			x := exec.next(t)
			x.phase(t, job.PhaseTrainingModels)
			r.call(t, "StopAutoMLJob", `{"AutoMLJobName":"j1"}`)
			x.waitReturned(t)
			if !errors.Is(x.ctx.Err(), context.Canceled) {
				t.Fatalf("executor context: %v", x.ctx.Err())
			}
			d := r.waitStatus(t, "j1", "Stopped", "Stopped")
			if _, ok := d["EndTime"]; !ok {
				t.Error("no EndTime")
			}
			if _, ok := d["FailureReason"]; ok {
				t.Errorf("FailureReason %v on a stopped job", d["FailureReason"])
			}
		})
	}
}

func TestStopBeforeAnyWorkerClaims(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	r.call(t, "StopAutoMLJob", `{"AutoMLJobName":"j1"}`)
	start(t, worker.New(r.store, exec, fastOptions("w1")))
	r.waitStatus(t, "j1", "Stopped", "Stopped")
	if n := exec.callsOf("j1"); n != 0 {
		t.Fatalf("a stopped job was executed %d times", n)
	}
}

func TestRuntimeLimit(t *testing.T) {
	t.Run("reached while running", func(t *testing.T) {
		exec := newExecutor()
		r := newRig(t, "", automl.Config{})
		start(t, worker.New(r.store, exec, fastOptions("w1")))
		r.call(t, "CreateAutoMLJobV2", createBody("j1", `,"CompletionCriteria":{"MaxAutoMLJobRuntimeInSeconds":1}`))
		x := exec.next(t)
		x.waitReturned(t) // returns only when the worker cancels it
		d := r.waitStatus(t, "j1", "Stopped", "MaxAutoMLJobRuntimeReached")
		if d["EndTime"].(float64)-d["CreationTime"].(float64) < 1 {
			t.Fatalf("stopped before the limit: %v -> %v", d["CreationTime"], d["EndTime"])
		}
	})
	t.Run("counted from creation", func(t *testing.T) {
		exec := newExecutor()
		// The job was created two hours ago with a one-hour limit (its worker was down since).
		r := newRig(t, "", automl.Config{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
		r.call(t, "CreateAutoMLJobV2", createBody("j1", `,"CompletionCriteria":{"MaxAutoMLJobRuntimeInSeconds":3600}`))
		start(t, worker.New(r.store, exec, fastOptions("w1")))
		r.waitStatus(t, "j1", "Stopped", "MaxAutoMLJobRuntimeReached")
		if n := exec.callsOf("j1"); n != 0 {
			t.Fatalf("executed %d times after its deadline", n)
		}
	})
}

func TestDeadWorkersJobIsClaimedAgain(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	// A worker claims the job and dies: its lease is never renewed nor released.
	now := time.Now()
	dead, err := r.store.ClaimJob(context.Background(), "dead-worker", 200*time.Millisecond)
	if err != nil || dead == nil {
		t.Fatalf("claim: %v %v", dead, err)
	}
	start(t, worker.New(r.store, exec, fastOptions("w2")))
	x := exec.next(t) // only after the dead worker's lease expired
	if time.Now().Before(now.Add(200 * time.Millisecond)) {
		t.Fatal("the job was claimed while the dead worker's lease was live")
	}
	j, err := r.store.GetJob(context.Background(), "j1")
	if err != nil || j.LeaseOwner != "w2" || j.Attempts != 2 {
		t.Fatalf("after re-claim: owner %q attempts %d, %v", j.LeaseOwner, j.Attempts, err)
	}
	x.finish(t, result, nil)
	r.waitStatus(t, "j1", "Completed", "Completed")
	// The dead worker, were it to wake up, can no longer write.
	if err := r.store.FinishJob(context.Background(), dead.Lease(), store.FinalState{Status: "Failed", Secondary: "Failed", Ended: time.Now()}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("late write of the dead worker: %v", err)
	}
}

func TestShutdownReleasesAndRestartResumes(t *testing.T) {
	exec1 := newExecutor()
	r := newRig(t, "", automl.Config{})
	stop1 := start(t, worker.New(r.store, exec1, fastOptions("w1")))
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	x := exec1.next(t)
	x.phase(t, job.PhaseTrainingModels)
	x.progress(t, job.Progress{Step: 3, TotalSteps: 10})
	stop1() // graceful shutdown: cancels the execution and gives the job back
	x.waitReturned(t)
	j, err := r.store.GetJob(context.Background(), "j1")
	if err != nil || j.Status != "InProgress" || j.Secondary != job.PhaseTrainingModels || j.LeaseOwner != "" || j.FailureReason != "" || !j.Ended.IsZero() {
		t.Fatalf("after shutdown: %+v %v", j, err)
	}
	r.store.Close()

	// The server restarts on the same database.
	exec2 := newExecutor()
	r2 := newRig(t, r.path, automl.Config{})
	start(t, worker.New(r2.store, exec2, fastOptions("w2")))
	x2 := exec2.next(t)
	if x2.spec.Name != "j1" || !x2.spec.CreationTime.Equal(x.spec.CreationTime) {
		t.Fatalf("resumed spec %+v", x2.spec)
	}
	if j, err := r2.store.GetJob(context.Background(), "j1"); err != nil || j.Attempts != 1 {
		t.Fatalf("attempts after a graceful restart: %+v %v", j, err)
	}
	d := r2.describe(t, "j1")
	if get(d, "TrainingProgress.Step") != 3.0 {
		t.Errorf("progress across restart: %v", d["TrainingProgress"])
	}
	x2.finish(t, result, nil)
	r2.waitStatus(t, "j1", "Completed", "Completed")
}

func TestTwoWorkersRunEachJobOnce(t *testing.T) {
	exec := newExecutor()
	exec.auto = result
	r := newRig(t, "", automl.Config{})
	const n = 12
	for i := range n {
		r.call(t, "CreateAutoMLJobV2", createBody(fmt.Sprintf("job-%d", i), ""))
	}
	for _, owner := range []string{"w1", "w2"} {
		o := fastOptions(owner)
		o.Concurrency = 2
		start(t, worker.New(r.store, exec, o))
	}
	for i := range n {
		r.waitStatus(t, fmt.Sprintf("job-%d", i), "Completed", "Completed")
	}
	for i := range n {
		if c := exec.callsOf(fmt.Sprintf("job-%d", i)); c != 1 {
			t.Errorf("job-%d executed %d times", i, c)
		}
	}
}

// countingQueue counts progress writes that reach the store.
type countingQueue struct {
	store.Queue
	progressWrites atomic.Int32
}

func (q *countingQueue) SetProgress(ctx context.Context, l store.Lease, p json.RawMessage, now time.Time) error {
	q.progressWrites.Add(1)
	return q.Queue.SetProgress(ctx, l, p, now)
}

func TestProgressIsThrottled(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	q := &countingQueue{Queue: r.store}
	o := fastOptions("w1")
	o.ProgressInterval = time.Hour
	o.HeartbeatInterval = time.Hour
	start(t, worker.New(q, exec, o))
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	x := exec.next(t)
	for i := 1; i <= 50; i++ {
		x.progress(t, job.Progress{Step: i, TotalSteps: 50})
	}
	if n := q.progressWrites.Load(); n != 1 {
		t.Fatalf("50 progress reports made %d writes within one interval, want 1", n)
	}
	if step := get(r.describe(t, "j1"), "TrainingProgress.Step"); step != 1.0 {
		t.Fatalf("stored step %v, want 1", step)
	}
	x.finish(t, result, nil)
	r.waitStatus(t, "j1", "Completed", "Completed")
}

func TestLatestProgressIsFlushed(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	o := fastOptions("w1")
	o.ProgressInterval = time.Hour // only the heartbeat writes after the first report
	start(t, worker.New(r.store, exec, o))
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	x := exec.next(t)
	for i := 1; i <= 50; i++ {
		x.progress(t, job.Progress{Step: i, TotalSteps: 50})
	}
	deadline := time.Now().Add(10 * time.Second)
	for get(r.describe(t, "j1"), "TrainingProgress.Step") != 50.0 {
		if time.Now().After(deadline) {
			t.Fatalf("latest progress never stored: %v", r.describe(t, "j1")["TrainingProgress"])
		}
		time.Sleep(5 * time.Millisecond)
	}
	x.finish(t, result, nil)
	r.waitStatus(t, "j1", "Completed", "Completed")
}

func TestStopFinishedJobIsRefused(t *testing.T) {
	r := newRig(t, "", automl.Config{})
	start(t, worker.New(r.store, nil, fastOptions("w1")))
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	r.waitStatus(t, "j1", "Failed", "Failed")
	_, err := r.ops["StopAutoMLJob"](context.Background(), []byte(`{"AutoMLJobName":"j1"}`))
	if ae := awserr.As(err); ae == nil || ae.Code != "ValidationException" {
		t.Fatalf("stop of a failed job: %v", err)
	}
}

func TestCrashLoopingJobFails(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	// Three workers in a row claim the job and die with it (their leases lapse at once).
	for i := range 3 {
		if j, err := r.store.ClaimJob(context.Background(), fmt.Sprintf("dead-%d", i), 0); err != nil || j == nil {
			t.Fatalf("claim %d: %v %v", i, j, err)
		}
	}
	start(t, worker.New(r.store, exec, fastOptions("w4")))
	d := r.waitStatus(t, "j1", "Failed", "Failed")
	if reason, _ := d["FailureReason"].(string); !strings.Contains(reason, "stopped without finishing it 3 times") {
		t.Fatalf("FailureReason %q", reason)
	}
	if n := exec.callsOf("j1"); n != 0 {
		t.Fatalf("executed %d times", n)
	}
}

// A stop of a job that waits in the queue behind a running one takes effect at once (Stopped, never
// executed), without waiting for the worker's only slot; the jobs around it keep their places and
// their attempt counts, and the running one goes on.
func TestStopOfAQueuedJobDoesNotWaitForTheWorker(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	w := worker.New(r.store, exec, fastOptions("w1")) // Concurrency 1
	r.notify(t, w)
	start(t, w)
	r.call(t, "CreateAutoMLJobV2", createBody("running", ""))
	x := exec.next(t)
	x.phase(t, job.PhaseTrainingModels)
	for _, name := range []string{"queued-1", "stopped", "queued-2"} {
		r.call(t, "CreateAutoMLJobV2", createBody(name, ""))
	}
	r.call(t, "StopAutoMLJob", `{"AutoMLJobName":"stopped"}`)
	// The running job is still running (it returns only when told to, below) while the queued one
	// is already Stopped.
	d := r.waitStatus(t, "stopped", "Stopped", "Stopped")
	if _, ok := d["EndTime"]; !ok {
		t.Error("no EndTime on the stopped job")
	}
	if n := exec.callsOf("stopped"); n != 0 {
		t.Errorf("the stopped job was executed %d times", n)
	}
	for _, name := range []string{"queued-1", "queued-2"} {
		j, err := r.store.GetJob(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != store.StatusInProgress || j.Attempts != 0 || j.LeaseOwner != "" {
			t.Errorf("%s after the stop: status %s, %d attempts, lease %q; want InProgress, untouched", name, j.Status, j.Attempts, j.LeaseOwner)
		}
	}
	if got := r.describe(t, "running")["AutoMLJobStatus"]; got != "InProgress" {
		t.Errorf("the running job is %v", got)
	}
	x.finish(t, result, nil)
	r.waitStatus(t, "running", "Completed", "Completed")
	exec.next(t).finish(t, result, nil) // queued-1, then queued-2, run in turn
	exec.next(t).finish(t, result, nil)
	r.waitStatus(t, "queued-2", "Completed", "Completed")
}

// A worker that stalled past its lease and was replaced writes nothing more of the job: its lease
// check, checkpoint, progress and outcome are refused, its run is cancelled, and the job is left to
// the worker that took it over, which completes it once.
func TestTakenOverWorkerWritesNothing(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	// w1's heartbeat never comes round within its short lease: a stalled process.
	o := fastOptions("w1")
	o.LeaseDuration, o.HeartbeatInterval = 300*time.Millisecond, time.Hour
	start(t, worker.New(r.store, exec, o))
	x := exec.next(t)
	x.phase(t, job.PhaseTrainingModels)
	// While it holds the job, its checkpoint is recorded with the job.
	x.send(t, command{checkLease: true})
	x.send(t, command{checkpoint: &job.Checkpoint{URI: "s3://b/out/j1/checkpoints/checkpoint.bin", Step: 4}})
	j, err := r.store.GetJob(context.Background(), "j1")
	if err != nil || string(j.Checkpoint) != `{"URI":"s3://b/out/j1/checkpoints/checkpoint.bin","Step":4}` {
		t.Fatalf("recorded checkpoint %s, %v", j.Checkpoint, err)
	}

	// Another worker takes the job over once the lease ran out.
	var nu *store.Job
	for nu == nil {
		time.Sleep(50 * time.Millisecond)
		if nu, err = r.store.ClaimJob(context.Background(), "w2", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.try(t, command{checkLease: true}); !errors.Is(err, job.ErrLeaseLost) {
		t.Fatalf("lease check of the replaced worker: %v, want ErrLeaseLost", err)
	}
	// The refusal cancelled the run: Execute returns, and w1 writes no outcome.
	x.waitReturned(t)
	if context.Cause(x.ctx) == nil {
		t.Fatal("the replaced run's context was not cancelled")
	}
	j, err = r.store.GetJob(context.Background(), "j1")
	if err != nil || j.Status != "InProgress" || j.LeaseOwner != "w2" || j.LeaseToken != nu.LeaseToken ||
		string(j.Checkpoint) != `{"URI":"s3://b/out/j1/checkpoints/checkpoint.bin","Step":4}` {
		t.Fatalf("after the replaced worker gave up: %+v %v", j, err)
	}
	// The new holder completes it; the job ends once, as w2 wrote it.
	if err := r.store.FinishJob(context.Background(), nu.Lease(), store.FinalState{Status: "Completed", Secondary: "Completed", Ended: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(t, "j1", "Completed", "Completed")
	if c := exec.callsOf("j1"); c != 1 {
		t.Fatalf("executed %d times by w1", c)
	}
}

// A run whose lease was taken over while it finished cannot complete the job: the outcome write is
// fenced off and the job stays with the worker that holds it.
func TestTakenOverWorkerCannotComplete(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	o := fastOptions("w1")
	o.LeaseDuration, o.HeartbeatInterval = 300*time.Millisecond, time.Hour
	start(t, worker.New(r.store, exec, o))
	x := exec.next(t)
	var nu *store.Job
	for nu == nil {
		time.Sleep(50 * time.Millisecond)
		var err error
		if nu, err = r.store.ClaimJob(context.Background(), "w2", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	x.finish(t, result, nil)
	x.waitReturned(t)
	// Give w1 the time to (try to) write its outcome: it must not land.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		j, err := r.store.GetJob(context.Background(), "j1")
		if err != nil || j.Status != "InProgress" || j.LeaseOwner != "w2" {
			t.Fatalf("the replaced worker's outcome landed: %+v %v", j, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A worker lists itself in the fleet's registry while it runs, idle or busy, with the job it holds,
// and leaves it when it stops.
func TestRegistry(t *testing.T) {
	exec := newExecutor()
	r := newRig(t, "", automl.Config{})
	o := fastOptions("w1")
	o.Registry = r.store
	stop := start(t, worker.New(r.store, exec, o))
	waitWorkers := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ws, err := r.store.ListWorkers(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range ws {
				got = append(got, fmt.Sprintf("%s%v", w.ID, w.Jobs))
			}
			if fmt.Sprint(got) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("workers %v, want %s", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitWorkers("[w1[]]")
	r.call(t, "CreateAutoMLJobV2", createBody("j1", ""))
	x := exec.next(t)
	waitWorkers("[w1[j1]]")
	x.finish(t, result, nil)
	r.waitStatus(t, "j1", "Completed", "Completed")
	waitWorkers("[w1[]]")
	stop()
	if ws, err := r.store.ListWorkers(context.Background()); err != nil || len(ws) != 0 {
		t.Fatalf("workers after the worker stopped: %+v, %v", ws, err)
	}
}
