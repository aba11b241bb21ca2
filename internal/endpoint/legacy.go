package endpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/lathe-ml/lathe/internal/store"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// LegacyFile is where Lathe kept models, endpoint configs and endpoints before they moved into the
// metadata store: <data dir>/endpoints.db, one per API node.
const LegacyFile = "endpoints.db"

func fromUnix(f float64) time.Time { return time.UnixMilli(int64(f * 1000)).UTC() }

// importLegacy copies the rows of <dataDir>/endpoints.db into st (rows already there are left as
// they are, so an import cut short is finished by the next start) and then renames the file
// endpoints.db.imported, so that it is read once and stays for an operator to look at.
func importLegacy(ctx context.Context, dataDir string, st store.Hosting, log *slog.Logger) error {
	path := filepath.Join(dataDir, LegacyFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	n, err := copyLegacy(ctx, path, st)
	if err != nil {
		return fmt.Errorf("import %s into the metadata store: %w", path, err)
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	for _, ext := range []string{"-wal", "-shm"} {
		_ = os.Remove(path + ext) // empty after the checkpoint of Close
	}
	log.Info("endpoints imported into the metadata store", "from", path, "rows", n, "renamed_to", path+".imported")
	return nil
}

func copyLegacy(ctx context.Context, path string, st store.Hosting) (int, error) {
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for _, t := range []struct{ table, kind string }{{"models", store.KindModel}, {"endpoint_configs", store.KindEndpointConfig}} {
		rows, err := d.QueryContext(ctx, `SELECT key, name, arn, created, spec FROM `+t.table)
		if err != nil {
			return n, fmt.Errorf("read %s: %w", t.table, err)
		}
		for rows.Next() {
			var key, name, arn, spec string
			var created float64
			if err := rows.Scan(&key, &name, &arn, &created, &spec); err != nil {
				rows.Close()
				return n, fmt.Errorf("read %s: %w", t.table, err)
			}
			err := st.PutHostingResource(ctx, t.kind, key, store.HostingResource{Name: name, ARN: arn, Created: fromUnix(created), Spec: []byte(spec)})
			if err != nil && !errors.Is(err, store.ErrExists) {
				rows.Close()
				return n, err
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, fmt.Errorf("read %s: %w", t.table, err)
		}
	}
	rows, err := d.QueryContext(ctx, `SELECT key, name, arn, config_name, status, failure, created, modified, deployment FROM endpoints`)
	if err != nil {
		return n, fmt.Errorf("read endpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var e store.Endpoint
		var created, modified float64
		var dep string
		if err := rows.Scan(&key, &e.Name, &e.ARN, &e.ConfigName, &e.Status, &e.Failure, &created, &modified, &dep); err != nil {
			return n, fmt.Errorf("read endpoints: %w", err)
		}
		e.Created, e.Modified, e.Deployment = fromUnix(created), fromUnix(modified), []byte(dep)
		if err := st.CreateEndpoint(ctx, key, e); err != nil && !errors.Is(err, store.ErrExists) {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}
