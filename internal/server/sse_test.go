package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// bodyOf returns a reader of GetObject's answers: the body, or the test fails.
func bodyOf(t *testing.T) func(*s3.GetObjectOutput, error) []byte {
	return func(out *s3.GetObjectOutput, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// onDisk reads an object's data file as the embedded S3 keeps it.
func (ks *kmsServer) onDisk(t *testing.T, bucket, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ks.dataDir, bucket, key))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSSEKMSObjectsAreEncryptedOnDiskAndReadBack(t *testing.T) {
	ks := startKMSServer(t)
	ctx := context.Background()
	k := ks.kmsClient(rootCreds)
	s3c := ks.s3(rootCreds)
	key, err := k.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	arn := *key.KeyMetadata.Arn
	if _, err := k.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/data"), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}

	// 200,001 bytes of recognizable text: four chunks, the last one short.
	plain := bytes.Repeat([]byte("the quick brown fox "), 10000)
	plain = append(plain, '!')
	put, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("train.csv"), Body: bytes.NewReader(plain),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("alias/data")})
	if err != nil {
		t.Fatal(err)
	}
	if put.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms || aws.ToString(put.SSEKMSKeyId) != arn {
		t.Fatalf("PutObject answered SSE %q key %q", put.ServerSideEncryption, aws.ToString(put.SSEKMSKeyId))
	}
	raw := ks.onDisk(t, "data", "train.csv")
	if bytes.Contains(raw, []byte("quick brown")) {
		t.Fatal("the data file holds the plaintext")
	}
	got := bodyOf(t)(s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("train.csv")}))
	if !bytes.Equal(got, plain) {
		t.Fatalf("GetObject returned %d bytes, want the %d put", len(got), len(plain))
	}
	for _, rng := range []struct {
		header     string
		start, end int
	}{{"bytes=65530-131080", 65530, 131081}, {"bytes=199990-", 199990, len(plain)}, {"bytes=-5", len(plain) - 5, len(plain)}, {"bytes=0-0", 0, 1}} {
		out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("train.csv"), Range: aws.String(rng.header)})
		if got := bodyOf(t)(out, err); !bytes.Equal(got, plain[rng.start:rng.end]) {
			t.Fatalf("range %s: %d bytes differ from the object's", rng.header, len(got))
		}
	}
	head, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("train.csv")})
	if err != nil || head.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms || aws.ToString(head.SSEKMSKeyId) != arn || aws.ToInt64(head.ContentLength) != int64(len(plain)) {
		t.Fatalf("HeadObject: %+v %v", head, err)
	}
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data")})
	if err != nil || len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != int64(len(plain)) {
		t.Fatalf("listing reports the object's size: %+v %v", list, err)
	}

	// Multipart: parts are encrypted as they arrive, the object as a whole once complete.
	part1 := make([]byte, 5<<20)
	_, _ = rand.Read(part1)
	copy(part1, "PART-ONE-PLAINTEXT")
	part2 := []byte("PART-TWO-PLAINTEXT and the end")
	mp, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("big.bin"),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(arn)})
	if err != nil || mp.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms {
		t.Fatalf("CreateMultipartUpload: %+v %v", mp, err)
	}
	var parts []s3types.CompletedPart
	for i, body := range [][]byte{part1, part2} {
		up, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("big.bin"), UploadId: mp.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, s3types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := s3c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("big.bin"),
		UploadId: mp.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	whole := append(append([]byte(nil), part1...), part2...)
	if got := bodyOf(t)(s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("big.bin")})); !bytes.Equal(got, whole) {
		t.Fatal("the multipart object reads back different")
	}
	if raw := ks.onDisk(t, "data", "big.bin"); bytes.Contains(raw, []byte("PART-ONE-PLAINTEXT")) || bytes.Contains(raw, []byte("PART-TWO")) {
		t.Fatal("the multipart data file holds plaintext")
	}
	if got := bodyOf(t)(s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("big.bin"), PartNumber: aws.Int32(2)})); !bytes.Equal(got, part2) {
		t.Fatal("GetObject partNumber=2 of the encrypted object")
	}

	// Bucket default encryption applies to puts without SSE headers.
	_, err = s3c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("data")})
	wantCode(t, err, "ServerSideEncryptionConfigurationNotFoundError", "The server side encryption configuration was not found")
	if _, err := s3c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("data"),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String("alias/data")}}}}}); err != nil {
		t.Fatal(err)
	}
	enc, err := s3c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("data")})
	if err != nil || enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != s3types.ServerSideEncryptionAwsKms ||
		aws.ToString(enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.KMSMasterKeyID) != "alias/data" {
		t.Fatalf("GetBucketEncryption: %v", err)
	}
	put, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("default.txt"), Body: bytes.NewReader([]byte("DEFAULT-ENCRYPTED"))})
	if err != nil || put.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms || aws.ToString(put.SSEKMSKeyId) != arn {
		t.Fatalf("put under default encryption: %+v %v", put, err)
	}
	if bytes.Contains(ks.onDisk(t, "data", "default.txt"), []byte("DEFAULT-ENCRYPTED")) {
		t.Fatal("default encryption left the data file plain")
	}
	// A copy is encrypted as its destination says: here the bucket default again.
	if _, err := s3c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("copy.txt"), CopySource: aws.String("data/default.txt")}); err != nil {
		t.Fatal(err)
	}
	if got := bodyOf(t)(s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("copy.txt")})); string(got) != "DEFAULT-ENCRYPTED" {
		t.Fatalf("copy reads %q", got)
	}
	if _, err := s3c.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	put, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("plain.txt"), Body: bytes.NewReader([]byte("PLAIN"))})
	if err != nil || put.ServerSideEncryption == s3types.ServerSideEncryptionAwsKms {
		t.Fatalf("put after DeleteBucketEncryption: %+v %v", put, err)
	}

	_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("x"), Body: bytes.NewReader([]byte("x")),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("alias/missing")})
	wantCode(t, err, "KMS.NotFoundException", "Alias arn:aws:kms:us-east-1:"+testAccount+":alias/missing is not found.")
}

func TestSSEKMSReadingNeedsTheKeyAndAnEnabledKey(t *testing.T) {
	ks := startKMSServer(t)
	ctx := context.Background()
	k := ks.kmsClient(rootCreds)
	root := ks.s3(rootCreds)
	key, err := k.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	arn := *key.KeyMetadata.Arn
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("secret")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("secret"), Key: aws.String("a.txt"), Body: bytes.NewReader([]byte("hello")),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}

	// S3 permissions alone read the object's metadata, not its bytes.
	reader := ks.s3(ks.newUser(t, "reader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::secret/*"}]}`))
	if _, err := reader.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("secret"), Key: aws.String("a.txt")}); err != nil {
		t.Fatalf("HEAD needs no key: %v", err)
	}
	_, err = reader.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secret"), Key: aws.String("a.txt")})
	wantCode(t, err, "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/reader is not authorized to perform: kms:Decrypt on resource: "+arn+
		" because no identity-based policy allows the kms:Decrypt action")
	_, err = reader.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("secret"), Key: aws.String("b.txt"), Body: bytes.NewReader([]byte("x")),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(arn)})
	wantCode(t, err, "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/reader is not authorized to perform: kms:GenerateDataKey on resource: "+arn+
		" because no identity-based policy allows the kms:GenerateDataKey action")
	decrypter := ks.s3(ks.newUser(t, "decrypter", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::secret/*"},
	  {"Effect":"Allow","Action":"kms:Decrypt","Resource":"`+arn+`"}]}`))
	if got := bodyOf(t)(decrypter.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secret"), Key: aws.String("a.txt")})); string(got) != "hello" {
		t.Fatalf("read with kms:Decrypt: %q", got)
	}

	// A disabled key makes the object unreadable, with KMS's error as S3 words it.
	if _, err := k.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secret"), Key: aws.String("a.txt")})
	wantCode(t, err, "KMS.DisabledException", arn+" is disabled.")
	if _, err := k.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if got := bodyOf(t)(root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secret"), Key: aws.String("a.txt")})); string(got) != "hello" {
		t.Fatalf("read after EnableKey: %q", got)
	}
	if _, err := k.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	_, err = root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secret"), Key: aws.String("a.txt")})
	wantCode(t, err, "KMS.KMSInvalidStateException", arn+" is pending deletion.")
	ks.kmsOffset.Store(int64(8 * 24 * time.Hour))
	_, err = root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secret"), Key: aws.String("a.txt")})
	wantCode(t, err, "KMS.NotFoundException", "Key '"+arn+"' does not exist")
}
