package pgtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/lathe-ml/lathe/internal/store/pgtest"
)

// recorder is a testing.TB that records how a helper ended the test instead of ending it.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	how     string // "fatal", "skip" or ""
	message string
}

func (r *recorder) Helper() {}
func (r *recorder) end(how, message string) {
	r.mu.Lock()
	r.how, r.message = how, message
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any)                 { r.end("fatal", fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.end("fatal", fmt.Sprintf(format, args...)) }
func (r *recorder) Skip(args ...any)                  { r.end("skip", fmt.Sprint(args...)) }
func (r *recorder) Cleanup(func())                    {}

func startWith(t *testing.T) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pgtest.Start(r)
	}()
	<-done
	return r
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv("LATHE_PG_BINDIR", t.TempDir()) // a directory without initdb and postgres
	for _, tc := range []struct{ ci, want string }{{"true", "fatal"}, {"", "skip"}} {
		t.Setenv("CI", tc.ci)
		r := startWith(t)
		if r.how != tc.want || !strings.Contains(r.message, "apt-get install -y postgresql-15") {
			t.Errorf("CI=%q: the test would %s with %q; want %s naming the package", tc.ci, r.how, r.message, tc.want)
		}
	}
}

func TestClusterLifecycle(t *testing.T) {
	ctx := context.Background()
	c, err := pgtest.StartCluster(ctx)
	if err != nil {
		if os.Getenv("CI") != "true" && errors.Is(err, pgtest.ErrNoBinaries) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	urls := []string{c.NewDatabase(t), c.NewDatabase(t)}
	if urls[0] == urls[1] {
		t.Fatalf("two databases with one URL %s", urls[0])
	}
	for _, u := range urls {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var coll string
		if err := conn.QueryRow(ctx, `SELECT datlocprovider::text || ':' || coalesce(daticulocale, '') FROM pg_database WHERE datname = current_database()`).Scan(&coll); err != nil {
			t.Fatal(err)
		}
		if coll != "i:en-US" {
			t.Errorf("database collation %s, want ICU en-US (a locale-aware default, as production databases have)", coll)
		}
		conn.Close(ctx)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Fatalf("cluster directory left behind: %v", err)
	}
	if conn, err := pgx.Connect(ctx, urls[0]); err == nil {
		conn.Close(ctx)
		t.Fatal("the server still answers after Stop")
	}
}
