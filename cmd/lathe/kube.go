package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/kube"
	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/worker"
)

// kubeFlags are the settings of `lathe serve --executor kubernetes`.
type kubeFlags struct {
	executor                                 string
	kubeconfig, namespace, image, secret, sa string
	nodeSelector, tolerations                string
	gpus                                     int
}

func addKubeFlags(cmd *cobra.Command, f *kubeFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.executor, "executor", envOr("LATHE_EXECUTOR", "local"),
		`where jobs run: "local" (this process's --workers and the lathe workers on the same --database) or "kubernetes" (each job a batch/v1 Job whose pod runs "lathe worker --job NAME"; needs a PostgreSQL --database, --s3-endpoint and --workers 0) (env LATHE_EXECUTOR)`)
	fl.StringVar(&f.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "with --executor kubernetes: the kubeconfig file; empty: the pod's in-cluster service account (env KUBECONFIG)")
	fl.StringVar(&f.namespace, "kube-namespace", envOr("LATHE_KUBE_NAMESPACE", podNamespace()), "with --executor kubernetes: the namespace of the job Jobs (env LATHE_KUBE_NAMESPACE; default: this pod's, else default)")
	fl.StringVar(&f.image, "kube-image", os.Getenv("LATHE_KUBE_IMAGE"), "with --executor kubernetes: the Lathe image the job pods run (env LATHE_KUBE_IMAGE)")
	fl.StringVar(&f.secret, "kube-secret", envOr("LATHE_KUBE_SECRET", "lathe"),
		"with --executor kubernetes: the Secret whose keys are the job pods' environment: LATHE_DATABASE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (env LATHE_KUBE_SECRET)")
	fl.StringVar(&f.sa, "kube-service-account", os.Getenv("LATHE_KUBE_SERVICE_ACCOUNT"), "with --executor kubernetes: the job pods' service account; empty: the namespace's default")
	fl.StringVar(&f.nodeSelector, "kube-node-selector", os.Getenv("LATHE_KUBE_NODE_SELECTOR"), "with --executor kubernetes: the job pods' node selector, k=v,... (env LATHE_KUBE_NODE_SELECTOR)")
	fl.StringVar(&f.tolerations, "kube-tolerations", os.Getenv("LATHE_KUBE_TOLERATIONS"),
		"with --executor kubernetes: taints the job pods tolerate, key[=value][:Effect],... e.g. nvidia.com/gpu:NoSchedule (env LATHE_KUBE_TOLERATIONS)")
	fl.IntVar(&f.gpus, "kube-gpus", 0, "with --executor kubernetes: the nvidia.com/gpu limit of each job pod; 0: none")
}

// podNamespace is the namespace of the pod this process runs in, else "default".
func podNamespace() string {
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "default"
}

// kubeExecutor returns the Kubernetes executor of `lathe serve --executor kubernetes`, or nil for the
// local executor.
func kubeExecutor(f kubeFlags, st store.Store, workers int, s3Endpoint, modelsBucket, region, account string, logger *slog.Logger) (*kube.Executor, error) {
	switch f.executor {
	case "", "local":
		return nil, nil
	case "kubernetes":
	default:
		return nil, fmt.Errorf(`--executor must be "local" or "kubernetes", got %q`, f.executor)
	}
	ks, ok := st.(kube.Store)
	switch {
	case !ok:
		return nil, errors.New("--executor kubernetes needs a PostgreSQL --database (postgres://...) that the job pods share")
	case workers != 0:
		return nil, errors.New("--executor kubernetes runs every job in a pod: start it with --workers 0")
	case s3Endpoint == "":
		return nil, errors.New("--executor kubernetes needs --s3-endpoint: the S3 the job pods read datasets from and write artifacts to")
	case f.image == "":
		return nil, errors.New("--executor kubernetes needs --kube-image: the Lathe image the job pods run")
	case f.gpus < 0:
		return nil, fmt.Errorf("--kube-gpus must be 0 or more, got %d", f.gpus)
	}
	selector, err := kube.ParseNodeSelector(f.nodeSelector)
	if err != nil {
		return nil, err
	}
	tolerations, err := kube.ParseTolerations(f.tolerations)
	if err != nil {
		return nil, err
	}
	client, err := kube.NewClient(f.kubeconfig)
	if err != nil {
		return nil, err
	}
	// The pods run `lathe worker` with LATHE_EXECUTOR=kubernetes: a job's pod that deploys its model
	// leaves the endpoint's replicas to the endpoint's own pods (endpoint.Fleet.SelfPlaced).
	e := &kube.Executor{Client: client, Store: ks, Replicas: st, Logger: logger, Settings: kube.Settings{
		Namespace: f.namespace, Image: f.image, Secret: f.secret, ServiceAccount: f.sa, NodeSelector: selector,
		Tolerations: tolerations, GPUs: f.gpus, S3Endpoint: s3Endpoint, ModelsBucket: modelsBucket,
		Env: []corev1.EnvVar{{Name: "LATHE_REGION", Value: region}, {Name: "LATHE_ACCOUNT_ID", Value: account},
			{Name: "LATHE_EXECUTOR", Value: "kubernetes"}},
	}}
	e.Init()
	logger.Info("kubernetes executor", "namespace", f.namespace, "image", f.image, "secret", f.secret, "gpus", f.gpus)
	return e, nil
}

// runOneJob is `lathe worker --job NAME`: it runs that job (waiting for a previous pod's lease to
// run out) and returns once the job has ended or been given back.
func runOneJob(ctx context.Context, st store.Store, exec job.Executor, f workerFlags, logger *slog.Logger) error {
	ks, ok := st.(kube.Store)
	if !ok {
		return errors.New("--job needs a PostgreSQL --database")
	}
	q := kube.NewOneJob(ks, f.job)
	w := worker.New(q, exec, worker.Options{LeaseDuration: f.lease, Registry: st, Logger: logger, PollInterval: time.Second})
	logger.Info("lathe worker is running one job", "worker", w.Owner(), "job", f.job)
	err := q.Run(ctx, w.Run)
	logger.Info("lathe worker ran its job", "job", f.job, "err", err)
	return err
}

// exitForJob ends the process with kube.ExitJobFailed when the job of --job ended Failed, so the Job's
// pod failure policy does not run it again; other errors return as usual (exit status 1).
func exitForJob(err error) error {
	var failed *kube.JobFailedError
	if errors.As(err, &failed) {
		fmt.Fprintln(os.Stderr, "lathe:", err)
		os.Exit(kube.ExitJobFailed)
	}
	return err
}

// runEndpointReplica is `lathe worker --endpoint NAME --variant V`, the pod of an endpoint variant's
// Deployment: it claims one replica of the variant in the store (endpoint.Claimer), loads and serves
// it on --replica-addr (endpoint.ReplicaHost, which also answers the pod's readiness probe) until
// SIGTERM.
func runEndpointReplica(ctx context.Context, st store.Store, f workerFlags, host endpoint.HostConfig, logger *slog.Logger) error {
	if f.variant == "" {
		return errors.New("--endpoint needs --variant: the production variant whose replicas this process serves")
	}
	owner := os.Getenv(kube.EnvWorkerID)
	if owner == "" {
		h, _ := os.Hostname()
		owner = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	ln, err := net.Listen("tcp", f.replicaAddr)
	if err != nil {
		return fmt.Errorf("--replica-addr %s: %w", f.replicaAddr, err)
	}
	addr := advertised(ln.Addr().(*net.TCPAddr))
	if ip := os.Getenv(kube.EnvReplicaAdvertise); ip != "" {
		addr = net.JoinHostPort(ip, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	host.Owner, host.Addr = owner, addr
	replicas := endpoint.NewHost(host)
	srv := &http.Server{Handler: replicas.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("replica listener", "err", err)
		}
	}()
	claimer := &endpoint.Claimer{Replicas: st, Workers: st, Owner: owner, Endpoint: f.endpoint, Variant: f.variant,
		WorkerTimeout: f.lease, Logger: logger}
	logger.Info("lathe worker is serving an endpoint variant", "endpoint", f.endpoint, "variant", f.variant, "worker", owner, "addr", addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = replicas.Run(ctx)
	}()
	err = claimer.Run(ctx)
	<-done
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	logger.Info("lathe worker stopped serving", "endpoint", f.endpoint, "variant", f.variant, "worker", owner)
	return err
}
