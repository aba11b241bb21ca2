package s3api

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	minPartSize = 5 << 20 // every part but the last, as in S3
	maxParts    = 10000
)

// upload is a multipart upload's record, <root>/.uploads/<id>/upload.json. Each part is a
// data file plus a record part-<n>.json naming it; the record is written last, with one
// rename, so a part is either wholly there or not at all.
type upload struct {
	Bucket    string     `json:"bucket"`
	Key       string     `json:"key"`
	Initiated time.Time  `json:"initiated"`
	Meta      objectMeta `json:"meta"`
	Algorithm string     `json:"checksumAlgorithm,omitempty"`
}

type partRecord struct {
	Number   int       `json:"number"`
	ETag     string    `json:"etag"` // md5 hex, unquoted
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	Alg      string    `json:"checksumAlgorithm,omitempty"`
	Checksum string    `json:"checksum,omitempty"`
	File     string    `json:"file"` // the data file's name in the upload directory
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func (s *store) uploadDir(id string) string { return filepath.Join(s.uploadsDir(), id) }

// loadUpload reads upload id and checks that it belongs to bucket/key.
func (s *store) loadUpload(bucket, key, id string) (*upload, error) {
	if !validUploadID(id) {
		return nil, errNoSuchUpload
	}
	data, err := os.ReadFile(filepath.Join(s.uploadDir(id), "upload.json"))
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.requireBucket(bucket); err != nil {
			return nil, err
		}
		return nil, errNoSuchUpload
	}
	if err != nil {
		return nil, err
	}
	var u upload
	if err := json.Unmarshal(data, &u); err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	if u.Bucket != bucket || u.Key != key {
		return nil, errNoSuchUpload
	}
	return &u, nil
}

func (s *store) loadParts(id string) (map[int]*partRecord, error) {
	entries, err := os.ReadDir(s.uploadDir(id))
	if err != nil {
		return nil, err
	}
	parts := map[int]*partRecord{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "part-") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.uploadDir(id), e.Name()))
		if err != nil {
			continue // replaced or aborted meanwhile
		}
		var p partRecord
		if json.Unmarshal(data, &p) == nil {
			parts[p.Number] = &p
		}
	}
	return parts, nil
}

func (s *store) removeUploadsOf(bucket string) {
	entries, _ := os.ReadDir(s.uploadsDir())
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(s.uploadsDir(), e.Name(), "upload.json"))
		var u upload
		if err == nil && json.Unmarshal(data, &u) == nil && u.Bucket == bucket {
			_ = os.RemoveAll(filepath.Join(s.uploadsDir(), e.Name()))
		}
	}
}

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

func (h *handler) createMultipart(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	if _, err := keyRelPath(key); err != nil {
		return err
	}
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	if err := checkMetadataSize(r.Header); err != nil {
		return err
	}
	alg := strings.ToUpper(r.Header.Get("X-Amz-Checksum-Algorithm"))
	if alg != "" && newChecksumHash(alg) == nil {
		return invalidRequest("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	u := upload{Bucket: bucket, Key: key, Initiated: time.Now().UTC(), Meta: *metaFromHeaders(r.Header), Algorithm: alg}
	// An SSE-KMS upload gets its data key now: every part is encrypted with it as it arrives.
	kmsKey, err := h.sseRequest(r, bucket)
	if err != nil {
		return err
	}
	if kmsKey != "" {
		if u.Meta.SSE, _, err = h.sealerFor(r.Context(), kmsKey, bucket, key); err != nil {
			return err
		}
	}
	rec, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if err := os.Mkdir(h.st.uploadDir(id), 0o755); err != nil {
		return err
	}
	if err := h.st.writeFileAtomic(filepath.Join(h.st.uploadDir(id), "upload.json"), rec); err != nil {
		return err
	}
	if alg != "" {
		w.Header().Set("X-Amz-Checksum-Algorithm", alg)
	}
	setSSEHeaders(w, u.Meta.SSE)
	return writeXML(w, initiateResult{Xmlns: xmlns, Bucket: bucket, Key: key, UploadID: id})
}

func parsePartNumber(q url.Values) (int, error) {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > maxParts {
		return 0, invalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}

// commitPart moves a finished part file into its upload and then records it.
func (h *handler) commitPart(id string, p *partRecord, tmp string) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	p.File = fmt.Sprintf("data-%05d-%x", p.Number, b)
	dir := h.st.uploadDir(id)
	recPath := filepath.Join(dir, fmt.Sprintf("part-%05d.json", p.Number))
	var old partRecord
	if data, err := os.ReadFile(recPath); err == nil {
		_ = json.Unmarshal(data, &old)
	}
	if err := os.Rename(tmp, filepath.Join(dir, p.File)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errNoSuchUpload // aborted or completed meanwhile
		}
		return err
	}
	rec, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := h.st.writeFileAtomic(recPath, rec); err != nil {
		return err
	}
	if old.File != "" && old.File != p.File {
		_ = os.Remove(filepath.Join(dir, old.File))
	}
	return nil
}

func (h *handler) uploadPart(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) error {
	n, err := parsePartNumber(q)
	if err != nil {
		return err
	}
	u, err := h.st.loadUpload(bucket, key, q.Get("uploadId"))
	if err != nil {
		return err
	}
	var enc *sealer
	if u.Meta.SSE != nil {
		if enc, err = h.openSealer(r.Context(), u.Meta.SSE, bucket, key); err != nil {
			return err
		}
	}
	body, err := h.receiveBody(r, enc)
	if err != nil {
		return err
	}
	if u.Algorithm != "" && body.alg != "" && body.alg != u.Algorithm {
		os.Remove(body.tmp)
		return invalidRequest("Checksum Type mismatch occurred, expected checksum Type: " + strings.ToLower(u.Algorithm) + ", actual checksum Type: " + strings.ToLower(body.alg))
	}
	p := &partRecord{Number: n, ETag: hex.EncodeToString(body.md5), Size: body.size, Modified: time.Now().UTC(), Alg: body.alg, Checksum: body.checksum}
	if err := h.commitPart(q.Get("uploadId"), p, body.tmp); err != nil {
		os.Remove(body.tmp)
		return err
	}
	w.Header().Set("ETag", quote(p.ETag))
	setSSEHeaders(w, u.Meta.SSE)
	if body.alg != "" {
		w.Header().Set(checksumHeader(body.alg), body.checksum)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

func (h *handler) uploadPartCopy(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) error {
	n, err := parsePartNumber(q)
	if err != nil {
		return err
	}
	u, err := h.st.loadUpload(bucket, key, q.Get("uploadId"))
	if err != nil {
		return err
	}
	srcBucket, srcKey, err := copySource(r)
	if err != nil {
		return err
	}
	src, meta, err := h.st.openObject(srcBucket, srcKey)
	if err != nil {
		return err
	}
	defer src.Close()
	if !copyConditionsHold(r, meta) {
		return errPreconditionFail
	}
	start, length := int64(0), meta.Size
	if rng := r.Header.Get("X-Amz-Copy-Source-Range"); rng != "" {
		spec, _ := strings.CutPrefix(rng, "bytes=")
		a, b, ok := strings.Cut(spec, "-")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || first < 0 || last < first || last >= meta.Size {
			return invalidArgument("Range specified is not valid for source object of size: " + strconv.FormatInt(meta.Size, 10))
		}
		start, length = first, last-first+1
	}
	plain, err := h.plainReader(r.Context(), src, meta, srcBucket, srcKey)
	if err != nil {
		return err
	}
	var enc *sealer
	if u.Meta.SSE != nil {
		if enc, err = h.openSealer(r.Context(), u.Meta.SSE, bucket, key); err != nil {
			return err
		}
	}
	tmp, sum, err := h.copyToTemp(plain, start, length, enc)
	if err != nil {
		return err
	}
	p := &partRecord{Number: n, ETag: sum, Size: length, Modified: time.Now().UTC()}
	if err := h.commitPart(q.Get("uploadId"), p, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return writeXML(w, copyPartResult{ETag: quote(p.ETag), LastModified: isoTime(p.Modified)})
}

type completedPart struct {
	PartNumber        int    `xml:"PartNumber"`
	ETag              string `xml:"ETag"`
	ChecksumCRC32     string `xml:"ChecksumCRC32"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME"`
	ChecksumSHA1      string `xml:"ChecksumSHA1"`
	ChecksumSHA256    string `xml:"ChecksumSHA256"`
}

func (c *completedPart) checksum(alg string) string {
	switch alg {
	case "CRC32":
		return c.ChecksumCRC32
	case "CRC32C":
		return c.ChecksumCRC32C
	case "CRC64NVME":
		return c.ChecksumCRC64NVME
	case "SHA1":
		return c.ChecksumSHA1
	case "SHA256":
		return c.ChecksumSHA256
	}
	return ""
}

type completeResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

func (h *handler) completeMultipart(w http.ResponseWriter, r *http.Request, bucket, key, id string) error {
	u, err := h.st.loadUpload(bucket, key, id)
	if err != nil {
		return err
	}
	var req struct {
		Parts []completedPart `xml:"Part"`
	}
	if err := readXML(r, 4<<20, &req); err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return errMalformedXML
	}
	stored, err := h.st.loadParts(id)
	if err != nil {
		return errNoSuchUpload
	}
	var chosen []*partRecord
	for i := range req.Parts {
		c := &req.Parts[i]
		if i > 0 && c.PartNumber <= req.Parts[i-1].PartNumber {
			return errInvalidPartOrder
		}
		p := stored[c.PartNumber]
		if p == nil || strings.Trim(c.ETag, `"`) != p.ETag {
			return errInvalidPart
		}
		for _, alg := range checksumAlgorithms {
			if v := c.checksum(alg); v != "" && (p.Alg != alg || p.Checksum != v) {
				return errInvalidPart
			}
		}
		chosen = append(chosen, p)
	}
	for _, p := range chosen[:len(chosen)-1] {
		if p.Size < minPartSize {
			return errEntityTooSmall
		}
	}
	var enc *sealer
	if u.Meta.SSE != nil {
		if enc, err = h.openSealer(r.Context(), u.Meta.SSE, bucket, key); err != nil {
			return err
		}
	}
	tmp, etag, err := h.concatParts(id, chosen, enc)
	if err != nil {
		return err
	}
	meta := u.Meta
	meta.ETag, meta.Modified = etag, time.Now().UTC()
	meta.Size = 0
	for _, p := range chosen {
		meta.Size += p.Size
	}
	meta.Checksums, meta.ChecksumType = nil, ""
	for _, p := range chosen {
		meta.PartSizes = append(meta.PartSizes, p.Size)
	}
	if err := h.st.commitObject(bucket, key, tmp, &meta, writeCondition(r)); err != nil {
		os.Remove(tmp)
		return err
	}
	_ = os.RemoveAll(h.st.uploadDir(id))
	setSSEHeaders(w, meta.SSE)
	loc := "/" + bucket + "/" + (&url.URL{Path: key}).EscapedPath()
	return writeXML(w, completeResult{Xmlns: xmlns, Location: loc, Bucket: bucket, Key: key, ETag: quote(etag)})
}

// concatParts joins the parts into a fsynced temporary file and computes the multipart ETag,
// the MD5 of the parts' binary MD5s followed by "-<number of parts>". With enc (SSE-KMS), each
// part is decrypted and the whole encrypted again as one data file.
func (h *handler) concatParts(id string, parts []*partRecord, enc *sealer) (string, string, error) {
	f, err := h.st.tempFile()
	if err != nil {
		return "", "", err
	}
	fail := func(err error) (string, string, error) {
		f.Close()
		os.Remove(f.Name())
		return "", "", err
	}
	var dst io.Writer = f
	var ew *encWriter
	if enc != nil {
		if ew, err = enc.writer(f); err != nil {
			return fail(err)
		}
		dst = ew
	}
	sums := md5.New()
	buf := make([]byte, copyBufSize)
	for _, p := range parts {
		pf, err := os.Open(filepath.Join(h.st.uploadDir(id), p.File))
		if errors.Is(err, fs.ErrNotExist) {
			return fail(errInvalidPart) // replaced or aborted meanwhile
		}
		if err != nil {
			return fail(err)
		}
		var src io.Reader = pf
		if enc != nil {
			dr, err := enc.reader(pf, p.Size)
			if err != nil {
				pf.Close()
				return fail(err)
			}
			src = io.NewSectionReader(dr, 0, p.Size)
		}
		n, err := io.CopyBuffer(dst, src, buf)
		pf.Close()
		if err != nil {
			return fail(err)
		}
		if n != p.Size {
			return fail(errInvalidPart)
		}
		raw, _ := hex.DecodeString(p.ETag)
		sums.Write(raw)
	}
	if ew != nil {
		if err := ew.Close(); err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", "", err
	}
	return f.Name(), hex.EncodeToString(sums.Sum(nil)) + "-" + strconv.Itoa(len(parts)), nil
}

func (h *handler) abortMultipart(w http.ResponseWriter, bucket, key, id string) error {
	if _, err := h.st.loadUpload(bucket, key, id); err != nil {
		return err
	}
	if err := os.RemoveAll(h.st.uploadDir(id)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type partEntry struct {
	PartNumber        int    `xml:"PartNumber"`
	LastModified      string `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	Size              int64  `xml:"Size"`
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

type listPartsResult struct {
	XMLName              xml.Name    `xml:"ListPartsResult"`
	Xmlns                string      `xml:"xmlns,attr"`
	Bucket               string      `xml:"Bucket"`
	Key                  string      `xml:"Key"`
	UploadID             string      `xml:"UploadId"`
	Initiator            owner       `xml:"Initiator"`
	Owner                owner       `xml:"Owner"`
	StorageClass         string      `xml:"StorageClass"`
	PartNumberMarker     int         `xml:"PartNumberMarker"`
	NextPartNumberMarker int         `xml:"NextPartNumberMarker"`
	MaxParts             int         `xml:"MaxParts"`
	IsTruncated          bool        `xml:"IsTruncated"`
	ChecksumAlgorithm    string      `xml:"ChecksumAlgorithm,omitempty"`
	Parts                []partEntry `xml:"Part"`
}

func (h *handler) listParts(w http.ResponseWriter, bucket, key, id string, q url.Values) error {
	u, err := h.st.loadUpload(bucket, key, id)
	if err != nil {
		return err
	}
	maxP, marker := 1000, 0
	if v := q.Get("max-parts"); v != "" {
		if maxP, err = strconv.Atoi(v); err != nil || maxP < 0 {
			return invalidArgument("Provided max-parts not an integer or within integer range")
		}
		maxP = min(maxP, 1000)
	}
	if v := q.Get("part-number-marker"); v != "" {
		if marker, err = strconv.Atoi(v); err != nil || marker < 0 {
			return invalidArgument("Provided part-number-marker not an integer or within integer range")
		}
	}
	stored, err := h.st.loadParts(id)
	if err != nil {
		return errNoSuchUpload
	}
	numbers := make([]int, 0, len(stored))
	for n := range stored {
		if n > marker {
			numbers = append(numbers, n)
		}
	}
	sort.Ints(numbers)
	res := listPartsResult{Xmlns: xmlns, Bucket: bucket, Key: key, UploadID: id, Initiator: theOwner,
		Owner: theOwner, StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: maxP, ChecksumAlgorithm: u.Algorithm}
	if len(numbers) > maxP {
		numbers, res.IsTruncated = numbers[:maxP], true
	}
	for _, n := range numbers {
		p := stored[n]
		e := partEntry{PartNumber: n, LastModified: isoTime(p.Modified), ETag: quote(p.ETag), Size: p.Size}
		switch p.Alg {
		case "CRC32":
			e.ChecksumCRC32 = p.Checksum
		case "CRC32C":
			e.ChecksumCRC32C = p.Checksum
		case "CRC64NVME":
			e.ChecksumCRC64NVME = p.Checksum
		case "SHA1":
			e.ChecksumSHA1 = p.Checksum
		case "SHA256":
			e.ChecksumSHA256 = p.Checksum
		}
		res.Parts = append(res.Parts, e)
		res.NextPartNumberMarker = n
	}
	return writeXML(w, res)
}

type uploadEntry struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiator    owner  `xml:"Initiator"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
}

type listUploadsResult struct {
	XMLName            xml.Name       `xml:"ListMultipartUploadsResult"`
	Xmlns              string         `xml:"xmlns,attr"`
	Bucket             string         `xml:"Bucket"`
	KeyMarker          string         `xml:"KeyMarker"`
	UploadIDMarker     string         `xml:"UploadIdMarker"`
	NextKeyMarker      string         `xml:"NextKeyMarker,omitempty"`
	NextUploadIDMarker string         `xml:"NextUploadIdMarker,omitempty"`
	Prefix             string         `xml:"Prefix"`
	Delimiter          string         `xml:"Delimiter,omitempty"`
	MaxUploads         int            `xml:"MaxUploads"`
	IsTruncated        bool           `xml:"IsTruncated"`
	Uploads            []uploadEntry  `xml:"Upload"`
	CommonPrefixes     []commonPrefix `xml:"CommonPrefixes"`
}

func (h *handler) listMultipartUploads(w http.ResponseWriter, bucket string, q url.Values) error {
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	maxU, err := parseMaxKeys(q.Get("max-uploads"))
	if err != nil {
		return err
	}
	prefix, delimiter := q.Get("prefix"), q.Get("delimiter")
	keyMarker, idMarker := q.Get("key-marker"), q.Get("upload-id-marker")
	entries, err := os.ReadDir(h.st.uploadsDir())
	if err != nil {
		return err
	}
	type item struct {
		key, id string
		u       upload
	}
	var items []item
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(h.st.uploadsDir(), e.Name(), "upload.json"))
		var u upload
		if err != nil || json.Unmarshal(data, &u) != nil || u.Bucket != bucket || !strings.HasPrefix(u.Key, prefix) {
			continue
		}
		if u.Key < keyMarker {
			continue
		}
		items = append(items, item{u.Key, e.Name(), u})
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].key != items[j].key {
			return items[i].key < items[j].key
		}
		return items[i].u.Initiated.Before(items[j].u.Initiated) ||
			(items[i].u.Initiated.Equal(items[j].u.Initiated) && items[i].id < items[j].id)
	})
	// Resume after the marker: after upload idMarker of keyMarker when it is still listed,
	// else after every upload of keyMarker.
	start := len(items)
	for i, it := range items {
		if it.key > keyMarker || (keyMarker == "" && idMarker == "") {
			start = i
			break
		}
		if it.key == keyMarker && it.id == idMarker {
			start = i + 1
			break
		}
	}
	items = items[start:]
	res := listUploadsResult{Xmlns: xmlns, Bucket: bucket, KeyMarker: keyMarker, UploadIDMarker: idMarker,
		Prefix: prefix, Delimiter: delimiter, MaxUploads: maxU}
	for _, it := range items {
		if delimiter != "" {
			if i := strings.Index(it.key[len(prefix):], delimiter); i >= 0 {
				cp := it.key[:len(prefix)+i+len(delimiter)]
				if n := len(res.CommonPrefixes); n == 0 || res.CommonPrefixes[n-1].Prefix != cp {
					res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{cp})
				}
				continue
			}
		}
		if len(res.Uploads) >= maxU {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, uploadEntry{Key: it.key, UploadID: it.id, Initiator: theOwner,
			Owner: theOwner, StorageClass: "STANDARD", Initiated: isoTime(it.u.Initiated)})
		res.NextKeyMarker, res.NextUploadIDMarker = it.key, it.id
	}
	if !res.IsTruncated {
		res.NextKeyMarker, res.NextUploadIDMarker = "", ""
	}
	return writeXML(w, res)
}
