package s3api

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"
)

// checksumAlgorithms are the x-amz-checksum-* algorithms S3 accepts, by their names in the
// x-amz-sdk-checksum-algorithm header.
var checksumAlgorithms = []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}

// crc64NVME is CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5, init and xorout all ones,
// which is how hash/crc64 computes every table.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

func newChecksumHash(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "CRC64NVME":
		return crc64.New(crc64NVME)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

func checksumHeader(alg string) string { return "x-amz-checksum-" + strings.ToLower(alg) }

// checksumLen is the decoded length of each algorithm's checksum.
func checksumLen(alg string) int {
	switch alg {
	case "CRC32", "CRC32C":
		return 4
	case "CRC64NVME":
		return 8
	case "SHA1":
		return sha1.Size
	}
	return sha256.Size
}

// bodyDigests is what a client asked to have verified for one body: Content-MD5 and at most
// one x-amz-checksum-* algorithm, whose value comes in a header or, after the body, in a trailer.
type bodyDigests struct {
	contentMD5 []byte
	alg        string // "" when no checksum algorithm was named
	value      string // base64, from the header; "" when it comes in the trailer
	trailer    bool
}

// parseDigests reads the digest headers of a request that carries a body to store.
func parseDigests(r *http.Request) (*bodyDigests, error) {
	d := &bodyDigests{}
	if v := r.Header.Get("Content-Md5"); v != "" {
		sum, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(sum) != md5.Size {
			return nil, errInvalidDigest
		}
		d.contentMD5 = sum
	}
	for _, alg := range checksumAlgorithms {
		v := r.Header.Get(checksumHeader(alg))
		if v == "" {
			continue
		}
		if d.alg != "" {
			return nil, invalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		if sum, err := base64.StdEncoding.DecodeString(v); err != nil || len(sum) != checksumLen(alg) {
			return nil, invalidRequest("Value for " + checksumHeader(alg) + " header is invalid.")
		}
		d.alg, d.value = alg, v
	}
	for _, name := range declaredTrailers(r) {
		alg, ok := trailerAlgorithm(name)
		if !ok {
			continue
		}
		if d.alg != "" && d.alg != alg {
			return nil, invalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		if d.value == "" {
			d.alg, d.trailer = alg, true
		}
	}
	if sdkAlg := strings.ToUpper(r.Header.Get("X-Amz-Sdk-Checksum-Algorithm")); sdkAlg != "" {
		if newChecksumHash(sdkAlg) == nil {
			return nil, invalidRequest("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
		}
		if d.alg == "" {
			return nil, invalidRequest("x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.")
		}
		if d.alg != sdkAlg {
			return nil, invalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
		}
	}
	return d, nil
}

// declaredTrailers lists the trailer names a request announced, in the x-amz-trailer header
// or as keys of r.Trailer.
func declaredTrailers(r *http.Request) []string {
	var names []string
	for _, n := range strings.Split(r.Header.Get("X-Amz-Trailer"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	for n := range r.Trailer {
		names = append(names, n)
	}
	return names
}

func trailerAlgorithm(name string) (string, bool) {
	for _, alg := range checksumAlgorithms {
		if strings.EqualFold(name, checksumHeader(alg)) {
			return alg, true
		}
	}
	return "", false
}

// bodyHasher computes the MD5 (for the ETag) and the requested checksum while a body streams.
type bodyHasher struct {
	md5  hash.Hash
	alg  string
	hash hash.Hash
}

func newBodyHasher(alg string) *bodyHasher {
	h := &bodyHasher{md5: md5.New(), alg: alg}
	if alg != "" {
		h.hash = newChecksumHash(alg)
	}
	return h
}

func (h *bodyHasher) Write(p []byte) (int, error) {
	h.md5.Write(p)
	if h.hash != nil {
		h.hash.Write(p)
	}
	return len(p), nil
}

func (h *bodyHasher) checksum() string {
	if h.hash == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(h.hash.Sum(nil))
}

// verify checks the received body against what the client declared; call it after the body
// reached EOF, when trailers are readable.
func (d *bodyDigests) verify(r *http.Request, h *bodyHasher) (md5sum []byte, checksum string, err error) {
	md5sum = h.md5.Sum(nil)
	if d.contentMD5 != nil && string(d.contentMD5) != string(md5sum) {
		return nil, "", errBadMD5
	}
	if d.alg == "" {
		return md5sum, "", nil
	}
	want := d.value
	if d.trailer {
		want = r.Trailer.Get(checksumHeader(d.alg))
		if want == "" {
			return nil, "", invalidRequest("The " + checksumHeader(d.alg) + " trailer was declared but not sent.")
		}
		if sum, err := base64.StdEncoding.DecodeString(want); err != nil || len(sum) != checksumLen(d.alg) {
			return nil, "", invalidRequest("Value for " + checksumHeader(d.alg) + " trailing header is invalid.")
		}
	}
	got := h.checksum()
	if got != want {
		return nil, "", s3err(http.StatusBadRequest, "BadDigest", "The "+d.alg+" you specified did not match the calculated checksum.")
	}
	return md5sum, got, nil
}
