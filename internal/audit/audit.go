// Package audit keeps Lathe's audit trail: one JSON line per request (who, what, on which
// resource, from where, and whether it was allowed and by which policy statement) in
// <data dir>/audit/audit.log, rotated by size into audit-<time>.log files of which the newest
// are kept. `lathe audit tail` reads it.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Event is one request's line.
type Event struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId"`
	Principal string    `json:"principal,omitempty"` // the caller's ARN; empty when it could not be authenticated
	AccessKey string    `json:"accessKeyId,omitempty"`
	SourceIP  string    `json:"sourceIp,omitempty"`
	API       string    `json:"api"`              // s3, sagemaker, runtime, iam, kms, openai
	Action    string    `json:"action,omitempty"` // "s3:GetObject"
	Resource  string    `json:"resource,omitempty"`
	Allowed   bool      `json:"allowed"`
	// Decision is Allow, ExplicitDeny or ImplicitDeny as IAM evaluated it; Root for the account's
	// root (allowed everything, nothing evaluated); Unauthenticated for a refused signature.
	Decision  string `json:"decision"`
	Policy    string `json:"policy,omitempty"`    // the deciding policy ("role/trainer/p0", a managed policy ARN, "resource-policy")
	Statement string `json:"statement,omitempty"` // its Sid, or its position ("#2") when it has none
	Status    int    `json:"status"`
}

// File is the current log's name in the audit directory.
const File = "audit.log"

// Log appends events to <dir>/audit.log, rotating it when it would pass MaxSize.
type Log struct {
	dir     string
	maxSize int64
	keep    int

	mu   sync.Mutex
	f    *os.File
	size int64
	now  func() time.Time
}

// Open opens (creating) the audit log in dir; rotated files beyond keep are removed.
func Open(dir string, maxSize int64, keep int) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create audit dir: %w", err)
	}
	l := &Log{dir: dir, maxSize: maxSize, keep: keep, now: time.Now}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(filepath.Join(l.dir, File), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open audit log: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends one event. Each line is written with one write call on an O_APPEND file, so lines
// of several processes sharing a data dir do not interleave.
func (l *Log) Write(e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("audit: log closed")
	}
	if l.size > 0 && l.size+int64(len(b)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	return err
}

// rotate renames audit.log to audit-<time>.log and starts a new one; the caller holds mu.
func (l *Log) rotate() error {
	l.f.Close()
	l.f = nil
	name := "audit-" + l.now().UTC().Format("20060102T150405.000000000Z") + ".log"
	if err := os.Rename(filepath.Join(l.dir, File), filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate audit log: %w", err)
	}
	if err := l.open(); err != nil {
		return err
	}
	rotated, err := Rotated(l.dir)
	if err != nil {
		return err
	}
	for len(rotated) > l.keep {
		_ = os.Remove(filepath.Join(l.dir, rotated[0]))
		rotated = rotated[1:]
	}
	return nil
}

// Rotated lists the rotated files of dir, oldest first.
func Rotated(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "audit-") && strings.HasSuffix(n, ".log") {
			out = append(out, n)
		}
	}
	sort.Strings(out) // the time in the name sorts as text
	return out, nil
}

// Close closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
