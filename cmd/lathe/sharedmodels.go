package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/internal/modelstore/s3models"
)

// modelsBucketUsage documents --models-bucket.
const modelsBucketUsage = "with --s3-endpoint: the bucket whose " + s3models.Prefix + " prefix holds the models shared by every process (env LATHE_MODELS_BUCKET)"

func defaultModelsBucket() string { return envOr("LATHE_MODELS_BUCKET", s3models.DefaultBucket) }

// baseModels is the model store as `lathe serve` sees it: the data dir's, and, with --s3-endpoint,
// the fleet's copy on S3 behind it, which the data dir's store caches.
type baseModels struct {
	local  *modelstore.Store
	shared *s3models.Shared // nil without --s3-endpoint
	logger *slog.Logger
}

func newBaseModels(local *modelstore.Store, objects *blob.Client, s3Endpoint, bucket string, logger *slog.Logger) baseModels {
	b := baseModels{local: local, logger: logger}
	if s3Endpoint != "" {
		b.shared = s3models.New(local, objects, bucket)
	}
	return b
}

// source resolves the base models of jobs and endpoints.
func (b baseModels) source() finetune.StoreSource {
	src := finetune.StoreSource{Store: b.local}
	if b.shared != nil {
		src.Shared = b.shared
	}
	return src
}

// sharedLookupTimeout bounds the S3 read of a manifest made while a create request waits.
const sharedLookupTimeout = 10 * time.Second

// registered is the architecture of a model in the store (here or shared) for the control plane.
func (b baseModels) registered(name string) (string, bool) {
	if e, err := b.local.Get(name); err == nil {
		return e.Architecture, true
	}
	if b.shared == nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedLookupTimeout)
	defer cancel()
	e, err := b.shared.Manifest(ctx, name)
	if err != nil {
		if !errors.Is(err, modelstore.ErrNotFound) {
			b.logger.Warn("read shared model manifest", "model", name, "err", err)
		}
		return "", false
	}
	return e.Architecture, true
}

// available checks at create time that a job's base model can be had: from the shared copy, else
// as baseModelAvailable says (the local store, or the hub for catalog models).
func (b baseModels) available() func(ctx context.Context, name string) error {
	check := baseModelAvailable(b.local, b.logger)
	if b.shared == nil {
		return check
	}
	return func(ctx context.Context, name string) error {
		ctx, cancel := context.WithTimeout(ctx, sharedLookupTimeout)
		defer cancel()
		if _, err := b.shared.Manifest(ctx, name); err == nil {
			return nil
		} else if !errors.Is(err, modelstore.ErrNotFound) {
			return err
		}
		return check(ctx, name)
	}
}

// sharedModelsFor opens the fleet's models for `lathe models` when --s3-endpoint is given; nil
// otherwise.
func sharedModelsFor(ctx context.Context, local *modelstore.Store, s3Endpoint, bucket string) (*s3models.Shared, error) {
	if s3Endpoint == "" {
		return nil, nil
	}
	objects, err := blob.New(ctx, blob.External(s3Endpoint))
	if err != nil {
		return nil, err
	}
	return s3models.New(local, objects, bucket), nil
}
