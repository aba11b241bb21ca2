// Package storeopen opens the metadata store a --database flag names: the embedded SQLite file
// (the default) or a PostgreSQL database shared by several processes.
package storeopen

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/postgres"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
)

// Usage describes the values Open accepts, for flag help.
const Usage = `metadata database: postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=... (PostgreSQL, shared by ` +
	`API nodes and workers) or sqlite:PATH; empty for the SQLite file <data dir>/lathe.db`

// Open opens the store that database names; an empty database (or "sqlite:" alone) is the SQLite
// file lathe.db in dataDir.
func Open(ctx context.Context, database, dataDir string) (store.Store, error) {
	switch {
	case database == "" || database == "sqlite:":
		path := filepath.Join(dataDir, "lathe.db")
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.HasPrefix(database, "sqlite:"):
		s, err := sqlite.Open(ctx, strings.TrimPrefix(database, "sqlite:"))
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		s, err := postgres.Open(ctx, database)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	scheme, _, _ := strings.Cut(database, ":")
	return nil, fmt.Errorf("--database: %q is not a database URL: want postgres://... or sqlite:PATH", scheme)
}

// Describe names the database for logs without its password.
func Describe(database, dataDir string) string {
	switch {
	case database == "" || database == "sqlite:":
		return "sqlite:" + filepath.Join(dataDir, "lathe.db")
	case strings.HasPrefix(database, "sqlite:"):
		return database
	}
	if i := strings.Index(database, "://"); i >= 0 {
		rest := database[i+3:]
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			userinfo := rest[:at]
			user, _, hasPassword := strings.Cut(userinfo, ":")
			if hasPassword {
				return database[:i+3] + user + ":***" + rest[at:]
			}
		}
	}
	return database
}
