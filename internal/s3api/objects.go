package s3api

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
)

const (
	maxPutSize  = 5 << 30 // S3's limit on one PUT
	copyBufSize = 1 << 20
)

// storedHeaders are the standard headers S3 keeps with an object and returns on GET and HEAD.
var storedHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// received is a request body written to a temporary file and verified.
type received struct {
	tmp      string
	md5      []byte
	alg      string
	checksum string // base64, "" when the client named no algorithm
	size     int64  // the body's length (the file's, unless it is encrypted)
}

// receiveBody streams r's body into a fsynced temporary file, verifying the declared
// length and digests, encrypted when enc is not nil. On any failure nothing is left behind.
func (h *handler) receiveBody(r *http.Request, enc *sealer) (_ *received, err error) {
	if r.ContentLength > maxPutSize {
		return nil, errEntityTooLarge
	}
	digests, err := parseDigests(r)
	if err != nil {
		return nil, err
	}
	f, err := h.st.tempFile()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	hasher := newBodyHasher(digests.alg)
	buf := make([]byte, copyBufSize)
	var dst io.Writer = f
	var ew *encWriter
	if enc != nil {
		if ew, err = enc.writer(f); err != nil {
			return nil, err
		}
		dst = ew
	}
	n, err := io.CopyBuffer(io.MultiWriter(dst, hasher), io.LimitReader(r.Body, maxPutSize+1), buf)
	if err != nil {
		if isWriteErr(err, f) {
			return nil, err
		}
		return nil, asClientError(err)
	}
	if ew != nil {
		if err := ew.Close(); err != nil {
			return nil, err
		}
	}
	if n > maxPutSize {
		return nil, errEntityTooLarge
	}
	if r.ContentLength >= 0 && n != r.ContentLength {
		return nil, errIncompleteBody
	}
	md5sum, checksum, err := digests.verify(r, hasher)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &received{tmp: f.Name(), md5: md5sum, alg: digests.alg, checksum: checksum, size: n}, nil
}

// isWriteErr tells a failure to write the temporary file (ours) from a failure to read the
// request body (the client's).
func isWriteErr(err error, f *os.File) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Path == f.Name()
}

// metaFromHeaders collects the metadata a client sends with PutObject, CopyObject (REPLACE)
// and CreateMultipartUpload.
func metaFromHeaders(hdr http.Header) *objectMeta {
	m := &objectMeta{ContentType: hdr.Get("Content-Type")}
	if m.ContentType == "" {
		m.ContentType = "binary/octet-stream"
	}
	for _, name := range storedHeaders {
		if v := hdr.Get(name); v != "" {
			if m.Headers == nil {
				m.Headers = map[string]string{}
			}
			m.Headers[name] = v
		}
	}
	for name, vals := range hdr {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-meta-") {
			if m.UserMeta == nil {
				m.UserMeta = map[string]string{}
			}
			m.UserMeta[strings.TrimPrefix(lower, "x-amz-meta-")] = strings.Join(vals, ",")
		}
	}
	return m
}

// maxUserMetadata is S3's limit on the x-amz-meta-* names and values of one object.
const maxUserMetadata = 2 << 10

func checkMetadataSize(hdr http.Header) error {
	n := 0
	for name, vals := range hdr {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-meta-") {
			n += len(lower) - len("x-amz-meta-")
			for _, v := range vals {
				n += len(v)
			}
		}
	}
	if n > maxUserMetadata {
		return s3err(http.StatusBadRequest, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.")
	}
	return nil
}

func (h *handler) putObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	if _, err := keyRelPath(key); err != nil {
		return err
	}
	if err := checkMetadataSize(r.Header); err != nil {
		return err
	}
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	kmsKey, err := h.sseRequest(r, bucket)
	if err != nil {
		return err
	}
	var sse *sseInfo
	var enc *sealer
	if kmsKey != "" {
		if sse, enc, err = h.sealerFor(r.Context(), kmsKey, bucket, key); err != nil {
			return err
		}
	}
	body, err := h.receiveBody(r, enc)
	if err != nil {
		return err
	}
	meta := metaFromHeaders(r.Header)
	meta.Size, meta.SSE = body.size, sse
	meta.ETag = hex.EncodeToString(body.md5)
	meta.Modified = time.Now().UTC()
	if body.alg != "" {
		meta.Checksums = map[string]string{body.alg: body.checksum}
		meta.ChecksumType = "FULL_OBJECT"
	}
	if err := h.st.commitObject(bucket, key, body.tmp, meta, writeCondition(r)); err != nil {
		os.Remove(body.tmp)
		return err
	}
	w.Header().Set("ETag", quote(meta.ETag))
	setSSEHeaders(w, meta.SSE)
	if body.alg != "" {
		w.Header().Set(checksumHeader(body.alg), body.checksum)
		w.Header().Set("X-Amz-Checksum-Type", "FULL_OBJECT")
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// writeCondition turns a conditional write's If-None-Match: * (create only) or If-Match: etag
// (replace only that version) into a check that commitObject makes atomically. It returns nil
// for an unconditional write.
func writeCondition(r *http.Request) func(current *objectMeta) error {
	ifNoneMatch, ifMatch := r.Header.Get("If-None-Match"), r.Header.Get("If-Match")
	if ifNoneMatch == "" && ifMatch == "" {
		return nil
	}
	return func(current *objectMeta) error {
		if ifNoneMatch == "*" && current != nil {
			return errPreconditionFail
		}
		if ifMatch != "" && (current == nil || !etagListHas(ifMatch, quote(current.ETag))) {
			if current == nil {
				return errNoSuchKey
			}
			return errPreconditionFail
		}
		return nil
	}
}

func quote(etag string) string { return `"` + etag + `"` }

func (h *handler) getObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	f, meta, err := h.st.openObject(bucket, key)
	if err != nil {
		return err
	}
	defer f.Close()
	if status, ok := checkConditions(r, meta); !ok {
		if status == http.StatusNotModified {
			setObjectHeaders(w, meta, false)
			w.Header().Del("Content-Length")
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		return errPreconditionFail
	}
	var start, length int64
	var partial bool
	if r.URL.Query().Has("partNumber") {
		if r.Header.Get("Range") != "" {
			return invalidRequest("Cannot specify both Range header and partNumber query parameter")
		}
		if start, length, err = partRange(r.URL.Query().Get("partNumber"), meta); err != nil {
			return err
		}
		partial = length > 0
		if len(meta.PartSizes) > 0 {
			w.Header().Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(meta.PartSizes)))
		}
	} else if start, length, partial, err = parseRange(r.Header.Get("Range"), meta.Size); err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(meta.Size, 10))
		return err
	}
	// Reading an encrypted object's bytes needs its key (kms:Decrypt); HEAD does not, as on S3.
	var src io.ReaderAt = f
	if r.Method != http.MethodHead {
		if src, err = h.plainReader(r.Context(), f, meta, bucket, key); err != nil {
			return err
		}
	}
	withChecksum := !partial && strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED")
	setObjectHeaders(w, meta, withChecksum)
	// Presigned links may ask for other response headers, e.g. a download file name.
	for param, name := range responseOverrides {
		if v := r.URL.Query().Get(param); v != "" {
			w.Header().Set(name, v)
		}
	}
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, meta.Size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	// A copy error here is the client going away; the status line is already sent.
	_, _ = io.CopyBuffer(w, io.NewSectionReader(src, start, length), make([]byte, copyBufSize))
	return nil
}

var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// partRange is the byte range of part n ("partNumber") of an object; an object not uploaded
// in parts has one part, itself.
func partRange(n string, meta *objectMeta) (start, length int64, err error) {
	num, perr := strconv.Atoi(n)
	if perr != nil || num < 1 || num > 10000 {
		return 0, 0, invalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	sizes := meta.PartSizes
	if len(sizes) == 0 {
		sizes = []int64{meta.Size}
	}
	if num > len(sizes) {
		return 0, 0, s3err(http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber", "The requested partnumber is not satisfiable")
	}
	for _, sz := range sizes[:num-1] {
		start += sz
	}
	return start, sizes[num-1], nil
}

func setObjectHeaders(w http.ResponseWriter, meta *objectMeta, withChecksum bool) {
	hd := w.Header()
	hd.Set("ETag", quote(meta.ETag))
	hd.Set("Last-Modified", meta.Modified.UTC().Format(http.TimeFormat))
	hd.Set("Content-Type", meta.ContentType)
	hd.Set("Accept-Ranges", "bytes")
	setSSEHeaders(w, meta.SSE)
	for name, v := range meta.Headers {
		hd.Set(name, v)
	}
	for name, v := range meta.UserMeta {
		hd["X-Amz-Meta-"+name] = []string{v}
	}
	if withChecksum {
		for alg, v := range meta.Checksums {
			hd.Set(checksumHeader(alg), v)
		}
		if meta.ChecksumType != "" && len(meta.Checksums) > 0 {
			hd.Set("X-Amz-Checksum-Type", meta.ChecksumType)
		}
	}
}

// checkConditions evaluates If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since as S3 does; it returns 304 or 412 when the request must not proceed.
func checkConditions(r *http.Request, meta *objectMeta) (int, bool) {
	etag := quote(meta.ETag)
	mod := meta.Modified.Truncate(time.Second)
	ifMatch, ifNoneMatch := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if ifMatch != "" && !etagListHas(ifMatch, etag) {
		return http.StatusPreconditionFailed, false
	}
	if ifMatch == "" {
		if t, err := http.ParseTime(r.Header.Get("If-Unmodified-Since")); err == nil && mod.After(t) {
			return http.StatusPreconditionFailed, false
		}
	}
	if ifNoneMatch != "" && etagListHas(ifNoneMatch, etag) {
		return http.StatusNotModified, false
	}
	if ifNoneMatch == "" {
		if t, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !mod.After(t) {
			return http.StatusNotModified, false
		}
	}
	return 0, true
}

func etagListHas(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || e == etag || quote(e) == etag {
			return true
		}
	}
	return false
}

// parseRange interprets a Range header as S3 does: one range of the forms a-b, a- and -n;
// a header it cannot parse is ignored and the whole object is sent; a range that starts
// past the end is InvalidRange.
func parseRange(hdr string, size int64) (start, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(hdr, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	if first == "" { // suffix: the last n bytes
		n, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || n < 0 {
			return 0, size, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errInvalidRange
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || a < 0 {
		return 0, size, false, nil
	}
	b := size - 1
	if last != "" {
		b, perr = strconv.ParseInt(last, 10, 64)
		if perr != nil || b < a {
			return 0, size, false, nil
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, errInvalidRange
	}
	return a, b - a + 1, true, nil
}

func (h *handler) deleteObject(w http.ResponseWriter, bucket, key string) error {
	if err := h.st.deleteObject(bucket, key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// copySource parses x-amz-copy-source: "bucket/key" or "/bucket/key", URL-encoded.
func copySource(r *http.Request) (bucket, key string, err error) {
	src := r.Header.Get("X-Amz-Copy-Source")
	if i := strings.Index(src, "?"); i >= 0 {
		if strings.HasPrefix(src[i+1:], "versionId=") && src[i+1+len("versionId="):] != "null" {
			return "", "", notImplemented("object versions")
		}
		src = src[:i]
	}
	dec, perr := url.PathUnescape(src)
	if perr != nil {
		return "", "", invalidArgument("Invalid copy source encoding")
	}
	bucket, key = splitPath("/" + strings.TrimPrefix(dec, "/"))
	if bucket == "" || key == "" {
		return "", "", invalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	if !validBucketName(bucket) {
		return "", "", errNoSuchBucket
	}
	if problem := keyTextProblem(key); problem != "" {
		return "", "", invalidArgument("Invalid copy source encoding: " + problem)
	}
	return bucket, key, nil
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

func (h *handler) copyObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	srcBucket, srcKey, err := copySource(r)
	if err != nil {
		return err
	}
	if _, err := keyRelPath(key); err != nil {
		return err
	}
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return invalidArgument("Unknown metadata directive.")
	}
	if srcBucket == bucket && srcKey == key && directive != "REPLACE" {
		return invalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	src, srcMeta, err := h.st.openObject(srcBucket, srcKey)
	if err != nil {
		return err
	}
	defer src.Close()
	if !copyConditionsHold(r, srcMeta) {
		return errPreconditionFail
	}
	plain, err := h.plainReader(r.Context(), src, srcMeta, srcBucket, srcKey)
	if err != nil {
		return err
	}
	// The copy is encrypted as the request (or the destination bucket) says, not as its source.
	kmsKey, err := h.sseRequest(r, bucket)
	if err != nil {
		return err
	}
	var sse *sseInfo
	var enc *sealer
	if kmsKey != "" {
		if sse, enc, err = h.sealerFor(r.Context(), kmsKey, bucket, key); err != nil {
			return err
		}
	}
	tmp, sum, err := h.copyToTemp(plain, 0, srcMeta.Size, enc)
	if err != nil {
		return err
	}
	meta := *srcMeta
	if directive == "REPLACE" {
		if err := checkMetadataSize(r.Header); err != nil {
			return err
		}
		meta = *metaFromHeaders(r.Header)
		meta.Checksums, meta.ChecksumType = srcMeta.Checksums, srcMeta.ChecksumType
	}
	// The copy is a new single-part object: its ETag is the MD5 of its bytes even when the
	// source was uploaded in parts.
	meta.ETag, meta.PartSizes, meta.Modified = sum, nil, time.Now().UTC()
	if len(srcMeta.PartSizes) > 0 {
		meta.Checksums, meta.ChecksumType = nil, ""
	}
	meta.Size, meta.SSE = srcMeta.Size, sse
	if err := h.st.commitObject(bucket, key, tmp, &meta, nil); err != nil {
		os.Remove(tmp)
		return err
	}
	setSSEHeaders(w, meta.SSE)
	return writeXML(w, copyObjectResult{ETag: quote(meta.ETag), LastModified: isoTime(meta.Modified)})
}

// copyConditionsHold evaluates the x-amz-copy-source-if-* headers.
func copyConditionsHold(r *http.Request, meta *objectMeta) bool {
	cond := &http.Request{Header: http.Header{}}
	for _, name := range []string{"Match", "None-Match", "Modified-Since", "Unmodified-Since"} {
		if v := r.Header.Get("X-Amz-Copy-Source-If-" + name); v != "" {
			cond.Header.Set("If-"+name, v)
		}
	}
	_, ok := checkConditions(cond, meta)
	return ok
}

// copyToTemp copies length bytes of src from off into a fsynced temporary file (encrypted when
// enc is not nil) and returns its name and the MD5 (hex) of the copied bytes.
func (h *handler) copyToTemp(src io.ReaderAt, off, length int64, enc *sealer) (string, string, error) {
	f, err := h.st.tempFile()
	if err != nil {
		return "", "", err
	}
	sum := md5.New()
	var dst io.Writer = f
	var ew *encWriter
	if enc != nil {
		if ew, err = enc.writer(f); err != nil {
			f.Close()
			os.Remove(f.Name())
			return "", "", err
		}
		dst = ew
	}
	_, err = io.CopyBuffer(io.MultiWriter(dst, sum), io.NewSectionReader(src, off, length), make([]byte, copyBufSize))
	if err == nil && ew != nil {
		err = ew.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", err
	}
	return f.Name(), hex.EncodeToString(sum.Sum(nil)), nil
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// DeleteObjects

type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key string `xml:"Key"`
	} `xml:"Object"`
}

type deletedEntry struct {
	Key string `xml:"Key"`
}

type deleteErrorEntry struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type deleteResult struct {
	XMLName xml.Name           `xml:"DeleteResult"`
	Xmlns   string             `xml:"xmlns,attr"`
	Deleted []deletedEntry     `xml:"Deleted"`
	Errors  []deleteErrorEntry `xml:"Error"`
}

func (h *handler) deleteObjects(w http.ResponseWriter, r *http.Request, bucket string) error {
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	digests, err := parseDigests(r)
	if err != nil {
		return err
	}
	hasher := newBodyHasher(digests.alg)
	var req deleteRequest
	if err := readXML(&http.Request{Body: io.NopCloser(io.TeeReader(r.Body, hasher))}, 2<<20, &req); err != nil {
		return err
	}
	if _, _, err := digests.verify(r, hasher); err != nil {
		return err
	}
	if len(req.Objects) == 0 || len(req.Objects) > 1000 {
		return errMalformedXML
	}
	res := deleteResult{Xmlns: xmlns}
	for _, o := range req.Objects {
		if err := h.st.deleteObject(bucket, o.Key); err != nil {
			e := awserr.As(err)
			if e == nil {
				h.log.Error("delete object", "bucket", bucket, "key", o.Key, "err", err)
				e = s3err(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			}
			res.Errors = append(res.Errors, deleteErrorEntry{Key: o.Key, Code: e.Code, Message: e.Message})
			continue
		}
		if !req.Quiet {
			res.Deleted = append(res.Deleted, deletedEntry{Key: o.Key})
		}
	}
	return writeXML(w, res)
}
