// Package pgtest runs a throwaway PostgreSQL server for tests: initdb into a temporary directory,
// the server listening on a Unix socket in that directory only (no port to collide with another
// test or a system server), and a fresh database per test. It uses the server binaries of the
// machine (Debian's postgresql-15 package, or LATHE_PG_BINDIR).
//
// A package's tests share one cluster:
//
//	func TestMain(m *testing.M) { code := m.Run(); pgtest.StopShared(); os.Exit(code) }
//	func TestX(t *testing.T) { url := pgtest.Shared(t).NewDatabase(t) ... }
//
// Without binaries the tests are skipped, except under CI=true where they fail: a CI machine
// without PostgreSQL must not pass as if the PostgreSQL store were tested.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the role initdb creates; tests connect as it.
const Superuser = "lathe"

// Cluster is one running PostgreSQL server of its own.
type Cluster struct {
	Dir    string // the temporary directory: data/ and the socket
	Socket string // the directory of the Unix socket (the host in URLs)
	URL    string // connection URL of the "postgres" database as the superuser

	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
	nextDB atomic.Int64
}

// ErrNoBinaries says the server binaries were not found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found: install Debian's postgresql-15 package " +
	"(apt-get install -y postgresql-15) or set LATHE_PG_BINDIR to their directory")

// BinDir finds the directory of initdb and postgres: LATHE_PG_BINDIR, then pg_config --bindir,
// then the newest /usr/lib/postgresql/*/bin (Debian installs them off PATH).
func BinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("LATHE_PG_BINDIR"); d != "" {
		if has(d) {
			return d, nil
		}
		return "", fmt.Errorf("LATHE_PG_BINDIR=%s: %w", d, ErrNoBinaries)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range append(dirs, "/usr/local/pgsql/bin") {
		if has(d) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// serverUser is who runs the server: PostgreSQL refuses to run as root, so under root (CI, the
// containers) it runs as the postgres account the Debian package creates, or nobody.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and there is no postgres or nobody account to run PostgreSQL as")
}

// StartCluster initialises and starts a new cluster. Settings trade durability for speed (no
// fsync): a test database never outlives the machine's uptime.
func StartCluster(ctx context.Context) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	// The socket lives in the directory, and a Unix socket's path is limited to 107 bytes: a long
	// TMPDIR falls back to /tmp.
	parent := os.TempDir()
	if len(parent) > 60 {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "lathe-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{Dir: dir, Socket: dir, exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser, "-A", "trust",
		"-E", "UTF8", "--no-sync", "--no-instructions",
		// A locale-aware default collation (ICU, English), as production databases have: the store
		// must not depend on the database sorting names by code point.
		"--locale-provider=icu", "--icu-locale=en-US")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	c.logf, err = os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300")
	c.cmd.Stdout, c.cmd.Stderr = c.logf, c.logf
	// The server dies with the test binary, even one killed by a timeout: SIGQUIT is PostgreSQL's
	// immediate shutdown, which also ends its backends.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	c.URL = c.urlFor("postgres")
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.URL)
		if err == nil {
			conn.Close(ctx)
			break
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("pgtest: postgres exited at start:\n%s", c.logTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pgtest: postgres not accepting connections after 60 s: %v\n%s", err, c.logTail())
		}
	}
	ok = true
	return c, nil
}

func (c *Cluster) urlFor(db string) string {
	q := url.Values{"host": {c.Socket}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User(Superuser), Path: "/" + db, RawQuery: q.Encode()}).String()
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// CreateDatabase creates a database and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.urlFor(name), nil
}

// NewDatabase creates a database with a name of its own for the test and returns its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	u, err := c.CreateDatabase(context.Background(), fmt.Sprintf("test_%d", c.nextDB.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Stop shuts the server down (fast shutdown: sessions are ended) and removes its directory.
func (c *Cluster) Stop() error {
	var err error
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exited:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
			err = errors.New("pgtest: postgres did not stop within 30 s; killed")
		}
	}
	if c.logf != nil {
		c.logf.Close()
	}
	if rerr := os.RemoveAll(c.Dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// Start starts a cluster for one test and stops it when the test ends. See Shared for the rules on
// missing binaries.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := StartCluster(context.Background())
	if err != nil {
		failOrSkip(t, err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the cluster of the test binary, starting it on first use. Stop it with
// StopShared from TestMain (were the binary to die first, the server dies with it). Without server
// binaries it skips the test, or fails it when CI=true.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.err = StartCluster(context.Background()) })
	if shared.err != nil {
		failOrSkip(t, shared.err)
	}
	return shared.c
}

// StopShared stops the cluster Shared started, if any.
func StopShared() {
	if shared.c != nil {
		shared.c.Stop()
	}
}

func failOrSkip(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	t.Fatal(err)
}
