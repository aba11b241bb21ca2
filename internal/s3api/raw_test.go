package s3api_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/s3api"
	"github.com/lathe-ml/lathe/internal/sigv4"
)

// These tests talk to the handler with hand-made requests, for what the SDKs never send or
// what only the front door produces (decoded aws-chunked bodies, body read failures).

func newHandler(t *testing.T) (http.Handler, string) {
	t.Helper()
	root := t.TempDir()
	h, err := s3api.New(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	do(h, "PUT", "/raw", nil, nil)
	return h, root
}

func do(h http.Handler, method, target string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type xmlError struct {
	Code, Message, Resource, RequestId, Key, BucketName string
}

func parseError(t *testing.T, w *httptest.ResponseRecorder) xmlError {
	t.Helper()
	var e xmlError
	if err := xml.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body is not S3 XML: %v\n%s", err, w.Body.String())
	}
	return e
}

func TestErrorDocument(t *testing.T) {
	h, _ := newHandler(t)
	w := do(h, "GET", "/raw/missing%20key", nil, nil)
	e := parseError(t, w)
	if w.Code != 404 || e.Code != "NoSuchKey" || e.Key != "missing key" || e.Resource != "/raw/missing key" ||
		e.RequestId == "" || e.RequestId != w.Header().Get("X-Amz-Request-Id") || w.Header().Get("Content-Type") != "application/xml" {
		t.Errorf("status %d, headers %v, error %+v", w.Code, w.Header(), e)
	}
	w = do(h, "GET", "/nobucket?list-type=2", nil, nil)
	if e := parseError(t, w); w.Code != 404 || e.Code != "NoSuchBucket" || e.BucketName != "nobucket" {
		t.Errorf("missing bucket: %d %+v", w.Code, e)
	}
	w = do(h, "HEAD", "/raw/missing", nil, nil)
	if w.Code != 404 || w.Body.Len() != 0 {
		t.Errorf("HEAD of a missing key: %d with %d body bytes; want 404 without body", w.Code, w.Body.Len())
	}
	for _, target := range []string{"/raw?policy", "/raw/k?tagging", "/raw?cors"} {
		if w := do(h, "GET", target, nil, nil); w.Code != 501 || parseError(t, w).Code != "NotImplemented" {
			t.Errorf("GET %s: %d %s; want 501 NotImplemented", target, w.Code, w.Body.String())
		}
	}
	if w := do(h, "PATCH", "/raw/k", nil, nil); w.Code != 405 {
		t.Errorf("PATCH: %d, want 405", w.Code)
	}
}

func TestResponseHeaderOverrides(t *testing.T) {
	h, _ := newHandler(t)
	do(h, "PUT", "/raw/report", strings.NewReader("data"), map[string]string{"Content-Type": "text/csv"})
	w := do(h, "GET", "/raw/report?response-content-disposition=attachment%3B%20filename%3Dr.csv&response-content-type=application%2Foctet-stream", nil, nil)
	if w.Header().Get("Content-Disposition") != "attachment; filename=r.csv" || w.Header().Get("Content-Type") != "application/octet-stream" {
		t.Errorf("overrides not applied: %v", w.Header())
	}
}

func TestPutDefaultsAndUnknownLength(t *testing.T) {
	h, _ := newHandler(t)
	r := httptest.NewRequest("PUT", "/raw/k", strings.NewReader("streamed"))
	r.ContentLength = -1 // a decoded stream of unknown length
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("PUT: %d %s", w.Code, w.Body.String())
	}
	w = do(h, "GET", "/raw/k", nil, nil)
	if w.Body.String() != "streamed" || w.Header().Get("Content-Type") != "binary/octet-stream" {
		t.Errorf("GET: %q type %q", w.Body.String(), w.Header().Get("Content-Type"))
	}
}

// failingBody yields some bytes and then an error, as the front door's decoder does when a
// chunk signature or the payload hash does not match.
type failingBody struct {
	data []byte
	err  error
}

func (b *failingBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, b.err
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func TestBodyReadErrorStoresNothing(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"client went away", io.ErrUnexpectedEOF, 400, "IncompleteBody"},
		{"payload hash mismatch found by the front door", fmt.Errorf("read body: %w", sigv4.ErrContentSHA256Mismatch), 400, "XAmzContentSHA256Mismatch"},
		{"bad chunk signature", sigv4.ErrChunkSignatureMismatch, 403, "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, root := newHandler(t)
			do(h, "PUT", "/raw/k", strings.NewReader("old"), nil)
			r := httptest.NewRequest("PUT", "/raw/k", &failingBody{data: bytes.Repeat([]byte("x"), 3<<20), err: c.err})
			r.ContentLength = 4 << 20
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if e := parseError(t, w); w.Code != c.status || e.Code != c.code {
				t.Errorf("got %d %s, want %d %s", w.Code, e.Code, c.status, c.code)
			}
			if got := do(h, "GET", "/raw/k", nil, nil).Body.String(); got != "old" {
				t.Errorf("object after the failed PUT: %q, want the old %q", got, "old")
			}
			if tmp, _ := os.ReadDir(filepath.Join(root, ".tmp")); len(tmp) != 0 {
				t.Errorf("%d temporary files left behind", len(tmp))
			}
		})
	}
	// A body shorter than its Content-Length is incomplete.
	h, _ := newHandler(t)
	r := httptest.NewRequest("PUT", "/raw/short", strings.NewReader("abc"))
	r.ContentLength = 10
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 || parseError(t, w).Code != "IncompleteBody" {
		t.Errorf("short body: %d %s", w.Code, w.Body.String())
	}
	if w := do(h, "HEAD", "/raw/short", nil, nil); w.Code != 404 {
		t.Errorf("short body was stored: HEAD %d", w.Code)
	}
}

func TestStillChunkedBodyRefused(t *testing.T) {
	h, _ := newHandler(t)
	w := do(h, "PUT", "/raw/k", strings.NewReader("5\r\nhello\r\n0\r\n\r\n"), map[string]string{
		"Content-Encoding": "aws-chunked", "X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		"X-Amz-Decoded-Content-Length": "5"})
	if w.Code != 400 || parseError(t, w).Code != "NotImplemented" {
		t.Errorf("undecoded aws-chunked body: %d %s", w.Code, w.Body.String())
	}
	if w := do(h, "HEAD", "/raw/k", nil, nil); w.Code != 404 {
		t.Error("an undecoded aws-chunked body was stored")
	}
}

// decodeChunked stands in for the front door: it decodes an unsigned aws-chunked body with
// the sigv4 package and hands the handler a plain body whose trailers appear in r.Trailer at EOF.
func decodeChunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var trailers []string
		for _, n := range strings.Split(r.Header.Get("X-Amz-Trailer"), ",") {
			trailers = append(trailers, strings.TrimSpace(n))
		}
		cr, err := sigv4.NewChunkedReader(r.Body, sigv4.ChunkedOptions{PayloadHash: r.Header.Get("X-Amz-Content-Sha256"),
			Trailers: trailers, DecodedLength: r.ContentLength})
		if err != nil {
			s3api.WriteError(w, r, err)
			return
		}
		r.Header.Del("Content-Encoding")
		r.Trailer = http.Header{}
		r.Body = io.NopCloser(&trailerCopier{cr: cr, dst: r.Trailer})
		next.ServeHTTP(w, r)
	})
}

type trailerCopier struct {
	cr  *sigv4.ChunkedReader
	dst http.Header
}

func (t *trailerCopier) Read(p []byte) (int, error) {
	n, err := t.cr.Read(p)
	if errors.Is(err, io.EOF) {
		for k, v := range t.cr.Trailer() {
			t.dst[k] = v
		}
	}
	return n, err
}

func TestTrailingChecksum(t *testing.T) {
	inner, _ := newHandler(t)
	h := decodeChunked(inner)
	payload := "hello, trailer"
	sum := crc32.ChecksumIEEE([]byte(payload))
	good := b64([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	for _, c := range []struct {
		name, trailer string
		status        int
		code          string
	}{
		{"matching CRC32 trailer", good, 200, ""},
		{"wrong CRC32 trailer", b64([]byte{0, 0, 0, 1}), 400, "BadDigest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", len(payload), payload, c.trailer)
			r := httptest.NewRequest("PUT", "/raw/trailed", strings.NewReader(body))
			r.ContentLength = int64(len(payload))
			r.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
			r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d: %s", w.Code, w.Body.String())
			}
			if c.code != "" {
				if e := parseError(t, w); e.Code != c.code {
					t.Errorf("code %s, want %s", e.Code, c.code)
				}
				return
			}
			g := do(inner, "GET", "/raw/trailed", nil, map[string]string{"X-Amz-Checksum-Mode": "ENABLED"})
			if g.Body.String() != payload || g.Header().Get("X-Amz-Checksum-Crc32") != good {
				t.Errorf("GET: %q checksum %q", g.Body.String(), g.Header().Get("X-Amz-Checksum-Crc32"))
			}
		})
	}
}

// A crash between renaming an object's data and its sidecar leaves a sidecar that describes
// other data; the object is then served as its data says, never with a wrong ETag or size.
func TestStaleSidecarAfterCrash(t *testing.T) {
	h, root := newHandler(t)
	do(h, "PUT", "/raw/dir/obj", strings.NewReader("first version"), map[string]string{"Content-Type": "text/plain"})
	dataPath := filepath.Join(root, "raw", "dir%2F", "obj") // the layout documented in layout.go
	if err := os.WriteFile(dataPath+".new", []byte("second, longer version"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dataPath+".new", dataPath); err != nil {
		t.Fatal(err)
	}
	w := do(h, "GET", "/raw/dir/obj", nil, nil)
	if w.Body.String() != "second, longer version" || w.Header().Get("ETag") != `"`+md5hex([]byte("second, longer version"))+`"` ||
		w.Header().Get("Content-Length") != "22" {
		t.Errorf("GET after a torn write: %q etag %s length %s", w.Body.String(), w.Header().Get("ETag"), w.Header().Get("Content-Length"))
	}
}

func TestLeftoverTempFilesRemovedOnStart(t *testing.T) {
	root := t.TempDir()
	if _, err := s3api.New(root, nil); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(root, ".tmp", "w-123")
	if err := os.WriteFile(leftover, []byte("half an object"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s3api.New(root, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("temporary file of an interrupted write survived a restart: %v", err)
	}
}
