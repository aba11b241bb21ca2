package endpoint

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
)

// Claimer is the placement of a process that serves one production variant of one endpoint: a pod
// of the variant's Kubernetes Deployment (`lathe worker --endpoint NAME --variant V`). No API node
// places replicas on it (Fleet.SelfPlaced); it takes one replica of its variant itself, an unplaced
// one first, else one whose process's heartbeat lapsed (its pod died), and keeps it while it lives.
// The Deployment runs as many pods as the variant has replicas, so every replica finds a pod; a pod
// left without one (the variant scaled down, or a rolling update retired its replica) takes the next
// one that appears, and meanwhile it is not Ready, so it is the pod a scale-down removes first.
//
// Claimer also registers the process in the store's worker registry (its heartbeat is how the API
// nodes tell a live replica from a dead pod's).
type Claimer struct {
	Replicas store.Replicas
	Workers  store.Workers
	// Owner is the process's worker id (the pod's name), as HostConfig.Owner.
	Owner             string
	Endpoint, Variant string
	// WorkerTimeout is how old a heartbeat may be before its replica is taken over; default 30 s.
	// The heartbeat is sent every third of it.
	WorkerTimeout time.Duration
	// Interval is how often an idle process looks for a replica to take; default 1 s.
	Interval time.Duration
	Logger   *slog.Logger
}

func (c *Claimer) defaults() {
	if c.WorkerTimeout <= 0 {
		c.WorkerTimeout = 30 * time.Second
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Run heartbeats and claims until ctx ends, then removes the process from the registry.
func (c *Claimer) Run(ctx context.Context) error {
	c.defaults()
	host, _ := os.Hostname()
	started := time.Now()
	var lastBeat time.Time
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		if time.Since(lastBeat) >= c.WorkerTimeout/3 {
			bctx, cancel := context.WithTimeout(ctx, c.WorkerTimeout/3)
			if err := c.Workers.WorkerHeartbeat(bctx, c.Owner, host, started); err != nil && ctx.Err() == nil {
				c.Logger.Warn("endpoint replica heartbeat", "worker", c.Owner, "err", err)
			} else {
				lastBeat = time.Now()
			}
			cancel()
		}
		if id, err := c.ClaimOnce(ctx); err != nil && ctx.Err() == nil {
			c.Logger.Warn("claim an endpoint replica", "endpoint", c.Endpoint, "variant", c.Variant, "err", err)
		} else if id != "" {
			c.Logger.Info("endpoint replica claimed", "replica", id, "endpoint", c.Endpoint, "variant", c.Variant, "worker", c.Owner)
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Workers.RemoveWorker(rctx, c.Owner); err != nil {
				c.Logger.Warn("remove worker from the registry", "worker", c.Owner, "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}

// ClaimOnce takes a replica of the variant unless the process holds one already; it returns the
// id of the replica it took ("" when it took none).
func (c *Claimer) ClaimOnce(ctx context.Context) (string, error) {
	c.defaults()
	all, err := c.Replicas.ListReplicas(ctx)
	if err != nil {
		return "", err
	}
	prefix := strings.ToLower(c.Endpoint) + "/"
	var mine []store.Replica
	for _, r := range all {
		if strings.HasPrefix(r.ID, prefix) && r.Variant == c.Variant {
			if r.Worker == c.Owner {
				return "", nil
			}
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		return "", nil
	}
	workers, err := c.Workers.ListWorkers(ctx)
	if err != nil {
		return "", err
	}
	live := map[string]bool{}
	for _, w := range workers {
		// The store's clock, as the API nodes judge it; a process's own clock is close enough here:
		// a lapse is tens of seconds.
		if time.Since(w.LastHeartbeat) < c.WorkerTimeout {
			live[w.ID] = true
		}
	}
	var free []store.Replica
	for _, r := range mine {
		if r.State != store.ReplicaFailed && (r.Worker == "" || !live[r.Worker]) {
			free = append(free, r)
		}
	}
	// Unplaced first (a new, scaled-up or rolling update's replica, which the endpoint waits for),
	// then by id: pods racing for the same replica ask for it in the same order, and PlaceReplica's
	// compare-and-set gives it to one of them.
	slices.SortStableFunc(free, func(a, b store.Replica) int {
		if (a.Worker == "") != (b.Worker == "") {
			if a.Worker == "" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, r := range free {
		ok, err := c.Replicas.PlaceReplica(ctx, r.ID, r.Worker, c.Owner)
		if err != nil {
			return "", fmt.Errorf("claim replica %s: %w", r.ID, err)
		}
		if ok {
			if r.Worker != "" {
				c.Logger.Warn("endpoint replica of a lost process taken over", "replica", r.ID, "from", r.Worker, "to", c.Owner)
			}
			return r.ID, nil
		}
	}
	return "", nil
}
