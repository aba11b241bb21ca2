// Package sqlite is the embedded metadata store: one SQLite file (modernc.org/sqlite, pure Go) in WAL
// mode. Every change that touches more than one row runs in a transaction, so a crash never leaves a
// job without its tags or a half-finished state change.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is a store.Store over one SQLite database file.
type Store struct {
	db *sql.DB
	// getJob is GetJob's query, prepared once: database/sql prepares it on each connection the
	// first time that connection runs it and keeps it, where a plain QueryRow would have SQLite
	// parse and plan the statement on every Describe (a third of its CPU time).
	getJob *sql.Stmt
	// readers admits GetJob calls in arrival order, at most maxReaders at a time. database/sql
	// gives a freed connection to a random one of the requests waiting for it: with 64 concurrent
	// Describes, 48 wait, and one in a hundred waits about 220 hand-overs rather than 48 (the
	// p99 was 25 times the p50). Queued on this channel (first in, first out) they wait their
	// turn, and then always find a connection free.
	readers chan struct{}
	// now is the clock of leases. One SQLite file is only ever shared by the processes of one
	// machine, so the local clock is the store's clock.
	now func() time.Time
}

var _ store.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are applied in order at Open, each in its own transaction with its row in
// schema_migrations. Append only: never edit a migration that has shipped.
var migrations = mustLoad()

func mustLoad() []store.Migration {
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	return ms
}

// maxConns is the size of the connection pool.
const maxConns = 16

// maxReaders is how many GetJob calls may hold a connection at once: fewer than maxConns, so
// writers (CreateJob, the workers' claims and heartbeats) still find connections while 64
// clients read.
const maxReaders = maxConns - 4

// Open opens (creating it if needed) the database file at path and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// Write transactions take the write lock up front: a deferred transaction that upgrades from
	// read to write can fail with SQLITE_BUSY without the busy handler being consulted.
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// database/sql keeps 2 idle connections by default: under concurrent requests every other
	// request would open a new SQLite connection (and run the pragmas) and close it again. A fixed
	// pool that is kept open serves readers in parallel (WAL); writers queue on SQLite's lock.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &Store{db: db, now: time.Now, readers: make(chan struct{}, maxReaders)}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	if s.getJob, err = db.PrepareContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE lower_name = ?`); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare sqlite %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.getJob.Close()
	return s.db.Close()
}

func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next pending migration; done reports that none was pending. Its
// transaction takes the write lock up front (_txlock=immediate), so processes that open the same file
// at once apply each migration exactly once, one after the other.
func (s *Store) migrateOne(ctx context.Context) (done bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_ns INTEGER NOT NULL)`); err != nil {
		return false, err
	}
	var n, version int
	if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(version), 0) FROM schema_migrations`).Scan(&n, &version); err != nil {
		return false, err
	}
	if n == 0 {
		// Databases made before schema_migrations counted their migrations in PRAGMA user_version.
		var legacy int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&legacy); err != nil {
			return false, err
		}
		for v := 1; v <= legacy && v <= len(migrations); v++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?, ?, ?)`,
				v, migrations[v-1].Name, s.now().UnixNano()); err != nil {
				return false, err
			}
			version = v
		}
	}
	if version > len(migrations) {
		return false, fmt.Errorf("database schema version %d is newer than this program (%d)", version, len(migrations))
	}
	if version == len(migrations) {
		return true, tx.Commit()
	}
	m := migrations[version]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?, ?, ?)`,
		m.Version, m.Name, s.now().UnixNano()); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	slog.Info("metadata store migrated", "backend", "sqlite", "version", m.Version, "migration", m.Name)
	return false, nil
}

const jobColumns = `name, arn, request, spec, status, secondary_status, created_ns, modified_ns, ended_ns,
	deadline_ns, failure_reason, result, progress, checkpoint, stop_requested, lease_owner, lease_expiry_ns,
	lease_token, attempts`

// summaryColumns are what a list needs; the documents (request, spec, result, progress) stay unread.
const summaryColumns = `name, arn, status, secondary_status, created_ns, modified_ns, ended_ns, failure_reason`

type scanner interface{ Scan(dest ...any) error }

func scanJob(r scanner) (*store.Job, error) {
	var (
		j                                        store.Job
		request, spec                            string
		created, modified                        int64
		ended, deadline, leaseExp                sql.NullInt64
		result, progress, checkpoint, leaseOwner sql.NullString
		stop                                     int
	)
	err := r.Scan(&j.Name, &j.ARN, &request, &spec, &j.Status, &j.Secondary, &created, &modified, &ended,
		&deadline, &j.FailureReason, &result, &progress, &checkpoint, &stop, &leaseOwner, &leaseExp,
		&j.LeaseToken, &j.Attempts)
	if err != nil {
		return nil, err
	}
	j.Request = json.RawMessage(request)
	j.Spec = json.RawMessage(spec)
	j.Created = fromNS(created)
	j.Modified = fromNS(modified)
	j.Ended = fromNullNS(ended)
	j.Deadline = fromNullNS(deadline)
	if result.Valid {
		j.Result = json.RawMessage(result.String)
	}
	if progress.Valid {
		j.Progress = json.RawMessage(progress.String)
	}
	if checkpoint.Valid {
		j.Checkpoint = json.RawMessage(checkpoint.String)
	}
	j.StopRequested = stop != 0
	j.LeaseOwner = leaseOwner.String
	j.LeaseExpiry = fromNullNS(leaseExp)
	return &j, nil
}

func fromNS(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func fromNullNS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromNS(v.Int64)
}

func nullNS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func nullJSON(b json.RawMessage) sql.NullString {
	if len(b) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

// CreateJob inserts the job and its tags in one transaction.
func (s *Store) CreateJob(ctx context.Context, j *store.Job, tags []store.Tag) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.Name, err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO jobs (lower_name, `+jobColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		strings.ToLower(j.Name), j.Name, j.ARN, string(j.Request), string(j.Spec), j.Status, j.Secondary,
		j.Created.UnixNano(), j.Modified.UnixNano(), nullNS(j.Ended), nullNS(j.Deadline), j.FailureReason,
		nullJSON(j.Result), nullJSON(j.Progress), nullJSON(j.Checkpoint), boolInt(j.StopRequested),
		nullString(j.LeaseOwner), nullNS(j.LeaseExpiry), j.LeaseToken, j.Attempts)
	if err != nil {
		if isConstraint(err) {
			return fmt.Errorf("create job %s: %w", j.Name, store.ErrExists)
		}
		return fmt.Errorf("create job %s: %w", j.Name, err)
	}
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags (arn, key, value) VALUES (?, ?, ?)
			ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value`, j.ARN, t.Key, t.Value); err != nil {
			return fmt.Errorf("create job %s: tag %s: %w", j.Name, t.Key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create job %s: commit: %w", j.Name, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// GetJob finds a job by name, case-insensitively.
func (s *Store) GetJob(ctx context.Context, name string) (*store.Job, error) {
	select {
	case s.readers <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("get job %s: %w", name, ctx.Err())
	}
	j, err := scanJob(s.getJob.QueryRowContext(ctx, strings.ToLower(name)))
	<-s.readers
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", name, err)
	}
	return j, nil
}

// ListJobs returns one page of jobs, filtered and ordered in SQL (keyset pagination).
func (s *Store) ListJobs(ctx context.Context, q store.JobQuery) (*store.JobPage, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("list jobs: limit %d must be positive", q.Limit)
	}
	var (
		where []string
		args  []any
	)
	if q.NameContains != "" {
		where = append(where, `instr(lower_name, ?) > 0`)
		args = append(args, strings.ToLower(q.NameContains))
	}
	if q.Status != "" {
		where = append(where, `status = ?`)
		args = append(args, q.Status)
	}
	for _, f := range []struct {
		t  time.Time
		op string
	}{{q.CreatedAfter, `created_ns > ?`}, {q.CreatedBefore, `created_ns < ?`},
		{q.ModifiedAfter, `modified_ns > ?`}, {q.ModifiedBefore, `modified_ns < ?`}} {
		if !f.t.IsZero() {
			where = append(where, f.op)
			args = append(args, f.t.UnixNano())
		}
	}
	keyCol, err := store.SortColumn(q)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	if keyCol == "created" {
		keyCol = "created_ns"
	}
	dir, cmp := "ASC", ">"
	if q.Descending {
		dir, cmp = "DESC", "<"
	}
	fp := store.Fingerprint(q)
	if q.After != "" {
		c, err := store.DecodeCursor(q.After, q)
		if err != nil {
			return nil, err
		}
		switch keyCol {
		case "":
			where = append(where, `lower_name `+cmp+` ?`)
			args = append(args, c.Name)
		case "created_ns":
			var ns int64
			if _, err := fmt.Sscan(c.Key, &ns); err != nil {
				return nil, store.ErrBadCursor
			}
			where = append(where, `(created_ns, lower_name) `+cmp+` (?, ?)`)
			args = append(args, ns, c.Name)
		case "status":
			where = append(where, `(status, lower_name) `+cmp+` (?, ?)`)
			args = append(args, c.Key, c.Name)
		}
	}
	query := `SELECT lower_name, ` + summaryColumns + ` FROM jobs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if keyCol != "" {
		query += ` ORDER BY ` + keyCol + ` ` + dir + `, lower_name ` + dir
	} else {
		query += ` ORDER BY lower_name ` + dir
	}
	query += ` LIMIT ?`
	args = append(args, q.Limit+1)

	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	page := &store.JobPage{}
	var lowerNames []string
	for rows.Next() {
		var (
			j                 store.Job
			lower             string
			created, modified int64
			ended             sql.NullInt64
		)
		if err := rows.Scan(&lower, &j.Name, &j.ARN, &j.Status, &j.Secondary, &created, &modified, &ended, &j.FailureReason); err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		j.Created, j.Modified, j.Ended = fromNS(created), fromNS(modified), fromNullNS(ended)
		page.Jobs = append(page.Jobs, j)
		lowerNames = append(lowerNames, lower)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	if len(page.Jobs) > q.Limit {
		page.Jobs = page.Jobs[:q.Limit]
		last := page.Jobs[q.Limit-1]
		c := store.Cursor{Filter: fp, Name: lowerNames[q.Limit-1]}
		switch keyCol {
		case "created_ns":
			c.Key = fmt.Sprint(last.Created.UnixNano())
		case "status":
			c.Key = last.Status
		}
		page.Next = c.Encode()
	}
	return page, nil
}

// RequestStop moves an InProgress job to Stopping and flags the stop for its worker.
func (s *Store) RequestStop(ctx context.Context, name string, now time.Time) (*store.Job, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("stop job %s: %w", name, err)
	}
	defer tx.Rollback()
	lower := strings.ToLower(name)
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'Stopping', secondary_status = 'Stopping',
		stop_requested = 1, modified_ns = ? WHERE lower_name = ? AND status = 'InProgress'`,
		now.UnixNano(), lower); err != nil {
		return nil, fmt.Errorf("stop job %s: %w", name, err)
	}
	j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE lower_name = ?`, lower))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("stop job %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("stop job %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("stop job %s: commit: %w", name, err)
	}
	return j, nil
}

// ClaimJob leases the oldest runnable job to owner. One UPDATE ... RETURNING picks and leases the
// row, and SQLite runs one writer at a time, so two workers can never claim the same job.
func (s *Store) ClaimJob(ctx context.Context, owner string, d time.Duration) (*store.Job, error) {
	if d < 0 {
		return nil, fmt.Errorf("claim job for %s: negative lease duration %v", owner, d)
	}
	now := s.now()
	// INDEXED BY: without statistics SQLite picks jobs_by_status for the status test and then
	// sorts every queued job to find the oldest, reading all their rows on each poll (with
	// 10,000 queued jobs a poll cost milliseconds of CPU); the partial index is already in
	// claim order and holds only runnable jobs.
	j, err := scanJob(s.db.QueryRowContext(ctx, `UPDATE jobs
		SET lease_owner = ?, lease_expiry_ns = ?, lease_token = lease_token + 1, attempts = attempts + 1
		WHERE id = (
			SELECT id FROM jobs INDEXED BY jobs_runnable
			WHERE status IN ('InProgress', 'Stopping') AND (lease_owner IS NULL OR lease_expiry_ns <= ?)
			ORDER BY created_ns, id LIMIT 1)
		RETURNING `+jobColumns, owner, now.Add(d).UnixNano(), now.UnixNano()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim job for %s: %w", owner, err)
	}
	return j, nil
}

// leased is the condition of every write made under a lease: the token is still the job's and the
// lease has not been released or ended with the job.
const leased = `lower_name = ? AND lease_token = ? AND lease_owner = ?`

func leaseArgs(l store.Lease) []any { return []any{strings.ToLower(l.Job), l.Token, l.Owner} }

// RenewLease extends the lease and reports whether a stop was requested.
func (s *Store) RenewLease(ctx context.Context, l store.Lease, d time.Duration) (bool, error) {
	var stop int
	err := s.db.QueryRowContext(ctx, `UPDATE jobs SET lease_expiry_ns = ? WHERE `+leased+` RETURNING stop_requested`,
		append([]any{s.now().Add(d).UnixNano()}, leaseArgs(l)...)...).Scan(&stop)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("renew lease %d on job %s: %w", l.Token, l.Job, store.ErrFenced)
	}
	if err != nil {
		return false, fmt.Errorf("renew lease %d on job %s: %w", l.Token, l.Job, err)
	}
	return stop != 0, nil
}

// execLeased runs a single-row update guarded by the lease and maps "no row" to ErrFenced.
func (s *Store) execLeased(ctx context.Context, what string, l store.Lease, set string, args ...any) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET `+set+` WHERE `+leased, append(args, leaseArgs(l)...)...)
	if err != nil {
		return fmt.Errorf("%s job %s: %w", what, l.Job, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s job %s: %w", what, l.Job, err)
	}
	if n == 0 {
		return fmt.Errorf("%s job %s under lease %d: %w", what, l.Job, l.Token, store.ErrFenced)
	}
	return nil
}

// SetSecondaryStatus records the phase of a running job. A job that is Stopping keeps its Stopping
// secondary status: the stop request wins over a phase change that races with it.
func (s *Store) SetSecondaryStatus(ctx context.Context, l store.Lease, secondary string, now time.Time) error {
	return s.execLeased(ctx, "set phase of", l,
		`secondary_status = CASE WHEN status = 'InProgress' THEN ? ELSE secondary_status END, modified_ns = ?`,
		secondary, now.UnixNano())
}

// SetProgress records the latest progress of a running job. It does not touch LastModifiedTime:
// progress is not a change of the job's state.
func (s *Store) SetProgress(ctx context.Context, l store.Lease, progress json.RawMessage, _ time.Time) error {
	return s.execLeased(ctx, "set progress of", l, `progress = ?`, nullJSON(progress))
}

// SetCheckpoint records the latest checkpoint of a running job.
func (s *Store) SetCheckpoint(ctx context.Context, l store.Lease, checkpoint json.RawMessage) error {
	return s.execLeased(ctx, "set checkpoint of", l, `checkpoint = ?`, nullJSON(checkpoint))
}

// FinishJob writes the final state of a job and drops its lease.
func (s *Store) FinishJob(ctx context.Context, l store.Lease, f store.FinalState) error {
	return s.execLeased(ctx, "finish", l, `status = ?, secondary_status = ?, failure_reason = ?, result = ?,
		ended_ns = ?, modified_ns = ?, lease_owner = NULL, lease_expiry_ns = NULL`,
		f.Status, f.Secondary, f.FailureReason, nullJSON(f.Result), f.Ended.UnixNano(), f.Ended.UnixNano())
}

// ReleaseLease gives the job back to the queue without changing its state. A released claim does
// not count as an attempt: only claims that ended without a word (a crash) do.
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	return s.execLeased(ctx, "release", l,
		`lease_owner = NULL, lease_expiry_ns = NULL, attempts = max(attempts - 1, 0)`)
}

// AddTags sets tags on a resource in one transaction, refusing to go over maxTags.
func (s *Store) AddTags(ctx context.Context, arn string, tags []store.Tag, maxTags int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add tags to %s: %w", arn, err)
	}
	defer tx.Rollback()
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags (arn, key, value) VALUES (?, ?, ?)
			ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value`, arn, t.Key, t.Value); err != nil {
			return fmt.Errorf("add tag %s to %s: %w", t.Key, arn, err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tags WHERE arn = ?`, arn).Scan(&n); err != nil {
		return fmt.Errorf("count tags of %s: %w", arn, err)
	}
	if n > maxTags {
		return fmt.Errorf("add tags to %s: %d tags: %w", arn, n, store.ErrTooManyTags)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add tags to %s: commit: %w", arn, err)
	}
	return nil
}

// ListTags returns a page of a resource's tags ordered by key.
func (s *Store) ListTags(ctx context.Context, arn, afterKey string, limit int) ([]store.Tag, bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, value FROM tags WHERE arn = ? AND key > ?
		ORDER BY key LIMIT ?`, arn, afterKey, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list tags of %s: %w", arn, err)
	}
	defer rows.Close()
	var tags []store.Tag
	for rows.Next() {
		var t store.Tag
		if err := rows.Scan(&t.Key, &t.Value); err != nil {
			return nil, false, fmt.Errorf("list tags of %s: %w", arn, err)
		}
		tags = append(tags, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list tags of %s: %w", arn, err)
	}
	if len(tags) > limit {
		return tags[:limit], true, nil
	}
	return tags, false, nil
}

// DeleteTags removes the given keys from a resource in one transaction.
func (s *Store) DeleteTags(ctx context.Context, arn string, keys []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete tags of %s: %w", arn, err)
	}
	defer tx.Rollback()
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE arn = ? AND key = ?`, arn, k); err != nil {
			return fmt.Errorf("delete tag %s of %s: %w", k, arn, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete tags of %s: commit: %w", arn, err)
	}
	return nil
}

// AppliedMigrations returns the versions recorded in schema_migrations, in order.
func (s *Store) AppliedMigrations(ctx context.Context) ([]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}
