package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lathe-ml/lathe/internal/store"
)

// WorkerHeartbeat registers the worker or refreshes its heartbeat (by the database server's clock,
// which every worker shares), and forgets long-silent ones.
func (s *Store) WorkerHeartbeat(ctx context.Context, id, host string, started time.Time) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO workers (id, host, started_ns, last_heartbeat_ns) VALUES ($1, $2, $3, `+nowNS+`)
		ON CONFLICT (id) DO UPDATE SET host = excluded.host, last_heartbeat_ns = excluded.last_heartbeat_ns`,
		id, host, started.UnixNano()); err != nil {
		return fmt.Errorf("record heartbeat of worker %s: %w", id, err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM workers WHERE last_heartbeat_ns < `+nowNS+` - $1`,
		store.WorkerRetention.Nanoseconds()); err != nil {
		return fmt.Errorf("forget silent workers: %w", err)
	}
	return nil
}

// RemoveWorker forgets a worker.
func (s *Store) RemoveWorker(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM workers WHERE id = $1`, id); err != nil {
		return fmt.Errorf("remove worker %s: %w", id, err)
	}
	return nil
}

// ListWorkers returns the workers, most recent heartbeat first, with the jobs they hold.
func (s *Store) ListWorkers(ctx context.Context) ([]store.WorkerInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, host, started_ns, last_heartbeat_ns FROM workers
		ORDER BY last_heartbeat_ns DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.WorkerInfo, error) {
		var w store.WorkerInfo
		var started, beat int64
		err := r.Scan(&w.ID, &w.Host, &started, &beat)
		w.Started, w.LastHeartbeat = time.Unix(0, started).UTC(), time.Unix(0, beat).UTC()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	byID := map[string]int{}
	for i, w := range out {
		byID[w.ID] = i
	}
	jobs, err := s.pool.Query(ctx, `SELECT lease_owner, name FROM jobs
		WHERE lease_owner IS NOT NULL AND lease_expiry_ns > `+nowNS+` AND status IN ('InProgress', 'Stopping') ORDER BY lower_name`)
	if err != nil {
		return nil, fmt.Errorf("list the jobs of workers: %w", err)
	}
	defer jobs.Close()
	for jobs.Next() {
		var owner, name string
		if err := jobs.Scan(&owner, &name); err != nil {
			return nil, fmt.Errorf("list the jobs of workers: %w", err)
		}
		if i, ok := byID[owner]; ok {
			out[i].Jobs = append(out[i].Jobs, name)
		}
	}
	if err := jobs.Err(); err != nil {
		return nil, fmt.Errorf("list the jobs of workers: %w", err)
	}
	return out, nil
}
