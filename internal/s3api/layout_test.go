package s3api

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzKeyLayout checks the key-to-file mapping: every storable key maps to a path inside the
// bucket directory, and the path decodes back to exactly that key (so two keys never share
// a file and listing returns the keys that were stored).
func FuzzKeyLayout(f *testing.F) {
	for _, k := range []string{"a", "a/b", "a/", "/", "//", "a//b", "../x", "./x", "..", ".", "%", "%2F", "a%2F/b",
		"x/%", ".hidden/.dir/", "日本/語", "tab\tnl\n", strings.Repeat("z", 300)} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		rel, err := keyRelPath(key)
		if err != nil {
			return
		}
		if !filepath.IsLocal(rel) {
			t.Fatalf("key %q maps to %q, outside the bucket", key, rel)
		}
		parts := strings.Split(rel, string(filepath.Separator))
		var segs []string
		for _, d := range parts[:len(parts)-1] {
			s, ok := dirKey(d)
			if !ok {
				t.Fatalf("key %q: directory name %q does not decode", key, d)
			}
			segs = append(segs, s)
		}
		last, ok := leafKey(parts[len(parts)-1])
		if !ok {
			t.Fatalf("key %q: file name %q does not decode", key, parts[len(parts)-1])
		}
		if got := strings.Join(append(segs, last), "/"); got != key {
			t.Fatalf("key %q maps to %q, which decodes to %q", key, rel, got)
		}
	})
}
