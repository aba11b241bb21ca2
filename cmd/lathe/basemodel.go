package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/modelstore"
)

// baseModelCheckTimeout bounds the create-time look at the hub: a hub that does not answer in this
// time would not serve the pull either.
const baseModelCheckTimeout = 20 * time.Second

// baseModelAvailable is the create-time check of a job's base model (automl.Config's
// BaseModelAvailable): a catalog model that is not in the store must be pullable, or the request is
// refused with the error the job would end with. A job that will pull its model says so in the log.
func baseModelAvailable(models *modelstore.Store, logger *slog.Logger) func(ctx context.Context, name string) error {
	return func(ctx context.Context, name string) error {
		m, ok := catalog.Lookup(name)
		if !ok {
			return nil // not a catalog model: create accepted it because it is in the store
		}
		if _, err := models.Get(name); err == nil || !errors.Is(err, modelstore.ErrNotFound) {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, baseModelCheckTimeout)
		defer cancel()
		if err := models.CheckEnsure(ctx, m, modelstore.PullOptions{}); err != nil {
			return err
		}
		logger.Info("base model not in the store yet: the job pulls it from the hub when it starts", "model", name, "repo", m.HubRepo)
		return nil
	}
}
