package sqlite

import (
	"context"
	"fmt"

	"github.com/lathe-ml/lathe/internal/store"
)

// SetReplicas replaces an endpoint's replicas, keeping the placement of unchanged ones.
func (s *Store) SetReplicas(ctx context.Context, endpointKey string, rs []store.Replica) error {
	err := func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, `SELECT id, spec FROM replicas WHERE endpoint_key = ?`, endpointKey)
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
				if _, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE id = ?`, id); err != nil {
					return err
				}
			}
		}
		for _, r := range rs {
			if keep[r.ID] {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO replicas (id, endpoint_key, endpoint, variant, spec, state) VALUES (?, ?, ?, ?, ?, ?)`,
				r.ID, endpointKey, r.Endpoint, r.Variant, string(r.Spec), store.ReplicaPending); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("set replicas of endpoint %s: %w", endpointKey, err)
	}
	return nil
}

// ListReplicas returns every replica by ID.
func (s *Store) ListReplicas(ctx context.Context) ([]store.Replica, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, endpoint, variant, spec, worker, state, addr, failure FROM replicas ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	defer rows.Close()
	var out []store.Replica
	for rows.Next() {
		var x store.Replica
		var spec string
		if err := rows.Scan(&x.ID, &x.Endpoint, &x.Variant, &spec, &x.Worker, &x.State, &x.Addr, &x.Failure); err != nil {
			return nil, fmt.Errorf("list replicas: %w", err)
		}
		x.Spec = []byte(spec)
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	return out, nil
}

// PlaceReplica moves a replica between workers if it is still on from.
func (s *Store) PlaceReplica(ctx context.Context, id, from, to string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE replicas SET worker = ?, state = ?, addr = '', failure = '' WHERE id = ? AND worker = ?`,
		to, store.ReplicaPending, id, from)
	if err != nil {
		return false, fmt.Errorf("place replica %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReportReplica records a replica's state if it is still on worker.
func (s *Store) ReportReplica(ctx context.Context, id, worker, state, addr, failure string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE replicas SET state = ?, addr = ?, failure = ? WHERE id = ? AND worker = ?`,
		state, addr, failure, id, worker)
	if err != nil {
		return false, fmt.Errorf("report replica %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
