package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
)

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// PutHostingResource inserts a model or endpoint config.
func (s *Store) PutHostingResource(ctx context.Context, kind, key string, r store.HostingResource) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO hosting_resources (kind, key, name, arn, created_ms, spec)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`, kind, key, r.Name, r.ARN, ms(r.Created), string(r.Spec))
	if err != nil {
		return fmt.Errorf("insert %s %s: %w", kind, key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %s: %w", kind, key, store.ErrExists)
	}
	return nil
}

// GetHostingResource finds a model or endpoint config.
func (s *Store) GetHostingResource(ctx context.Context, kind, key string) (store.HostingResource, error) {
	var r store.HostingResource
	var created int64
	var spec string
	err := s.db.QueryRowContext(ctx, `SELECT name, arn, created_ms, spec FROM hosting_resources WHERE kind = ? AND key = ?`,
		kind, key).Scan(&r.Name, &r.ARN, &created, &spec)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%s %s: %w", kind, key, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read %s %s: %w", kind, key, err)
	}
	r.Created, r.Spec = fromMS(created), []byte(spec)
	return r, nil
}

// ListHostingResources returns the models or endpoint configs by key.
func (s *Store) ListHostingResources(ctx context.Context, kind string) ([]store.HostingResource, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, arn, created_ms, spec FROM hosting_resources WHERE kind = ? ORDER BY key`, kind)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	defer rows.Close()
	var out []store.HostingResource
	for rows.Next() {
		var r store.HostingResource
		var created int64
		var spec string
		if err := rows.Scan(&r.Name, &r.ARN, &created, &spec); err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
		r.Created, r.Spec = fromMS(created), []byte(spec)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	return out, nil
}

// DeleteHostingResource removes a model or endpoint config.
func (s *Store) DeleteHostingResource(ctx context.Context, kind, key string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM hosting_resources WHERE kind = ? AND key = ?`, kind, key)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %s: %w", kind, key, store.ErrNotFound)
	}
	return nil
}

// CreateEndpoint inserts an endpoint.
func (s *Store) CreateEndpoint(ctx context.Context, key string, e store.Endpoint) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO endpoints (key, name, arn, config_name, status, failure, created_ms, modified_ms, deployment)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		key, e.Name, e.ARN, e.ConfigName, e.Status, e.Failure, ms(e.Created), ms(e.Modified), string(e.Deployment))
	if err != nil {
		return fmt.Errorf("insert endpoint %s: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("endpoint %s: %w", key, store.ErrExists)
	}
	return nil
}

// UpdateEndpoint rewrites an endpoint's mutable columns, if it is in ifStatus (when set).
func (s *Store) UpdateEndpoint(ctx context.Context, key string, e store.Endpoint, ifStatus string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE endpoints SET config_name = ?, status = ?, failure = ?, modified_ms = ?, deployment = ?
		WHERE key = ? AND (? = '' OR status = ?)`, e.ConfigName, e.Status, e.Failure, ms(e.Modified), string(e.Deployment), key, ifStatus, ifStatus)
	if err != nil {
		return fmt.Errorf("update endpoint %s: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("endpoint %s: %w", key, store.ErrNotFound)
	}
	return nil
}

const endpointColumns = `name, arn, config_name, status, failure, created_ms, modified_ms, deployment`

func scanEndpoint(sc interface{ Scan(...any) error }) (store.Endpoint, error) {
	var e store.Endpoint
	var created, modified int64
	var dep string
	if err := sc.Scan(&e.Name, &e.ARN, &e.ConfigName, &e.Status, &e.Failure, &created, &modified, &dep); err != nil {
		return e, err
	}
	e.Created, e.Modified, e.Deployment = fromMS(created), fromMS(modified), []byte(dep)
	return e, nil
}

// GetEndpoint finds an endpoint.
func (s *Store) GetEndpoint(ctx context.Context, key string) (store.Endpoint, error) {
	e, err := scanEndpoint(s.db.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("endpoint %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("read endpoint %s: %w", key, err)
	}
	return e, nil
}

// ListEndpoints returns every endpoint by key.
func (s *Store) ListEndpoints(ctx context.Context) ([]store.Endpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+endpointColumns+` FROM endpoints ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer rows.Close()
	var out []store.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list endpoints: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return out, nil
}

// DeleteEndpoint removes an endpoint.
func (s *Store) DeleteEndpoint(ctx context.Context, key string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM endpoints WHERE key = ?`, key)
	if err != nil {
		return fmt.Errorf("delete endpoint %s: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("endpoint %s: %w", key, store.ErrNotFound)
	}
	return nil
}

// ReplicaSecret returns the fleet's replica secret, making it on the first call.
func (s *Store) ReplicaSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, store.ReplicaSecretSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("make replica secret: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO replica_secret (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("store replica secret: %w", err)
	}
	var secret []byte
	if err := s.db.QueryRowContext(ctx, `SELECT secret FROM replica_secret WHERE id = 1`).Scan(&secret); err != nil {
		return nil, fmt.Errorf("read replica secret: %w", err)
	}
	return secret, nil
}
