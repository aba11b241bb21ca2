package s3api_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// multipartETag is S3's ETag of a multipart object, computed here independently of the server.
func multipartETag(parts ...[]byte) string {
	var sums []byte
	for _, p := range parts {
		s := md5.Sum(p)
		sums = append(sums, s[:]...)
	}
	total := md5.Sum(sums)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(total[:]), len(parts))
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestMultipartUpload(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "mpu")
	key := "models/ckpt 1.bin"
	part1, part2, part3 := randomBytes(5<<20, 1), randomBytes(5<<20+17, 2), randomBytes(1234, 3)

	create, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String(key),
		ContentType: aws.String("application/x-test"), Metadata: map[string]string{"step": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	id := create.UploadId
	upload := func(n int32, body []byte) *string {
		t.Helper()
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String(key), UploadId: id,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatalf("upload part %d: %v", n, err)
		}
		return out.ETag
	}
	// Part 2 is sent twice; the second upload replaces the first.
	upload(2, []byte("to be replaced"))
	e3 := upload(3, part3)
	e1 := upload(1, part1)
	e2 := upload(2, part2)

	parts, err := s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String(key), UploadId: id})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parts.Parts {
		got = append(got, fmt.Sprintf("%d:%d:%s", aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size), aws.ToString(p.ETag)))
	}
	want := []string{fmt.Sprintf("1:%d:%s", len(part1), *e1), fmt.Sprintf("2:%d:%s", len(part2), *e2), fmt.Sprintf("3:%d:%s", len(part3), *e3)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ListParts = %v, want %v", got, want)
	}
	paged, err := s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String(key), UploadId: id, MaxParts: aws.Int32(2)})
	if err != nil || len(paged.Parts) != 2 || !aws.ToBool(paged.IsTruncated) || aws.ToString(paged.NextPartNumberMarker) != "2" {
		t.Errorf("ListParts max 2: %v truncated %v next %v", err, paged.IsTruncated, aws.ToString(paged.NextPartNumberMarker))
	}

	uploads, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(uploads.Uploads) != 1 || aws.ToString(uploads.Uploads[0].UploadId) != *id || aws.ToString(uploads.Uploads[0].Key) != key {
		t.Errorf("ListMultipartUploads: %v %+v", err, uploads)
	}

	completed := func(ps ...types.CompletedPart) *types.CompletedMultipartUpload {
		return &types.CompletedMultipartUpload{Parts: ps}
	}
	cp := func(n int32, etag *string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: etag}
	}
	bad := []struct {
		name  string
		parts *types.CompletedMultipartUpload
		code  string
	}{
		{"wrong ETag", completed(cp(1, e1), cp(2, e3), cp(3, e3)), "InvalidPart"},
		{"part never uploaded", completed(cp(1, e1), cp(4, e3)), "InvalidPart"},
		{"descending order", completed(cp(2, e2), cp(1, e1)), "InvalidPartOrder"},
		{"small part before the last", completed(cp(1, e1), cp(3, e3), cp(4, e3)), "InvalidPart"},
		{"small part not last", completed(cp(3, e3), cp(4, e3)), "InvalidPart"},
	}
	for _, c := range bad {
		_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String(key),
			UploadId: id, MultipartUpload: c.parts})
		if errCode(err) != c.code {
			t.Errorf("complete with %s: got %v, want %s", c.name, err, c.code)
		}
	}

	// A part smaller than 5 MiB may only be last.
	small, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small")})
	if err != nil {
		t.Fatal(err)
	}
	var smallETags []*string
	for n := int32(1); n <= 2; n++ {
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: small.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader([]byte("tiny"))})
		if err != nil {
			t.Fatal(err)
		}
		smallETags = append(smallETags, out.ETag)
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small"),
		UploadId: small.UploadId, MultipartUpload: completed(cp(1, smallETags[0]), cp(2, smallETags[1]))})
	if errCode(err) != "EntityTooSmall" {
		t.Errorf("complete with a small first part: got %v, want EntityTooSmall", err)
	}
	if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: small.UploadId}); err != nil {
		t.Errorf("abort: %v", err)
	}
	_, err = s.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: small.UploadId,
		PartNumber: aws.Int32(3), Body: bytes.NewReader([]byte("late"))})
	if errCode(err) != "NoSuchUpload" {
		t.Errorf("upload to an aborted upload: got %v, want NoSuchUpload", err)
	}

	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String(key),
		UploadId: id, MultipartUpload: completed(cp(1, e1), cp(2, e2), cp(3, e3))})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ETag) != multipartETag(part1, part2, part3) {
		t.Errorf("multipart ETag %s, want %s", aws.ToString(out.ETag), multipartETag(part1, part2, part3))
	}
	get, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(body, append(append(append([]byte{}, part1...), part2...), part3...)) {
		t.Error("completed object is not the parts in order")
	}
	if aws.ToString(get.ContentType) != "application/x-test" || get.Metadata["step"] != "7" || aws.ToString(get.ETag) != aws.ToString(out.ETag) {
		t.Errorf("completed object: type %s meta %v etag %s", aws.ToString(get.ContentType), get.Metadata, aws.ToString(get.ETag))
	}
	// GET ?partNumber=n reads back one part, as the SDK's part-wise downloaders do.
	for n, want := range [][]byte{part1, part2, part3} {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String(key), PartNumber: aws.Int32(int32(n + 1))})
		if err != nil {
			t.Fatalf("get part %d: %v", n+1, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, want) || aws.ToInt32(out.PartsCount) != 3 {
			t.Errorf("get part %d: %d bytes (want %d), parts count %d", n+1, len(got), len(want), aws.ToInt32(out.PartsCount))
		}
	}
	_, err = s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String(key), PartNumber: aws.Int32(4)})
	if errCode(err) != "InvalidPartNumber" || httpStatus(err) != 416 {
		t.Errorf("get part 4 of 3: got %v, want InvalidPartNumber (416)", err)
	}

	uploads, err = s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(uploads.Uploads) != 0 {
		t.Errorf("uploads left after complete: %v %d", err, len(uploads.Uploads))
	}
	_, err = s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String(key), UploadId: id})
	if errCode(err) != "NoSuchUpload" {
		t.Errorf("ListParts of a completed upload: got %v, want NoSuchUpload", err)
	}
	for _, bogus := range []string{"../../etc", "0123456789abcdef0123456789abcdef"} {
		_, err = s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String(key), UploadId: aws.String(bogus)})
		if errCode(err) != "NoSuchUpload" {
			t.Errorf("ListParts upload id %q: got %v, want NoSuchUpload", bogus, err)
		}
	}
}

func TestListMultipartUploadsPaging(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "mpl")
	var want []string
	for _, key := range []string{"b/2", "a/1", "b/1", "c", "a/1"} {
		out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpl"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, key+" "+aws.ToString(out.UploadId))
	}
	// Uploads list by key, then by initiation: the two uploads of a/1 in creation order.
	want = []string{want[1], want[4], want[2], want[0], want[3]}
	var got []string
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String("mpl"), MaxUploads: aws.Int32(2)}
	for range 10 {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Uploads {
			got = append(got, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paged uploads:\n got %v\nwant %v", got, want)
	}
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpl"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, p := range out.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	if len(out.Uploads) != 1 || aws.ToString(out.Uploads[0].Key) != "c" || fmt.Sprint(prefixes) != "[a/ b/]" {
		t.Errorf("with delimiter: %d uploads, prefixes %v", len(out.Uploads), prefixes)
	}
}

func TestUploadPartCopy(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "mpc")
	src := randomBytes(6<<20, 9)
	s.put(t, "mpc", "src", src)
	create, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpc"), Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("mpc"), Key: aws.String("dst"), UploadId: create.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String("mpc/src"), CopySourceRange: aws.String("bytes=0-5242879")})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("mpc"), Key: aws.String("dst"), UploadId: create.UploadId,
		PartNumber: aws.Int32(2), CopySource: aws.String("mpc/src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=5242880-%d", len(src)-1))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("mpc"), Key: aws.String("dst"), UploadId: create.UploadId,
		PartNumber: aws.Int32(3), CopySource: aws.String("mpc/src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=0-%d", len(src)))})
	if errCode(err) != "InvalidArgument" {
		t.Errorf("copy range past the end: got %v, want InvalidArgument", err)
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpc"), Key: aws.String("dst"), UploadId: create.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: p1.CopyPartResult.ETag}, {PartNumber: aws.Int32(2), ETag: p2.CopyPartResult.ETag}}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ETag) != multipartETag(src[:5<<20], src[5<<20:]) {
		t.Errorf("ETag %s", aws.ToString(out.ETag))
	}
	if got := s.get(t, "mpc", "dst"); !bytes.Equal(got, src) {
		t.Error("copied parts do not reassemble the source")
	}
	// A copy of a multipart object is a plain object with the MD5 of its bytes as ETag.
	cp, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("mpc"), Key: aws.String("copy"), CopySource: aws.String("mpc/dst")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cp.CopyObjectResult.ETag) != `"`+md5hex(src)+`"` {
		t.Errorf("copy of a multipart object: ETag %s, want the MD5 of its bytes", aws.ToString(cp.CopyObjectResult.ETag))
	}
	whole, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpc"), Key: aws.String("copy"), PartNumber: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(whole.Body)
	whole.Body.Close()
	if !bytes.Equal(got, src) {
		t.Errorf("part 1 of a single-part object: %d bytes, want the whole %d", len(got), len(src))
	}
}
