package s3api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Keys S3 cannot hold, or that a listing (XML 1.0 text) could not give back unchanged, are
// refused with 400 InvalidURI on every write, and nothing is stored.
func TestKeysThatCannotRoundTripAreRefused(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "keys")
	s.put(t, "keys", "good", []byte("source"))
	bad := []struct{ name, key string }{
		{"a byte that is not UTF-8", "bad\xff.csv"},
		{"a truncated UTF-8 sequence", "dir/\xc3"},
		{"an encoded surrogate", "sur\xed\xa0\x80"},
		{"an overlong encoding of /", "a\xc0\xafb"},
		{"NUL", "nul\x00byte"},
		{"a leading NUL", "\x00"},
		{"a control character XML cannot carry", "ctl\x01x"},
		{"U+FFFE", "not\uFFFEachar"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("keys"), Key: aws.String(c.key), Body: strings.NewReader("x")})
			if errCode(err) != "InvalidURI" || httpStatus(err) != http.StatusBadRequest {
				t.Errorf("PutObject %q: got %v, want InvalidURI (400)", c.key, err)
			}
			_, err = s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("keys"), Key: aws.String(c.key), CopySource: aws.String("keys/good")})
			if errCode(err) != "InvalidURI" || httpStatus(err) != http.StatusBadRequest {
				t.Errorf("CopyObject to %q: got %v, want InvalidURI (400)", c.key, err)
			}
			_, err = s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("keys"), Key: aws.String("copy"), CopySource: aws.String("keys/" + urlPathEscape(c.key))})
			if errCode(err) != "InvalidArgument" || httpStatus(err) != http.StatusBadRequest {
				t.Errorf("CopyObject from %q: got %v, want InvalidArgument (400)", c.key, err)
			}
			_, err = s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("keys"), Key: aws.String(c.key)})
			if errCode(err) != "InvalidURI" || httpStatus(err) != http.StatusBadRequest {
				t.Errorf("CreateMultipartUpload %q: got %v, want InvalidURI (400)", c.key, err)
			}
			_, err = s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("keys"), Key: aws.String(c.key)})
			if errCode(err) != "InvalidURI" || httpStatus(err) != http.StatusBadRequest {
				t.Errorf("GetObject %q: got %v, want InvalidURI (400)", c.key, err)
			}
			// Deleting such a key is allowed (and a no-op here): it is how a data directory
			// written by an older Lathe, which stored them, is cleaned up.
			if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("keys"), Key: aws.String(c.key)}); err != nil {
				t.Errorf("DeleteObject %q: %v", c.key, err)
			}
		})
	}
	list, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("keys")})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, o := range list.Contents {
		listed = append(listed, aws.ToString(o.Key))
	}
	if !slices.Equal(listed, []string{"good"}) {
		t.Errorf("listing after the refused writes: %q, want only \"good\"", listed)
	}
	uploads, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("keys")})
	if err != nil || len(uploads.Uploads) != 0 {
		t.Errorf("multipart uploads after the refused creates: %v, %v", uploads, err)
	}
}

// Odd but valid keys, up to S3's 1024 bytes, round-trip through PUT, the listing, GET and
// DELETE; one byte more is refused.
func TestLongAndOddKeysRoundTrip(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "odd")
	seg := func(c string, n int) string { return strings.Repeat(c, n) }
	keys := []string{
		seg("d", 200) + "/" + seg("e", 200) + "/" + seg("f", 200) + "/" + seg("g", 200) + "/" + seg("h", 220), // 1024 bytes
		seg("é", 100) + "/" + seg("ü", 100) + "/" + seg("語", 66) + "/" + seg("ö", 100) + "/" + seg("x", 222),  // 1024 bytes, multibyte
		"spaces  and\ttabs / and a trailing space ",
		"cr\r\nlf\nline",
		"per%cent/%41%2F%00",
		"plus+and=equals&amp",
		"question?mark#hash",
		"quote\"apos'<lt>&gt;",
		"unicode/日本語/😀 ü\u00a0nbsp",
		"\ufffd literal replacement character",
		"~tilde!*()[]{}^|\\`",
	}
	for _, k := range keys[:2] {
		if len(k) != 1024 {
			t.Fatalf("test key is %d bytes, want 1024", len(k))
		}
	}
	for i, k := range keys {
		s.put(t, "odd", k, []byte(k))
		if i < 2 {
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("odd"), Key: aws.String(k + "z"), Body: strings.NewReader("x")})
			if errCode(err) != "KeyTooLongError" || httpStatus(err) != http.StatusBadRequest {
				t.Errorf("PutObject of a 1025-byte key: got %v, want KeyTooLongError (400)", err)
			}
		}
	}
	for _, enc := range []types.EncodingType{"", types.EncodingTypeUrl} {
		var listed []string
		p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String("odd"), MaxKeys: aws.Int32(3), EncodingType: enc})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("list (encoding %q): %v", enc, err)
			}
			for _, o := range page.Contents {
				listed = append(listed, aws.ToString(o.Key))
			}
		}
		if enc == types.EncodingTypeUrl {
			for i, k := range listed {
				dec, err := url.QueryUnescape(k)
				if err != nil {
					t.Fatalf("listed key %q does not decode: %v", k, err)
				}
				listed[i] = dec
			}
		}
		want := slices.Clone(keys)
		sort.Strings(want)
		if !slices.Equal(listed, want) {
			t.Errorf("listing (encoding %q):\n got %q\nwant %q", enc, listed, want)
		}
	}
	for _, k := range keys {
		if got := s.get(t, "odd", k); !bytes.Equal(got, []byte(k)) {
			t.Errorf("GET %q = %q", k, got)
		}
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("odd"), Key: aws.String(k)}); err != nil {
			t.Errorf("DELETE %q: %v", k, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(s.root, "odd")); len(entries) != 0 {
		t.Errorf("bucket directory holds %d entries after deleting every key", len(entries))
	}
}
