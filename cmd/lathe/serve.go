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
	"regexp"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/audit"
	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/console"
	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/endpoint/openai"
	"github.com/lathe-ml/lathe/internal/endpoint/runtime"
	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/metrics"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/internal/s3api"
	"github.com/lathe-ml/lathe/internal/s3proxy"
	"github.com/lathe-ml/lathe/internal/server"
	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/storeopen"
	"github.com/lathe-ml/lathe/internal/worker"
)

func serveCommand() *cobra.Command {
	var addr, dataDir, database, s3Endpoint, modelsBucket string
	var workers int
	var requireRoles bool
	var workerTimeout time.Duration
	var kf kubeFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the SageMaker control plane, the runtime and S3 on one port, and run fine-tuning jobs",
		Long: `Serve the SageMaker AutoML V2 control plane (AWS JSON 1.1), the SageMaker Runtime and a path-style
S3 API on one port, with metadata in SQLite (or PostgreSQL: --database) and objects under the data dir,
and run the jobs it accepts.

Environment: LATHE_REGION (us-east-1), LATHE_ACCOUNT_ID (12 digits, used in ARNs),
LATHE_ROOT_ACCESS_KEY_ID / LATHE_ROOT_SECRET_ACCESS_KEY (the data dir keeps one set of root keys in
credentials.json: the first start writes these there, or generated ones when they are unset; later
starts reuse them; "lathe credentials" prints them),
LATHE_S3_ENDPOINT (--s3-endpoint), LATHE_S3_PATH_STYLE=false (address the external S3 virtual-hosted),
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE / AWS_REGION (the external S3's credentials and
region), HF_ENDPOINT and
HF_TOKEN (downloading base models from the Hugging Face hub), LATHE_OPENAI_API_KEY (the bearer key of
the OpenAI API under /v1/; generated into <data dir>/openai-key when unset), LATHE_MASTER_KEY (64 hex
digits: the key that seals KMS keys; generated into <data dir>/master.key when unset; API nodes sharing
a --database need the same one). Every request is audited in <data dir>/audit/ (lathe audit tail).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if workers < 0 {
				return fmt.Errorf("--workers must be 0 (API only) or more, got %d", workers)
			}
			return serve(ctx, addr, dataDir, database, s3Endpoint, modelsBucket, workers, requireRoles, workerTimeout, kf)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", envOr("LATHE_ADDR", "127.0.0.1:8080"), "listen address HOST:PORT (env LATHE_ADDR)")
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "where metadata, objects, models and job scratch live (env LATHE_DATA_DIR)")
	cmd.Flags().StringVar(&database, "database", os.Getenv("LATHE_DATABASE"), storeopen.Usage+" (env LATHE_DATABASE)")
	cmd.Flags().StringVar(&s3Endpoint, "s3-endpoint", os.Getenv("LATHE_S3_ENDPOINT"),
		"keep buckets, datasets, artifacts and checkpoints on this external S3 (URL), signed with the standard AWS credentials; the S3 API on --addr forwards to it (env LATHE_S3_ENDPOINT; default: the embedded S3 under the data dir)")
	cmd.Flags().StringVar(&modelsBucket, "models-bucket", defaultModelsBucket(), modelsBucketUsage)
	cmd.Flags().IntVar(&workers, "workers", 1, "jobs this process runs at once; 0 runs the API only, leaving the jobs to `lathe worker`s on the same --database")
	cmd.Flags().DurationVar(&workerTimeout, "worker-timeout", 30*time.Second,
		"with --workers 0: a worker silent this long is taken for dead and its endpoint replicas are placed on others (more than the workers' --lease / 3)")
	cmd.Flags().BoolVar(&requireRoles, "require-roles", false,
		"refuse jobs and models whose RoleArn names no existing IAM role (by default they run with their creator's permissions)")
	addKubeFlags(cmd, &kf)
	return cmd
}

var accountIDPattern = regexp.MustCompile(`^\d{12}$`)

func serve(ctx context.Context, addr, dataDir, database, s3Endpoint, modelsBucket string, workers int, requireRoles bool, workerTimeout time.Duration, kf kubeFlags) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)
	region := envOr("LATHE_REGION", "us-east-1")
	account := envOr("LATHE_ACCOUNT_ID", "000000000000")
	if !accountIDPattern.MatchString(account) {
		return fmt.Errorf("LATHE_ACCOUNT_ID must be 12 digits, got %q", account)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	keys, err := server.LoadRootKeys(dataDir, true)
	if err != nil {
		return err
	}
	announceRootKeys(keys, dataDir)
	creds := keys.Credentials

	st, err := storeopen.Open(ctx, database, dataDir)
	if err != nil {
		return fmt.Errorf("open metadata store %s: %w", storeopen.Describe(database, dataDir), err)
	}
	defer st.Close()
	logger.Info("metadata store", "database", storeopen.Describe(database, dataDir))
	iamStore, err := openIAMStore(ctx, database, dataDir)
	if err != nil {
		return fmt.Errorf("open iam store: %w", err)
	}
	defer iamStore.Close()
	iamSvc, err := iam.New(iam.Config{Store: iamStore, AccountID: account, Logger: logger})
	if err != nil {
		return err
	}
	kmsSvc, err := openKMS(iamStore, dataDir, region, account, logger)
	if err != nil {
		return err
	}
	auditLog, err := audit.Open(filepath.Join(dataDir, "audit"), auditMaxSize, auditKeep)
	if err != nil {
		return err
	}
	defer auditLog.Close()
	models, err := modelstore.OpenDataDir(dataDir)
	if err != nil {
		return fmt.Errorf("open model store: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// Lathe reads and writes s3:// through the S3 API like any client: its own, unless --s3-endpoint
	// names another.
	self := ln.Addr().(*net.TCPAddr)
	selfURL := fmt.Sprintf("http://127.0.0.1:%d", self.Port)
	if !self.IP.IsUnspecified() && !self.IP.IsLoopback() {
		selfURL = "http://" + self.String()
	}
	objects, s3h, err := openObjects(ctx, s3Endpoint, blob.Options{Endpoint: selfURL, Region: region,
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, PathStyle: true}, dataDir, kmsSvc, logger)
	if err != nil {
		ln.Close()
		return err
	}
	// The model store is also the JumpStart bucket, read-only: IAM policies on it decide who reads
	// base models, as the guide's execution-role statement does on SageMaker.
	s3h = s3api.WithReadOnlyBucket(s3h, jumpStartBucket(region), models.Dir())
	// Base models: the data dir's store, and the fleet's copy on the external S3 behind it.
	bases := newBaseModels(models, objects, s3Endpoint, modelsBucket, logger)
	// An API-only node serves its endpoints from replicas on the workers.
	var fleet *endpoint.Fleet
	if workers == 0 {
		// Under --executor kubernetes each variant's replicas are the pods of its Deployment, which
		// claim them: no replica is placed on a job's pod.
		fleet = &endpoint.Fleet{Replicas: st, Workers: st, WorkerTimeout: workerTimeout, SelfPlaced: kf.executor == "kubernetes"}
	}
	// Endpoints load their models in the background (from the S3 API above once it serves).
	endpoints, err := endpoint.New(ctx, endpoint.Config{DataDir: dataDir, Store: st, Region: region, AccountID: account,
		Objects: objects, Models: bases.source(), Tags: st, Logger: logger, ExecutionRole: executionRole(iamSvc, requireRoles),
		ModelAccess: modelAccess(objects, auditedJobAuthorizer(iamSvc, nil, kmsSvc), region), Fleet: fleet})
	if err != nil {
		return fmt.Errorf("open endpoints: %w", err)
	}
	defer endpoints.Close()
	exec := &finetune.Executor{Objects: objects, Models: bases.source(),
		WorkDir: filepath.Join(dataDir, "work"), Logger: logger, Deployer: endpoints}
	// Each job reads and writes as its execution role, with its KMS keys.
	jobs := &finetune.Guard{Executor: exec, Authorize: auditedJobAuthorizer(iamSvc, auditLog, kmsSvc), ModelsBucket: jumpStartBucket(region)}
	w := worker.New(st, jobs, worker.Options{Logger: logger, Concurrency: workers, Registry: st})
	// With --workers 0 no job runs here: other processes find new jobs and stops by polling.
	var notifier automl.Notifier
	if workers > 0 {
		notifier = w
	}
	kexec, err := kubeExecutor(kf, st, workers, s3Endpoint, modelsBucket, region, account, logger)
	if err != nil {
		return err
	}
	if kexec != nil {
		notifier = kexec
		go kexec.Run(ctx)
	}
	svc, err := automl.New(automl.Config{
		Store: st, Region: region, AccountID: account, Notifier: notifier,
		ExecutionRole: executionRole(iamSvc, requireRoles), KMSKey: kmsSvc.Key,
		RegisteredModel:    bases.registered,
		BaseModelAvailable: bases.available(),
		TagResourceExists:  endpoints.ResourceExists,
	})
	if err != nil {
		return err
	}
	oaiKey, oaiCreated, err := openai.LoadOrCreateKey(dataDir)
	if err != nil {
		return err
	}
	if oaiCreated {
		fmt.Fprintf(os.Stderr, "Generated the OpenAI API key (kept in %s, shown once):\n  export OPENAI_API_KEY=%s\n",
			filepath.Join(dataDir, openai.KeyFile), oaiKey)
	}
	oai, err := openai.New(openai.Config{Router: endpoints, APIKey: oaiKey, Logger: logger})
	if err != nil {
		return err
	}
	oai = endpoints.OpenAI(oai, oaiKey) // an API-only node's endpoints answer from their replicas
	ops := svc.Operations()
	for name, op := range endpoints.Operations() {
		ops[name] = op
	}
	var ready atomic.Bool
	// /metrics: this process's requests, and the job figures of the (possibly shared) store.
	prom := metrics.New(st, logger)
	h, err := server.New(server.Config{Region: region, AccountID: account, Credentials: creds,
		Metrics: prom.Handler(), Observe: func(i server.RequestInfo) { prom.Observe(metrics.Request(i)) },
		SageMaker: ops, S3: s3h, Ready: ready.Load, Logger: logger, IAM: iamSvc, KMS: kmsSvc, Audit: auditLog, ResourceTags: resourceTags(st),
		Runtime: endpoints.Runtime(runtime.New(runtime.Config{Router: endpoints, AccountID: account, Logger: logger})), OpenAI: oai,
		Console: console.Handler(console.Config{Region: region, AccountID: account, ModelStore: models, Logger: logger})})
	if err != nil {
		return err
	}
	// Read, idle and stalled-body timeouts and the per-address cap on unauthenticated connections.
	srv := server.NewHTTPServer(h, server.Limits{}, logger)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// The worker stops first on shutdown, while the S3 API is still up to take its last checkpoint.
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan error, 1)
	if workers > 0 {
		go func() { workerDone <- w.Run(workerCtx) }()
	} else {
		workerDone <- nil
	}
	ready.Store(true)
	logger.Info("lathe is serving", "addr", ln.Addr().String(), "data_dir", dataDir, "region", region, "account", account,
		"console", selfURL+console.Prefix)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopWorker()
		<-workerDone
		return err
	}
	logger.Info("shutting down")
	stopWorker()
	if err := <-workerDone; err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("worker", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// resourceTags reads a SageMaker resource's tags for aws:ResourceTag conditions.
func resourceTags(tags store.Tags) func(ctx context.Context, arn string) (map[string]string, error) {
	return func(ctx context.Context, arn string) (map[string]string, error) {
		out := map[string]string{}
		after := ""
		for {
			page, more, err := tags.ListTags(ctx, arn, after, 100)
			if err != nil {
				return nil, fmt.Errorf("list tags of %s: %w", arn, err)
			}
			for _, t := range page {
				out[t.Key] = t.Value
				after = t.Key
			}
			if !more || len(page) == 0 {
				return out, nil
			}
		}
	}
}

// openObjects returns the client of the S3 that jobs and endpoints read and write, and the handler
// of the S3 routes on the front door: the embedded S3 over <data dir>/s3, or, with an external
// endpoint, a client of that service and a proxy to it (signed with the same AWS credentials).
func openObjects(ctx context.Context, external string, embedded blob.Options, dataDir string, keys s3api.KeyService, logger *slog.Logger) (*blob.Client, http.Handler, error) {
	if external == "" {
		// SSE-KMS objects are encrypted with Lathe's KMS keys (an external S3 does its own).
		s3h, err := s3api.NewWithKMS(filepath.Join(dataDir, "s3"), logger, keys)
		if err != nil {
			return nil, nil, fmt.Errorf("open object store: %w", err)
		}
		objects, err := blob.New(ctx, embedded)
		if err != nil {
			return nil, nil, err
		}
		return objects, s3h, nil
	}
	opts := blob.External(external)
	objects, err := blob.New(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	sdk := objects.S3().Options()
	// Fail at start, not at the first upload, when the chain has no keys for the service.
	if sdk.Credentials == nil {
		return nil, nil, fmt.Errorf("--s3-endpoint %s: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)", external)
	}
	if _, err := sdk.Credentials.Retrieve(ctx); err != nil {
		return nil, nil, fmt.Errorf("--s3-endpoint %s: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE): %w", external, err)
	}
	spool := filepath.Join(dataDir, "work", "s3proxy")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", spool, err)
	}
	s3h, err := s3proxy.New(s3proxy.Options{Endpoint: external, PathStyle: opts.PathStyle, Region: sdk.Region,
		Credentials: sdk.Credentials, Logger: logger, SpoolDir: spool})
	if err != nil {
		return nil, nil, err
	}
	logger.Info("object store", "s3_endpoint", external, "path_style", opts.PathStyle, "region", sdk.Region)
	return objects, s3h, nil
}
