package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// A ciphertext blob names the key that can open it, so Decrypt needs no KeyId (as on AWS):
//
//	"LK" | version 1 | len(keyID) | keyID | nonce (12) | AES-256-GCM(plaintext)
//
// The header and the canonical encryption context are the GCM additional data: changing the key id
// in a blob, or decrypting with another context, fails authentication instead of decrypting.
const (
	blobMagic0, blobMagic1 = 'L', 'K'
	blobVersion            = 1
	nonceSize              = 12
	gcmTagSize             = 16
	maxKeyIDLen            = 64
)

// errCiphertext is any blob that is not one this service wrote, or that does not authenticate.
var errCiphertext = errors.New("kms: invalid ciphertext")

// blob is a parsed ciphertext blob.
type blob struct {
	header []byte // everything before the sealed bytes (the additional data's first part)
	keyID  string
	nonce  []byte
	sealed []byte
}

// parseBlob splits a ciphertext blob into its parts; it checks the layout, not the contents.
func parseBlob(b []byte) (*blob, error) {
	if len(b) < 4 || b[0] != blobMagic0 || b[1] != blobMagic1 || b[2] != blobVersion {
		return nil, errCiphertext
	}
	n := int(b[3])
	if n == 0 || n > maxKeyIDLen || len(b) < 4+n+nonceSize+gcmTagSize {
		return nil, errCiphertext
	}
	id := b[4 : 4+n]
	for _, c := range id {
		if !(c >= 'a' && c <= 'f' || c >= '0' && c <= '9' || c == '-') {
			return nil, errCiphertext
		}
	}
	h := 4 + n + nonceSize
	return &blob{header: b[:h], keyID: string(id), nonce: b[4+n : h], sealed: b[h:]}, nil
}

// KeyIDOf returns the id of the key a ciphertext blob was made with, or an error for a blob this
// service did not write.
func KeyIDOf(ciphertext []byte) (string, error) {
	p, err := parseBlob(ciphertext)
	if err != nil {
		return "", err
	}
	return p.keyID, nil
}

// contextAAD is the canonical form of an encryption context: JSON with sorted keys (json.Marshal
// sorts map keys), empty for none.
func contextAAD(ec map[string]string) []byte {
	if len(ec) == 0 {
		return nil
	}
	b, _ := json.Marshal(ec)
	return b
}

// seal encrypts plaintext under key material for keyID.
func seal(material []byte, keyID string, plaintext []byte, ec map[string]string) ([]byte, error) {
	if len(keyID) == 0 || len(keyID) > maxKeyIDLen {
		return nil, fmt.Errorf("kms: key id %q cannot be put in a blob", keyID)
	}
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 4+len(keyID)+nonceSize+len(plaintext)+gcmTagSize)
	out = append(out, blobMagic0, blobMagic1, blobVersion, byte(len(keyID)))
	out = append(out, keyID...)
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("kms: read random nonce: %w", err)
	}
	out = append(out, nonce...)
	aad := append(append([]byte(nil), out...), contextAAD(ec)...)
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// open decrypts a parsed blob with the key material of its key.
func open(material []byte, p *blob, ec map[string]string) ([]byte, error) {
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	aad := append(append([]byte(nil), p.header...), contextAAD(ec)...)
	pt, err := aead.Open(nil, p.nonce, p.sealed, aad)
	if err != nil {
		return nil, errCiphertext
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return cipher.NewGCM(block)
}
