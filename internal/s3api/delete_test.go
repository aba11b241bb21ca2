package s3api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Deleting a key that is not there succeeds (204), as in S3, whatever stands where its
// "directories" would be: nothing, a prefix that was just pruned, or an object.
func TestDeleteMissingKeyAnswers204(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "del")
	s.put(t, "del", "clash/child", []byte("an object where a directory would be"))
	s.put(t, "del", "dir2/x", []byte("x"))

	for _, c := range []struct{ name, key string }{
		{"an existing key", "dir2/x"},
		{"the same key again (its directory is gone)", "dir2/x"},
		{"a key under a prefix that never existed", "nodir/x"},
		{"a key two levels under nothing", "zz/yy/x"},
		{"a key under an object", "clash/child/deeper/x"},
		{"a key directly under an object", "clash/child/x"},
		{"a top-level key that never existed", "never"},
	} {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("del"), Key: aws.String(c.key)}); err != nil {
			t.Errorf("DeleteObject %s (%q): %v, want 204", c.name, c.key, err)
		}
	}

	keys := []string{"nodir/x", "zz/yy/x", "clash/child/deeper/x", "dir2/x", "dir2/x/y"}
	var ids []types.ObjectIdentifier
	for _, k := range keys {
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{Objects: ids}})
	if err != nil {
		t.Fatalf("DeleteObjects: %v", err)
	}
	var deleted []string
	for _, d := range out.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	for _, e := range out.Errors {
		t.Errorf("DeleteObjects: %s: %s %s, want it listed as deleted", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
	}
	if !slices.Equal(deleted, keys) {
		t.Errorf("DeleteObjects deleted %q, want %q", deleted, keys)
	}
	// The object in the way is untouched.
	if got := s.get(t, "del", "clash/child"); string(got) != "an object where a directory would be" {
		t.Errorf("clash/child = %q after deleting keys under it", got)
	}
}

// Writers and deleters racing on one key: no request fails, and the end state is one that a
// sequence of those requests could leave (listing, HEAD and GET agree; a present object is one
// whole version).
func TestConcurrentPutDelete(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.mkBucket(t, "race")
	const key = "deep/er/shared"
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 1<<10+i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*40)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 20 {
				if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("race"), Key: aws.String(key), Body: bytes.NewReader(versions[i])}); err != nil {
					errs <- fmt.Errorf("writer %d put %d: %w", i, n, err)
				}
				if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("race"), Key: aws.String(key)}); err != nil {
					errs <- fmt.Errorf("writer %d delete %d: %w", i, n, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		if failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed, want none", failed, 8*40)
	}

	list, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("race")})
	if err != nil {
		t.Fatal(err)
	}
	out, getErr := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("race"), Key: aws.String(key)})
	switch {
	case getErr == nil:
		data, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if len(data) < 1<<10 || len(data) >= 1<<10+len(versions) || !bytes.Equal(data, versions[len(data)-1<<10]) {
			t.Errorf("GET after the race: %d bytes that are no version written", len(data))
		}
		if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != key {
			t.Errorf("GET finds the object but the listing shows %v", list.Contents)
		}
	case errCode(getErr) == "NoSuchKey":
		if len(list.Contents) != 0 {
			t.Errorf("GET says NoSuchKey but the listing shows %d objects", len(list.Contents))
		}
	default:
		t.Fatalf("GET after the race: %v", getErr)
	}
	// A last delete leaves nothing behind: no data, no sidecar, no empty directories.
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("race"), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(s.root, "race"), filepath.Join(s.root, ".meta", "race")} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s holds %d entries after the last delete, want none", dir, len(entries))
		}
	}
}
