package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/store"
)

// Store is what the executor and `lathe worker --job` need of the shared database: the job rows,
// the queue, and claiming one job by name (store/postgres has it: the pods and the API nodes must
// share one database, so the executor runs on PostgreSQL only).
type Store interface {
	store.Jobs
	store.Queue
	ClaimNamedJob(ctx context.Context, name, owner string, d time.Duration) (*store.Job, error)
}

// NewClient connects to the cluster: the kubeconfig file when one is given, else the pod's
// in-cluster service account.
func NewClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not in a cluster: %w", err)
		}
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

// Executor runs the jobs of the shared database as Kubernetes Jobs. It is the automl.Notifier of an
// API node: a new job or a stop is acted on at once, and a sweep every Interval catches up with
// what other API nodes accepted and with what Kubernetes did meanwhile.
type Executor struct {
	Client kubernetes.Interface
	Store  Store
	// Replicas, when set, are the endpoints' replicas (the API nodes' Fleet, SelfPlaced): each
	// variant of an endpoint runs as a Deployment of that many pods, each endpoint has a Service
	// (sweepEndpoints).
	Replicas store.Replicas
	Settings Settings
	// Interval between two sweeps; default 2 s.
	Interval time.Duration
	// Owner is the lease owner the executor claims with to write an outcome; default kube-<host>.
	Owner  string
	Logger *slog.Logger

	wake chan struct{}
}

// JobCreated wakes the executor to create the new job's Kubernetes Job now.
func (e *Executor) JobCreated() { e.poke() }

// StopRequested wakes the executor to delete the stopped job's Kubernetes Job now.
func (e *Executor) StopRequested(string) { e.poke() }

func (e *Executor) poke() {
	if e.wake == nil {
		return
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Init prepares the executor; Run calls it, callers that notify before Run starts call it first.
func (e *Executor) Init() {
	if e.wake == nil {
		e.wake = make(chan struct{}, 1)
	}
	if e.Interval <= 0 {
		e.Interval = 2 * time.Second
	}
	if e.Logger == nil {
		e.Logger = slog.Default()
	}
	if e.Owner == "" {
		host, _ := os.Hostname()
		e.Owner = "kube-" + host
	}
}

// Run sweeps until ctx ends.
func (e *Executor) Run(ctx context.Context) error {
	e.Init()
	t := time.NewTicker(e.Interval)
	defer t.Stop()
	for {
		if err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
			e.Logger.Warn("kubernetes executor sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-t.C:
		}
	}
}

// Sweep brings the cluster in line with the store once: the jobs (sweepJobs) and, with Replicas,
// the endpoints (sweepEndpoints).
func (e *Executor) Sweep(ctx context.Context) error {
	err := e.sweepJobs(ctx)
	if e.Replicas != nil {
		err = errors.Join(err, e.sweepEndpoints(ctx))
	}
	return err
}

// sweepJobs brings the cluster and the job rows in line once:
//   - an InProgress job with no Kubernetes Job gets one (every API node may create it: the name is
//     the job's, so the second create is AlreadyExists);
//   - a Stopping job's Kubernetes Job is deleted (its pods with it, in the background), and the job
//     is closed as Stopped once no pod holds its lease;
//   - a job whose Kubernetes Job failed (pods out of retries, deadline) while the row still says
//     InProgress is closed as Failed with Kubernetes' reason: the pod could not write it itself;
//   - a job whose Kubernetes Job succeeded while the row still runs is Failed too: a pod exits 0 only
//     once the job has ended, so the pod ended without it.
//
// The Kubernetes Jobs are listed before the rows are read, so a row that finished after the list
// is never taken for an orphan.
func (e *Executor) sweepJobs(ctx context.Context) error {
	list, err := e.Client.BatchV1().Jobs(e.Settings.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelManagedBy + "=lathe," + LabelJob})
	if err != nil {
		return fmt.Errorf("list Jobs in namespace %s: %w", e.Settings.Namespace, err)
	}
	kjobs := map[string]*batchv1.Job{}
	for i := range list.Items {
		kj := &list.Items[i]
		kjobs[kj.Labels[LabelJob]] = kj
	}
	var errs []error
	for _, status := range []string{store.StatusInProgress, store.StatusStopping} {
		after := ""
		for {
			page, err := e.Store.ListJobs(ctx, store.JobQuery{Status: status, SortBy: store.SortByCreationTime, After: after, Limit: 100})
			if err != nil {
				return fmt.Errorf("list %s jobs: %w", status, err)
			}
			for _, j := range page.Jobs {
				if err := e.reconcile(ctx, j, kjobs[strings.ToLower(j.Name)]); err != nil {
					errs = append(errs, err)
				}
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
	}
	return errors.Join(errs...)
}

// reconcile acts on one running job (j is a ListJobs summary) and its Kubernetes Job, nil if none.
func (e *Executor) reconcile(ctx context.Context, j store.Job, kj *batchv1.Job) error {
	log := e.Logger.With("job", j.Name, "kube_job", JobName(j.Name))
	if j.Status == store.StatusStopping {
		if kj != nil && kj.DeletionTimestamp == nil {
			if err := e.deleteJob(ctx, kj.Name); err != nil {
				return err
			}
			log.Info("deleted the Kubernetes Job of a stopped job")
		}
		return e.close(ctx, log, j.Name, store.StatusStopped, "Stopped", "")
	}
	if kj == nil {
		return e.create(ctx, log, j.Name)
	}
	if kj.DeletionTimestamp != nil {
		return nil // being deleted (by a Stop, or by hand): a later sweep creates it again if the job still runs
	}
	if c := condition(kj, batchv1.JobFailed); c != nil {
		reason := fmt.Sprintf("Kubernetes Job %s/%s failed: %s: %s", kj.Namespace, kj.Name, c.Reason, c.Message)
		if why := e.podFailure(ctx, kj); why != "" {
			reason += " (last pod: " + why + ")"
		}
		return e.close(ctx, log, j.Name, store.StatusFailed, "Failed", reason)
	}
	if condition(kj, batchv1.JobComplete) != nil {
		return e.close(ctx, log, j.Name, store.StatusFailed, "Failed",
			fmt.Sprintf("Kubernetes Job %s/%s completed but the job did not end: its pod exited without running it", kj.Namespace, kj.Name))
	}
	return nil
}

// create makes the Kubernetes Job of a job.
func (e *Executor) create(ctx context.Context, log *slog.Logger, name string) error {
	full, err := e.Store.GetJob(ctx, name)
	if err != nil {
		return fmt.Errorf("read job %s: %w", name, err)
	}
	if full.Status != store.StatusInProgress {
		return nil
	}
	var spec job.Spec
	if err := json.Unmarshal(full.Spec, &spec); err != nil {
		return e.close(ctx, log, name, store.StatusFailed, "Failed", fmt.Sprintf("internal error: the stored job spec cannot be read: %v", err))
	}
	spec.Name = full.Name
	kj := JobFor(spec, e.Settings)
	created, err := e.Client.BatchV1().Jobs(e.Settings.Namespace).Create(ctx, kj, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create Kubernetes Job %s/%s: %w", e.Settings.Namespace, kj.Name, err)
	}
	res := created.Spec.Template.Spec.Containers[0].Resources
	log.Info("created the Kubernetes Job", "namespace", created.Namespace, "cpu", res.Requests.Cpu().String(),
		"memory", res.Requests.Memory().String(), "gpus", e.Settings.GPUs)
	return nil
}

// deleteJob deletes a Kubernetes Job and, in the background, its pods (whose workers get SIGTERM
// and give the job's lease back).
func (e *Executor) deleteJob(ctx context.Context, name string) error {
	bg := metav1.DeletePropagationBackground
	err := e.Client.BatchV1().Jobs(e.Settings.Namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Kubernetes Job %s/%s: %w", e.Settings.Namespace, name, err)
	}
	return nil
}

// close writes a job's outcome under a lease of its own, the way a worker would. While a pod still
// holds the job's lease it is left to a later sweep (the pod writes the outcome itself, or its
// lease runs out).
func (e *Executor) close(ctx context.Context, log *slog.Logger, name, status, secondary, reason string) error {
	j, err := e.Store.ClaimNamedJob(ctx, name, e.Owner, 30*time.Second)
	if err != nil {
		return err
	}
	if j == nil {
		return nil
	}
	if j.Status == store.StatusStopping || j.StopRequested {
		status, secondary, reason = store.StatusStopped, "Stopped", ""
	}
	err = e.Store.FinishJob(ctx, j.Lease(), store.FinalState{Status: status, Secondary: secondary, FailureReason: truncate(reason, 1024), Ended: time.Now()})
	if err != nil {
		return fmt.Errorf("finish job %s: %w", name, err)
	}
	log.Info("job closed by the kubernetes executor", "status", status, "reason", reason)
	return nil
}

// podFailure says why the Job's latest failed pod ended: its container's termination reason and exit
// code (OOMKilled, Error), or the pod's reason (Evicted, DeadlineExceeded).
func (e *Executor) podFailure(ctx context.Context, kj *batchv1.Job) string {
	pods, err := e.Client.CoreV1().Pods(kj.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + kj.Name})
	if err != nil {
		return ""
	}
	var last *corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase == corev1.PodFailed && (last == nil || last.CreationTimestamp.Before(&p.CreationTimestamp)) {
			last = p
		}
	}
	if last == nil {
		return ""
	}
	for _, cs := range last.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			why := fmt.Sprintf("%s: container %s exited %d (%s)", last.Name, cs.Name, t.ExitCode, t.Reason)
			if t.Message != "" {
				why += ": " + t.Message
			}
			return why
		}
	}
	return strings.TrimSpace(fmt.Sprintf("%s: %s %s", last.Name, last.Status.Reason, last.Status.Message))
}

func condition(kj *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i, c := range kj.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return &kj.Status.Conditions[i]
		}
	}
	return nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
