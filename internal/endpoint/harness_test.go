package endpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"

	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/client"
	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/endpoint/openai"
	"github.com/lathe-ml/lathe/internal/endpoint/runtime"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/internal/s3api"
	"github.com/lathe-ml/lathe/internal/server"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
	"github.com/lathe-ml/lathe/internal/worker"
)

const (
	testAccessKey = "AKIAIOSFODNN7EXAMPLE"
	testSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	account       = "123456789012"
	region        = "us-east-1"
	// storiesPath is the shared Stories260K model (see its README); never copied into the repo.
	storiesPath = "../../../shared/models/stories260K.gguf"
	bucket      = "lathe-test"
	openAIKey   = "sk-lathe-test"
)

// env is a Lathe server as `lathe serve` wires it (front door, embedded S3, the hosting operations
// and the runtime) on 127.0.0.1:0, with the real SDK clients pointed at it.
type env struct {
	dataDir string
	url     string
	svc     *endpoint.Service
	objects *blob.Client
	sm      *sagemaker.Client
	rt      *sagemakerruntime.Client
	awsCfg  aws.Config
	stop    func()
	// hostAddr is the in-process worker's replica listener (startEnvWith with a fleet).
	hostAddr string
	st       *sqlite.Store // the metadata store
	models   *modelstore.Store
}

// startReplicaHost runs a worker's side of endpoint replicas in process, as `lathe worker` does
// (the registry's heartbeat, the replica host and its listener), and returns its address.
func startReplicaHost(t testing.TB, st *sqlite.Store, dataDir string, objects *blob.Client, models *modelstore.Store) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := time.Now()
	if err := st.WorkerHeartbeat(ctx, "w1", "localhost", started); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := endpoint.NewHost(endpoint.HostConfig{Replicas: st, Owner: "w1", Addr: l.Addr().String(),
		DataDir: filepath.Join(dataDir, "worker"), Objects: objects, Models: finetune.StoreSource{Store: models},
		Interval: 100 * time.Millisecond, AccountID: account, Logger: slog.New(slog.DiscardHandler)})
	srv := &http.Server{Handler: host.Handler()}
	go srv.Serve(l)
	done := make(chan struct{}, 2)
	go func() { host.Run(ctx); done <- struct{}{} }()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
				_ = st.WorkerHeartbeat(ctx, "w1", "localhost", started)
			}
		}
	}()
	return l.Addr().String(), func() {
		cancel()
		<-done
		<-done
		srv.Close()
	}
}

// startEnv starts a server over dataDir (reuse it to restart). The model store holds Stories260K.
func startEnv(t testing.TB, dataDir string, opts serving.Options) *env {
	t.Helper()
	return startEnvWith(t, dataDir, opts, false)
}

// startEnvWith is startEnv; withFleet makes it an API-only node (lathe serve --workers 0) whose
// endpoints are replicas on one in-process worker ("w1", its replica listener at env.hostAddr).
func startEnvWith(t testing.TB, dataDir string, opts serving.Options, withFleet bool) *env {
	t.Helper()
	return startEnvFleet(t, dataDir, opts, withFleet, false)
}

// startEnvFleet is startEnvWith; selfPlaced makes the fleet's replicas claimed by the processes that
// serve them (Fleet.SelfPlaced, as under the Kubernetes executor) and starts no worker: the test
// starts them (startPod).
func startEnvFleet(t testing.TB, dataDir string, opts serving.Options, withFleet, selfPlaced bool) *env {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	models, err := modelstore.OpenDataDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Get("Stories260K"); errors.Is(err, modelstore.ErrNotFound) {
		if _, err := models.Import(ctx, storiesPath, "Stories260K"); err != nil {
			t.Fatal(err)
		}
	}
	s3h, err := s3api.New(filepath.Join(dataDir, "s3"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	objects, err := blob.New(ctx, blob.Options{Endpoint: url, Region: region, AccessKeyID: testAccessKey,
		SecretAccessKey: testSecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, "lathe.db"))
	if err != nil {
		t.Fatal(err)
	}
	var fleet *endpoint.Fleet
	hostAddr, stopHost := "", func() {}
	if withFleet {
		fleet = &endpoint.Fleet{Replicas: st, Workers: st, Interval: 100 * time.Millisecond, WorkerTimeout: 5 * time.Second, SelfPlaced: selfPlaced}
		if !selfPlaced {
			hostAddr, stopHost = startReplicaHost(t, st, dataDir, objects, models)
		}
	}
	svc, err := endpoint.New(ctx, endpoint.Config{DataDir: dataDir, Region: region, AccountID: account,
		Store: st, Objects: objects, Models: finetune.StoreSource{Store: models}, Tags: st, Serving: opts, Logger: quiet, Fleet: fleet})
	if err != nil {
		t.Fatal(err)
	}
	exec := &finetune.Executor{Objects: objects, Models: finetune.StoreSource{Store: models},
		WorkDir: filepath.Join(dataDir, "work"), Logger: quiet, Deployer: svc}
	w := worker.New(st, exec, worker.Options{PollInterval: 50 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		ProgressInterval: 100 * time.Millisecond, Logger: quiet})
	jobs, err := automl.New(automl.Config{Store: st, Region: region, AccountID: account, Notifier: w,
		TagResourceExists: svc.ResourceExists})
	if err != nil {
		t.Fatal(err)
	}
	ops := jobs.Operations()
	for name, op := range svc.Operations() {
		ops[name] = op
	}
	oai, err := openai.New(openai.Config{Router: svc, APIKey: openAIKey, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{Region: region, AccountID: account,
		Credentials: server.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey},
		SageMaker:   ops,
		Runtime:     svc.Runtime(runtime.New(runtime.Config{Router: svc, AccountID: account, Logger: quiet})),
		OpenAI:      svc.OpenAI(oai, openAIKey),
		S3:          s3h, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	workerCtx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); w.Run(workerCtx) }()
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		HTTPClient:  client.HTTPClient(),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
	e := &env{dataDir: dataDir, url: url, svc: svc, objects: objects, awsCfg: cfg, hostAddr: hostAddr, st: st, models: models,
		sm: sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) }),
		rt: sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(url) }),
	}
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		stopWorker()
		<-workerDone
		srv.Close()
		svc.Close()
		stopHost()
		st.Close()
	}
	t.Cleanup(e.stop)
	return e
}

// newRuntime is another runtime client. Event streams read concurrently need one client each:
// smithy-go v1.28.9 shares one decoder between the streams of a client (a data race under -race).
func (e *env) newRuntime() *sagemakerruntime.Client {
	return sagemakerruntime.NewFromConfig(e.awsCfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(e.url) })
}

// artifact writes what a fine-tuning job leaves under S3OutputPath/<job>/ (the exported model
// directory and metrics.json naming the base model) for Stories260K, and returns the model prefix.
func (e *env) artifact(t testing.TB, job string) string {
	t.Helper()
	return e.artifactWith(t, job, "Stories260K", "")
}

// artifactWith is artifact with another base model in metrics.json and, when chatTemplate is set,
// that chat template in the exported tokenizer_config.json.
func (e *env) artifactWith(t testing.TB, job, baseModel, chatTemplate string) string {
	t.Helper()
	ctx := context.Background()
	if err := e.objects.CreateBucket(ctx, bucket); err != nil && !strings.Contains(err.Error(), "BucketAlready") {
		t.Fatal(err)
	}
	entry, _ := catalog.Lookup("Stories260K")
	lm, err := finetune.LoadModel(storiesPath, entry)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := lm.Export(dir, filepath.Join(t.TempDir(), "adapter")); err != nil {
		t.Fatal(err)
	}
	if chatTemplate != "" {
		path := filepath.Join(dir, "tokenizer_config.json")
		var cfg map[string]any
		data, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(data, &cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		cfg["chat_template"] = chatTemplate
		if data, err = json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prefix := fmt.Sprintf("s3://%s/out/%s/", bucket, job)
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if err := e.objects.PutFile(ctx, prefix+"model/"+f.Name(), filepath.Join(dir, f.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.objects.PutBytes(ctx, prefix+"metrics.json", []byte(fmt.Sprintf(`{"base_model":%q}`, baseModel)), "application/json"); err != nil {
		t.Fatal(err)
	}
	return prefix + "model/"
}

// deploy creates model, config and endpoint over the SDK and waits with the SDK's waiter.
func (e *env) deploy(t testing.TB, name string, container *types.ContainerDefinition) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(name + "-model"),
		PrimaryContainer: container, ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/r")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(name + "-config"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(name + "-model"),
			InstanceType: types.ProductionVariantInstanceTypeMlG512xlarge, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name),
		EndpointConfigName: aws.String(name + "-config")}); err != nil {
		t.Fatal(err)
	}
	e.waitInService(t, name)
}

func (e *env) waitInService(t testing.TB, name string) {
	t.Helper()
	w := sagemaker.NewEndpointInServiceWaiter(e.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	if err := w.Wait(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("EndpointInService waiter: %v", err)
	}
}

// apiError returns the code and message of an SDK error.
func apiError(t testing.TB, err error) (code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// baseModelContainer serves Stories260K from the model store.
func baseModelContainer(format string) *types.ContainerDefinition {
	env := map[string]string{endpoint.EnvBaseModel: "Stories260K"}
	if format != "" {
		env[endpoint.EnvPromptFormat] = format
	}
	return &types.ContainerDefinition{Image: aws.String("lathe/engine:llama"), Environment: env}
}
