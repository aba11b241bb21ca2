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
}

// Resolve implements ModelSource.
func (s StoreSource) Resolve(ctx context.Context, name string, progress func(done, total int64)) (string, error) {
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
