// Package sqlite keeps IAM's documents in an SQLite file (modernc.org/sqlite): by default the same
// lathe.db as the metadata store, in tables of its own, created if missing, so it needs nothing from
// the metadata store's migrations.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/lathe-ml/lathe/internal/iam"
	_ "modernc.org/sqlite" // the database/sql driver
)

// Store is an iam.Store over one SQLite database.
type Store struct{ db *sql.DB }

var _ iam.Store = (*Store)(nil)

const schema = `CREATE TABLE IF NOT EXISTS iam_documents (
	kind TEXT NOT NULL,
	key  TEXT NOT NULL,
	doc  TEXT NOT NULL,
	PRIMARY KEY (kind, key)
) WITHOUT ROWID`

// Open opens (creating them if needed) the IAM tables in the database file at path.
//
// The file holds secret access keys, so it is made readable by its owner only (SQLite gives its
// -wal and -shm files the database file's mode).
func Open(ctx context.Context, path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open iam store %s: %w", path, err)
	}
	err = f.Chmod(0o600)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("open iam store %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open iam store %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create iam tables in %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Update runs fn in a write transaction.
func (s *Store) Update(ctx context.Context, fn func(iam.Tx) error) error {
	return s.run(ctx, fn, false)
}

// View runs fn in a read transaction.
func (s *Store) View(ctx context.Context, fn func(iam.Tx) error) error {
	return s.run(ctx, fn, true)
}

func (s *Store) run(ctx context.Context, fn func(iam.Tx) error, readOnly bool) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: readOnly})
	if err != nil {
		return fmt.Errorf("iam store: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(sqlTx{ctx: ctx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("iam store: commit: %w", err)
	}
	return nil
}

type sqlTx struct {
	ctx context.Context
	tx  *sql.Tx
}

func (t sqlTx) Get(kind, key string) ([]byte, error) {
	var doc string
	err := t.tx.QueryRowContext(t.ctx, `SELECT doc FROM iam_documents WHERE kind = ? AND key = ?`, kind, key).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, iam.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("iam store: get %s %q: %w", kind, key, err)
	}
	return []byte(doc), nil
}

func (t sqlTx) Put(kind, key string, doc []byte) error {
	_, err := t.tx.ExecContext(t.ctx, `INSERT INTO iam_documents (kind, key, doc) VALUES (?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc`, kind, key, string(doc))
	if err != nil {
		return fmt.Errorf("iam store: put %s %q: %w", kind, key, err)
	}
	return nil
}

func (t sqlTx) Delete(kind, key string) error {
	if _, err := t.tx.ExecContext(t.ctx, `DELETE FROM iam_documents WHERE kind = ? AND key = ?`, kind, key); err != nil {
		return fmt.Errorf("iam store: delete %s %q: %w", kind, key, err)
	}
	return nil
}

func (t sqlTx) List(kind string) ([][]byte, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT doc FROM iam_documents WHERE kind = ? ORDER BY key`, kind)
	if err != nil {
		return nil, fmt.Errorf("iam store: list %s: %w", kind, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("iam store: list %s: %w", kind, err)
		}
		out = append(out, []byte(doc))
	}
	return out, rows.Err()
}
