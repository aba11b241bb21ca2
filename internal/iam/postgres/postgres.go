// Package postgres keeps IAM's documents in PostgreSQL, in a table of their own beside the metadata
// store's, so that every API node of a fleet sharing the database knows the same users, keys,
// roles and sessions.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lathe-ml/lathe/internal/iam"
)

// Store is an iam.Store over a PostgreSQL database.
type Store struct{ pool *pgxpool.Pool }

var _ iam.Store = (*Store)(nil)

// writeLock is the transaction-level advisory lock every Update takes: IAM writes are rare, and
// taking them one at a time makes each read-modify-write (a name's uniqueness, a key quota) exact
// without serialization retries. It also guards the table's creation.
const writeLock int64 = 0x6c617468655f6961 // "lathe_ia"

const schema = `CREATE TABLE IF NOT EXISTS iam_documents (
	kind text NOT NULL,
	key  text NOT NULL,
	doc  text NOT NULL,
	PRIMARY KEY (kind, key)
)`

// Open connects to the database at url and creates the IAM table if it is missing.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("parse PostgreSQL URL: not a valid postgres:// URL or connection string")
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = 4
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "lathe-iam"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	s := &Store{pool: pool}
	// Processes starting at once on a new database would race CREATE TABLE IF NOT EXISTS.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("create the iam table: %w", err)
	}
	return s, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Update runs fn in a write transaction, one at a time across every process sharing the database.
func (s *Store) Update(ctx context.Context, fn func(iam.Tx) error) error {
	return s.run(ctx, fn, pgx.TxOptions{}, true)
}

// View runs fn in a read-only transaction.
func (s *Store) View(ctx context.Context, fn func(iam.Tx) error) error {
	return s.run(ctx, fn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, false)
}

func (s *Store) run(ctx context.Context, fn func(iam.Tx) error, opts pgx.TxOptions, lock bool) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("iam store: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if lock {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			return fmt.Errorf("iam store: lock: %w", err)
		}
	}
	if err := fn(pgTx{ctx: ctx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("iam store: commit: %w", err)
	}
	return nil
}

type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t pgTx) Get(kind, key string) ([]byte, error) {
	var doc string
	err := t.tx.QueryRow(t.ctx, `SELECT doc FROM iam_documents WHERE kind = $1 AND key = $2`, kind, key).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, iam.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("iam store: get %s %q: %w", kind, key, err)
	}
	return []byte(doc), nil
}

func (t pgTx) Put(kind, key string, doc []byte) error {
	_, err := t.tx.Exec(t.ctx, `INSERT INTO iam_documents (kind, key, doc) VALUES ($1, $2, $3)
		ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc`, kind, key, string(doc))
	if err != nil {
		return fmt.Errorf("iam store: put %s %q: %w", kind, key, err)
	}
	return nil
}

func (t pgTx) Delete(kind, key string) error {
	if _, err := t.tx.Exec(t.ctx, `DELETE FROM iam_documents WHERE kind = $1 AND key = $2`, kind, key); err != nil {
		return fmt.Errorf("iam store: delete %s %q: %w", kind, key, err)
	}
	return nil
}

func (t pgTx) List(kind string) ([][]byte, error) {
	// COLLATE "C" orders keys bytewise, as SQLite does, whatever the database's collation.
	rows, err := t.tx.Query(t.ctx, `SELECT doc FROM iam_documents WHERE kind = $1 ORDER BY key COLLATE "C"`, kind)
	if err != nil {
		return nil, fmt.Errorf("iam store: list %s: %w", kind, err)
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
		var doc string
		err := r.Scan(&doc)
		return []byte(doc), err
	})
	if err != nil {
		return nil, fmt.Errorf("iam store: list %s: %w", kind, err)
	}
	return docs, nil
}
