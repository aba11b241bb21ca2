package kms

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyFile is the file in the data dir that holds the master key when LATHE_MASTER_KEY is unset.
const MasterKeyFile = "master.key"

// LoadMasterKey returns the 32-byte master key that wraps every KMS key's material: from env (the
// value of LATHE_MASTER_KEY: 64 hex digits or base64 of 32 bytes) when it is not empty, else from
// <dataDir>/master.key, which the first start creates (0600) with a random key.
//
// Losing the key loses every KMS key and so every object encrypted under one: it is kept apart
// from the metadata store on purpose, so that a copy of the database alone opens nothing.
func LoadMasterKey(env, dataDir string) ([]byte, error) {
	if env = strings.TrimSpace(env); env != "" {
		k, err := decodeMasterKey(env)
		if err != nil {
			return nil, fmt.Errorf("LATHE_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := decodeMasterKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	// O_EXCL: two processes starting on one new data dir must not each write their own key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadMasterKey("", dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write master key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write master key: %w", err)
	}
	return k, f.Close()
}

func decodeMasterKey(s string) ([]byte, error) {
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, errors.New("the master key must be 32 bytes as 64 hex digits or base64")
}
