// Package kms is Lathe's Key Management Service: symmetric customer keys with aliases, states
// (Enabled, Disabled, PendingDeletion) and key policies, and the cryptographic operations on them
// (Encrypt, Decrypt, GenerateDataKey, ReEncrypt), served over KMS's JSON 1.1 protocol by the front
// door, and used in-process by S3's SSE-KMS and the jobs' artifact encryption.
//
// Each key's material is 32 random bytes, kept in the IAM document store sealed under the master
// key (LoadMasterKey) and never returned. Ciphertext blobs name their key, so Decrypt needs no key id.
package kms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/iam"
)

// Config wires the service.
type Config struct {
	// Store keeps keys and aliases (IAM's document store: one database for both).
	Store     iam.Store
	Region    string
	AccountID string
	// MasterKey (32 bytes) seals every key's material.
	MasterKey []byte
	// Now is the clock of key deletion; nil means time.Now. Tests move it past a deletion window.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is KMS over a Store.
type Service struct {
	store   iam.Store
	region  string
	account string
	master  []byte
	now     func() time.Time
	log     *slog.Logger
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("kms: Config.Store is nil")
	}
	if len(cfg.MasterKey) != 32 {
		return nil, fmt.Errorf("kms: the master key has %d bytes, want 32", len(cfg.MasterKey))
	}
	s := &Service{store: cfg.Store, region: cfg.Region, account: cfg.AccountID, master: cfg.MasterKey, now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Key states (KeyMetadata.KeyState).
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
)

// Document kinds in the store.
const (
	kindKey   = "kms-key"   // key: key id
	kindAlias = "kms-alias" // key: alias name ("alias/x")
)

// key is a stored KMS key.
type key struct {
	ID           string
	Description  string
	State        string
	Created      time.Time
	DeletionDate time.Time `json:",omitempty"`
	PendingDays  int       `json:",omitempty"`
	Policy       string
	Material     []byte // sealed under the master key, additional data: the key id
	Tags         []Tag  `json:",omitempty"`
}

// Tag is a KMS resource tag.
type Tag struct {
	TagKey   string
	TagValue string
}

type alias struct {
	Name    string
	KeyID   string
	Created time.Time
	Updated time.Time
}

// KeyARN returns arn:aws:kms:REGION:ACCOUNT:key/ID.
func (s *Service) KeyARN(id string) string {
	return "arn:aws:kms:" + s.region + ":" + s.account + ":key/" + id
}

func (s *Service) aliasARN(name string) string {
	return "arn:aws:kms:" + s.region + ":" + s.account + ":" + name
}

// DefaultKeyPolicy is the policy a key gets when CreateKey names none: it gives the account (its
// root) every kms action on the key, which on AWS means "let IAM policies decide".
func (s *Service) DefaultKeyPolicy() string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::` + s.account + `:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`
}

// Errors, with KMS's types and words.

func validation(format string, args ...any) error {
	return awserr.New(http.StatusBadRequest, "ValidationException", format, args...)
}

func required(field string) error {
	return validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
}

func (s *Service) keyNotFound(id string) error {
	return awserr.New(http.StatusBadRequest, "NotFoundException", "Key '%s' does not exist", s.KeyARN(id))
}

func (s *Service) stateError(k *key) error {
	switch k.State {
	case StateDisabled:
		return awserr.New(http.StatusBadRequest, "DisabledException", "%s is disabled.", s.KeyARN(k.ID))
	case StatePendingDeletion:
		return awserr.New(http.StatusBadRequest, "KMSInvalidStateException", "%s is pending deletion.", s.KeyARN(k.ID))
	}
	return nil
}

func invalidCiphertext() error {
	return awserr.New(http.StatusBadRequest, "InvalidCiphertextException",
		"The ciphertext is not a valid ciphertext blob, or it was encrypted under another key or encryption context.")
}

// IsKMSError reports whether err is one of KMS's own client errors (not an internal failure).
func IsKMSError(err error) bool {
	e := awserr.As(err)
	return e != nil && e.Status < 500
}

// getKey reads a key by id, finishing its deletion when its window has passed (deletion is lazy:
// the next read after DeletionDate removes it and its aliases).
func (s *Service) getKey(tx iam.Tx, id string) (*key, error) {
	b, err := tx.Get(kindKey, id)
	if errors.Is(err, iam.ErrNotFound) {
		return nil, s.keyNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	var k key
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("decode kms key %s: %w", id, err)
	}
	if k.State == StatePendingDeletion && !s.now().Before(k.DeletionDate) {
		return nil, s.keyNotFound(id)
	}
	return &k, nil
}

func putJSON(tx iam.Tx, kind, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode kms %s %s: %w", kind, id, err)
	}
	return tx.Put(kind, id, b)
}

// resolve turns any of KMS's four ways of naming a key (id, key ARN, alias name, alias ARN) into the
// key.
func (s *Service) resolve(tx iam.Tx, ref string) (*key, error) {
	if ref == "" {
		return nil, required("keyId")
	}
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		parts := strings.SplitN(ref, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" {
			return nil, awserr.New(http.StatusBadRequest, "NotFoundException", "Invalid arn %s", ref)
		}
		if parts[3] != s.region || parts[4] != s.account {
			return nil, awserr.New(http.StatusBadRequest, "NotFoundException", "Invalid arn %s", ref)
		}
		name = parts[5]
		if id, ok := strings.CutPrefix(name, "key/"); ok {
			return s.getKey(tx, id)
		}
		if !strings.HasPrefix(name, "alias/") {
			return nil, awserr.New(http.StatusBadRequest, "NotFoundException", "Invalid arn %s", ref)
		}
	}
	if strings.HasPrefix(name, "alias/") {
		b, err := tx.Get(kindAlias, name)
		if errors.Is(err, iam.ErrNotFound) {
			return nil, awserr.New(http.StatusBadRequest, "NotFoundException", "Alias %s is not found.", s.aliasARN(name))
		}
		if err != nil {
			return nil, err
		}
		var a alias
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, fmt.Errorf("decode kms alias %s: %w", name, err)
		}
		k, err := s.getKey(tx, a.KeyID)
		if e := awserr.As(err); e != nil && e.Code == "NotFoundException" {
			return nil, awserr.New(http.StatusBadRequest, "NotFoundException", "Alias %s is not found.", s.aliasARN(name))
		}
		return k, err
	}
	if !isKeyID(name) {
		return nil, awserr.New(http.StatusBadRequest, "NotFoundException", "Invalid keyId '%s'", ref)
	}
	return s.getKey(tx, name)
}

// isKeyID reports whether s is a key id in the UUID layout.
func isKeyID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !(c >= 'a' && c <= 'f' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func newKeyID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// material opens a key's material with the master key.
func (s *Service) material(k *key) ([]byte, error) {
	p, err := parseBlob(k.Material)
	if err != nil {
		return nil, fmt.Errorf("kms key %s: stored material is damaged", k.ID)
	}
	m, err := open(s.master, p, map[string]string{"key": k.ID})
	if err != nil {
		return nil, fmt.Errorf("kms key %s: the master key does not open its material (was LATHE_MASTER_KEY or %s changed?)", k.ID, MasterKeyFile)
	}
	return m, nil
}

// usable resolves a key for a cryptographic operation: it must be Enabled.
func (s *Service) usable(ctx context.Context, ref string) (*key, []byte, error) {
	var k *key
	err := s.store.View(ctx, func(tx iam.Tx) error {
		var err error
		k, err = s.resolve(tx, ref)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if err := s.stateError(k); err != nil {
		return nil, nil, err
	}
	m, err := s.material(k)
	return k, m, err
}

// epoch is a time in KMS's JSON form: seconds since the epoch, as a number.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', -1, 64)), nil
}
