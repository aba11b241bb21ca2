// Package s3models keeps the fleet's copy of the model store on S3: each model's files and its
// manifest under one prefix (s3://BUCKET/_lathe/models/NAME/), so that a model imported or pulled
// once is there for every process that shares the bucket. Each process keeps its own model store
// as a local cache and fetches a model into it, checked file by file against the manifest, the
// first time a job or an endpoint needs it.
//
// The manifest is written last and deleted first: a model is on S3 exactly when its manifest is.
package s3models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/modelstore"
)

// Prefix is where the models live inside the bucket. Keys starting with "_lathe/" are Lathe's own.
const Prefix = "_lathe/models/"

// DefaultBucket holds the shared models unless configured otherwise.
const DefaultBucket = "lathe"

// Shared is the models on S3 and this process's local cache of them.
type Shared struct {
	local   *modelstore.Store
	objects *blob.Client
	bucket  string
}

// New returns the shared models in bucket, cached in local.
func New(local *modelstore.Store, objects *blob.Client, bucket string) *Shared {
	return &Shared{local: local, objects: objects, bucket: bucket}
}

// URI is where the model's object named file lives ("" for the model's folder).
func (s *Shared) URI(name, file string) string {
	return "s3://" + s.bucket + "/" + Prefix + name + "/" + file
}

// Manifest returns the shared copy's manifest; an error wrapping modelstore.ErrNotFound when the
// bucket has no model of that name.
func (s *Shared) Manifest(ctx context.Context, name string) (modelstore.Entry, error) {
	if !modelstore.ValidName(name) {
		return modelstore.Entry{}, fmt.Errorf("invalid model name %q", name)
	}
	data, err := s.objects.Get(ctx, s.URI(name, modelstore.ManifestName))
	if errors.Is(err, blob.ErrNotFound) {
		return modelstore.Entry{}, fmt.Errorf("model %s: %w (%s)", name, modelstore.ErrNotFound, s.URI(name, ""))
	}
	if err != nil {
		return modelstore.Entry{}, fmt.Errorf("read the shared manifest of %s: %w", name, err)
	}
	var e modelstore.Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return modelstore.Entry{}, fmt.Errorf("decode the shared manifest %s: %w", s.URI(name, modelstore.ManifestName), err)
	}
	if e.Name != name {
		return modelstore.Entry{}, fmt.Errorf("the shared manifest %s names model %q", s.URI(name, modelstore.ManifestName), e.Name)
	}
	return e, nil
}

// Publish uploads a model of the local store: its files, then its manifest. A shared copy with the
// same files is left as it is.
func (s *Shared) Publish(ctx context.Context, name string) (modelstore.Entry, error) {
	e, err := s.local.Get(name)
	if err != nil {
		return modelstore.Entry{}, err
	}
	if have, err := s.Manifest(ctx, name); err == nil && slices.Equal(have.Files, e.Files) {
		return have, nil
	} else if err != nil && !errors.Is(err, modelstore.ErrNotFound) {
		return modelstore.Entry{}, err
	}
	if err := s.objects.CreateBucket(ctx, s.bucket); err != nil {
		return modelstore.Entry{}, fmt.Errorf("publish %s: %w", name, err)
	}
	dir := filepath.Join(s.local.Dir(), name)
	for _, f := range e.Files {
		if err := s.objects.PutFile(ctx, s.URI(name, f.Path), filepath.Join(dir, filepath.FromSlash(f.Path))); err != nil {
			return modelstore.Entry{}, fmt.Errorf("publish %s: %w", name, err)
		}
	}
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return modelstore.Entry{}, fmt.Errorf("publish %s: encode manifest: %w", name, err)
	}
	if err := s.objects.PutBytes(ctx, s.URI(name, modelstore.ManifestName), append(data, '\n'), "application/json"); err != nil {
		return modelstore.Entry{}, fmt.Errorf("publish %s: %w", name, err)
	}
	return e, nil
}

// Fetch makes the model local: a model already in the local store is used as it is, otherwise the
// shared copy is downloaded into it. An error wrapping modelstore.ErrNotFound when neither has it;
// modelstore.ErrChecksum when a shared file does not match its manifest (nothing is installed).
func (s *Shared) Fetch(ctx context.Context, name string) (modelstore.Entry, error) {
	if e, err := s.local.Get(name); err == nil || !errors.Is(err, modelstore.ErrNotFound) {
		return e, err
	}
	e, err := s.Manifest(ctx, name)
	if err != nil {
		return modelstore.Entry{}, err
	}
	got, err := s.local.Install(ctx, e, func(ctx context.Context, f modelstore.File) (io.ReadCloser, error) {
		return s.objects.Open(ctx, s.URI(name, f.Path))
	})
	if errors.Is(err, modelstore.ErrExists) {
		return s.local.Get(name) // another process or goroutine fetched it meanwhile
	}
	return got, err
}

// List returns the shared models, sorted by name.
func (s *Shared) List(ctx context.Context) ([]modelstore.Entry, error) {
	objs, err := s.objects.List(ctx, "s3://"+s.bucket+"/"+Prefix)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil // no bucket, no shared models
	}
	if err != nil {
		return nil, fmt.Errorf("list shared models: %w", err)
	}
	var out []modelstore.Entry
	for _, o := range objs {
		name, rest, _ := strings.Cut(strings.TrimPrefix(o.Key, Prefix), "/")
		if rest != modelstore.ManifestName {
			continue
		}
		e, err := s.Manifest(ctx, name)
		if errors.Is(err, modelstore.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Remove deletes the shared copy: the manifest first, so that no process starts fetching it, then
// the files. Local caches keep their copies.
func (s *Shared) Remove(ctx context.Context, name string) error {
	e, err := s.Manifest(ctx, name)
	if err != nil {
		return err
	}
	if err := s.objects.Delete(ctx, s.URI(name, modelstore.ManifestName)); err != nil {
		return fmt.Errorf("remove shared model %s: %w", name, err)
	}
	for _, f := range e.Files {
		if err := s.objects.Delete(ctx, s.URI(name, f.Path)); err != nil {
			return fmt.Errorf("remove shared model %s: %w", name, err)
		}
	}
	return nil
}
