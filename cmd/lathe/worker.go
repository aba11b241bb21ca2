package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/metrics"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/internal/store/storeopen"
	"github.com/lathe-ml/lathe/internal/worker"
)

// workerFlags are the settings of `lathe worker`.
type workerFlags struct {
	dataDir, database, s3Endpoint, modelsBucket string
	metricsAddr, replicaAddr                    string
	job                                         string // --job: run this one job, then exit (a Kubernetes Job's pod)
	endpoint, variant                           string // --endpoint, --variant: serve a replica of this endpoint variant (its Deployment's pod)
	concurrency                                 int
	lease                                       time.Duration
}

func workerCommand() *cobra.Command {
	var f workerFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run fine-tuning jobs from a shared PostgreSQL database, with no public API",
		Long: `Run the fine-tuning jobs that API nodes ("lathe serve --database URL --workers 0") accept: claim
them from the shared database, hold each with a lease that a heartbeat renews, and write their
checkpoints and artifacts to the S3 the API nodes use. A worker that dies leaves its job to another
one, which resumes it from its last checkpoint; a worker that stalls past its lease and was replaced
writes nothing more of the job (its writes carry a fencing token and are refused). StopAutoMLJob
reaches a job on any worker at its next heartbeat.

The S3 is --s3-endpoint: the external S3 of "lathe serve --s3-endpoint", or an API node's own
embedded S3 (http://API-NODE:PORT with its root or an IAM user's keys). Its credentials come from
the standard AWS chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_REGION (default
LATHE_REGION, us-east-1). Base models come from the worker's data dir (lathe models import|pull
--data-dir DIR), or from the fleet's copy on that S3 (lathe models import --s3-endpoint URL), which
each worker caches in its data dir. LATHE_REGION and LATHE_ACCOUNT_ID must be the API nodes': a job
runs as its execution role (the IAM of the shared database), with its KMS keys. Jobs that ask for an endpoint end Completed / ModelDeploymentError
on a worker (endpoints are served by the process that trains them); run those on an API node with
--workers 1 or more.

Endpoints created on an API node with --workers 0 run here: the API node places each instance
(InitialInstanceCount) on a live worker as a replica; the worker downloads its model from the S3 and
serves it to the API nodes on --replica-addr, and the API node routes InvokeEndpoint to it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return exitForJob(runWorker(ctx, f))
		},
	}
	cmd.Flags().StringVar(&f.dataDir, "data-dir", defaultDataDir(), "the worker's local cache: base models and job scratch (env LATHE_DATA_DIR)")
	cmd.Flags().StringVar(&f.database, "database", os.Getenv("LATHE_DATABASE"), "the PostgreSQL database of the API nodes, postgres://... (env LATHE_DATABASE)")
	cmd.Flags().StringVar(&f.s3Endpoint, "s3-endpoint", os.Getenv("LATHE_S3_ENDPOINT"),
		"the S3 the API nodes use, URL: an external S3, or an API node's embedded S3 (env LATHE_S3_ENDPOINT)")
	cmd.Flags().StringVar(&f.modelsBucket, "models-bucket", defaultModelsBucket(), modelsBucketUsage)
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-addr", os.Getenv("LATHE_METRICS_ADDR"),
		"serve GET /metrics (Prometheus: the job queue as the shared database has it, and the process) on HOST:PORT; empty: none (env LATHE_METRICS_ADDR)")
	cmd.Flags().StringVar(&f.replicaAddr, "replica-addr", envOr("LATHE_REPLICA_ADDR", "127.0.0.1:0"),
		"serve the endpoint replicas placed on this worker to the API nodes on HOST:PORT (recorded in the shared database; port 0: a free one) (env LATHE_REPLICA_ADDR)")
	cmd.Flags().StringVar(&f.job, "job", "", "run only this job, then exit: 0 when it ended Completed or Stopped, 3 when Failed (the pod of lathe serve --executor kubernetes)")
	cmd.Flags().StringVar(&f.endpoint, "endpoint", "", "serve one replica of this endpoint's --variant and run no job (the pod of an endpoint variant's Deployment under lathe serve --executor kubernetes)")
	cmd.Flags().StringVar(&f.variant, "variant", "", "with --endpoint: the production variant")
	cmd.Flags().IntVar(&f.concurrency, "jobs", 1, "how many jobs this worker runs at once (training uses every core: 1 unless the machine is large)")
	cmd.Flags().DurationVar(&f.lease, "lease", 30*time.Second,
		"how long a job stays this worker's without a heartbeat: after a crash, the job resumes elsewhere this long later")
	return cmd
}

func runWorker(ctx context.Context, f workerFlags) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)
	switch {
	case f.database == "":
		return errors.New("--database is required: the PostgreSQL database (postgres://...) of the API nodes whose jobs this worker runs")
	case f.s3Endpoint == "":
		return errors.New("--s3-endpoint is required: the S3 the API nodes use (an external S3, or an API node's URL for its embedded S3)")
	case f.concurrency < 1:
		return fmt.Errorf("--jobs must be at least 1, got %d", f.concurrency)
	case f.lease < time.Second:
		return fmt.Errorf("--lease must be at least 1s, got %s", f.lease)
	}
	region := envOr("LATHE_REGION", "us-east-1")
	account := envOr("LATHE_ACCOUNT_ID", "000000000000")
	if !accountIDPattern.MatchString(account) {
		return fmt.Errorf("LATHE_ACCOUNT_ID must be 12 digits, got %q", account)
	}
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	st, err := storeopen.Open(ctx, f.database, f.dataDir)
	if err != nil {
		return fmt.Errorf("open metadata store %s: %w", storeopen.Describe(f.database, f.dataDir), err)
	}
	defer st.Close()
	objects, err := workerObjects(ctx, f.s3Endpoint)
	if err != nil {
		return err
	}
	models, err := modelstore.OpenDataDir(f.dataDir)
	if err != nil {
		return fmt.Errorf("open model store: %w", err)
	}
	bases := newBaseModels(models, objects, f.s3Endpoint, f.modelsBucket, logger)
	// The fleet's IAM (users, roles, policies) lives in the same database: each job runs as its
	// execution role, with its KMS keys, as on an API node that runs jobs.
	iamStore, err := openIAMStore(ctx, f.database, f.dataDir)
	if err != nil {
		return fmt.Errorf("open iam store: %w", err)
	}
	defer iamStore.Close()
	iamSvc, err := iam.New(iam.Config{Store: iamStore, AccountID: account, Logger: logger})
	if err != nil {
		return err
	}
	if f.endpoint != "" {
		return runEndpointReplica(ctx, st, f, endpoint.HostConfig{Replicas: st, DataDir: f.dataDir, Objects: objects,
			Models: bases.source(), AccountID: account, Logger: logger}, logger)
	}
	// A job's ModelDeployConfig creates its endpoint in the shared store, served by replicas on the
	// workers (this process places them too, taking a worker for dead later than the API nodes do).
	// Under lathe serve --executor kubernetes (its pods have LATHE_EXECUTOR=kubernetes) the replicas
	// are claimed by the endpoint's own pods, not placed here.
	deployer, err := endpoint.New(ctx, endpoint.Config{DataDir: f.dataDir, Store: st, Region: region, AccountID: account,
		Objects: objects, Models: bases.source(), Tags: st, Logger: logger,
		Fleet: &endpoint.Fleet{Replicas: st, Workers: st, WorkerTimeout: 2 * f.lease, SelfPlaced: os.Getenv("LATHE_EXECUTOR") == "kubernetes"}})
	if err != nil {
		return fmt.Errorf("open endpoints: %w", err)
	}
	defer deployer.Close()
	exec := &finetune.Executor{Objects: objects, Models: bases.source(), WorkDir: filepath.Join(f.dataDir, "work"), Logger: logger,
		Deployer: deployer}
	jobs := &finetune.Guard{Executor: exec, Authorize: jobAuthorizer(iamSvc), ModelsBucket: "jumpstart-cache-prod-" + region}
	if f.job != "" {
		return runOneJob(ctx, st, jobs, f, logger)
	}
	w := worker.New(st, jobs, worker.Options{Concurrency: f.concurrency, LeaseDuration: f.lease, Registry: st, Logger: logger})
	if f.metricsAddr != "" {
		bound, stopMetrics, err := serveMetrics(f.metricsAddr, metrics.New(st, logger), logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
		logger.Info("metrics", "addr", bound)
	}
	ln, err := net.Listen("tcp", f.replicaAddr)
	if err != nil {
		return fmt.Errorf("--replica-addr %s: %w", f.replicaAddr, err)
	}
	replicas := endpoint.NewHost(endpoint.HostConfig{Replicas: st, Owner: w.Owner(), Addr: advertised(ln.Addr().(*net.TCPAddr)),
		DataDir: f.dataDir, Objects: objects, Models: bases.source(), AccountID: account, Logger: logger})
	replicaSrv := &http.Server{Handler: replicas.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := replicaSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("replica listener", "err", err)
		}
	}()
	replicaCtx, stopReplicas := context.WithCancel(ctx)
	replicasDone := make(chan struct{})
	go func() {
		defer close(replicasDone)
		_ = replicas.Run(replicaCtx)
	}()
	defer func() {
		stopReplicas()
		<-replicasDone
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = replicaSrv.Shutdown(sctx)
	}()
	host, _ := os.Hostname()
	logger.Info("lathe worker is running", "worker", w.Owner(), "host", host, "database", storeopen.Describe(f.database, f.dataDir),
		"s3_endpoint", f.s3Endpoint, "data_dir", f.dataDir, "jobs", f.concurrency, "lease", f.lease, "replica_addr", ln.Addr().String())
	// On SIGTERM the running jobs checkpoint and are given back at once (not after their lease runs
	// out), so another worker resumes them without waiting.
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("lathe worker stopped", "worker", w.Owner())
	return nil
}

// advertised is the address API nodes reach the replica listener at: the host name for a
// wildcard listener, else the address itself.
func advertised(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		if host, err := os.Hostname(); err == nil {
			return net.JoinHostPort(host, strconv.Itoa(a.Port))
		}
	}
	return a.String()
}

// workerObjects is the client of the S3 a worker reads datasets from and writes checkpoints and
// artifacts to, with the standard AWS credential chain; it fails at start when the chain has no keys.
func workerObjects(ctx context.Context, endpoint string) (*blob.Client, error) {
	opts := blob.External(endpoint)
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" && os.Getenv("AWS_PROFILE") == "" {
		opts.Region = envOr("LATHE_REGION", "us-east-1")
	}
	objects, err := blob.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	sdk := objects.S3().Options()
	if sdk.Credentials == nil {
		return nil, fmt.Errorf("--s3-endpoint %s: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)", endpoint)
	}
	if _, err := sdk.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("--s3-endpoint %s: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE): %w", endpoint, err)
	}
	return objects, nil
}
