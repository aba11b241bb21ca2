package s3api

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
)

// Every object size around the chunk boundaries round-trips, has the size encryptedSize says,
// and reads back in any window; a truncated or altered file does not read.
func TestSSEChunkedEnvelopeRoundTrips(t *testing.T) {
	s := &sealer{dataKey: bytes.Repeat([]byte{9}, 32)}
	for _, n := range []int{0, 1, sseChunk - 1, sseChunk, sseChunk + 1, 3*sseChunk + 17} {
		plain := make([]byte, n)
		_, _ = rand.Read(plain)
		var file bytes.Buffer
		w, err := s.writer(&file)
		if err != nil {
			t.Fatal(err)
		}
		// Odd write sizes: the writer must not care how the bytes arrive.
		for rest := plain; len(rest) > 0; {
			k := min(len(rest), 1000)
			if _, err := w.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if int64(file.Len()) != encryptedSize(int64(n)) {
			t.Fatalf("size %d: file of %d bytes, encryptedSize says %d", n, file.Len(), encryptedSize(int64(n)))
		}
		r, err := s.reader(bytes.NewReader(file.Bytes()), int64(n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.NewSectionReader(r, 0, int64(n)))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: read back %d bytes, %v", n, len(got), err)
		}
		if n > 10 {
			off := int64(n / 3)
			got, err := io.ReadAll(io.NewSectionReader(r, off, int64(n/2)))
			if err != nil || !bytes.Equal(got, plain[off:off+int64(n/2)]) {
				t.Fatalf("size %d: window read differs (%v)", n, err)
			}
		}
		if n > sseChunk {
			// Dropping the last chunk: the new last one was sealed as "not last" and fails.
			short := file.Bytes()[:sseSalt+sseChunk+sseTag]
			r, _ := s.reader(bytes.NewReader(short), sseChunk)
			if _, err := io.ReadAll(io.NewSectionReader(r, 0, sseChunk)); err == nil {
				t.Fatalf("size %d: a truncated file read without error", n)
			}
		}
		damaged := append([]byte(nil), file.Bytes()...)
		damaged[len(damaged)-1] ^= 1
		r, _ = s.reader(bytes.NewReader(damaged), int64(n))
		if _, err := io.ReadAll(io.NewSectionReader(r, 0, int64(n))); n > 0 && err == nil {
			t.Fatalf("size %d: an altered file read without error", n)
		}
	}
}
