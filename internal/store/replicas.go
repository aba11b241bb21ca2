package store

import (
	"context"
	"encoding/json"
)

// Replica states: placed on a worker (or waiting for one) and loading, serving, or failed to load.
const (
	ReplicaPending = "Pending"
	ReplicaReady   = "Ready"
	ReplicaFailed  = "Failed"
)

// Replica is one instance of an endpoint's production variant, served by a `lathe worker` when the
// API nodes run no workers of their own (lathe serve --workers 0).
type Replica struct {
	ID       string          // <endpoint key>/<variant>/<n>: stable across API restarts
	Endpoint string          // the endpoint's name as created (InvokeEndpoint needs its exact case)
	Variant  string          // the production variant's name
	Spec     json.RawMessage // what the worker loads (package endpoint's variant spec)
	Worker   string          // the worker it is placed on; "" while unplaced
	State    string          // ReplicaPending, ReplicaReady or ReplicaFailed
	Addr     string          // HOST:PORT of the worker's replica listener, once Ready
	Failure  string          // why it failed to load
}

// Replicas is where API nodes place endpoint replicas and workers report them.
type Replicas interface {
	// SetReplicas makes rs the replicas of the endpoint (by lower-cased name): rows with the same ID
	// and Spec keep their placement and state, others are replaced (unplaced, Pending) or removed.
	SetReplicas(ctx context.Context, endpointKey string, rs []Replica) error
	// ListReplicas returns every replica, by ID.
	ListReplicas(ctx context.Context) ([]Replica, error)
	// PlaceReplica moves a replica from worker from ("" when unplaced) to worker to, Pending; false
	// when it is not on from any more (another API node moved it first).
	PlaceReplica(ctx context.Context, id, from, to string) (bool, error)
	// ReportReplica records the state of a replica placed on worker; false when it is not on that
	// worker any more (it was re-placed: the worker must stop serving it).
	ReportReplica(ctx context.Context, id, worker, state, addr, failure string) (bool, error)
	// ReplicaSecret returns the fleet's secret (ReplicaSecretSize random bytes), which API nodes
	// and workers derive the replica listeners' bearer tokens from. The first call makes it; every
	// process sharing the store gets the same one.
	ReplicaSecret(ctx context.Context) ([]byte, error)
}
