package kms

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMasterKeyIsGeneratedOnceIntoAPrivateFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadMasterKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, MasterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadMasterKey("", dir)
	if err != nil || !bytes.Equal(k1, k2) || len(k1) != 32 {
		t.Fatalf("second start read another key (%v)", err)
	}
	env := strings.Repeat("ab", 32)
	k3, err := LoadMasterKey(env, dir)
	if err != nil || hex.EncodeToString(k3) != env {
		t.Fatalf("LATHE_MASTER_KEY not used: %x %v", k3, err)
	}
	if _, err := LoadMasterKey("short", dir); err == nil || !strings.Contains(err.Error(), "LATHE_MASTER_KEY") {
		t.Fatalf("a short LATHE_MASTER_KEY: %v", err)
	}
}

func TestBlobsNameTheirKeyAndAuthenticateIt(t *testing.T) {
	material := bytes.Repeat([]byte{7}, 32)
	id := "1234abcd-12ab-34cd-56ef-1234567890ab"
	ct, err := seal(material, id, []byte("plaintext"), map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := KeyIDOf(ct); err != nil || got != id {
		t.Fatalf("KeyIDOf = %q, %v", got, err)
	}
	p, _ := parseBlob(ct)
	if pt, err := open(material, p, map[string]string{"a": "b"}); err != nil || string(pt) != "plaintext" {
		t.Fatalf("open: %q %v", pt, err)
	}
	// Another key id in the header (same length) no longer authenticates.
	forged := bytes.Replace(ct, []byte(id), []byte("1234abcd-12ab-34cd-56ef-1234567890ac"), 1)
	p, err = parseBlob(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(material, p, map[string]string{"a": "b"}); err == nil {
		t.Fatal("a blob with a changed key id decrypted")
	}
}

// FuzzParseCiphertext: no input panics the parser, and what it accepts has the layout it claims.
func FuzzParseCiphertext(f *testing.F) {
	material := bytes.Repeat([]byte{1}, 32)
	ct, _ := seal(material, "1234abcd-12ab-34cd-56ef-1234567890ab", []byte("x"), nil)
	f.Add(ct)
	f.Add([]byte{})
	f.Add([]byte("LK\x01\x00"))
	f.Add([]byte("LK\x01\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseBlob(b)
		if err != nil {
			return
		}
		if len(p.nonce) != nonceSize || len(p.sealed) < gcmTagSize || len(p.keyID) == 0 || len(p.keyID) > maxKeyIDLen {
			t.Fatalf("accepted a blob with nonce %d, sealed %d, key id %q", len(p.nonce), len(p.sealed), p.keyID)
		}
		if !bytes.Equal(append(append([]byte(nil), p.header...), p.sealed...), b) {
			t.Fatal("header and sealed bytes do not make up the blob")
		}
		// Only a blob sealed with this material opens (the seed; the fuzzer runs it in another
		// process, with another random nonce, so compare what it holds, not its bytes).
		if pt, err := open(material, p, nil); err == nil && (string(pt) != "x" || p.keyID != "1234abcd-12ab-34cd-56ef-1234567890ab") {
			t.Fatalf("a foreign blob opened to %q", pt)
		}
	})
}
