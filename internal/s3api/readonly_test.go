package s3api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The read-only bucket serves the directory's files and nothing outside them: not a path that
// climbs out, not a hidden file, and no write.
func TestReadOnlyBucketServesItsDirectoryOnly(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "models")
	if err := os.MkdirAll(filepath.Join(dir, "M", ".partial"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"M/model.gguf": "weights", "M/.lock": "x", "M/.partial/f": "x", "../secret": "s"} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := WithReadOnlyBucket(next, "js", dir)
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/js/M/model.gguf", 200, "weights"},
		{"HEAD", "/js/M/model.gguf", 200, ""},
		{"GET", "/js/M/.lock", 404, "NoSuchKey"},
		{"GET", "/js/M/.partial/f", 404, "NoSuchKey"},
		{"GET", "/js/M/../../secret", 404, "NoSuchKey"},
		{"GET", "/js/M//model.gguf", 404, "NoSuchKey"},
		{"PUT", "/js/M/model.gguf", 403, "AccessDenied"},
		{"DELETE", "/js/M/model.gguf", 403, "AccessDenied"},
		{"GET", "/js?list-type=2&prefix=M/", 200, "<Key>M/model.gguf</Key><LastModified>"},
		{"GET", "/other/key", http.StatusTeapot, ""},
	} {
		req := httptest.NewRequest(c.method, "http://x"+c.path, nil)
		req.URL.Path = strings.SplitN(c.path, "?", 2)[0] // keep ".." as a client could send it
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != c.status || !strings.Contains(string(body), c.body) {
			t.Errorf("%s %s: %d %s", c.method, c.path, rec.Code, body)
		}
		if c.status == 200 && (strings.Contains(string(body), ".lock") || strings.Contains(string(body), ".partial")) {
			t.Errorf("%s %s lists a hidden file: %s", c.method, c.path, body)
		}
	}
}
