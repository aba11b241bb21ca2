// Package postgres is the metadata store for more than one process: API nodes and workers on
// several machines share one PostgreSQL database (pgx, a connection pool per process). Workers
// claim jobs with SELECT ... FOR UPDATE SKIP LOCKED, so claimers never wait on each other's rows,
// and lease times come from the database server's clock, which every process shares.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lathe-ml/lathe/internal/store"
)

// Store is a store.Store over a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
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

// defaultMaxConns is the pool size when the URL does not set pool_max_conns. pgx's own default
// (the number of CPUs, at least 4) queues the requests of a busy API node on a small machine while
// the database server has cores to spare.
const defaultMaxConns = 16

// Open connects to the database at url (postgres://user:password@host:port/db?sslmode=...; pgx's
// pool_* parameters tune the pool) and brings its schema up to date.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("parse PostgreSQL URL: not a valid postgres:// URL or connection string")
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	// Named in pg_stat_activity, so an operator can tell Lathe's sessions from others'.
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "lathe"
	}
	where := cfg.ConnConfig.Host + "/" + cfg.ConnConfig.Database
	if err := migrate(ctx, cfg.ConnConfig); err != nil {
		return nil, fmt.Errorf("migrate PostgreSQL %s: %w", where, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL %s: %w", where, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrationLock is the advisory lock key that serialises migrations: processes that start at once
// on a new database wait for the first to migrate it, then find nothing left to do.
const migrationLock int64 = 0x6c617468655f6d67 // "lathe_mg"

// migrate applies the pending migrations on a connection of its own, so the session-level advisory
// lock is released with the connection whatever happens.
func migrate(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var version int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this program (%d)", version, len(migrations))
	}
	for _, m := range migrations[version:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// Without arguments pgx sends the file as one simple query: several statements at once.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		slog.Info("metadata store migrated", "backend", "postgres", "version", m.Version, "migration", m.Name)
	}
	return nil
}

// AppliedMigrations returns the versions recorded in schema_migrations, in order.
func (s *Store) AppliedMigrations(ctx context.Context) ([]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return vs, nil
}

// nowNS is the database server's clock in Unix nanoseconds (at its microsecond resolution).
// clock_timestamp, not now(): a long transaction must not see time stand still.
const nowNS = `((extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000)`

const jobColumns = `name, arn, request, spec, status, secondary_status, created_ns, modified_ns, ended_ns,
	deadline_ns, failure_reason, result, progress, checkpoint, stop_requested, lease_owner, lease_expiry_ns,
	lease_token, attempts`

// summaryColumns are what a list needs; the documents (request, spec, result, progress) stay unread.
const summaryColumns = `lower_name, name, arn, status, secondary_status, created_ns, modified_ns, ended_ns, failure_reason`

func scanJob(r pgx.Row) (*store.Job, error) {
	var (
		j                                        store.Job
		request, spec                            string
		created, modified                        int64
		ended, deadline, leaseExp                *int64
		result, progress, checkpoint, leaseOwner *string
	)
	err := r.Scan(&j.Name, &j.ARN, &request, &spec, &j.Status, &j.Secondary, &created, &modified, &ended,
		&deadline, &j.FailureReason, &result, &progress, &checkpoint, &j.StopRequested, &leaseOwner, &leaseExp,
		&j.LeaseToken, &j.Attempts)
	if err != nil {
		return nil, err
	}
	j.Request = json.RawMessage(request)
	j.Spec = json.RawMessage(spec)
	j.Created, j.Modified = fromNS(created), fromNS(modified)
	j.Ended, j.Deadline, j.LeaseExpiry = fromNullNS(ended), fromNullNS(deadline), fromNullNS(leaseExp)
	j.Result, j.Progress, j.Checkpoint = doc(result), doc(progress), doc(checkpoint)
	if leaseOwner != nil {
		j.LeaseOwner = *leaseOwner
	}
	return &j, nil
}

func fromNS(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func fromNullNS(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return fromNS(*v)
}

func doc(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

func nullNS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ns := t.UnixNano()
	return &ns
}

func nullDoc(b json.RawMessage) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// CreateJob inserts the job and its tags in one transaction.
func (s *Store) CreateJob(ctx context.Context, j *store.Job, tags []store.Tag) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO jobs (lower_name, `+jobColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
			strings.ToLower(j.Name), j.Name, j.ARN, string(j.Request), string(j.Spec), j.Status, j.Secondary,
			j.Created.UnixNano(), j.Modified.UnixNano(), nullNS(j.Ended), nullNS(j.Deadline), j.FailureReason,
			nullDoc(j.Result), nullDoc(j.Progress), nullDoc(j.Checkpoint), j.StopRequested,
			nullString(j.LeaseOwner), nullNS(j.LeaseExpiry), j.LeaseToken, j.Attempts); err != nil {
			return err
		}
		return putTags(ctx, tx, j.ARN, tags)
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("create job %s: %w", j.Name, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.Name, err)
	}
	return nil
}

// putTags upserts tags in one round trip.
func putTags(ctx context.Context, tx pgx.Tx, arn string, tags []store.Tag) error {
	if len(tags) == 0 {
		return nil
	}
	keys, values := make([]string, len(tags)), make([]string, len(tags))
	for i, t := range tags {
		keys[i], values[i] = t.Key, t.Value
	}
	// A request naming a key twice keeps the last value, as applying the tags one by one would.
	_, err := tx.Exec(ctx, `INSERT INTO tags (arn, key, value)
		SELECT DISTINCT ON (k) $1::text, k, v FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(k, v, i)
		ORDER BY k, i DESC
		ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value`, arn, keys, values)
	if err != nil {
		return fmt.Errorf("tags of %s: %w", arn, err)
	}
	return nil
}

// GetJob finds a job by name, case-insensitively.
func (s *Store) GetJob(ctx context.Context, name string) (*store.Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE lower_name = $1`, strings.ToLower(name)))
	if errors.Is(err, pgx.ErrNoRows) {
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
	keyCol, err := store.SortColumn(q)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	if keyCol == "created" {
		keyCol = "created_ns"
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.NameContains != "" {
		where = append(where, `strpos(lower_name, `+arg(strings.ToLower(q.NameContains))+`) > 0`)
	}
	if q.Status != "" {
		where = append(where, `status = `+arg(q.Status))
	}
	for _, f := range []struct {
		t   time.Time
		col string
		op  string
	}{{q.CreatedAfter, "created_ns", ">"}, {q.CreatedBefore, "created_ns", "<"},
		{q.ModifiedAfter, "modified_ns", ">"}, {q.ModifiedBefore, "modified_ns", "<"}} {
		if !f.t.IsZero() {
			where = append(where, f.col+` `+f.op+` `+arg(f.t.UnixNano()))
		}
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
			where = append(where, `lower_name `+cmp+` `+arg(c.Name))
		case "created_ns":
			var ns int64
			if _, err := fmt.Sscan(c.Key, &ns); err != nil {
				return nil, store.ErrBadCursor
			}
			where = append(where, `(created_ns, lower_name) `+cmp+` (`+arg(ns)+`, `+arg(c.Name)+`)`)
		case "status":
			where = append(where, `(status, lower_name) `+cmp+` (`+arg(c.Key)+`, `+arg(c.Name)+`)`)
		}
	}
	query := `SELECT ` + summaryColumns + ` FROM jobs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if keyCol != "" {
		query += ` ORDER BY ` + keyCol + ` ` + dir + `, lower_name ` + dir
	} else {
		query += ` ORDER BY lower_name ` + dir
	}
	query += ` LIMIT ` + arg(q.Limit+1)

	rows, err := s.pool.Query(ctx, query, args...)
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
			ended             *int64
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

// RequestStop moves an InProgress job to Stopping and flags the stop for its worker, in one
// statement: the row is updated if it is InProgress and returned in any case.
func (s *Store) RequestStop(ctx context.Context, name string, now time.Time) (*store.Job, error) {
	lower := strings.ToLower(name)
	j, err := scanJob(s.pool.QueryRow(ctx, `WITH stopped AS (
			UPDATE jobs SET status = 'Stopping', secondary_status = 'Stopping', stop_requested = true, modified_ns = $2
			WHERE lower_name = $1 AND status = 'InProgress'
			RETURNING `+jobColumns+`)
		SELECT `+jobColumns+` FROM stopped
		UNION ALL
		SELECT `+jobColumns+` FROM jobs WHERE lower_name = $1 AND NOT EXISTS (SELECT 1 FROM stopped)`,
		lower, now.UnixNano()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("stop job %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("stop job %s: %w", name, err)
	}
	return j, nil
}

// ClaimJob leases the oldest runnable job to owner. FOR UPDATE SKIP LOCKED makes concurrent
// claimers pass over a row another one is claiming instead of queueing behind it; a row that
// another claimer leased since this statement's snapshot is re-checked against the WHERE clause
// after its lock is taken, and dropped because its lease is now live.
func (s *Store) ClaimJob(ctx context.Context, owner string, d time.Duration) (*store.Job, error) {
	if d < 0 {
		return nil, fmt.Errorf("claim job for %s: negative lease duration %v", owner, d)
	}
	j, err := scanJob(s.pool.QueryRow(ctx, `WITH clock AS (SELECT `+nowNS+` AS now),
		next AS (
			SELECT jobs.id FROM jobs, clock
			WHERE status IN ('InProgress', 'Stopping') AND (lease_owner IS NULL OR lease_expiry_ns <= clock.now)
			ORDER BY created_ns, jobs.id LIMIT 1
			FOR UPDATE OF jobs SKIP LOCKED)
		UPDATE jobs SET lease_owner = $1, lease_expiry_ns = clock.now + $2, lease_token = lease_token + 1,
			attempts = attempts + 1
		FROM next, clock WHERE jobs.id = next.id
		RETURNING `+jobColumns, owner, d.Nanoseconds()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim job for %s: %w", owner, err)
	}
	return j, nil
}

// ClaimNamedJob leases the job called name as ClaimJob would, when it is runnable now (InProgress or
// Stopping, with no live lease); nil, nil when it is not. A pod of the Kubernetes executor runs one job
// by name (lathe worker --job), and the executor closes a job whose pods are gone by name.
func (s *Store) ClaimNamedJob(ctx context.Context, name, owner string, d time.Duration) (*store.Job, error) {
	if d < 0 {
		return nil, fmt.Errorf("claim job %s for %s: negative lease duration %v", name, owner, d)
	}
	j, err := scanJob(s.pool.QueryRow(ctx, `WITH clock AS (SELECT `+nowNS+` AS now),
		next AS (
			SELECT jobs.id FROM jobs, clock
			WHERE lower_name = $3 AND status IN ('InProgress', 'Stopping') AND (lease_owner IS NULL OR lease_expiry_ns <= clock.now)
			FOR UPDATE OF jobs SKIP LOCKED)
		UPDATE jobs SET lease_owner = $1, lease_expiry_ns = clock.now + $2, lease_token = lease_token + 1,
			attempts = attempts + 1
		FROM next, clock WHERE jobs.id = next.id
		RETURNING `+jobColumns, owner, d.Nanoseconds(), strings.ToLower(name)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim job %s for %s: %w", name, owner, err)
	}
	return j, nil
}

// leased is the condition of every write made under a lease, its three arguments numbered from n:
// the token is still the job's and the lease has not been released or ended with the job.
func leased(n int) string {
	return fmt.Sprintf(`lower_name = $%d AND lease_token = $%d AND lease_owner = $%d`, n, n+1, n+2)
}

func leaseArgs(l store.Lease) []any { return []any{strings.ToLower(l.Job), l.Token, l.Owner} }

// RenewLease extends the lease and reports whether a stop was requested.
func (s *Store) RenewLease(ctx context.Context, l store.Lease, d time.Duration) (bool, error) {
	var stop bool
	err := s.pool.QueryRow(ctx, `UPDATE jobs SET lease_expiry_ns = `+nowNS+` + $1 WHERE `+leased(2)+` RETURNING stop_requested`,
		append([]any{d.Nanoseconds()}, leaseArgs(l)...)...).Scan(&stop)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("renew lease %d on job %s: %w", l.Token, l.Job, store.ErrFenced)
	}
	if err != nil {
		return false, fmt.Errorf("renew lease %d on job %s: %w", l.Token, l.Job, err)
	}
	return stop, nil
}

// execLeased runs a single-row update guarded by the lease and maps "no row" to ErrFenced. set
// uses the arguments $1 to $len(args).
func (s *Store) execLeased(ctx context.Context, what string, l store.Lease, set string, args ...any) error {
	tag, err := s.pool.Exec(ctx, `UPDATE jobs SET `+set+` WHERE `+leased(len(args)+1), append(args, leaseArgs(l)...)...)
	if err != nil {
		return fmt.Errorf("%s job %s: %w", what, l.Job, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s job %s under lease %d: %w", what, l.Job, l.Token, store.ErrFenced)
	}
	return nil
}

// SetSecondaryStatus records the phase of a running job. A job that is Stopping keeps its Stopping
// secondary status: the stop request wins over a phase change that races with it.
func (s *Store) SetSecondaryStatus(ctx context.Context, l store.Lease, secondary string, now time.Time) error {
	return s.execLeased(ctx, "set phase of", l,
		`secondary_status = CASE WHEN status = 'InProgress' THEN $1 ELSE secondary_status END, modified_ns = $2`,
		secondary, now.UnixNano())
}

// SetProgress records the latest progress of a running job. It does not touch LastModifiedTime:
// progress is not a change of the job's state.
func (s *Store) SetProgress(ctx context.Context, l store.Lease, progress json.RawMessage, _ time.Time) error {
	return s.execLeased(ctx, "set progress of", l, `progress = $1`, nullDoc(progress))
}

// SetCheckpoint records the latest checkpoint of a running job.
func (s *Store) SetCheckpoint(ctx context.Context, l store.Lease, checkpoint json.RawMessage) error {
	return s.execLeased(ctx, "set checkpoint of", l, `checkpoint = $1`, nullDoc(checkpoint))
}

// FinishJob writes the final state of a job and drops its lease.
func (s *Store) FinishJob(ctx context.Context, l store.Lease, f store.FinalState) error {
	return s.execLeased(ctx, "finish", l, `status = $1, secondary_status = $2, failure_reason = $3, result = $4,
		ended_ns = $5, modified_ns = $5, lease_owner = NULL, lease_expiry_ns = NULL`,
		f.Status, f.Secondary, f.FailureReason, nullDoc(f.Result), f.Ended.UnixNano())
}

// ReleaseLease gives the job back to the queue without changing its state. A released claim does
// not count as an attempt: only claims that ended without a word (a crash) do.
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	return s.execLeased(ctx, "release", l,
		`lease_owner = NULL, lease_expiry_ns = NULL, attempts = greatest(attempts - 1, 0)`)
}

// tagLockClass is the first key of the transaction-level advisory locks that serialise AddTags
// per resource (the second is a hash of the ARN): two transactions that each count the tags of a
// resource without seeing the other's inserts could together pass the limit.
const tagLockClass int32 = 0x74616773 // "tags"

// AddTags sets tags on a resource in one transaction, refusing to go over maxTags.
func (s *Store) AddTags(ctx context.Context, arn string, tags []store.Tag, maxTags int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, tagLockClass, arn); err != nil {
			return err
		}
		if err := putTags(ctx, tx, arn, tags); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tags WHERE arn = $1`, arn).Scan(&n); err != nil {
			return fmt.Errorf("count tags: %w", err)
		}
		if n > maxTags {
			return fmt.Errorf("%d tags: %w", n, store.ErrTooManyTags)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add tags to %s: %w", arn, err)
	}
	return nil
}

// ListTags returns a page of a resource's tags ordered by key.
func (s *Store) ListTags(ctx context.Context, arn, afterKey string, limit int) ([]store.Tag, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM tags WHERE arn = $1 AND key > $2 ORDER BY key LIMIT $3`,
		arn, afterKey, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list tags of %s: %w", arn, err)
	}
	tags, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Tag, error) {
		var t store.Tag
		err := r.Scan(&t.Key, &t.Value)
		return t, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list tags of %s: %w", arn, err)
	}
	if len(tags) > limit {
		return tags[:limit], true, nil
	}
	return tags, false, nil
}

// DeleteTags removes the given keys from a resource.
func (s *Store) DeleteTags(ctx context.Context, arn string, keys []string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM tags WHERE arn = $1 AND key = ANY($2)`, arn, keys); err != nil {
		return fmt.Errorf("delete tags of %s: %w", arn, err)
	}
	return nil
}
