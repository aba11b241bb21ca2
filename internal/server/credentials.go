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

// LoadOrCreateCredentials returns the root credentials: from LATHE_ROOT_ACCESS_KEY_ID and
// LATHE_ROOT_SECRET_ACCESS_KEY when both are set, else from <dataDir>/credentials.json, else newly
// generated AWS-shaped keys written there with mode 0600. created is true only in the last case,
// so the caller prints them once.
func LoadOrCreateCredentials(dataDir string) (creds Credentials, created bool, err error) {
	id, secret := os.Getenv(EnvRootAccessKeyID), os.Getenv(EnvRootSecretAccessKey)
	switch {
	case id != "" && secret != "":
		return Credentials{AccessKeyID: id, SecretAccessKey: secret}, false, nil
	case id != "" || secret != "":
		return Credentials{}, false, fmt.Errorf("set both %s and %s, or neither", EnvRootAccessKeyID, EnvRootSecretAccessKey)
	}
	path := filepath.Join(dataDir, credentialsFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &creds); err != nil {
			return Credentials{}, false, fmt.Errorf("read root credentials %s: %w", path, err)
		}
		if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
			return Credentials{}, false, fmt.Errorf("read root credentials %s: AccessKeyId or SecretAccessKey is empty", path)
		}
		return creds, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, false, fmt.Errorf("read root credentials: %w", err)
	}
	creds, err = GenerateCredentials()
	if err != nil {
		return Credentials{}, false, err
	}
	if err := writeCredentials(dataDir, path, creds); err != nil {
		return Credentials{}, false, err
	}
	return creds, true, nil
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
