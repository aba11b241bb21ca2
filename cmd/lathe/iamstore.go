package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"

	"github.com/lathe-ml/lathe/internal/iam"
	iampostgres "github.com/lathe-ml/lathe/internal/iam/postgres"
	iamsqlite "github.com/lathe-ml/lathe/internal/iam/sqlite"
)

// openIAMStore opens where IAM keeps its users, keys, roles, policies and sessions: the PostgreSQL
// database of --database when it names one (so every node of a fleet shares them), else the SQLite
// file <data dir>/iam.db.
func openIAMStore(ctx context.Context, database, dataDir string) (interface {
	iam.Store
	io.Closer
}, error) {
	if strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://") {
		return iampostgres.Open(ctx, database)
	}
	return iamsqlite.Open(ctx, filepath.Join(dataDir, "iam.db"))
}
