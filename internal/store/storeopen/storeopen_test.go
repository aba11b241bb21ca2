package storeopen_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/store/pgtest"
	"github.com/lathe-ml/lathe/internal/store/postgres"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
	"github.com/lathe-ml/lathe/internal/store/storeopen"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := storeopen.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, ok := s.(*sqlite.Store); !ok {
		t.Fatalf("default store is %T", s)
	}
	if _, err := os.Stat(filepath.Join(dir, "lathe.db")); err != nil {
		t.Fatalf("default store not in the data dir: %v", err)
	}
	other := filepath.Join(dir, "other.db")
	if s, err = storeopen.Open(ctx, "sqlite:"+other, dir); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(other); err != nil {
		t.Fatal(err)
	}
	if _, err := storeopen.Open(ctx, "mysql://u:p@h/db", dir); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("unsupported scheme: %v", err)
	}

	url := pgtest.Start(t).NewDatabase(t)
	if s, err = storeopen.Open(ctx, url, dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*postgres.Store); !ok {
		t.Fatalf("postgres URL opened %T", s)
	}
}

func TestDescribeHidesPassword(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://lathe:s3cr@t@db:5432/lathe": "postgres://lathe:***@db:5432/lathe",
		"postgres://lathe@db/lathe":             "postgres://lathe@db/lathe",
		"sqlite:/var/lib/lathe.db":              "sqlite:/var/lib/lathe.db",
		"":                                      "sqlite:" + filepath.Join("/d", "lathe.db"),
	} {
		if got := storeopen.Describe(in, "/d"); got != want {
			t.Errorf("Describe(%q) = %q, want %q", in, got, want)
		}
	}
}
