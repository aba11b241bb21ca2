package s3api_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestBuckets(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "alpha")
	s.mkBucket(t, "beta.data-1")

	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha")})
	var owned *types.BucketAlreadyOwnedByYou
	if !errors.As(err, &owned) || httpStatus(err) != http.StatusConflict {
		t.Errorf("creating an existing bucket: got %v, want BucketAlreadyOwnedByYou (409)", err)
	}
	for _, name := range []string{"ab", "Upper", "under_score", "-dash", "dot.", "a..b", "192.168.1.1",
		"xn--punycode", strings.Repeat("a", 64), ".meta", "foo-s3alias"} {
		_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
		if errCode(err) != "InvalidBucketName" {
			t.Errorf("create bucket %q: got %v, want InvalidBucketName", name, err)
		}
	}

	list, err := s.client.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range list.Buckets {
		names = append(names, aws.ToString(b.Name))
		if b.CreationDate == nil || time.Since(*b.CreationDate) > time.Minute {
			t.Errorf("bucket %s: creation date %v", aws.ToString(b.Name), b.CreationDate)
		}
	}
	if !slices.Equal(names, []string{"alpha", "beta.data-1"}) {
		t.Errorf("ListBuckets = %v", names)
	}

	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Errorf("HeadBucket alpha: %v", err)
	}
	_, err = s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("missing")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadBucket missing: got %v, want NotFound", err)
	}
	loc, err := s.client.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("alpha")})
	if err != nil || loc.LocationConstraint != "" {
		t.Errorf("GetBucketLocation = %v, %v; want empty (us-east-1)", loc, err)
	}

	s.put(t, "alpha", "k", []byte("x"))
	_, err = s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	if errCode(err) != "BucketNotEmpty" || httpStatus(err) != http.StatusConflict {
		t.Errorf("deleting a bucket with an object: got %v, want BucketNotEmpty (409)", err)
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Errorf("deleting an emptied bucket: %v", err)
	}
	_, err = s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	if errCode(err) != "NoSuchBucket" || httpStatus(err) != http.StatusNotFound {
		t.Errorf("deleting a deleted bucket: got %v, want NoSuchBucket (404)", err)
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if errCode(err) != "NoSuchBucket" {
		t.Errorf("put into a deleted bucket: got %v, want NoSuchBucket", err)
	}
}

// keys that must round-trip unchanged, including the ones that look like paths.
var trickyKeys = []string{
	"plain.txt",
	"with space.txt",
	"a+b=c&d.txt",
	"unicode/日本語/ファイル ü.csv",
	"emoji 🙂",
	"a",
	"a/b",
	"a/b/c",
	"a/",
	"a//b",
	"/leading-slash",
	"../escape",
	"x/../../../etc/passwd",
	"./dot",
	".hidden",
	"%2F",
	"%",
	"100%",
	"x/%2F/y",
	"semi;colon,comma?question#hash",
	"tab\there",
	strings.Repeat("long-segment-", 19),
}

func TestKeysRoundTrip(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "keys")
	for i, key := range trickyKeys {
		body := []byte(fmt.Sprintf("object %d: %q", i, key))
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("keys"), Key: aws.String(key), Body: bytes.NewReader(body),
			ContentType: aws.String("text/plain; charset=utf-8"),
			Metadata:    map[string]string{"origin": "test", "index": fmt.Sprint(i)},
		})
		if err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
	}
	for i, key := range trickyKeys {
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			want := []byte(fmt.Sprintf("object %d: %q", i, key))
			out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("keys"), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("get %q: %v", key, err)
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if !bytes.Equal(got, want) {
				t.Errorf("get %q = %q, want %q", key, got, want)
			}
			if aws.ToString(out.ETag) != `"`+md5hex(want)+`"` {
				t.Errorf("ETag %s, want the quoted MD5 %s", aws.ToString(out.ETag), md5hex(want))
			}
			if aws.ToString(out.ContentType) != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", aws.ToString(out.ContentType))
			}
			if out.Metadata["origin"] != "test" || out.Metadata["index"] != fmt.Sprint(i) {
				t.Errorf("metadata %v", out.Metadata)
			}
		})
	}

	var listed []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String("keys"), MaxKeys: aws.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			listed = append(listed, aws.ToString(o.Key))
		}
	}
	want := slices.Clone(trickyKeys)
	sort.Strings(want) // S3 lists in UTF-8 byte order
	if !slices.Equal(listed, want) {
		t.Errorf("listing:\n got %q\nwant %q", listed, want)
	}
	if out := filesOutside(t, s.root, "keys", ".meta", ".buckets"); len(out) > 0 {
		t.Errorf("files outside the bucket and metadata trees: %q", out)
	}
	if out := filesOutside(t, filepath.Join(s.root, "keys")); len(out) != len(trickyKeys) {
		t.Errorf("bucket directory holds %d files, want one per key (%d)", len(out), len(trickyKeys))
	}

	// Deleting every key leaves an empty bucket directory and a deletable bucket.
	for _, key := range trickyKeys {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("keys"), Key: aws.String(key)}); err != nil {
			t.Fatalf("delete %q: %v", key, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "keys"))
	if len(entries) != 0 {
		t.Errorf("bucket directory not empty after deleting every key: %d entries", len(entries))
	}
	if _, err := s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("keys")}); err != nil {
		t.Errorf("delete emptied bucket: %v", err)
	}
}

func TestBadKeys(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "bad")
	cases := []struct {
		name, key, code string
	}{
		{"over 1024 bytes", strings.Repeat("k", 1025), "KeyTooLongError"},
		{"segment too long for a file name", strings.Repeat("s", 300), "KeyTooLongError"},
		{"user metadata over 2 KiB", "meta", "MetadataTooLarge"},
	}
	for _, c := range cases {
		in := &s3.PutObjectInput{Bucket: aws.String("bad"), Key: aws.String(c.key), Body: strings.NewReader("x")}
		if c.code == "MetadataTooLarge" {
			in.Metadata = map[string]string{"big": strings.Repeat("m", 2100)}
		}
		_, err := s.client.PutObject(ctx, in)
		if errCode(err) != c.code || httpStatus(err) != http.StatusBadRequest {
			t.Errorf("%s: got %v, want %s (400)", c.name, err, c.code)
		}
	}
}

func TestGetObjectNotFound(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "here")
	_, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("here"), Key: aws.String("nope")})
	var nsk *types.NoSuchKey
	if !errors.As(err, &nsk) || httpStatus(err) != http.StatusNotFound {
		t.Errorf("GetObject missing key: got %v, want NoSuchKey (404)", err)
	}
	_, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("here"), Key: aws.String("nope")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadObject missing key: got %v, want NotFound", err)
	}
	_, err = s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("gone"), Key: aws.String("k")})
	if errCode(err) != "NoSuchBucket" {
		t.Errorf("GetObject in a missing bucket: got %v, want NoSuchBucket", err)
	}
	// "a" exists only as a prefix of "a/b": it is not an object.
	s.put(t, "here", "a/b", []byte("x"))
	_, err = s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("here"), Key: aws.String("a")})
	if !errors.As(err, &nsk) {
		t.Errorf("GetObject of a prefix: got %v, want NoSuchKey", err)
	}
	// Deleting a missing key succeeds, as in S3.
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("here"), Key: aws.String("nope")}); err != nil {
		t.Errorf("DeleteObject missing key: %v", err)
	}
}

func TestGetObjectRange(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "ranges")
	body := []byte("0123456789abcdefghijklmnopqrstuvwxyz") // 36 bytes
	s.put(t, "ranges", "obj", body)
	s.put(t, "ranges", "empty", nil)
	cases := []struct {
		rng          string
		key          string
		want         string
		contentRange string
		code         string
	}{
		{"bytes=0-9", "obj", "0123456789", "bytes 0-9/36", ""},
		{"bytes=30-", "obj", "uvwxyz", "bytes 30-35/36", ""},
		{"bytes=-4", "obj", "wxyz", "bytes 32-35/36", ""},
		{"bytes=30-1000", "obj", "uvwxyz", "bytes 30-35/36", ""},
		{"bytes=-100", "obj", string(body), "bytes 0-35/36", ""},
		{"bytes=35-35", "obj", "z", "bytes 35-35/36", ""},
		{"bytes=36-", "obj", "", "", "InvalidRange"},
		{"bytes=100-200", "obj", "", "", "InvalidRange"},
		{"bytes=0-", "empty", "", "", "InvalidRange"},
		{"bytes=9-3", "obj", string(body), "", ""},     // unparseable: the whole object
		{"items=0-3", "obj", string(body), "", ""},     // not bytes: the whole object
		{"bytes=0-1,4-5", "obj", string(body), "", ""}, // several ranges: the whole object
	}
	for _, c := range cases {
		t.Run(c.rng+" of "+c.key, func(t *testing.T) {
			out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String(c.key), Range: aws.String(c.rng)})
			if c.code != "" {
				if errCode(err) != c.code || httpStatus(err) != http.StatusRequestedRangeNotSatisfiable {
					t.Fatalf("got %v, want %s (416)", err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(got) != c.want {
				t.Errorf("body %q, want %q", got, c.want)
			}
			if aws.ToString(out.ContentRange) != c.contentRange {
				t.Errorf("Content-Range %q, want %q", aws.ToString(out.ContentRange), c.contentRange)
			}
			if aws.ToInt64(out.ContentLength) != int64(len(c.want)) {
				t.Errorf("Content-Length %d, want %d", aws.ToInt64(out.ContentLength), len(c.want))
			}
		})
	}
}

func TestHeadObjectAndConditions(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "head")
	body := []byte("hello, head")
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("head"), Key: aws.String("k"), Body: bytes.NewReader(body),
		ContentType: aws.String("text/plain"), CacheControl: aws.String("max-age=60"), ContentDisposition: aws.String(`attachment; filename="k.txt"`)})
	if err != nil {
		t.Fatal(err)
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("head"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != int64(len(body)) || aws.ToString(head.ETag) != `"`+md5hex(body)+`"` ||
		aws.ToString(head.ContentType) != "text/plain" || aws.ToString(head.CacheControl) != "max-age=60" ||
		aws.ToString(head.ContentDisposition) != `attachment; filename="k.txt"` {
		t.Errorf("HeadObject = len %d etag %s type %s cache %s disp %s", aws.ToInt64(head.ContentLength), aws.ToString(head.ETag),
			aws.ToString(head.ContentType), aws.ToString(head.CacheControl), aws.ToString(head.ContentDisposition))
	}
	if head.LastModified == nil || time.Since(*head.LastModified) > time.Minute {
		t.Errorf("LastModified %v", head.LastModified)
	}
	_, err = s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("head"), Key: aws.String("k"), IfMatch: aws.String(`"0000"`)})
	if errCode(err) != "PreconditionFailed" || httpStatus(err) != http.StatusPreconditionFailed {
		t.Errorf("If-Match with another ETag: got %v, want PreconditionFailed (412)", err)
	}
	if _, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("head"), Key: aws.String("k"), IfMatch: head.ETag}); err != nil {
		t.Errorf("If-Match with its ETag: %v", err)
	}
	_, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("head"), Key: aws.String("k"), IfNoneMatch: head.ETag})
	if httpStatus(err) != http.StatusNotModified {
		t.Errorf("If-None-Match with its ETag: got %v, want 304", err)
	}
}

func TestConditionalPut(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "cond")
	put := func(body string, in s3.PutObjectInput) error {
		in.Bucket, in.Key, in.Body = aws.String("cond"), aws.String("k"), strings.NewReader(body)
		_, err := s.client.PutObject(ctx, &in)
		return err
	}
	if err := put("first", s3.PutObjectInput{IfNoneMatch: aws.String("*")}); err != nil {
		t.Fatalf("create-only put of a new key: %v", err)
	}
	if err := put("second", s3.PutObjectInput{IfNoneMatch: aws.String("*")}); errCode(err) != "PreconditionFailed" {
		t.Errorf("create-only put of an existing key: got %v, want PreconditionFailed", err)
	}
	if err := put("third", s3.PutObjectInput{IfMatch: aws.String(`"` + md5hex([]byte("other")) + `"`)}); errCode(err) != "PreconditionFailed" {
		t.Errorf("put If-Match another ETag: got %v, want PreconditionFailed", err)
	}
	if err := put("fourth", s3.PutObjectInput{IfMatch: aws.String(`"` + md5hex([]byte("first")) + `"`)}); err != nil {
		t.Errorf("put If-Match the current ETag: %v", err)
	}
	if got := s.get(t, "cond", "k"); string(got) != "fourth" {
		t.Errorf("object is %q, want %q", got, "fourth")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestChecksums(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "sums")
	body := []byte("The quick brown fox jumps over the lazy dog")
	crc := crc32.ChecksumIEEE(body)
	crcBytes := []byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)}
	crcC := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
	crcCBytes := []byte{byte(crcC >> 24), byte(crcC >> 16), byte(crcC >> 8), byte(crcC)}
	sha := sha256.Sum256(body)
	sha1sum := sha1.Sum(body)

	// The SDK computes and sends each algorithm; the server verifies and keeps it.
	algs := []struct {
		alg  types.ChecksumAlgorithm
		want string
		get  func(*s3.GetObjectOutput) *string
	}{
		{types.ChecksumAlgorithmCrc32, b64(crcBytes), func(o *s3.GetObjectOutput) *string { return o.ChecksumCRC32 }},
		{types.ChecksumAlgorithmCrc32c, b64(crcCBytes), func(o *s3.GetObjectOutput) *string { return o.ChecksumCRC32C }},
		{types.ChecksumAlgorithmSha1, b64(sha1sum[:]), func(o *s3.GetObjectOutput) *string { return o.ChecksumSHA1 }},
		{types.ChecksumAlgorithmSha256, b64(sha[:]), func(o *s3.GetObjectOutput) *string { return o.ChecksumSHA256 }},
		// CRC-64/NVME check value of "123456789" is 0xAE8B14860A799888 (the CRC catalogue).
		{types.ChecksumAlgorithmCrc64nvme, "", func(o *s3.GetObjectOutput) *string { return o.ChecksumCRC64NVME }},
	}
	for _, a := range algs {
		t.Run(string(a.alg), func(t *testing.T) {
			key := "obj-" + string(a.alg)
			data := body
			want := a.want
			if a.alg == types.ChecksumAlgorithmCrc64nvme {
				data = []byte("123456789")
				want = b64([]byte{0xAE, 0x8B, 0x14, 0x86, 0x0A, 0x79, 0x98, 0x88})
			}
			if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String(key),
				Body: bytes.NewReader(data), ChecksumAlgorithm: a.alg}); err != nil {
				t.Fatal(err)
			}
			out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String(key),
				ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(out.Body) // the SDK validates the checksum while reading
			out.Body.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %q, %v", got, err)
			}
			if aws.ToString(a.get(out)) != want {
				t.Errorf("stored checksum %q, want %q", aws.ToString(a.get(out)), want)
			}
		})
	}

	md5sum := func(b []byte) string { s := md5.Sum(b); return b64(s[:]) }
	bad := []struct {
		name   string
		input  s3.PutObjectInput
		code   string
		status int
	}{
		{"wrong CRC32", s3.PutObjectInput{ChecksumCRC32: aws.String(b64([]byte{1, 2, 3, 4}))}, "BadDigest", 400},
		{"wrong SHA256", s3.PutObjectInput{ChecksumSHA256: aws.String(b64(make([]byte, 32)))}, "BadDigest", 400},
		{"CRC32 that is not base64", s3.PutObjectInput{ChecksumCRC32: aws.String("!!!")}, "InvalidRequest", 400},
		{"CRC32 of the wrong length", s3.PutObjectInput{ChecksumCRC32: aws.String(b64([]byte{1, 2}))}, "InvalidRequest", 400},
		{"wrong Content-MD5", s3.PutObjectInput{ContentMD5: aws.String(md5sum([]byte("other")))}, "BadDigest", 400},
		{"Content-MD5 that is no MD5", s3.PutObjectInput{ContentMD5: aws.String("abcd")}, "InvalidDigest", 400},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			in := c.input
			in.Bucket, in.Key, in.Body = aws.String("sums"), aws.String("bad"), bytes.NewReader(body)
			_, err := s.client.PutObject(ctx, &in)
			if errCode(err) != c.code || httpStatus(err) != c.status {
				t.Errorf("got %v, want %s (%d)", err, c.code, c.status)
			}
			_, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sums"), Key: aws.String("bad")})
			var nf *types.NotFound
			if !errors.As(err, &nf) {
				t.Errorf("a refused upload was stored: HeadObject = %v", err)
			}
		})
	}
	// The right Content-MD5 is accepted.
	if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String("md5"),
		Body: bytes.NewReader(body), ContentMD5: aws.String(md5sum(body))}); err != nil {
		t.Errorf("correct Content-MD5: %v", err)
	}
}

func TestCopyObject(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "src")
	s.mkBucket(t, "dst")
	body := []byte("copy me")
	srcKey := "dir/ünïcode + space=.txt"
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(srcKey), Body: bytes.NewReader(body),
		ContentType: aws.String("text/x-test"), Metadata: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	// x-amz-copy-source is URL-encoded by the caller.
	source := "src/" + strings.ReplaceAll(urlPathEscape(srcKey), "+", "%2B")
	out, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy"), CopySource: aws.String(source)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.CopyObjectResult.ETag) != `"`+md5hex(body)+`"` {
		t.Errorf("copy ETag %s", aws.ToString(out.CopyObjectResult.ETag))
	}
	got, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy")})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(data) != string(body) || aws.ToString(got.ContentType) != "text/x-test" || got.Metadata["a"] != "1" {
		t.Errorf("copied object: %q %q %v; want the source's body and metadata", data, aws.ToString(got.ContentType), got.Metadata)
	}

	// REPLACE takes the request's metadata.
	_, err = s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy"), CopySource: aws.String("dst/copy"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/new"), Metadata: map[string]string{"b": "2"}})
	if err != nil {
		t.Fatalf("copy onto itself with REPLACE: %v", err)
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy")})
	if err != nil || aws.ToString(head.ContentType) != "text/new" || head.Metadata["b"] != "2" || head.Metadata["a"] != "" {
		t.Errorf("after REPLACE: %v %v %v", err, aws.ToString(head.ContentType), head.Metadata)
	}

	errs := []struct {
		name, src, dstKey, code string
	}{
		{"onto itself without REPLACE", "dst/copy", "copy", "InvalidRequest"},
		{"missing source key", "src/nope", "x", "NoSuchKey"},
		{"missing source bucket", "nobucket/k", "x", "NoSuchBucket"},
		{"source without key", "src", "x", "InvalidArgument"},
	}
	for _, c := range errs {
		_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String(c.dstKey), CopySource: aws.String(c.src)})
		if errCode(err) != c.code {
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
}

func urlPathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestDeleteObjects(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "del")
	for _, k := range []string{"a", "b/c", "d e"} {
		s.put(t, "del", k, []byte(k))
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("a")}, {Key: aws.String("d e")}, {Key: aws.String("never")}}}})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, d := range out.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	if !slices.Equal(deleted, []string{"a", "d e", "never"}) || len(out.Errors) != 0 {
		t.Errorf("Deleted %v Errors %v; want a, d e, never (a missing key counts as deleted)", deleted, out.Errors)
	}
	list, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("del")})
	if err != nil || len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "b/c" {
		t.Errorf("after DeleteObjects: %v %v", list, err)
	}
	quiet, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{
		Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: aws.String("b/c")}}}})
	if err != nil || len(quiet.Deleted) != 0 {
		t.Errorf("quiet DeleteObjects: %v, %d entries", err, len(quiet.Deleted))
	}
	if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("del"), Key: aws.String("b/c")}); err == nil {
		t.Error("b/c still there after a quiet delete")
	}
}

// Concurrent writers of one key and readers of it: every read sees one whole version, with
// the ETag of that version.
func TestConcurrentPutGet(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "conc")
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
	}
	s.put(t, "conc", "shared", versions[0])
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range versions {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("conc"), Key: aws.String("shared"), Body: bytes.NewReader(versions[i])}); err != nil {
					errs <- err
					return
				}
				if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("conc"), Key: aws.String(fmt.Sprintf("own/%d", i)), Body: bytes.NewReader(versions[i])}); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 5 {
				out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("conc"), Key: aws.String("shared")})
				if err != nil {
					errs <- err
					return
				}
				data, err := io.ReadAll(out.Body)
				out.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if len(data) < 64<<10 || !bytes.Equal(data, versions[len(data)-64<<10]) || aws.ToString(out.ETag) != `"`+md5hex(data)+`"` {
					errs <- fmt.Errorf("read a mixed or mislabelled version: %d bytes, ETag %s", len(data), aws.ToString(out.ETag))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range versions {
		if got := s.get(t, "conc", fmt.Sprintf("own/%d", i)); !bytes.Equal(got, versions[i]) {
			t.Errorf("own/%d corrupted", i)
		}
	}
}
