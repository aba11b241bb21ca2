package s3api

import (
	"encoding/xml"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// WithReadOnlyBucket serves bucket from the plain directory dir, read-only, in front of next (which
// serves every other bucket): HeadBucket, ListObjects(V2), GetObject and HeadObject (ranges and
// conditions included); any change answers AccessDenied, as a bucket of another account would.
// Lathe serves its model store this way as the JumpStart bucket (jumpstart-cache-prod-REGION), so
// that IAM policies on that bucket decide who reads base models, as on SageMaker. Keys are the
// files' paths under dir; hidden files (a leading '.') are not objects.
func WithReadOnlyBucket(next http.Handler, bucket, dir string) http.Handler {
	return &readOnlyBucket{next: next, bucket: bucket, dir: dir}
}

type readOnlyBucket struct {
	next   http.Handler
	bucket string
	dir    string
}

func (b *readOnlyBucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, key := splitPath(r.URL.Path)
	if bucket != b.bucket {
		b.next.ServeHTTP(w, r)
		return
	}
	if err := b.serve(w, r, key); err != nil {
		WriteError(w, r, err)
	}
}

var errReadOnly = s3err(http.StatusForbidden, "AccessDenied", "Access Denied")

func (b *readOnlyBucket) serve(w http.ResponseWriter, r *http.Request, key string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errReadOnly
	}
	q := r.URL.Query()
	if key == "" {
		switch {
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusOK)
			return nil
		case q.Has("location"):
			return writeXML(w, struct {
				XMLName xml.Name `xml:"LocationConstraint"`
				Xmlns   string   `xml:"xmlns,attr"`
			}{Xmlns: xmlns})
		case q.Get("list-type") == "2" || len(q) == 0 || q.Has("prefix") || q.Has("delimiter") || q.Has("max-keys") || q.Has("marker"):
			return b.list(w, q)
		}
		return notImplemented("this query on a read-only bucket")
	}
	p, ok := b.file(key)
	if !ok {
		return errNoSuchKey
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return errNoSuchKey
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errNoSuchKey
	}
	w.Header().Set("Content-Type", "binary/octet-stream")
	w.Header().Set("ETag", fileETag(fi))
	w.Header().Set("Accept-Ranges", "bytes")
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return nil
}

// fileETag is a strong validator of a file that is never rewritten in place (model files are
// replaced by renames): its size and modification time, not an MD5 of gigabytes.
func fileETag(fi os.FileInfo) string {
	return `"` + strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16) + `"`
}

// file maps a key to a path under dir, refusing keys that would leave it or name hidden files.
func (b *readOnlyBucket) file(key string) (string, bool) {
	if key == "" || strings.HasSuffix(key, "/") || strings.Contains(key, "\\") {
		return "", false
	}
	clean := path.Clean("/" + key)[1:]
	if clean != key {
		return "", false
	}
	for _, seg := range strings.Split(key, "/") {
		if strings.HasPrefix(seg, ".") {
			return "", false
		}
	}
	return filepath.Join(b.dir, filepath.FromSlash(key)), true
}

type roContents struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type roPrefix struct {
	Prefix string `xml:"Prefix"`
}

type roList struct {
	XMLName               xml.Name     `xml:"ListBucketResult"`
	Xmlns                 string       `xml:"xmlns,attr"`
	Name                  string       `xml:"Name"`
	Prefix                string       `xml:"Prefix"`
	Delimiter             string       `xml:"Delimiter,omitempty"`
	MaxKeys               int          `xml:"MaxKeys"`
	KeyCount              int          `xml:"KeyCount,omitempty"`
	IsTruncated           bool         `xml:"IsTruncated"`
	ContinuationToken     string       `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string       `xml:"NextContinuationToken,omitempty"`
	Marker                string       `xml:"Marker,omitempty"`
	NextMarker            string       `xml:"NextMarker,omitempty"`
	Contents              []roContents `xml:"Contents"`
	CommonPrefixes        []roPrefix   `xml:"CommonPrefixes"`
}

func (b *readOnlyBucket) list(w http.ResponseWriter, q url.Values) error {
	maxKeys, err := parseMaxKeys(q.Get("max-keys"))
	if err != nil {
		return err
	}
	v2 := q.Get("list-type") == "2"
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	after := q.Get("marker")
	if v2 {
		after = q.Get("start-after")
		if tok := q.Get("continuation-token"); tok != "" {
			after = tok
		}
	}
	files := map[string]os.FileInfo{}
	var keys []string
	err = filepath.WalkDir(b.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed while walking
		}
		if strings.HasPrefix(d.Name(), ".") && p != b.dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(b.dir, p)
		if err != nil {
			return nil
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			files[key] = fi
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(keys)
	pg := listPage(keys, prefix, delim, after, maxKeys)
	out := roList{Xmlns: xmlns, Name: b.bucket, Prefix: prefix, Delimiter: delim, MaxKeys: maxKeys, IsTruncated: pg.truncated}
	for _, k := range pg.keys {
		fi := files[k]
		out.Contents = append(out.Contents, roContents{Key: k, LastModified: isoTime(fi.ModTime()), ETag: fileETag(fi), Size: fi.Size(), StorageClass: "STANDARD"})
	}
	for _, p := range pg.prefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, roPrefix{Prefix: p})
	}
	if v2 {
		out.KeyCount = len(out.Contents) + len(out.CommonPrefixes)
		out.ContinuationToken = q.Get("continuation-token")
		if pg.truncated {
			out.NextContinuationToken = pg.last
		}
	} else {
		out.Marker = q.Get("marker")
		if pg.truncated {
			out.NextMarker = pg.last
		}
	}
	return writeXML(w, out)
}
