// Package endpoint implements SageMaker's hosting operations (CreateModel, CreateEndpointConfig,
// CreateEndpoint and their Describe, List, Update and Delete) and keeps every endpoint's models loaded
// in Lathe's engine, so that the runtime (package endpoint/runtime) can serve InvokeEndpoint.
//
// Models, endpoint configs and endpoints live in the metadata store (Config.Store; a data dir's
// older endpoints.db is imported into it on start); an endpoint goes Creating -> InService once its
// models are downloaded and loaded (or Failed with a FailureReason), and after a restart every
// endpoint is loaded again. With Config.Fleet (an API node with --workers 0, or a worker deploying
// a job's model) the models are not loaded here: each instance is a replica placed on a `lathe
// worker` (fleet.go, the worker's side in replicahost.go), and every API node sharing the store
// routes InvokeEndpoint, the response stream and the OpenAI routes to the replicas.
//
// What a model serves: PrimaryContainer.ModelDataUrl (or ModelDataSource.S3DataSource.S3Uri) is the
// s3:// prefix of a model directory as a fine-tuning job writes it (BestCandidate's
// InferenceContainers[0].ModelDataUrl: a Hugging Face directory plus model.gguf), the s3:// URI of
// a model.tar.gz holding such a directory (SageMaker's usual artifact), or that of one .gguf file. Without a model data URL, Environment LATHE_BASE_MODEL names a base model of
// Lathe's model store (`lathe models import`, or a catalog model pulled from the hub) to serve as is.
// Prompt formatting follows training: Environment LATHE_PROMPT_FORMAT (plain, chat or raw) when set,
// else the format the base model was fine-tuned with (chat template for instruct catalog models,
// dataset.PlainTemplate otherwise), the base model being LATHE_BASE_MODEL or, for a job's artifact,
// base_model in the metrics.json beside the model prefix. Image, instance types and counts are
// validated and recorded; they do not change how Lathe runs the model.
package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/internal/store"
)

// Objects is the part of the S3 client (blob.Client) that fetches model artifacts.
type Objects interface {
	List(ctx context.Context, uri string) ([]blob.Object, error)
	Get(ctx context.Context, uri string) ([]byte, error)
	Download(ctx context.Context, uri, path string) error
}

// ModelSource finds a base model of the model store on local disk (finetune.StoreSource fits).
type ModelSource interface {
	Resolve(ctx context.Context, name string, progress func(done, total int64)) (string, error)
}

// Config wires a Service.
type Config struct {
	DataDir string // the downloaded models (endpoints/<name>/) live here
	// Store keeps the models, endpoint configs and endpoints (required).
	Store     store.Hosting
	Region    string // default us-east-1
	AccountID string // 12 digits; default 123456789012
	Objects   Objects
	Models    ModelSource // may be nil: then only model artifacts in S3 can be served
	// Tags, when set, receives the Tags of Create* requests (the store the tag operations use) and
	// loses a resource's tags when it is deleted.
	Tags store.Tags
	// Serving bounds each loaded model's batch and queue (its Format is set per model).
	Serving serving.Options
	// ExecutionRole, when set, is asked about CreateModel's ExecutionRoleArn: an error (an
	// AccessDeniedException without iam:PassRole on the role) refuses the request.
	ExecutionRole func(ctx context.Context, roleARN string) (runAs string, err error)
	// ModelAccess, when set, checks that runAs (ExecutionRole's answer) may read, and decrypt, the
	// model data at an s3:// URI; its error refuses CreateModel.
	ModelAccess func(ctx context.Context, runAs, modelData string) error
	Logger      *slog.Logger
	Now         func() time.Time
	// Fleet, when set, serves endpoints from replicas on `lathe worker`s instead of this process.
	Fleet *Fleet
}

// Service implements the hosting operations and owns the loaded endpoints.
type Service struct {
	cfg  Config
	db   *db
	log  *slog.Logger
	now  func() time.Time
	rand *rand.Rand

	mu   sync.Mutex
	live map[string]*liveEndpoint // by lower-cased name
	wg   sync.WaitGroup
	ctx  context.Context // cancelled by Close: stops loads in progress
	stop context.CancelFunc

	fleet fleetState    // with cfg.Fleet: the replicas as the last reconcile saw them (s.mu)
	kick  chan struct{} // runs the reconcile loop now

	reconcileMu sync.Mutex // one reconcile at a time: the loop's, or a router's refresh
	reconciled  time.Time  // when the last reconcile began (reconcileMu)
}

// New imports <DataDir>/endpoints.db into the store if there is one and starts loading every
// endpoint the store holds.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("endpoint: DataDir is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("endpoint: Store is required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "123456789012"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "endpoints"), 0o755); err != nil {
		return nil, fmt.Errorf("create endpoints dir: %w", err)
	}
	if err := importLegacy(ctx, cfg.DataDir, cfg.Store, cfg.Logger); err != nil {
		return nil, err
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &Service{cfg: cfg, db: &db{st: cfg.Store}, log: cfg.Logger, now: cfg.Now, live: map[string]*liveEndpoint{}, ctx: bg, stop: stop,
		rand: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)), kick: make(chan struct{}, 1),
		fleet: fleetState{inFlight: map[string]*atomic.Int64{}, suspect: map[string]time.Time{}, endpoints: map[string]remoteEndpoint{}}}
	if cfg.Fleet != nil {
		cfg.Fleet.defaults()
		secret, err := cfg.Fleet.Replicas.ReplicaSecret(ctx)
		if err != nil {
			stop()
			return nil, fmt.Errorf("endpoint replicas: %w", err)
		}
		s.fleet.secret = secret
		s.wg.Add(1)
		go s.runFleet()
	}
	if err := s.reload(ctx); err != nil {
		stop()
		s.wg.Wait()
		return nil, err
	}
	return s, nil
}

// Close stops loading and unloads every model.
func (s *Service) Close() error {
	s.stop()
	s.wg.Wait()
	s.mu.Lock()
	for _, le := range s.live {
		le.close()
	}
	s.live = map[string]*liveEndpoint{}
	s.mu.Unlock()
	return nil
}

// Operations returns the hosting operations by SageMaker name, for the front door.
func (s *Service) Operations() map[string]func(ctx context.Context, body []byte) (any, error) {
	return map[string]func(ctx context.Context, body []byte) (any, error){
		"CreateModel":                        s.createModel,
		"DescribeModel":                      s.describeModel,
		"ListModels":                         s.listModels,
		"DeleteModel":                        s.deleteModel,
		"CreateEndpointConfig":               s.createEndpointConfig,
		"DescribeEndpointConfig":             s.describeEndpointConfig,
		"ListEndpointConfigs":                s.listEndpointConfigs,
		"DeleteEndpointConfig":               s.deleteEndpointConfig,
		"CreateEndpoint":                     s.createEndpoint,
		"DescribeEndpoint":                   s.describeEndpoint,
		"ListEndpoints":                      s.listEndpoints,
		"UpdateEndpoint":                     s.updateEndpoint,
		"UpdateEndpointWeightsAndCapacities": s.updateEndpointWeightsAndCapacities,
		"DeleteEndpoint":                     s.deleteEndpoint,
	}
}

func (s *Service) arn(kind, name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/%s", s.cfg.Region, s.cfg.AccountID, kind, strings.ToLower(name))
}

// ResourceExists reports whether arn names a model, endpoint config or endpoint of this service
// (automl.Config.TagResourceExists, so the tag operations serve their ARNs).
func (s *Service) ResourceExists(ctx context.Context, arn string) (bool, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[3] != s.cfg.Region || parts[4] != s.cfg.AccountID {
		return false, nil
	}
	kind, name, _ := strings.Cut(parts[5], "/")
	var err error
	switch kind {
	case "model":
		_, err = s.db.get(ctx, "models", strings.ToLower(name))
	case "endpoint-config":
		_, err = s.db.get(ctx, "endpoint_configs", strings.ToLower(name))
	case "endpoint":
		_, err = s.db.getEndpoint(ctx, strings.ToLower(name))
	default:
		return false, nil
	}
	if errors.Is(err, errNotFound) {
		return false, nil
	}
	return err == nil && arn == s.arn(kind, name), err
}

func (s *Service) addTags(ctx context.Context, arn string, tags []tag) error {
	if s.cfg.Tags == nil || len(tags) == 0 {
		return nil
	}
	st := make([]store.Tag, len(tags))
	for i, t := range tags {
		st[i] = store.Tag{Key: *t.Key, Value: *t.Value}
	}
	return s.cfg.Tags.AddTags(ctx, arn, st, 50)
}

// dropTags forgets a deleted resource's tags, so a resource created later under the same name starts
// without them.
func (s *Service) dropTags(ctx context.Context, arn string) {
	if s.cfg.Tags == nil {
		return
	}
	for {
		tags, _, err := s.cfg.Tags.ListTags(ctx, arn, "", 100)
		if err != nil || len(tags) == 0 {
			return
		}
		keys := make([]string, len(tags))
		for i, t := range tags {
			keys[i] = t.Key
		}
		if err := s.cfg.Tags.DeleteTags(ctx, arn, keys); err != nil {
			s.log.Warn("drop tags of deleted resource", "arn", arn, "err", err)
			return
		}
	}
}
