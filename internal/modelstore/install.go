package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Install adds the model that e describes (a manifest kept elsewhere, such as the fleet's copy of
// the store on S3) to this store, reading each of its files through open. Every file's size and
// sha256 are checked against e before the model appears, by the same staging and rename as Import:
// a failed or concurrent install leaves no half model. A model already in the store is ErrExists;
// a file that does not match is ErrChecksum.
func (s *Store) Install(ctx context.Context, e Entry, open func(ctx context.Context, f File) (io.ReadCloser, error)) (Entry, error) {
	if err := checkName(e.Name); err != nil {
		return Entry{}, err
	}
	if _, err := s.Get(e.Name); err == nil {
		return Entry{}, fmt.Errorf("install %s: %w", e.Name, ErrExists)
	}
	if len(e.Files) == 0 {
		return Entry{}, fmt.Errorf("install %s: the manifest lists no files", e.Name)
	}
	stage, err := s.newStagingDir(e.Name)
	if err != nil {
		return Entry{}, err
	}
	defer os.RemoveAll(stage) // gone after a successful rename; cleans up a failed install
	for _, f := range e.Files {
		if !safeRelPath(f.Path) {
			return Entry{}, fmt.Errorf("install %s: file path %q leaves the model's folder", e.Name, f.Path)
		}
		dst := filepath.Join(stage, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return Entry{}, fmt.Errorf("install %s: %w", e.Name, err)
		}
		if err := installFile(ctx, f, dst, open); err != nil {
			return Entry{}, fmt.Errorf("install %s: %w", e.Name, err)
		}
	}
	if err := s.commit(stage, e); err != nil {
		return Entry{}, fmt.Errorf("install %s: %w", e.Name, err)
	}
	return e, nil
}

func installFile(ctx context.Context, f File, dst string, open func(ctx context.Context, f File) (io.ReadCloser, error)) error {
	rc, err := open(ctx, f)
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	// One byte past the size is enough to tell a longer file.
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(ctxReader{ctx, rc}, f.Size+1))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Path, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || !strings.EqualFold(sum, f.SHA256) {
		return fmt.Errorf("%s: %w: got %d bytes with sha256 %s, the manifest says %d bytes with sha256 %s",
			f.Path, ErrChecksum, n, sum, f.Size, f.SHA256)
	}
	return nil
}

// safeRelPath reports whether p (slash-separated, from a manifest) stays inside the model's folder.
func safeRelPath(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != "." && !strings.HasPrefix(p, "../") && p != ".." &&
		!strings.Contains(p, "\\") && p != ManifestName
}
