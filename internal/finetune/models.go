package finetune

import (
	"context"
	"errors"
	"fmt"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/modelstore"
)

// StoreSource resolves base models through the model store, pulling catalog models from the Hugging
// Face hub (HF_ENDPOINT, HF_TOKEN) when they are not in the store yet.
type StoreSource struct {
	Store *modelstore.Store
	// Shared, when set, is the fleet's copy of the model store (on S3, with --s3-endpoint): a model
	// Store lacks is fetched from it into Store before the hub is asked.
	Shared SharedModels
}

// SharedModels fetches a model from the fleet's copy of the model store into the local one
// (s3models.Shared fits); an error wrapping modelstore.ErrNotFound when the fleet has none.
type SharedModels interface {
	Fetch(ctx context.Context, name string) (modelstore.Entry, error)
}

// Resolve implements ModelSource.
func (s StoreSource) Resolve(ctx context.Context, name string, progress func(done, total int64)) (string, error) {
	if s.Shared != nil {
		if _, err := s.Shared.Fetch(ctx, name); err != nil && !errors.Is(err, modelstore.ErrNotFound) {
			return "", fmt.Errorf("fetch base model %s from the shared model store: %w", name, err)
		}
	}
	if m, ok := catalog.Lookup(name); ok {
		if _, err := s.Store.Ensure(ctx, m, modelstore.PullOptions{Progress: progress}); err != nil {
			return "", err
		}
	}
	path, err := s.Store.Path(name)
	if errors.Is(err, modelstore.ErrNotFound) {
		// A model only the store knows (the control plane accepted it because it was registered) that
		// was removed since: the hub has no source for it, the user must import it again.
		return "", fmt.Errorf("%w: run \"lathe models import /path/to/model --name %s\" with the model's GGUF file or Hugging Face folder", err, name)
	}
	return path, err
}
