// Package s3api serves a path-style S3-compatible API over a local directory, one
// sub-directory per bucket (the layout is described in layout.go).
//
// Authentication is not done here: the front door verifies SigV4 and decodes aws-chunked
// bodies before a request reaches this handler. What the handler expects of a decoded
// request: the body is plain; r.ContentLength is the decoded length (or -1); "aws-chunked"
// is removed from Content-Encoding (what remains, e.g. gzip, is stored as the object's
// Content-Encoding, as S3 does); trailing headers such as x-amz-checksum-crc32 are in
// r.Trailer once the body has returned io.EOF. A body read error that is an *awserr.Error
// (a bad chunk signature, a payload hash mismatch) is answered as that error; any other read
// error as IncompleteBody. A body that still says aws-chunked is refused.
//
// Every write goes to a temporary file on the same filesystem, is fsynced and renamed into
// place, so a crash never leaves half an object. Bodies are streamed, never held in memory.
package s3api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// handler is the S3 API over one root directory.
type handler struct {
	st  *store
	log *slog.Logger
	kms KeyService // nil: no SSE-KMS (sse.go)
}

// New returns an http.Handler that serves the S3 API over root, creating root if needed.
func New(root string, logger *slog.Logger) (http.Handler, error) {
	if logger == nil {
		logger = slog.Default()
	}
	st, err := openStore(root)
	if err != nil {
		return nil, err
	}
	return &handler{st: st, log: logger}, nil
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := newRequestID()
	w.Header().Set("X-Amz-Request-Id", id)
	w.Header().Set("X-Amz-Id-2", id)
	if err := h.serve(w, r); err != nil {
		if awserr.As(err) == nil {
			h.log.Error("s3 request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		}
		WriteError(w, r, err)
	}
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	if isStillChunked(r) {
		return errChunkedNotDecoded
	}
	bucket, key := splitPath(r.URL.Path)
	q := r.URL.Query()
	if bucket == "" {
		if r.Method == http.MethodGet {
			return h.listBuckets(w)
		}
		return errMethodNotAllowed
	}
	if !validBucketName(bucket) {
		if r.Method == http.MethodPut && key == "" {
			return errInvalidBucketName
		}
		return errNoSuchBucket
	}
	if key == "" {
		return h.serveBucket(w, r, bucket, q)
	}
	// DeleteObject still takes such a key byte for byte: older versions stored them, and this
	// is how they are removed.
	if problem := keyTextProblem(key); problem != "" && !(r.Method == http.MethodDelete && !q.Has("uploadId")) {
		return invalidURI(problem)
	}
	return h.serveObject(w, r, bucket, key, q)
}

// bucketSubresources are bucket configuration queries this API does not implement.
var bucketSubresources = []string{"acl", "policy", "cors", "lifecycle", "tagging", "website",
	"logging", "notification", "replication", "encryption", "object-lock", "ownershipControls",
	"publicAccessBlock", "accelerate", "requestPayment", "analytics", "inventory", "metrics",
	"intelligent-tiering", "policyStatus", "versions"}

func (h *handler) serveBucket(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) error {
	if q.Has("encryption") {
		return h.serveBucketEncryption(w, r, bucket)
	}
	for _, s := range bucketSubresources {
		if q.Has(s) {
			return notImplemented("?" + s)
		}
	}
	switch r.Method {
	case http.MethodPut:
		return h.createBucket(w, r, bucket)
	case http.MethodHead:
		return h.headBucket(w, bucket)
	case http.MethodDelete:
		return h.deleteBucket(w, bucket)
	case http.MethodPost:
		if q.Has("delete") {
			return h.deleteObjects(w, r, bucket)
		}
		return errMethodNotAllowed
	case http.MethodGet:
		switch {
		case q.Has("location"):
			return h.getBucketLocation(w, bucket)
		case q.Has("versioning"):
			return h.getBucketVersioning(w, bucket)
		case q.Has("uploads"):
			return h.listMultipartUploads(w, bucket, q)
		case q.Get("list-type") == "2":
			return h.listObjectsV2(w, bucket, q)
		case q.Has("list-type"):
			return invalidArgument("Invalid List Type specified")
		default:
			return h.listObjectsV1(w, bucket, q)
		}
	}
	return errMethodNotAllowed
}

var objectSubresources = []string{"acl", "tagging", "retention", "legal-hold", "torrent",
	"restore", "select", "attributes", "versionId"}

func (h *handler) serveObject(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) error {
	for _, s := range objectSubresources {
		if q.Has(s) {
			return notImplemented("?" + s)
		}
	}
	uploadID := q.Get("uploadId")
	switch r.Method {
	case http.MethodPut:
		if q.Has("partNumber") || q.Has("uploadId") {
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				return h.uploadPartCopy(w, r, bucket, key, q)
			}
			return h.uploadPart(w, r, bucket, key, q)
		}
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			return h.copyObject(w, r, bucket, key)
		}
		return h.putObject(w, r, bucket, key)
	case http.MethodGet, http.MethodHead:
		if q.Has("uploadId") {
			if r.Method == http.MethodHead {
				return errMethodNotAllowed
			}
			return h.listParts(w, bucket, key, uploadID, q)
		}
		return h.getObject(w, r, bucket, key)
	case http.MethodDelete:
		if q.Has("uploadId") {
			return h.abortMultipart(w, bucket, key, uploadID)
		}
		return h.deleteObject(w, bucket, key)
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return h.createMultipart(w, r, bucket, key)
		case q.Has("uploadId"):
			return h.completeMultipart(w, r, bucket, key, uploadID)
		}
	}
	return errMethodNotAllowed
}

// isStillChunked reports whether the body still carries aws-chunked framing (every SDK
// declares it in Content-Encoding), which means it did not pass through the front door's
// decoder.
func isStillChunked(r *http.Request) bool {
	for _, ce := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
		if strings.EqualFold(strings.TrimSpace(ce), "aws-chunked") {
			return true
		}
	}
	return false
}

// validBucketName applies S3's rules for general purpose bucket names.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	first, last := b[0], b[len(b)-1]
	if first == '.' || first == '-' || last == '.' || last == '-' {
		return false
	}
	if strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-.") {
		return false
	}
	if strings.HasPrefix(b, "xn--") || strings.HasPrefix(b, "sthree-") ||
		strings.HasSuffix(b, "-s3alias") || strings.HasSuffix(b, "--ol-s3") {
		return false
	}
	if looksLikeIPv4(b) {
		return false
	}
	return true
}

func looksLikeIPv4(b string) bool {
	parts := strings.Split(b, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

const xmlns = "http://s3.amazonaws.com/doc/2006-03-01/"

// writeXML writes a 200 response with v as its XML body.
func writeXML(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	writeXMLBody(w, v)
	return nil
}

func writeXMLBody(w io.Writer, v any) {
	_, _ = io.WriteString(w, xml.Header)
	// A failure here is the client going away; the status is already sent.
	_ = xml.NewEncoder(w).Encode(v)
}

// readXML decodes a small XML request body (at most limit bytes) into v.
func readXML(r *http.Request, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return asClientError(err)
	}
	if int64(len(data)) > limit {
		return errMalformedXML
	}
	if err := xml.Unmarshal(data, v); err != nil {
		return errMalformedXML
	}
	return nil
}

// fsyncDir makes a rename or removal in dir durable.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
