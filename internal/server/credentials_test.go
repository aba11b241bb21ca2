package server

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLoadOrCreateCredentials(t *testing.T) {
	t.Setenv(EnvRootAccessKeyID, "")
	t.Setenv(EnvRootSecretAccessKey, "")
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet

	first, created, err := LoadOrCreateCredentials(dir)
	if err != nil || !created {
		t.Fatalf("first start: created=%v, %v", created, err)
	}
	if !regexp.MustCompile(`^AKIA[A-Z0-9]{16}$`).MatchString(first.AccessKeyID) || len(first.SecretAccessKey) != 40 {
		t.Errorf("generated keys are not AWS-shaped: %q / %d chars", first.AccessKeyID, len(first.SecretAccessKey))
	}
	info, err := os.Stat(filepath.Join(dir, "credentials.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v", err, info.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only credentials.json (no temp files left)", len(entries))
	}

	again, created, err := LoadOrCreateCredentials(dir)
	if err != nil || created || again != first {
		t.Fatalf("second start: %+v created=%v %v, want the same keys", again, created, err)
	}

	t.Setenv(EnvRootAccessKeyID, "AKIAFROMENVIRONMENT1")
	t.Setenv(EnvRootSecretAccessKey, "env-secret")
	env, created, err := LoadOrCreateCredentials(dir)
	if err != nil || created || env.AccessKeyID != "AKIAFROMENVIRONMENT1" || env.SecretAccessKey != "env-secret" {
		t.Fatalf("from environment: %+v created=%v %v", env, created, err)
	}

	t.Setenv(EnvRootSecretAccessKey, "")
	if _, _, err := LoadOrCreateCredentials(dir); err == nil || !strings.Contains(err.Error(), EnvRootSecretAccessKey) {
		t.Errorf("only the key id set: %v", err)
	}

	t.Setenv(EnvRootAccessKeyID, "")
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "credentials.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateCredentials(bad); err == nil {
		t.Errorf("a corrupt credentials file was accepted")
	}
	if b, _ := os.ReadFile(filepath.Join(bad, "credentials.json")); string(b) != "{not json" {
		t.Errorf("a corrupt credentials file was overwritten")
	}
}

func TestGeneratedCredentialsDiffer(t *testing.T) {
	a, err := GenerateCredentials()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateCredentials()
	if a == b {
		t.Fatalf("two generated key pairs are equal: %+v", a)
	}
}

// One set of keys per data dir: keys first given in the environment (as the quickstart did) are kept
// in the data dir, so a later start without the variables signs with the same keys instead of
// generating new ones; environment keys that differ from the kept ones override them for that start
// only, and say so.
func TestRootKeysStayWithTheDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	t.Setenv(EnvRootAccessKeyID, "")
	t.Setenv(EnvRootSecretAccessKey, "")
	if _, err := LoadRootKeys(dir, false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading keys of a data dir without any: %v, want ErrNotExist", err)
	}

	t.Setenv(EnvRootAccessKeyID, "AKIAQUICKSTART000001")
	t.Setenv(EnvRootSecretAccessKey, "quickstart-secret")
	first, err := LoadRootKeys(dir, true)
	if err != nil || !first.FromEnv || !first.Saved || first.Generated || first.AccessKeyID != "AKIAQUICKSTART000001" {
		t.Fatalf("first start with LATHE_ROOT_*: %+v, %v", first, err)
	}
	if info, err := os.Stat(first.Path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("kept keys: %v, %v; want a 0600 file", info, err)
	}

	t.Setenv(EnvRootAccessKeyID, "")
	t.Setenv(EnvRootSecretAccessKey, "")
	again, err := LoadRootKeys(dir, true)
	if err != nil || again.Generated || again.FromEnv || again.Credentials != first.Credentials {
		t.Fatalf("restart without LATHE_ROOT_*: %+v, %v; want the quickstart's keys", again, err)
	}
	if read, err := LoadRootKeys(dir, false); err != nil || read.Credentials != first.Credentials {
		t.Errorf("reading the data dir's keys: %+v, %v", read, err)
	}

	t.Setenv(EnvRootAccessKeyID, "AKIAOTHER00000000001")
	t.Setenv(EnvRootSecretAccessKey, "other-secret")
	other, err := LoadRootKeys(dir, true)
	if err != nil || !other.FromEnv || !other.Differ || other.Saved || other.AccessKeyID != "AKIAOTHER00000000001" {
		t.Fatalf("other keys in the environment: %+v, %v", other, err)
	}
	if kept, _ := readCredentials(first.Path); kept != first.Credentials {
		t.Errorf("the data dir's keys were replaced by the environment's: %+v", kept)
	}
}
