package postgres_test

import (
	"context"
	"os"
	"strings"
	"testing"

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
