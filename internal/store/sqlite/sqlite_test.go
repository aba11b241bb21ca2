package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
	"github.com/lathe-ml/lathe/internal/store/storetest"
)

func newDB(t *testing.T) storetest.Opener {
	path := filepath.Join(t.TempDir(), "lathe.db")
	return func() (store.Store, error) { return sqlite.Open(context.Background(), path) }
}

func TestConformance(t *testing.T) { storetest.Run(t, newDB) }

func TestWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lathe.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateJob(context.Background(), storetest.NewJob("j", storetest.T0), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("the database is not in WAL mode: %v", err)
	}
}

// A data dir made before schema_migrations existed (migration 1 recorded in PRAGMA user_version)
// opens with its jobs intact and is brought up to date.
func TestUpgradeFromUserVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lathe.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	init, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{string(init), `PRAGMA user_version = 1`,
		`INSERT INTO jobs (lower_name, name, arn, request, spec, status, secondary_status, created_ns, modified_ns, lease_owner, lease_expiry_ns, attempts)
		 VALUES ('old', 'Old', 'arn:old', '{}', '{}', 'InProgress', 'TrainingModels', 1, 2, 'gone-worker', 3, 1)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.AppliedMigrations(context.Background())
	if err != nil || fmt.Sprint(v) != "[1 2 3 4 5]" {
		t.Fatalf("applied migrations %v, %v", v, err)
	}
	// The old worker's lease has run out: the job is claimed with a token above the old lease's 0.
	j, err := s.ClaimJob(context.Background(), "w", 0)
	if err != nil || j == nil || j.Name != "Old" || j.Secondary != "TrainingModels" || j.Attempts != 2 || j.LeaseToken != 1 {
		t.Fatalf("claim of the old job: %+v, %v", j, err)
	}
}

func BenchmarkDescribe(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "lathe.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchDescribe(b, s)
}
