package modelstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/lathe-ml/lathe/internal/catalog"
)

// CheckEnsure tells, quickly and without downloading, whether Ensure would find the catalog model
// m: nil when the store has it or the hub answers for its repository (the revision resolves);
// otherwise the *PullError that Ensure would return, word for word, so that a job can be refused
// when it is created rather than fail a moment after it starts.
func (s *Store) CheckEnsure(ctx context.Context, m catalog.Model, opts PullOptions) error {
	if _, err := s.Get(m.Name); err == nil || !errors.Is(err, ErrNotFound) {
		return err
	}
	opts = opts.withDefaults()
	src := SourceFor(m)
	h := &hubClient{endpoint: opts.Endpoint, token: opts.Token, client: opts.Client, stall: opts.StallTimeout}
	if _, err := h.commit(ctx, src.Repo, opts.Revision); err != nil {
		var pe *PullError
		if errors.As(pullError(m.Name, src, opts.Endpoint, fmt.Errorf("resolve %s@%s: %w", src.Repo, opts.Revision, err)), &pe) {
			pe.NotInStore = true
			return pe
		}
	}
	return nil
}
