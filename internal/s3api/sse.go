package s3api

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// SSE-KMS: an object stored with x-amz-server-side-encryption: aws:kms (or in a bucket whose
// default encryption says so) is kept under envelope encryption. A data key is made for the
// object by KMS (wrapped by the KMS key, with the encryption context {"aws:s3:arn": object ARN},
// as S3 does) and its wrapped form is kept in the sidecar. The data file is
//
//	salt (32 bytes) | chunk 0 | chunk 1 | ...
//
// where each chunk is up to 64 KiB of the object sealed with AES-256-GCM under
// HMAC-SHA256(data key, salt), nonce = the chunk's index, additional data = whether it is the
// last chunk (so a truncated file fails instead of reading short). Chunks let a ranged GET decrypt
// only what it sends. The salt makes every file's key its own: the parts of a multipart upload
// share one data key but never a (key, nonce) pair.

// KeyService is what SSE-KMS needs of KMS (kms.Service): data keys made and opened as the
// request's caller (the caller's kms permissions travel in the request's context).
type KeyService interface {
	NewDataKey(ctx context.Context, ref string, ec map[string]string) (keyARN string, plaintext, blob []byte, err error)
	OpenDataKey(ctx context.Context, blob []byte, ec map[string]string) (keyARN string, plaintext []byte, err error)
}

// NewWithKMS is New with SSE-KMS: objects are encrypted with keys of k.
func NewWithKMS(root string, logger *slog.Logger, k KeyService) (http.Handler, error) {
	h, err := New(root, logger)
	if err != nil {
		return nil, err
	}
	h.(*handler).kms = k
	return h, nil
}

const (
	sseAlgorithm = "aws:kms"
	sseChunk     = 64 << 10
	sseSalt      = 32
	sseTag       = 16
)

// sseInfo is an encrypted object's entry in its sidecar.
type sseInfo struct {
	KeyARN   string `json:"keyArn"`
	DataKey  []byte `json:"dataKey"`  // the data key wrapped by the KMS key
	DiskSize int64  `json:"diskSize"` // the data file's size (the object's is objectMeta.Size)
}

// encryptedSize is the data file's size for an object of n bytes.
func encryptedSize(n int64) int64 {
	chunks := (n + sseChunk - 1) / sseChunk
	if chunks == 0 {
		chunks = 1
	}
	return sseSalt + n + chunks*sseTag
}

func objectARN(bucket, key string) map[string]string {
	return map[string]string{"aws:s3:arn": "arn:aws:s3:::" + bucket + "/" + key}
}

// kmsError words a KMS failure as S3 does: AccessDenied for a denied kms action, KMS.<type>
// for the others (KMS.DisabledException, KMS.NotFoundException, ...).
func kmsError(err error) error {
	e := awserr.As(err)
	if e == nil || e.Status >= 500 {
		return err
	}
	if e.Code == "AccessDeniedException" {
		return s3err(http.StatusForbidden, "AccessDenied", e.Message)
	}
	return s3err(http.StatusBadRequest, "KMS."+e.Code, e.Message)
}

// sseRequest returns the KMS key a write asks for: the x-amz-server-side-encryption headers, else
// the bucket's default encryption; "" for a plain object.
func (h *handler) sseRequest(r *http.Request, bucket string) (string, error) {
	alg := r.Header.Get("X-Amz-Server-Side-Encryption")
	keyID := r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
	switch alg {
	case "":
		if keyID != "" {
			return "", invalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
		cfg, err := h.st.bucketEncryption(bucket)
		if err != nil || cfg == nil || cfg.Algorithm != sseAlgorithm {
			return "", err
		}
		keyID = cfg.KeyID
	case sseAlgorithm, "aws:kms:dsse":
	case "AES256":
		return "", nil // SSE-S3: the embedded store keeps such objects as they are
	default:
		return "", invalidArgument("The encryption method specified is not supported")
	}
	if h.kms == nil {
		return "", notImplemented("x-amz-server-side-encryption: aws:kms (this server has no KMS)")
	}
	if keyID == "" {
		return "", invalidArgument("Server Side Encryption with AWS KMS needs a key: this server has no AWS managed key aws/s3, so name one with x-amz-server-side-encryption-aws-kms-key-id or the bucket's default encryption")
	}
	return keyID, nil
}

// sealerFor makes the data key of a new object under keyID.
func (h *handler) sealerFor(ctx context.Context, keyID, bucket, key string) (*sseInfo, *sealer, error) {
	arn, pt, blob, err := h.kms.NewDataKey(ctx, keyID, objectARN(bucket, key))
	if err != nil {
		return nil, nil, kmsError(err)
	}
	return &sseInfo{KeyARN: arn, DataKey: blob}, &sealer{dataKey: pt}, nil
}

// openSealer unwraps an object's (or upload's) data key, as the caller: kms:Decrypt on its key.
func (h *handler) openSealer(ctx context.Context, info *sseInfo, bucket, key string) (*sealer, error) {
	if h.kms == nil {
		return nil, notImplemented("reading an SSE-KMS object (this server has no KMS)")
	}
	_, pt, err := h.kms.OpenDataKey(ctx, info.DataKey, objectARN(bucket, key))
	if err != nil {
		return nil, kmsError(err)
	}
	return &sealer{dataKey: pt}, nil
}

// setSSEHeaders adds the SSE headers of an object's answers.
func setSSEHeaders(w http.ResponseWriter, info *sseInfo) {
	if info == nil {
		return
	}
	w.Header().Set("X-Amz-Server-Side-Encryption", sseAlgorithm)
	w.Header().Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", info.KeyARN)
}

// sealer encrypts and decrypts the data files of one data key.
type sealer struct{ dataKey []byte }

func (s *sealer) aead(salt []byte) (cipher.AEAD, error) {
	mac := hmac.New(sha256.New, s.dataKey)
	mac.Write(salt)
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func chunkNonce(i int64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], uint64(i))
	return n
}

var (
	notLast = []byte{0}
	isLast  = []byte{1}
)

// encWriter encrypts what is written to it into w; Close seals the last chunk (and does not close w).
type encWriter struct {
	w    io.Writer
	aead cipher.AEAD
	buf  []byte
	out  []byte
	idx  int64
	n    int64 // plaintext bytes written
}

// writer starts a data file on w.
func (s *sealer) writer(w io.Writer) (*encWriter, error) {
	salt := make([]byte, sseSalt)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	aead, err := s.aead(salt)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(salt); err != nil {
		return nil, err
	}
	return &encWriter{w: w, aead: aead, buf: make([]byte, 0, sseChunk), out: make([]byte, 0, sseChunk+sseTag)}, nil
}

func (e *encWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		// A full chunk is sealed only once more data follows: the last chunk is marked as such.
		if len(e.buf) == sseChunk {
			if err := e.flush(notLast); err != nil {
				return total - len(p), err
			}
		}
		n := copy(e.buf[len(e.buf):sseChunk], p)
		e.buf = e.buf[:len(e.buf)+n]
		p = p[n:]
		e.n += int64(n)
	}
	return total, nil
}

func (e *encWriter) flush(last []byte) error {
	e.out = e.aead.Seal(e.out[:0], chunkNonce(e.idx), e.buf, last)
	e.idx++
	e.buf = e.buf[:0]
	_, err := e.w.Write(e.out)
	return err
}

func (e *encWriter) Close() error { return e.flush(isLast) }

// decReader reads the plaintext of a data file of an object of size bytes.
type decReader struct {
	f    io.ReaderAt
	aead cipher.AEAD
	size int64
}

func (s *sealer) reader(f io.ReaderAt, size int64) (*decReader, error) {
	salt := make([]byte, sseSalt)
	if _, err := f.ReadAt(salt, 0); err != nil {
		return nil, fmt.Errorf("read the salt of an encrypted object: %w", err)
	}
	aead, err := s.aead(salt)
	if err != nil {
		return nil, err
	}
	return &decReader{f: f, aead: aead, size: size}, nil
}

var errSSEDamaged = errors.New("s3api: an encrypted object's data does not authenticate")

// ReadAt decrypts the chunks that hold [off, off+len(p)).
func (d *decReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	chunks := (d.size + sseChunk - 1) / sseChunk
	if chunks == 0 {
		chunks = 1
	}
	n := 0
	ct := make([]byte, sseChunk+sseTag)
	for n < len(p) && off < d.size {
		i := off / sseChunk
		plainLen := min(sseChunk, d.size-i*sseChunk)
		c := ct[:plainLen+sseTag]
		if _, err := d.f.ReadAt(c, sseSalt+i*(sseChunk+sseTag)); err != nil {
			return n, fmt.Errorf("read an encrypted chunk: %w", err)
		}
		last := notLast
		if i == chunks-1 {
			last = isLast
		}
		pt, err := d.aead.Open(c[:0], chunkNonce(i), c, last)
		if err != nil {
			return n, errSSEDamaged
		}
		k := copy(p[n:], pt[off-i*sseChunk:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// plainReader returns a reader of an object's bytes: the file itself, or its decryption.
func (h *handler) plainReader(ctx context.Context, f *os.File, meta *objectMeta, bucket, key string) (io.ReaderAt, error) {
	if meta.SSE == nil {
		return f, nil
	}
	s, err := h.openSealer(ctx, meta.SSE, bucket, key)
	if err != nil {
		return nil, err
	}
	return s.reader(f, meta.Size)
}

// Bucket default encryption (PutBucketEncryption and friends), kept in <root>/.encryption/<bucket>.

type bucketEncryption struct {
	Algorithm string `json:"algorithm"`
	KeyID     string `json:"keyId,omitempty"`
	BucketKey bool   `json:"bucketKey,omitempty"`
}

func (s *store) encryptionPath(bucket string) string {
	return filepath.Join(s.root, ".encryption", bucket)
}

func (s *store) bucketEncryption(bucket string) (*bucketEncryption, error) {
	b, err := os.ReadFile(s.encryptionPath(bucket))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cfg bucketEncryption
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("decode the encryption of bucket %s: %w", bucket, err)
	}
	return &cfg, nil
}

type encryptionXML struct {
	XMLName xml.Name         `xml:"ServerSideEncryptionConfiguration"`
	Xmlns   string           `xml:"xmlns,attr,omitempty"`
	Rules   []encryptionRule `xml:"Rule"`
}

type encryptionRule struct {
	Default struct {
		SSEAlgorithm   string `xml:"SSEAlgorithm"`
		KMSMasterKeyID string `xml:"KMSMasterKeyID,omitempty"`
	} `xml:"ApplyServerSideEncryptionByDefault"`
	BucketKeyEnabled bool `xml:"BucketKeyEnabled"`
}

func (h *handler) serveBucketEncryption(w http.ResponseWriter, r *http.Request, bucket string) error {
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	path := h.st.encryptionPath(bucket)
	switch r.Method {
	case http.MethodGet:
		cfg, err := h.st.bucketEncryption(bucket)
		if err != nil {
			return err
		}
		if cfg == nil {
			return s3err(http.StatusNotFound, "ServerSideEncryptionConfigurationNotFoundError", "The server side encryption configuration was not found")
		}
		var doc encryptionXML
		doc.Xmlns = xmlns
		doc.Rules = make([]encryptionRule, 1)
		doc.Rules[0].Default.SSEAlgorithm, doc.Rules[0].Default.KMSMasterKeyID = cfg.Algorithm, cfg.KeyID
		doc.Rules[0].BucketKeyEnabled = cfg.BucketKey
		return writeXML(w, doc)
	case http.MethodPut:
		var doc encryptionXML
		if err := readXML(r, 64<<10, &doc); err != nil {
			return err
		}
		if len(doc.Rules) != 1 {
			return errMalformedXML
		}
		rule := doc.Rules[0]
		cfg := bucketEncryption{Algorithm: rule.Default.SSEAlgorithm, KeyID: rule.Default.KMSMasterKeyID, BucketKey: rule.BucketKeyEnabled}
		switch cfg.Algorithm {
		case "AES256":
			if cfg.KeyID != "" {
				return invalidArgument("a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse")
			}
		case sseAlgorithm, "aws:kms:dsse":
			cfg.Algorithm = sseAlgorithm
			if h.kms == nil {
				return notImplemented("aws:kms default encryption (this server has no KMS)")
			}
			if cfg.KeyID == "" {
				return invalidArgument("Default encryption with aws:kms needs a KMSMasterKeyID: this server has no AWS managed key aws/s3")
			}
		default:
			return errMalformedXML
		}
		b, _ := json.Marshal(cfg)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := h.st.writeFileAtomic(path, b); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	case http.MethodDelete:
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return errMethodNotAllowed
}
