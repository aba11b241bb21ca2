package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/lathe-ml/lathe/internal/store"
)

// SetReplicas replaces an endpoint's replicas, keeping the placement of unchanged ones.
func (s *Store) SetReplicas(ctx context.Context, endpointKey string, rs []store.Replica) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, spec FROM replicas WHERE endpoint_key = $1 FOR UPDATE`, endpointKey)
		if err != nil {
			return err
		}
		have := map[string]string{}
		for rows.Next() {
			var id, spec string
			if err := rows.Scan(&id, &spec); err != nil {
				rows.Close()
				return err
			}
			have[id] = spec
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, r := range rs {
			if spec, ok := have[r.ID]; ok && spec == string(r.Spec) {
				keep[r.ID] = true
			}
		}
		for id := range have {
			if !keep[id] {
				if _, err := tx.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, id); err != nil {
					return err
				}
			}
		}
		for _, r := range rs {
			if keep[r.ID] {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO replicas (id, endpoint_key, endpoint, variant, spec, state) VALUES ($1, $2, $3, $4, $5, $6)`,
				r.ID, endpointKey, r.Endpoint, r.Variant, string(r.Spec), store.ReplicaPending); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set replicas of endpoint %s: %w", endpointKey, err)
	}
	return nil
}

// ListReplicas returns every replica by ID.
func (s *Store) ListReplicas(ctx context.Context) ([]store.Replica, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, endpoint, variant, spec, worker, state, addr, failure FROM replicas ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Replica, error) {
		var x store.Replica
		var spec string
		err := r.Scan(&x.ID, &x.Endpoint, &x.Variant, &spec, &x.Worker, &x.State, &x.Addr, &x.Failure)
		x.Spec = []byte(spec)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	return out, nil
}

// PlaceReplica moves a replica between workers if it is still on from.
func (s *Store) PlaceReplica(ctx context.Context, id, from, to string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE replicas SET worker = $3, state = $4, addr = '', failure = '' WHERE id = $1 AND worker = $2`,
		id, from, to, store.ReplicaPending)
	if err != nil {
		return false, fmt.Errorf("place replica %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReportReplica records a replica's state if it is still on worker.
func (s *Store) ReportReplica(ctx context.Context, id, worker, state, addr, failure string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE replicas SET state = $3, addr = $4, failure = $5 WHERE id = $1 AND worker = $2`,
		id, worker, state, addr, failure)
	if err != nil {
		return false, fmt.Errorf("report replica %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
