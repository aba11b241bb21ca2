package postgres_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/pgtest"
	"github.com/lathe-ml/lathe/internal/store/postgres"
	"github.com/lathe-ml/lathe/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func newDB(t *testing.T) storetest.Opener {
	url := pgtest.Shared(t).NewDatabase(t)
	return func() (store.Store, error) { return postgres.Open(context.Background(), url) }
}

func TestConformance(t *testing.T) { storetest.Run(t, newDB) }

// A database whose schema is newer than the program (a newer Lathe migrated it) is refused rather
// than used with the wrong schema.
func TestNewerSchemaIsRefused(t *testing.T) {
	open := newDB(t)
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.(*postgres.Store).AppliedMigrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.ExecForTest(s.(*postgres.Store), `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')`, len(v)+1); err != nil {
		t.Fatal(err)
	}
	if _, err := open(); err == nil || !strings.Contains(err.Error(), "newer than this program") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

// A claimer passes over a job whose row another transaction holds locked (a claimer in the middle
// of its claim) and takes the next one at once, rather than queueing behind the lock.
func TestClaimSkipsLockedRows(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, name := range []string{"older", "newer"} {
		if err := s.CreateJob(ctx, storetest.NewJob(name, storetest.T0.Add(time.Duration(i)*time.Second)), nil); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM jobs WHERE lower_name = 'older' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	// Were the claim to wait for the lock, it would wait until this context ends.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	j, err := s.ClaimJob(cctx, "w", time.Hour)
	if err != nil || j == nil || j.Name != "newer" {
		t.Fatalf("claim while the oldest job's row is locked: %+v, %v; want the next job", j, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if j, err := s.ClaimJob(ctx, "w", time.Hour); err != nil || j == nil || j.Name != "older" {
		t.Fatalf("claim once the lock is gone: %+v, %v", j, err)
	}
}

func TestBadURL(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:secret@host:notaport/db")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad URL: %v (must fail without echoing the password)", err)
	}
}

func BenchmarkDescribe(b *testing.B) {
	url := pgtest.Shared(b).NewDatabase(b)
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchDescribe(b, s)
}
