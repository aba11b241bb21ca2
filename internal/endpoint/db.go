package endpoint

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// db keeps models, endpoint configs and endpoints in their own SQLite file (<dataDir>/endpoints.db),
// apart from the job store, so this package's schema evolves on its own. Each resource is a row keyed
// by its lower-cased name (SageMaker names are case-insensitive), holding the name as created and the
// request as JSON, which Describe echoes.
type db struct{ sql *sql.DB }

const schema = `
CREATE TABLE IF NOT EXISTS models (
	key TEXT PRIMARY KEY, name TEXT NOT NULL, arn TEXT NOT NULL, created REAL NOT NULL, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoint_configs (
	key TEXT PRIMARY KEY, name TEXT NOT NULL, arn TEXT NOT NULL, created REAL NOT NULL, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
	key TEXT PRIMARY KEY, name TEXT NOT NULL, arn TEXT NOT NULL, config_name TEXT NOT NULL,
	status TEXT NOT NULL, failure TEXT NOT NULL DEFAULT '', created REAL NOT NULL, modified REAL NOT NULL,
	deployment TEXT NOT NULL);
`

var errNotFound = errors.New("not found")
var errExists = errors.New("already exists")

func openDB(ctx context.Context, path string) (*db, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	s, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s.SetMaxOpenConns(1) // one writer; the tables are small and every statement is short
	if _, err := s.ExecContext(ctx, schema); err != nil {
		s.Close()
		return nil, fmt.Errorf("create tables in %s: %w", path, err)
	}
	return &db{sql: s}, nil
}

func (d *db) close() error { return d.sql.Close() }

func unix(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func fromUnix(f float64) time.Time { return time.UnixMilli(int64(f * 1000)).UTC() }

// row is a model or an endpoint config.
type row struct {
	Name    string
	ARN     string
	Created time.Time
	Spec    json.RawMessage
}

func (d *db) insert(ctx context.Context, table, key string, r row) error {
	res, err := d.sql.ExecContext(ctx, `INSERT INTO `+table+` (key, name, arn, created, spec) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key) DO NOTHING`, key, r.Name, r.ARN, unix(r.Created), string(r.Spec))
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errExists
	}
	return nil
}

func (d *db) get(ctx context.Context, table, key string) (row, error) {
	var r row
	var created float64
	var spec string
	err := d.sql.QueryRowContext(ctx, `SELECT name, arn, created, spec FROM `+table+` WHERE key = ?`, key).
		Scan(&r.Name, &r.ARN, &created, &spec)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read %s %s: %w", table, key, err)
	}
	r.Created, r.Spec = fromUnix(created), json.RawMessage(spec)
	return r, nil
}

func (d *db) list(ctx context.Context, table string) ([]row, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT name, arn, created, spec FROM `+table)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		var created float64
		var spec string
		if err := rows.Scan(&r.Name, &r.ARN, &created, &spec); err != nil {
			return nil, err
		}
		r.Created, r.Spec = fromUnix(created), json.RawMessage(spec)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (d *db) remove(ctx context.Context, table, key string) error {
	res, err := d.sql.ExecContext(ctx, `DELETE FROM `+table+` WHERE key = ?`, key)
	if err != nil {
		return fmt.Errorf("delete from %s: %w", table, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
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

func (d *db) insertEndpoint(ctx context.Context, key string, e endpointRow) error {
	dep, err := json.Marshal(e.Deployment)
	if err != nil {
		return err
	}
	res, err := d.sql.ExecContext(ctx, `INSERT INTO endpoints (key, name, arn, config_name, status, failure, created, modified, deployment)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		key, e.Name, e.ARN, e.ConfigName, e.Status, e.Failure, unix(e.Created), unix(e.Modified), string(dep))
	if err != nil {
		return fmt.Errorf("insert endpoint: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errExists
	}
	return nil
}

// updateEndpoint rewrites an endpoint's mutable columns; errNotFound when it was deleted meanwhile.
func (d *db) updateEndpoint(ctx context.Context, key string, e endpointRow) error {
	dep, err := json.Marshal(e.Deployment)
	if err != nil {
		return err
	}
	res, err := d.sql.ExecContext(ctx, `UPDATE endpoints SET config_name = ?, status = ?, failure = ?, modified = ?, deployment = ?
		WHERE key = ?`, e.ConfigName, e.Status, e.Failure, unix(e.Modified), string(dep), key)
	if err != nil {
		return fmt.Errorf("update endpoint: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}

const endpointColumns = `name, arn, config_name, status, failure, created, modified, deployment`

func scanEndpoint(sc interface{ Scan(...any) error }) (endpointRow, error) {
	var e endpointRow
	var created, modified float64
	var dep string
	if err := sc.Scan(&e.Name, &e.ARN, &e.ConfigName, &e.Status, &e.Failure, &created, &modified, &dep); err != nil {
		return e, err
	}
	e.Created, e.Modified = fromUnix(created), fromUnix(modified)
	if err := json.Unmarshal([]byte(dep), &e.Deployment); err != nil {
		return e, fmt.Errorf("endpoint %s: deployment: %w", e.Name, err)
	}
	return e, nil
}

func (d *db) getEndpoint(ctx context.Context, key string) (endpointRow, error) {
	e, err := scanEndpoint(d.sql.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return e, errNotFound
	}
	return e, err
}

func (d *db) listEndpoints(ctx context.Context) ([]endpointRow, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT `+endpointColumns+` FROM endpoints`)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer rows.Close()
	var out []endpointRow
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
