package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Store keeps IAM's state as JSON documents by kind and key. It is deliberately small so that a
// backend is a page of code (iam/sqlite today; a PostgreSQL one is the same table with jsonb): the
// Service does the modelling, the store only keeps documents and runs transactions.
type Store interface {
	// Update runs fn in one write transaction; fn's error rolls it back.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read transaction.
	View(ctx context.Context, fn func(Tx) error) error
}

// Tx is one transaction of a Store.
type Tx interface {
	// Get returns a document, or ErrNotFound.
	Get(kind, key string) ([]byte, error)
	// Put inserts or replaces a document.
	Put(kind, key string, doc []byte) error
	// Delete removes a document; a missing one is not an error.
	Delete(kind, key string) error
	// List returns the documents of a kind ordered by key.
	List(kind string) ([][]byte, error)
}

// ErrNotFound is returned by Tx.Get for a missing document.
var ErrNotFound = errors.New("iam: not found")

// Document kinds.
const (
	kindUser    = "user"    // key: lower-case user name
	kindGroup   = "group"   // key: lower-case group name
	kindRole    = "role"    // key: lower-case role name
	kindPolicy  = "policy"  // key: lower-case policy name (customer managed)
	kindKey     = "key"     // key: access key id
	kindSession = "session" // key: temporary access key id
)

// Tag is an IAM tag.
type Tag struct {
	Key   string
	Value string
}

// User is an IAM user. Inline policies are keyed by name; Attached lists managed policy ARNs.
type User struct {
	Name     string
	ID       string
	Path     string
	Created  time.Time
	Tags     []Tag             `json:",omitempty"`
	Inline   map[string]string `json:",omitempty"`
	Attached []string          `json:",omitempty"`
	Groups   []string          `json:",omitempty"` // group names as spelled at creation
}

// Group is an IAM group; its members are recorded on the users.
type Group struct {
	Name     string
	ID       string
	Path     string
	Created  time.Time
	Inline   map[string]string `json:",omitempty"`
	Attached []string          `json:",omitempty"`
}

// Role is an IAM role with its trust policy.
type Role struct {
	Name               string
	ID                 string
	Path               string
	Created            time.Time
	Description        string `json:",omitempty"`
	TrustPolicy        string
	MaxSessionDuration int
	Tags               []Tag             `json:",omitempty"`
	Inline             map[string]string `json:",omitempty"`
	Attached           []string          `json:",omitempty"`
}

// ManagedPolicy is a customer managed policy with its versions.
type ManagedPolicy struct {
	Name           string
	ID             string
	Path           string
	Description    string `json:",omitempty"`
	Created        time.Time
	Updated        time.Time
	DefaultVersion string
	NextVersion    int
	Versions       []PolicyVersion
	Attachments    int
}

// PolicyVersion is one version of a managed policy.
type PolicyVersion struct {
	ID       string
	Document string
	Created  time.Time
}

// AccessKey is a user's long-term key pair.
type AccessKey struct {
	ID       string
	Secret   string
	UserName string
	Status   string // Active or Inactive
	Created  time.Time
}

// Session is a set of temporary credentials made by AssumeRole.
type Session struct {
	AccessKeyID string
	Secret      string
	Token       string
	RoleName    string
	RoleID      string
	RolePath    string
	SessionName string
	Expiration  time.Time
	Policy      string `json:",omitempty"` // the session policy passed to AssumeRole
	SourceARN   string // who assumed the role
}

func getDoc[T any](tx Tx, kind, key string) (*T, error) {
	b, err := tx.Get(kind, key)
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode iam %s %q: %w", kind, key, err)
	}
	return &v, nil
}

func putDoc(tx Tx, kind, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode iam %s %q: %w", kind, key, err)
	}
	return tx.Put(kind, key, b)
}

func listDocs[T any](tx Tx, kind string) ([]*T, error) {
	docs, err := tx.List(kind)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(docs))
	for _, b := range docs {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("decode iam %s: %w", kind, err)
		}
		out = append(out, &v)
	}
	return out, nil
}
