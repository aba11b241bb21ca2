package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
)

// WorkerHeartbeat registers the worker or refreshes its heartbeat, and forgets long-silent ones.
func (s *Store) WorkerHeartbeat(ctx context.Context, id, host string, started time.Time) error {
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO workers (id, host, started_ns, last_heartbeat_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET host = excluded.host, last_heartbeat_ns = excluded.last_heartbeat_ns`,
		id, host, started.UnixNano(), now.UnixNano()); err != nil {
		return fmt.Errorf("record heartbeat of worker %s: %w", id, err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM workers WHERE last_heartbeat_ns < ?`,
		now.Add(-store.WorkerRetention).UnixNano()); err != nil {
		return fmt.Errorf("forget silent workers: %w", err)
	}
	return nil
}

// RemoveWorker forgets a worker.
func (s *Store) RemoveWorker(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM workers WHERE id = ?`, id); err != nil {
		return fmt.Errorf("remove worker %s: %w", id, err)
	}
	return nil
}

// ListWorkers returns the workers, most recent heartbeat first, with the jobs they hold.
func (s *Store) ListWorkers(ctx context.Context) ([]store.WorkerInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, host, started_ns, last_heartbeat_ns FROM workers
		ORDER BY last_heartbeat_ns DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer rows.Close()
	var out []store.WorkerInfo
	byID := map[string]int{}
	for rows.Next() {
		var w store.WorkerInfo
		var started, beat int64
		if err := rows.Scan(&w.ID, &w.Host, &started, &beat); err != nil {
			return nil, fmt.Errorf("list workers: %w", err)
		}
		w.Started, w.LastHeartbeat = time.Unix(0, started).UTC(), time.Unix(0, beat).UTC()
		byID[w.ID] = len(out)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	jobs, err := s.db.QueryContext(ctx, `SELECT lease_owner, name FROM jobs
		WHERE lease_owner IS NOT NULL AND lease_expiry_ns > ? AND status IN ('InProgress', 'Stopping') ORDER BY lower_name`,
		s.now().UnixNano())
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
