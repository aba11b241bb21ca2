package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/lathe-ml/lathe/internal/audit"
	"github.com/lathe-ml/lathe/internal/iam"
	iamsqlite "github.com/lathe-ml/lathe/internal/iam/sqlite"
	"github.com/lathe-ml/lathe/internal/kms"
	"github.com/lathe-ml/lathe/internal/s3api"
)

// kmsServer is the IAM test server with KMS over the same SQLite file, and KMS's clock under the
// test's control (to pass deletion windows).
type kmsServer struct {
	*iamServer
	kms       *kms.Service
	kmsOffset atomic.Int64
	dataDir   string // the embedded S3's directory
	auditDir  string
}

func startKMSServer(t *testing.T) *kmsServer {
	t.Helper()
	ks := &kmsServer{iamServer: &iamServer{}, dataDir: t.TempDir()}
	store, err := iamsqlite.Open(context.Background(), t.TempDir()+"/lathe.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, err := iam.New(iam.Config{Store: store, AccountID: testAccount,
		Now: func() time.Time { return time.Now().Add(time.Duration(ks.iamOffset.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	master, err := kms.LoadMasterKey("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ks.kms, err = kms.New(kms.Config{Store: store, Region: testRegion, AccountID: testAccount, MasterKey: master,
		Now: func() time.Time { return time.Now().Add(time.Duration(ks.kmsOffset.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	objects, err := s3api.NewWithKMS(ks.dataDir, logger, ks.kms)
	if err != nil {
		t.Fatal(err)
	}
	ks.auditDir = t.TempDir()
	auditLog, err := audit.Open(ks.auditDir, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { auditLog.Close() })
	ks.testServer = startServer(t, false, func(cfg *Config) {
		cfg.IAM = svc
		cfg.KMS = ks.kms
		cfg.S3 = objects
		cfg.Audit = auditLog
	})
	return ks
}

func (ks *kmsServer) kmsClient(c aws.CredentialsProvider) *awskms.Client {
	return awskms.New(awskms.Options{Region: testRegion, BaseEndpoint: aws.String(ks.URL), Credentials: c,
		HTTPClient: ks.sdkHTTPClient(), Retryer: aws.NopRetryer{}})
}

func TestKMSKeyLifecycleAndCryptoThroughTheSDK(t *testing.T) {
	ks := startKMSServer(t)
	ctx := context.Background()
	k := ks.kmsClient(rootCreds)

	created, err := k.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	md := created.KeyMetadata
	id := *md.KeyId
	arn := "arn:aws:kms:" + testRegion + ":" + testAccount + ":key/" + id
	if *md.Arn != arn || md.KeyState != kmstypes.KeyStateEnabled || !md.Enabled || md.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt ||
		md.KeySpec != kmstypes.KeySpecSymmetricDefault || *md.Description != "artifacts" || md.CreationDate == nil || *md.AWSAccountId != testAccount {
		t.Fatalf("metadata %+v", md)
	}
	pol, err := k.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: aws.String(id), PolicyName: aws.String("default")})
	if err != nil || !strings.Contains(*pol.Policy, `"arn:aws:iam::`+testAccount+`:root"`) || !strings.Contains(*pol.Policy, `"kms:*"`) {
		t.Fatalf("default policy: %v %v", pol, err)
	}

	if _, err := k.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/team"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_, err = k.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/team"), TargetKeyId: aws.String(id)})
	var exists *kmstypes.AlreadyExistsException
	if !errors.As(err, &exists) || exists.ErrorMessage() != "An alias with the name arn:aws:kms:us-east-1:"+testAccount+":alias/team already exists" {
		t.Fatalf("duplicate alias: %v", err)
	}
	_, err = k.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("team"), TargetKeyId: aws.String(id)})
	wantCode(t, err, "ValidationException", `Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`)

	// Every way of naming the key encrypts with it; Decrypt needs no key id.
	var blobs [][]byte
	for _, ref := range []string{id, arn, "alias/team", "arn:aws:kms:us-east-1:" + testAccount + ":alias/team"} {
		enc, err := k.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(ref), Plaintext: []byte("secret " + ref),
			EncryptionContext: map[string]string{"purpose": "test"}})
		if err != nil {
			t.Fatalf("encrypt with %s: %v", ref, err)
		}
		if *enc.KeyId != arn || bytes.Contains(enc.CiphertextBlob, []byte("secret")) {
			t.Fatalf("encrypt with %s: key %s, blob %q", ref, *enc.KeyId, enc.CiphertextBlob)
		}
		dec, err := k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "test"}})
		if err != nil || string(dec.Plaintext) != "secret "+ref || *dec.KeyId != arn {
			t.Fatalf("decrypt of %s: %v %v", ref, dec, err)
		}
		blobs = append(blobs, enc.CiphertextBlob)
	}
	_, err = k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blobs[0], EncryptionContext: map[string]string{"purpose": "other"}})
	var badCT *kmstypes.InvalidCiphertextException
	if !errors.As(err, &badCT) {
		t.Fatalf("decrypt with another encryption context: %v", err)
	}
	tampered := append([]byte(nil), blobs[0]...)
	tampered[len(tampered)-1] ^= 1
	if _, err := k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: tampered, EncryptionContext: map[string]string{"purpose": "test"}}); !errors.As(err, &badCT) {
		t.Fatalf("decrypt of a tampered blob: %v", err)
	}

	// Data keys: the plaintext is what the blob decrypts to.
	dk, err := k.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String("alias/team"), KeySpec: kmstypes.DataKeySpecAes256})
	if err != nil || len(dk.Plaintext) != 32 {
		t.Fatalf("GenerateDataKey: %v %v", dk, err)
	}
	dec, err := k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	if err != nil || !bytes.Equal(dec.Plaintext, dk.Plaintext) {
		t.Fatalf("decrypt data key: %v", err)
	}
	wp, err := k.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(16)})
	if err != nil || *wp.KeyId != arn {
		t.Fatalf("GenerateDataKeyWithoutPlaintext: %v", err)
	}
	if dec, err := k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: wp.CiphertextBlob}); err != nil || len(dec.Plaintext) != 16 {
		t.Fatalf("decrypt data key without plaintext: %v", err)
	}
	_, err = k.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(id)})
	wantCode(t, err, "ValidationException", "Please specify either number of bytes or key spec.")

	// ReEncrypt moves a blob to another key; the alias follows UpdateAlias.
	other, err := k.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	re, err := k.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: blobs[0], SourceEncryptionContext: map[string]string{"purpose": "test"},
		DestinationKeyId: other.KeyMetadata.KeyId})
	if err != nil || *re.SourceKeyId != arn || *re.KeyId != *other.KeyMetadata.Arn {
		t.Fatalf("ReEncrypt: %v %v", re, err)
	}
	if dec, err := k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: re.CiphertextBlob}); err != nil || string(dec.Plaintext) != "secret "+id {
		t.Fatalf("decrypt re-encrypted: %v", err)
	}
	_, err = k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: re.CiphertextBlob, KeyId: aws.String(id)})
	var incorrect *kmstypes.IncorrectKeyException
	if !errors.As(err, &incorrect) {
		t.Fatalf("decrypt naming the wrong key: %v", err)
	}
	if _, err := k.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/team"), TargetKeyId: other.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	aliases, err := k.ListAliases(ctx, &awskms.ListAliasesInput{})
	if err != nil || len(aliases.Aliases) != 1 || *aliases.Aliases[0].TargetKeyId != *other.KeyMetadata.KeyId {
		t.Fatalf("aliases after update: %+v %v", aliases, err)
	}
	if _, err := k.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String("alias/team")}); err != nil {
		t.Fatal(err)
	}
	_, err = k.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("alias/team")})
	wantCode(t, err, "NotFoundException", "Alias arn:aws:kms:us-east-1:"+testAccount+":alias/team is not found.")

	// A disabled key neither encrypts nor decrypts, until enabled again.
	if _, err := k.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_, err = k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	var disabled *kmstypes.DisabledException
	if !errors.As(err, &disabled) || disabled.ErrorMessage() != arn+" is disabled." {
		t.Fatalf("decrypt under a disabled key: %v", err)
	}
	if _, err := k.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); !errors.As(err, &disabled) {
		t.Fatalf("encrypt under a disabled key: %v", err)
	}
	if _, err := k.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}

	// Deletion: a window of 7 to 30 days, the key unusable meanwhile, gone after it.
	_, err = k.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(3)})
	wantCode(t, err, "ValidationException", "1 validation error detected: Value '3' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30")
	sched, err := k.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	if err != nil || sched.KeyState != kmstypes.KeyStatePendingDeletion || *sched.KeyId != arn ||
		time.Until(*sched.DeletionDate) < 6*24*time.Hour {
		t.Fatalf("ScheduleKeyDeletion: %+v %v", sched, err)
	}
	_, err = k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	var state *kmstypes.KMSInvalidStateException
	if !errors.As(err, &state) || state.ErrorMessage() != arn+" is pending deletion." {
		t.Fatalf("decrypt under a key pending deletion: %v", err)
	}
	if _, err := k.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(id)}); !errors.As(err, &state) {
		t.Fatalf("enable a key pending deletion: %v", err)
	}
	if _, err := k.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	d, err := k.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(id)})
	if err != nil || d.KeyMetadata.KeyState != kmstypes.KeyStateDisabled {
		t.Fatalf("after CancelKeyDeletion: %+v %v", d, err)
	}
	if _, err := k.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	ks.kmsOffset.Store(int64(7*24*time.Hour + time.Minute))
	// The key's alias went with it: the name is free again.
	if _, err := k.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: other.KeyMetadata.KeyId}); err != nil {
		t.Fatalf("reuse the alias of a deleted key: %v", err)
	}
	_, err = k.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(id)})
	var notFound *kmstypes.NotFoundException
	if !errors.As(err, &notFound) || notFound.ErrorMessage() != "Key '"+arn+"' does not exist" {
		t.Fatalf("a key past its deletion date: %v", err)
	}
	if _, err := k.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob}); !errors.As(err, &notFound) {
		t.Fatalf("decrypt under a deleted key: %v", err)
	}
	keys, err := k.ListKeys(ctx, &awskms.ListKeysInput{})
	if err != nil || len(keys.Keys) != 1 || *keys.Keys[0].KeyId != *other.KeyMetadata.KeyId {
		t.Fatalf("ListKeys after deletion: %+v %v", keys, err)
	}

	_, err = k.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("not-a-key")})
	wantCode(t, err, "NotFoundException", "Invalid keyId 'not-a-key'")
	_, err = k.Encrypt(ctx, &awskms.EncryptInput{KeyId: other.KeyMetadata.KeyId, Plaintext: make([]byte, 4097)})
	wantCode(t, err, "ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096")
}

func TestKMSAuthorizationByIdentityAndKeyPolicy(t *testing.T) {
	ks := startKMSServer(t)
	ctx := context.Background()
	root := ks.kmsClient(rootCreds)
	created, err := root.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	arn := *created.KeyMetadata.Arn
	enc, err := root.Encrypt(ctx, &awskms.EncryptInput{KeyId: created.KeyMetadata.KeyId, Plaintext: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}

	nobody := ks.kmsClient(ks.newUser(t, "nobody", ""))
	_, err = nobody.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantCode(t, err, "AccessDeniedException", "User: arn:aws:iam::"+testAccount+":user/nobody is not authorized to perform: kms:Decrypt on resource: "+arn+
		" because no identity-based policy allows the kms:Decrypt action")
	_, err = nobody.CreateKey(ctx, &awskms.CreateKeyInput{})
	wantCode(t, err, "AccessDeniedException", "")

	// The default key policy delegates to IAM: an identity policy on the key's ARN is enough.
	encrypter := ks.kmsClient(ks.newUser(t, "encrypter", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"`+arn+`"}]}`))
	if _, err := encrypter.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if dec, err := encrypter.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil || string(dec.Plaintext) != "hello" {
		t.Fatalf("allowed decrypt: %v", err)
	}
	_, err = encrypter.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(arn)})
	wantCode(t, err, "AccessDeniedException", "")

	// An explicit Deny in the key policy beats the identity policy's Allow.
	denyPolicy := `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:user/encrypter"},"Action":"kms:Decrypt","Resource":"*"}]}`
	if _, err := root.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default"), Policy: aws.String(denyPolicy)}); err != nil {
		t.Fatal(err)
	}
	_, err = encrypter.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantCode(t, err, "AccessDeniedException", "User: arn:aws:iam::"+testAccount+":user/encrypter is not authorized to perform: kms:Decrypt on resource: "+arn+
		" with an explicit deny in a resource-based policy")
	// A key policy that does not give the key to the account does not delegate to IAM: the
	// identity policy's Allow is no longer enough, and the user it names needs none.
	named := ks.kmsClient(ks.newUser(t, "named", ""))
	ownPolicy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:user/named"},"Action":"kms:Encrypt","Resource":"*"}]}`
	if _, err := root.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default"), Policy: aws.String(ownPolicy)}); err != nil {
		t.Fatal(err)
	}
	_, err = encrypter.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException", "User: arn:aws:iam::"+testAccount+":user/encrypter is not authorized to perform: kms:Encrypt on resource: "+arn+
		" because no resource-based policy allows the kms:Encrypt action")
	if _, err := named.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("the user the key policy names: %v", err)
	}
	_, err = named.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantCode(t, err, "AccessDeniedException", "")
	_, err = root.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default"), Policy: aws.String(`{"Statement":[]}`)})
	wantCode(t, err, "MalformedPolicyDocumentException", "")
}
