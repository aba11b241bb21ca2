//go:build !unix

package modelstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lockFile creates path exclusively, waiting (until ctx ends) while it exists. Without flock a
// holder that crashes leaves the file behind; the error then names it so a person can delete it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	lock := path + ".held"
	for {
		f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			f.Close()
			return func() { _ = os.Remove(lock) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", lock, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s (delete it if no pull is running): %w", lock, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
