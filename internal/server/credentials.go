package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables that set the root credentials.
const (
	EnvRootAccessKeyID     = "LATHE_ROOT_ACCESS_KEY_ID"
	EnvRootSecretAccessKey = "LATHE_ROOT_SECRET_ACCESS_KEY"
	credentialsFile        = "credentials.json"
)

// Credentials is an access key pair.
type Credentials struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
}

// Lookup is a sigv4.SecretLookup that knows only this key.
func (c Credentials) Lookup(accessKeyID string) (string, bool) {
	if c.AccessKeyID == "" || accessKeyID != c.AccessKeyID {
		return "", false
	}
	return c.SecretAccessKey, true
}

// RootKeys are a data dir's root credentials and where they came from.
type RootKeys struct {
	Credentials
	Path      string // <dataDir>/credentials.json, where the data dir keeps them
	Generated bool   // no keys existed: new ones were generated and written to Path
	FromEnv   bool   // LATHE_ROOT_ACCESS_KEY_ID and LATHE_ROOT_SECRET_ACCESS_KEY set them
	// Saved: the environment's keys were written to Path (the data dir had none), so a later start
	// without the variables keeps them.
	Saved bool
	// Differ: the environment's keys override different ones kept in Path, which stay there.
	Differ bool
}

// LoadRootKeys returns a data dir's one set of root credentials: LATHE_ROOT_ACCESS_KEY_ID and
// LATHE_ROOT_SECRET_ACCESS_KEY when both are set, else <dataDir>/credentials.json. When the data dir
// has no keys yet and create is true, it keeps the environment's (or, without them, newly generated
// AWS-shaped keys) there with mode 0600: every later start over the same data dir, with or without
// the variables, signs with the same keys. Without create, a data dir without keys is an error
// wrapping fs.ErrNotExist.
func LoadRootKeys(dataDir string, create bool) (RootKeys, error) {
	keys := RootKeys{Path: filepath.Join(dataDir, credentialsFile)}
	id, secret := os.Getenv(EnvRootAccessKeyID), os.Getenv(EnvRootSecretAccessKey)
	if (id == "") != (secret == "") {
		return keys, fmt.Errorf("set both %s and %s, or neither", EnvRootAccessKeyID, EnvRootSecretAccessKey)
	}
	stored, err := readCredentials(keys.Path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return keys, err
	}
	switch {
	case id != "":
		keys.Credentials, keys.FromEnv = Credentials{AccessKeyID: id, SecretAccessKey: secret}, true
		keys.Differ = exists && stored != keys.Credentials
		if !exists && create {
			if err := writeCredentials(dataDir, keys.Path, keys.Credentials); err != nil {
				return keys, err
			}
			keys.Saved = true
		}
		return keys, nil
	case exists:
		keys.Credentials = stored
		return keys, nil
	case !create:
		return keys, fmt.Errorf("no root credentials in %s (the server writes them there on its first start): %w", dataDir, err)
	}
	if keys.Credentials, err = GenerateCredentials(); err != nil {
		return keys, err
	}
	if err := writeCredentials(dataDir, keys.Path, keys.Credentials); err != nil {
		return keys, err
	}
	keys.Generated = true
	return keys, nil
}

// LoadOrCreateCredentials is LoadRootKeys(dataDir, true) for callers that only need to know whether
// the keys were generated (to print them).
func LoadOrCreateCredentials(dataDir string) (creds Credentials, created bool, err error) {
	keys, err := LoadRootKeys(dataDir, true)
	if err != nil {
		return Credentials{}, false, err
	}
	return keys.Credentials, keys.Generated, nil
}

// readCredentials reads a credentials file; a missing file is an error wrapping fs.ErrNotExist.
func readCredentials(path string) (Credentials, error) {
	var creds Credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return creds, fmt.Errorf("read root credentials: %w", err)
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		return creds, fmt.Errorf("read root credentials %s: %w", path, err)
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return creds, fmt.Errorf("read root credentials %s: AccessKeyId or SecretAccessKey is empty", path)
	}
	return creds, nil
}

// GenerateCredentials returns a random key pair shaped like AWS's: "AKIA" and 16 upper-case
// letters and digits, and a 40-character secret.
func GenerateCredentials() (Credentials, error) {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var id strings.Builder
	id.WriteString("AKIA")
	buf := make([]byte, 1)
	for id.Len() < 20 {
		if _, err := rand.Read(buf); err != nil {
			return Credentials{}, fmt.Errorf("generate access key id: %w", err)
		}
		if buf[0] < 252 { // 252 = 7*36: reject the rest so every character is equally likely
			id.WriteByte(alnum[int(buf[0])%len(alnum)])
		}
	}
	secret := make([]byte, 30) // 30 bytes = 40 base64 characters
	if _, err := rand.Read(secret); err != nil {
		return Credentials{}, fmt.Errorf("generate secret access key: %w", err)
	}
	return Credentials{AccessKeyID: id.String(), SecretAccessKey: base64.StdEncoding.EncodeToString(secret)}, nil
}

// writeCredentials writes creds to path atomically (temp file, fsync, rename) with mode 0600.
func writeCredentials(dataDir, path string, creds Credentials) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	b, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return fmt.Errorf("encode root credentials: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, ".credentials-*.json")
	if err != nil {
		return fmt.Errorf("write root credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write root credentials: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write root credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write root credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write root credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write root credentials: %w", err)
	}
	if d, err := os.Open(dataDir); err == nil { // make the rename itself durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}
