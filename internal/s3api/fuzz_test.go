package s3api_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/internal/s3api"
)

// FuzzObjectKey puts an object under an arbitrary key through the handler. The answer is never
// a 5xx; a refused key leaves nothing behind; an accepted key comes back byte for byte from the
// listing (in XML), GET reads the body back, and DELETE removes it. Keys go on the wire
// percent-encoded, as SDKs send them.
//
//	go test -fuzz FuzzObjectKey ./internal/s3api
func FuzzObjectKey(f *testing.F) {
	for _, k := range append(trickyKeys, "bad\xff", "nul\x00", "ctl\x01", "cr\r\nlf", "\ufffd", "a/../b", "?x=1#frag",
		strings.Repeat("d", 250)+"/"+strings.Repeat("e", 250), strings.Repeat("k", 1025), "é/"+strings.Repeat("語", 84)) {
		f.Add(k)
	}
	h, err := s3api.New(f.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	if w := do(h, "PUT", "/fuzz", nil, nil); w.Code != http.StatusOK {
		f.Fatalf("create bucket: %d %s", w.Code, w.Body)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if key == "" {
			return // the bucket itself
		}
		target := "/fuzz/" + urlPathEscape(key)
		body := []byte("body of " + key)
		w := do(h, "PUT", target, bytes.NewReader(body), nil)
		if w.Code >= 500 {
			t.Fatalf("PUT %q: %d %s", key, w.Code, w.Body)
		}
		keys := listAll(t, h)
		if w.Code != http.StatusOK {
			if code := parseError(t, w).Code; code != "InvalidURI" && code != "KeyTooLongError" {
				t.Fatalf("PUT %q refused with %s, want InvalidURI or KeyTooLongError", key, code)
			}
			if len(keys) != 0 {
				t.Fatalf("refused PUT %q left %q in the listing", key, keys)
			}
			return
		}
		if !utf8.ValidString(key) || strings.ContainsRune(key, 0) || len(key) > 1024 {
			t.Fatalf("PUT %q accepted a key S3 cannot hold", key)
		}
		if len(keys) != 1 || keys[0] != key {
			t.Fatalf("PUT %q, listing shows %q", key, keys)
		}
		if g := do(h, "GET", target, nil, nil); g.Code != http.StatusOK || !bytes.Equal(g.Body.Bytes(), body) {
			t.Fatalf("GET %q: %d %q", key, g.Code, g.Body.Bytes())
		}
		if d := do(h, "DELETE", target, nil, nil); d.Code != http.StatusNoContent {
			t.Fatalf("DELETE %q: %d %s", key, d.Code, d.Body)
		}
		if keys := listAll(t, h); len(keys) != 0 {
			t.Fatalf("after DELETE %q the listing shows %q", key, keys)
		}
	})
}

// listAll returns every key in bucket fuzz as a client's XML parser reads the listing.
func listAll(t *testing.T, h http.Handler) []string {
	t.Helper()
	w := do(h, "GET", "/fuzz?list-type=2", nil, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	var out struct {
		Contents []struct{ Key string }
	}
	data, _ := io.ReadAll(w.Body)
	if err := xml.Unmarshal(data, &out); err != nil {
		t.Fatalf("listing is not XML a client can parse: %v\n%s", err, data)
	}
	var keys []string
	for _, c := range out.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}
