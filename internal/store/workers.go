package store

import (
	"context"
	"time"
)

// WorkerInfo is one worker process as the fleet's registry sees it.
type WorkerInfo struct {
	ID            string // the owner id it writes into its leases
	Host          string
	Started       time.Time
	LastHeartbeat time.Time // by the store's clock
	// Jobs are the names of the jobs it holds a live lease on, by name.
	Jobs []string
}

// WorkerRetention is how long a worker that stopped heartbeating without saying goodbye (a crash,
// SIGKILL) stays listed: long enough for an operator to see what died, not forever.
const WorkerRetention = 24 * time.Hour

// Workers is the fleet's registry: every worker reports itself with a heartbeat of its own (idle or
// not), so `lathe workers list` shows the fleet, not only the workers that hold a job.
type Workers interface {
	// WorkerHeartbeat records that the worker is alive now (by the store's clock), registering it on
	// its first call; it also forgets workers silent for longer than WorkerRetention.
	WorkerHeartbeat(ctx context.Context, id, host string, started time.Time) error
	// RemoveWorker forgets a worker that is stopping; unknown ids are ignored.
	RemoveWorker(ctx context.Context, id string) error
	// ListWorkers returns the registered workers, most recent heartbeat first.
	ListWorkers(ctx context.Context) ([]WorkerInfo, error)
}
