package s3api

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// store is the directory tree behind the API (layout.go).
//
// One RWMutex orders the short namespace changes (renaming a finished object into place,
// deleting, creating and removing buckets) against the readers that open an object and its
// sidecar or walk a bucket: a reader never sees new data with an old sidecar. Writing a body
// to its temporary file, the slow part, happens outside the lock.
type store struct {
	root string
	mu   sync.RWMutex
}

func openStore(root string) (*store, error) {
	for _, d := range []string{root, filepath.Join(root, ".meta"), filepath.Join(root, ".buckets"),
		filepath.Join(root, ".uploads"), filepath.Join(root, ".tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("s3api: create %s: %w", d, err)
		}
	}
	// Temporary files left by a crash belong to writes that never completed.
	entries, err := os.ReadDir(filepath.Join(root, ".tmp"))
	if err != nil {
		return nil, fmt.Errorf("s3api: read temp dir: %w", err)
	}
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(root, ".tmp", e.Name()))
	}
	return &store{root: root}, nil
}

func (s *store) bucketDir(bucket string) string    { return filepath.Join(s.root, bucket) }
func (s *store) metaDir(bucket string) string      { return filepath.Join(s.root, ".meta", bucket) }
func (s *store) bucketRecord(bucket string) string { return filepath.Join(s.root, ".buckets", bucket) }
func (s *store) uploadsDir() string                { return filepath.Join(s.root, ".uploads") }

// tempFile creates a file that will be renamed into place once complete.
func (s *store) tempFile() (*os.File, error) {
	return os.CreateTemp(filepath.Join(s.root, ".tmp"), "w-*")
}

// objectMeta is an object's sidecar.
type objectMeta struct {
	ETag         string            `json:"etag"` // without quotes: md5 hex, or md5-of-md5s "-N"
	Size         int64             `json:"size"`
	Modified     time.Time         `json:"modified"`
	ContentType  string            `json:"contentType,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`   // Cache-Control, Content-Disposition, ...
	UserMeta     map[string]string `json:"userMeta,omitempty"`  // x-amz-meta-* without the prefix, lower case
	Checksums    map[string]string `json:"checksums,omitempty"` // algorithm (CRC32, SHA256, ...) -> base64
	ChecksumType string            `json:"checksumType,omitempty"`
	PartSizes    []int64           `json:"partSizes,omitempty"` // of a multipart object, for GET ?partNumber
	SSE          *sseInfo          `json:"sse,omitempty"`       // SSE-KMS: the data file is encrypted (sse.go)
	// The data file this sidecar describes. A crash between renaming the data and renaming its
	// sidecar leaves a sidecar that does not match; it is then ignored (see readObjectMeta).
	DataIno   uint64 `json:"dataIno"`
	DataMtime int64  `json:"dataMtime"`
}

func (m *objectMeta) matches(fi os.FileInfo) bool {
	size := m.Size
	if m.SSE != nil {
		size = m.SSE.DiskSize
	}
	return size == fi.Size() && m.DataMtime == fi.ModTime().UnixNano() && m.DataIno == inode(fi)
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// bucket operations

func (s *store) bucketExists(bucket string) (bool, error) {
	fi, err := os.Stat(s.bucketDir(bucket))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

func (s *store) requireBucket(bucket string) error {
	ok, err := s.bucketExists(bucket)
	if err != nil {
		return err
	}
	if !ok {
		return errNoSuchBucket
	}
	return nil
}

type bucketInfo struct {
	Name    string
	Created time.Time
}

func (s *store) createBucket(bucket string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := s.bucketExists(bucket); err != nil {
		return err
	} else if ok {
		return errBucketOwned
	}
	rec, err := json.Marshal(struct {
		Created time.Time `json:"created"`
	}{time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := s.writeFileAtomic(s.bucketRecord(bucket), rec); err != nil {
		return err
	}
	if err := os.Mkdir(s.bucketDir(bucket), 0o755); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return fsyncDir(s.root)
}

func (s *store) listBuckets() ([]bucketInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	var out []bucketInfo
	for _, e := range entries {
		if !e.IsDir() || !validBucketName(e.Name()) {
			continue
		}
		info := bucketInfo{Name: e.Name()}
		var rec struct {
			Created time.Time `json:"created"`
		}
		if data, err := os.ReadFile(s.bucketRecord(e.Name())); err == nil && json.Unmarshal(data, &rec) == nil {
			info.Created = rec.Created
		} else if fi, err := e.Info(); err == nil {
			info.Created = fi.ModTime().UTC() // a directory made by hand
		}
		out = append(out, info)
	}
	return out, nil
}

func (s *store) deleteBucket(bucket string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.requireBucket(bucket); err != nil {
		return err
	}
	empty, err := treeHasNoFiles(s.bucketDir(bucket))
	if err != nil {
		return err
	}
	if !empty {
		return errBucketNotEmpty
	}
	if err := os.RemoveAll(s.bucketDir(bucket)); err != nil {
		return err
	}
	_ = os.RemoveAll(s.metaDir(bucket))
	_ = os.Remove(s.bucketRecord(bucket))
	_ = os.Remove(s.encryptionPath(bucket))
	s.removeUploadsOf(bucket)
	return fsyncDir(s.root)
}

// treeHasNoFiles reports whether dir holds only (possibly nested) empty directories.
func treeHasNoFiles(dir string) (bool, error) {
	empty := true
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			empty = false
			return fs.SkipAll
		}
		return nil
	})
	return empty, err
}

// object operations

// objectPaths returns the data and sidecar paths of a key.
func (s *store) objectPaths(bucket, key string) (data, meta string, err error) {
	rel, err := keyRelPath(key)
	if err != nil {
		return "", "", err
	}
	return filepath.Join(s.bucketDir(bucket), rel), filepath.Join(s.metaDir(bucket), rel), nil
}

// commitObject renames the finished, fsynced temporary file tmp into place as bucket/key and
// writes its sidecar. meta's size and data identity are filled in from tmp. cond, when not
// nil, sees the current object (nil when there is none) under the lock and may refuse.
func (s *store) commitObject(bucket, key, tmp string, meta *objectMeta, cond func(*objectMeta) error) error {
	dataPath, metaPath, err := s.objectPaths(bucket, key)
	if err != nil {
		return err
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return err
	}
	meta.DataMtime, meta.DataIno = fi.ModTime().UnixNano(), inode(fi)
	if meta.SSE != nil {
		// The caller set the object's size; the file also holds the salt and the GCM tags.
		if fi.Size() != encryptedSize(meta.Size) {
			return fmt.Errorf("s3api: encrypted file of %d bytes for an object of %d", fi.Size(), meta.Size)
		}
		meta.SSE.DiskSize = fi.Size()
	} else {
		meta.Size = fi.Size()
	}
	sidecar, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.requireBucket(bucket); err != nil {
		return err
	}
	if cond != nil {
		current, err := readObjectLocked(dataPath, metaPath)
		if err != nil {
			return err
		}
		if err := cond(current); err != nil {
			return err
		}
	}
	for _, d := range []string{filepath.Dir(dataPath), filepath.Dir(metaPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := os.Rename(tmp, dataPath); err != nil {
		return fmt.Errorf("rename into %s: %w", dataPath, err)
	}
	if err := fsyncDir(filepath.Dir(dataPath)); err != nil {
		return err
	}
	return s.writeFileAtomic(metaPath, sidecar)
}

// writeFileAtomic writes data to path through a fsynced temporary file and a rename.
func (s *store) writeFileAtomic(path string, data []byte) error {
	f, err := s.tempFile()
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return fsyncDir(filepath.Dir(path))
}

// openObject opens an object for reading, with its metadata. The caller closes the file.
func (s *store) openObject(bucket, key string) (*os.File, *objectMeta, error) {
	dataPath, metaPath, err := s.objectPaths(bucket, key)
	if err != nil {
		if err == errKeyTooLong {
			return nil, nil, errNoSuchKey // such a key can never have been stored
		}
		return nil, nil, err
	}
	s.mu.RLock()
	f, err := os.Open(dataPath)
	if err != nil {
		s.mu.RUnlock()
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			if err := s.requireBucket(bucket); err != nil {
				return nil, nil, err
			}
			return nil, nil, errNoSuchKey
		}
		return nil, nil, err
	}
	sidecar, metaErr := os.ReadFile(metaPath)
	s.mu.RUnlock()
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, errNoSuchKey
	}
	var meta objectMeta
	if metaErr == nil && json.Unmarshal(sidecar, &meta) == nil && meta.matches(fi) {
		return f, &meta, nil
	}
	// No sidecar that describes this data (a crash between the two renames, or a file put into
	// the bucket directory by hand): describe the data as it is.
	m, err := describeFile(f, fi)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, m, nil
}

func describeFile(f *os.File, fi os.FileInfo) (*objectMeta, error) {
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return nil, err
	}
	return &objectMeta{
		ETag:        hex.EncodeToString(h.Sum(nil)),
		Size:        fi.Size(),
		Modified:    fi.ModTime().UTC(),
		ContentType: "binary/octet-stream",
		DataIno:     inode(fi),
		DataMtime:   fi.ModTime().UnixNano(),
	}, nil
}

// readObjectLocked returns the metadata of the object at dataPath, or nil when there is none.
// The caller holds s.mu.
func readObjectLocked(dataPath, metaPath string) (*objectMeta, error) {
	f, err := os.Open(dataPath)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var meta objectMeta
	if data, err := os.ReadFile(metaPath); err == nil && json.Unmarshal(data, &meta) == nil && meta.matches(fi) {
		return &meta, nil
	}
	return describeFile(f, fi)
}

// statObject returns an object's metadata.
func (s *store) statObject(bucket, key string) (*objectMeta, error) {
	f, m, err := s.openObject(bucket, key)
	if err != nil {
		return nil, err
	}
	f.Close()
	return m, nil
}

// deleteObject removes bucket/key; a missing key is not an error, as in S3.
func (s *store) deleteObject(bucket, key string) error {
	dataPath, metaPath, err := s.objectPaths(bucket, key)
	if err == errKeyTooLong {
		return s.requireBucket(bucket)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.requireBucket(bucket); err != nil {
		return err
	}
	removed := true
	if err := os.Remove(dataPath); err != nil {
		// A missing key, or one whose "directory" is missing or is an object: nothing to do,
		// and S3 answers 204 all the same.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("delete %s: %w", dataPath, err)
		}
		removed = false
	}
	// A sidecar without its data (a crash between the renames) goes too.
	if err := os.Remove(metaPath); err == nil {
		pruneEmptyDirs(filepath.Dir(metaPath), s.metaDir(bucket))
	}
	if !removed {
		return nil
	}
	return fsyncDir(pruneEmptyDirs(filepath.Dir(dataPath), s.bucketDir(bucket)))
}

// pruneEmptyDirs removes dir and its parents up to (not including) stop while they are empty,
// so that deleted prefixes do not linger as directories. It returns the directory where it
// stopped, the one whose entries changed last; dir must exist (its entry was just removed).
func pruneEmptyDirs(dir, stop string) string {
	for dir != stop && strings.HasPrefix(dir, stop+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
	return dir
}

// listKeys returns, sorted, every key of bucket that starts with prefix.
func (s *store) listKeys(bucket, prefix string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.requireBucket(bucket); err != nil {
		return nil, err
	}
	rel, keyPrefix, ok := dirPrefix(prefix)
	if !ok {
		return nil, nil
	}
	var keys []string
	var walk func(dir, kp string) error
	walk = func(dir, kp string) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil
			}
			return err
		}
		for _, e := range entries {
			if e.IsDir() {
				if seg, ok := dirKey(e.Name()); ok {
					sub := kp + seg + "/"
					if strings.HasPrefix(sub, prefix) || strings.HasPrefix(prefix, sub) {
						if err := walk(filepath.Join(dir, e.Name()), sub); err != nil {
							return err
						}
					}
				}
				continue
			}
			if !e.Type().IsRegular() {
				continue
			}
			if seg, ok := leafKey(e.Name()); ok && strings.HasPrefix(kp+seg, prefix) {
				keys = append(keys, kp+seg)
			}
		}
		return nil
	}
	if err := walk(filepath.Join(s.bucketDir(bucket), rel), keyPrefix); err != nil {
		return nil, err
	}
	sort.Strings(keys)
	return keys, nil
}
