package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
)

// db keeps models, endpoint configs and endpoints in the metadata store (Config.Store: the SQLite
// file of a single node, or the PostgreSQL database a fleet's API nodes share), so that every API
// node describes, lists and routes the same endpoints. Each resource is keyed by its lower-cased
// name (SageMaker names are case-insensitive), holding the name as created and the request as JSON,
// which Describe echoes.
type db struct{ st store.Hosting }

var errNotFound = errors.New("not found")
var errExists = errors.New("already exists")

// kinds maps this package's table names to the store's kinds.
var kinds = map[string]string{"models": store.KindModel, "endpoint_configs": store.KindEndpointConfig}

// mapErr turns the store's sentinel errors into this package's.
func mapErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrExists):
		return errExists
	}
	return err
}

func unix(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// row is a model or an endpoint config.
type row struct {
	Name    string
	ARN     string
	Created time.Time
	Spec    json.RawMessage
}

func (d *db) insert(ctx context.Context, table, key string, r row) error {
	return mapErr(d.st.PutHostingResource(ctx, kinds[table], key, store.HostingResource(r)))
}

func (d *db) get(ctx context.Context, table, key string) (row, error) {
	r, err := d.st.GetHostingResource(ctx, kinds[table], key)
	return row(r), mapErr(err)
}

func (d *db) list(ctx context.Context, table string) ([]row, error) {
	rs, err := d.st.ListHostingResources(ctx, kinds[table])
	out := make([]row, len(rs))
	for i, r := range rs {
		out[i] = row(r)
	}
	return out, err
}

func (d *db) remove(ctx context.Context, table, key string) error {
	if table == "endpoints" {
		return mapErr(d.st.DeleteEndpoint(ctx, key))
	}
	return mapErr(d.st.DeleteHostingResource(ctx, kinds[table], key))
}

// endpointRow is an endpoint: its status and the deployment (variants with their models) it serves.
type endpointRow struct {
	Name       string
	ARN        string
	ConfigName string
	Status     string
	Failure    string
	Created    time.Time
	Modified   time.Time
	Deployment deployment
}

func (e endpointRow) toStore() (store.Endpoint, error) {
	dep, err := json.Marshal(e.Deployment)
	return store.Endpoint{Name: e.Name, ARN: e.ARN, ConfigName: e.ConfigName, Status: e.Status, Failure: e.Failure,
		Created: e.Created, Modified: e.Modified, Deployment: dep}, err
}

func fromStore(e store.Endpoint) (endpointRow, error) {
	r := endpointRow{Name: e.Name, ARN: e.ARN, ConfigName: e.ConfigName, Status: e.Status, Failure: e.Failure,
		Created: e.Created, Modified: e.Modified}
	if err := json.Unmarshal(e.Deployment, &r.Deployment); err != nil {
		return r, fmt.Errorf("endpoint %s: deployment: %w", e.Name, err)
	}
	return r, nil
}

func (d *db) insertEndpoint(ctx context.Context, key string, e endpointRow) error {
	se, err := e.toStore()
	if err != nil {
		return err
	}
	return mapErr(d.st.CreateEndpoint(ctx, key, se))
}

// updateEndpoint rewrites an endpoint's mutable columns; errNotFound when it was deleted meanwhile.
func (d *db) updateEndpoint(ctx context.Context, key string, e endpointRow) error {
	return d.updateEndpointIf(ctx, key, e, "")
}

// updateEndpointIf is updateEndpoint for an endpoint in status ifStatus only (errNotFound when it is
// not): of two API nodes updating one endpoint at once, one wins.
func (d *db) updateEndpointIf(ctx context.Context, key string, e endpointRow, ifStatus string) error {
	se, err := e.toStore()
	if err != nil {
		return err
	}
	return mapErr(d.st.UpdateEndpoint(ctx, key, se, ifStatus))
}

func (d *db) getEndpoint(ctx context.Context, key string) (endpointRow, error) {
	e, err := d.st.GetEndpoint(ctx, key)
	if err != nil {
		return endpointRow{}, mapErr(err)
	}
	return fromStore(e)
}

func (d *db) listEndpoints(ctx context.Context) ([]endpointRow, error) {
	es, err := d.st.ListEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]endpointRow, 0, len(es))
	for _, e := range es {
		r, err := fromStore(e)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
