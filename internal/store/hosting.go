package store

import (
	"context"
	"encoding/json"
	"time"
)

// Kinds of hosting resources kept by PutHostingResource: SageMaker models and endpoint configs.
const (
	KindModel          = "model"
	KindEndpointConfig = "endpoint-config"
)

// HostingResource is a model or an endpoint config: the name as created, and the request as JSON,
// which Describe echoes. It is keyed by its lower-cased name (SageMaker names are case-insensitive).
type HostingResource struct {
	Name    string
	ARN     string
	Created time.Time
	Spec    json.RawMessage
}

// Endpoint is an endpoint's row: its status and the deployment (package endpoint's variants with
// their models, as JSON) it serves.
type Endpoint struct {
	Name       string
	ARN        string
	ConfigName string
	Status     string
	Failure    string
	Created    time.Time
	Modified   time.Time
	Deployment json.RawMessage
}

// Hosting keeps the SageMaker hosting resources (models, endpoint configs, endpoints) in the
// shared store, so that every API node of a fleet describes, lists and routes the same endpoints.
// Keys are the lower-cased names. Times keep millisecond precision.
type Hosting interface {
	// PutHostingResource inserts a resource of kind (KindModel, KindEndpointConfig); ErrExists when
	// one with that key exists.
	PutHostingResource(ctx context.Context, kind, key string, r HostingResource) error
	// GetHostingResource finds one; ErrNotFound when there is none.
	GetHostingResource(ctx context.Context, kind, key string) (HostingResource, error)
	// ListHostingResources returns every resource of kind, by key.
	ListHostingResources(ctx context.Context, kind string) ([]HostingResource, error)
	// DeleteHostingResource removes one; ErrNotFound when there is none.
	DeleteHostingResource(ctx context.Context, kind, key string) error

	// CreateEndpoint inserts an endpoint; ErrExists when one with that key exists.
	CreateEndpoint(ctx context.Context, key string, e Endpoint) error
	// UpdateEndpoint rewrites an endpoint's config name, status, failure, modified time and
	// deployment; ErrNotFound when it was deleted meanwhile. With ifStatus set, only an endpoint in
	// that status is changed (ErrNotFound otherwise): two API nodes that take the same endpoint from
	// InService to Updating at once do not both win.
	UpdateEndpoint(ctx context.Context, key string, e Endpoint, ifStatus string) error
	// GetEndpoint finds an endpoint; ErrNotFound when there is none.
	GetEndpoint(ctx context.Context, key string) (Endpoint, error)
	// ListEndpoints returns every endpoint, by key.
	ListEndpoints(ctx context.Context) ([]Endpoint, error)
	// DeleteEndpoint removes an endpoint; ErrNotFound when there is none.
	DeleteEndpoint(ctx context.Context, key string) error
}

// ReplicaSecretSize is the length of the fleet's replica secret in bytes.
const ReplicaSecretSize = 32
