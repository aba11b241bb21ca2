package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/iam"
	iamsqlite "github.com/lathe-ml/lathe/internal/iam/sqlite"
	"github.com/lathe-ml/lathe/internal/s3api"
)

const testAccount = "123456789012"

// iamServer is the front door with IAM on a real SQLite file, the real embedded S3 and a
// CreateAutoMLJobV2 that only echoes, with IAM's clock under the test's control (signatures keep
// the real clock: the SDK signs with it).
type iamServer struct {
	*testServer
	iamOffset atomic.Int64
	created   atomic.Int32 // CreateAutoMLJobV2 calls that reached the operation
}

func startIAMServer(t *testing.T) *iamServer {
	t.Helper()
	is := &iamServer{}
	store, err := iamsqlite.Open(context.Background(), t.TempDir()+"/lathe.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, err := iam.New(iam.Config{Store: store, AccountID: testAccount,
		Now: func() time.Time { return time.Now().Add(time.Duration(is.iamOffset.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	objects, err := s3api.New(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	is.testServer = startServer(t, false, func(cfg *Config) {
		cfg.IAM = svc
		cfg.S3 = objects
		cfg.ResourceTags = func(ctx context.Context, arn string) (map[string]string, error) {
			if arn == "arn:aws:sagemaker:us-east-1:"+testAccount+":automl-job/tagged" {
				return map[string]string{"team": "ml"}, nil
			}
			return nil, nil
		}
		cfg.Runtime = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `[{"generated_text":"ok"}]`)
		})
		cfg.SageMaker["CreateAutoMLJobV2"] = func(ctx context.Context, body []byte) (any, error) {
			var in struct{ AutoMLJobName string }
			if err := json.Unmarshal(body, &in); err != nil {
				return nil, awserr.Validation("bad input: %v", err)
			}
			is.created.Add(1)
			return map[string]any{"AutoMLJobArn": "arn:aws:sagemaker:us-east-1:" + testAccount + ":automl-job/" + strings.ToLower(in.AutoMLJobName)}, nil
		}
	})
	return is
}

func (is *iamServer) iam(c aws.CredentialsProvider) *awsiam.Client {
	return awsiam.New(awsiam.Options{Region: testRegion, BaseEndpoint: aws.String(is.URL), Credentials: c,
		HTTPClient: is.sdkHTTPClient(), Retryer: aws.NopRetryer{}})
}

func (is *iamServer) sts(c aws.CredentialsProvider) *sts.Client {
	return sts.New(sts.Options{Region: testRegion, BaseEndpoint: aws.String(is.URL), Credentials: c,
		HTTPClient: is.sdkHTTPClient(), Retryer: aws.NopRetryer{}})
}

func (is *iamServer) sm(c aws.CredentialsProvider) *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{Region: testRegion, BaseEndpoint: aws.String(is.URL), Credentials: c,
		HTTPClient: is.sdkHTTPClient(), Retryer: aws.NopRetryer{}})
}

func (is *iamServer) s3(c aws.CredentialsProvider) *s3.Client {
	return s3.New(s3.Options{Region: testRegion, BaseEndpoint: aws.String(is.URL), UsePathStyle: true, Credentials: c,
		HTTPClient: is.sdkHTTPClient(), Retryer: aws.NopRetryer{}})
}

var rootCreds = staticCreds(testCreds)

// newUser creates a user with the given inline policy (if any) and an access key.
func (is *iamServer) newUser(t *testing.T, name, inline string) aws.CredentialsProvider {
	t.Helper()
	ctx := context.Background()
	admin := is.iam(rootCreds)
	if _, err := admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if inline != "" {
		if _, err := admin.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("inline"), PolicyDocument: aws.String(inline)}); err != nil {
			t.Fatal(err)
		}
	}
	key, err := admin.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewStaticCredentialsProvider(*key.AccessKey.AccessKeyId, *key.AccessKey.SecretAccessKey, "")
}

func apiError(t *testing.T, err error) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an API error", err)
	}
	return ae
}

func wantCode(t *testing.T, err error, code, message string) {
	t.Helper()
	ae := apiError(t, err)
	if ae.ErrorCode() != code || (message != "" && ae.ErrorMessage() != message) {
		t.Fatalf("got %s %q, want %s %q", ae.ErrorCode(), ae.ErrorMessage(), code, message)
	}
}

func createJobInput(name string) *sagemaker.CreateAutoMLJobV2Input {
	return &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String(name),
		AutoMLJobInputDataConfig: []smtypes.AutoMLJobChannel{{ChannelType: smtypes.AutoMLChannelTypeTraining,
			DataSource: &smtypes.AutoMLDataSource{S3DataSource: &smtypes.AutoMLS3DataSource{S3DataType: smtypes.AutoMLS3DataTypeS3Prefix, S3Uri: aws.String("s3://b/train/")}}}},
		AutoMLProblemTypeConfig: &smtypes.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: smtypes.TextGenerationJobConfig{BaseModelName: aws.String("Stories260K")}},
		OutputDataConfig:        &smtypes.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://b/out/")},
		RoleArn:                 aws.String("arn:aws:iam::" + testAccount + ":role/r"),
	}
}

func TestIAMUsersKeysAndErrorsThroughTheSDK(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	admin := is.iam(rootCreds)

	out, err := admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("alice"), Path: aws.String("/team/")})
	if err != nil {
		t.Fatal(err)
	}
	if got := *out.User.Arn; got != "arn:aws:iam::"+testAccount+":user/team/alice" || !strings.HasPrefix(*out.User.UserId, "AIDA") || out.User.CreateDate == nil {
		t.Fatalf("user %+v", out.User)
	}
	_, err = admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("ALICE")})
	var exists *iamtypes.EntityAlreadyExistsException
	if !errors.As(err, &exists) || exists.ErrorMessage() != "User with name ALICE already exists." {
		t.Fatalf("duplicate (case-insensitive) user: %v", err)
	}
	_, err = admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("bad name")})
	wantCode(t, err, "ValidationError", `1 validation error detected: Value 'bad name' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`)
	_, err = admin.GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("nobody")})
	var missing *iamtypes.NoSuchEntityException
	if !errors.As(err, &missing) || missing.ErrorMessage() != "The user with name nobody cannot be found." {
		t.Fatalf("missing user: %v", err)
	}

	key, err := admin.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(*key.AccessKey.AccessKeyId, "AKIA") || len(*key.AccessKey.SecretAccessKey) != 40 || key.AccessKey.Status != iamtypes.StatusTypeActive {
		t.Fatalf("key %+v", key.AccessKey)
	}
	alice := credentials.NewStaticCredentialsProvider(*key.AccessKey.AccessKeyId, *key.AccessKey.SecretAccessKey, "")
	who, err := is.sts(alice).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *who.Arn != "arn:aws:iam::"+testAccount+":user/team/alice" || *who.Account != testAccount || *who.UserId != *out.User.UserId {
		t.Fatalf("caller %s %s %s", *who.Arn, *who.Account, *who.UserId)
	}
	rootWho, err := is.sts(rootCreds).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *rootWho.Arn != "arn:aws:iam::"+testAccount+":root" {
		t.Fatalf("root caller: %v %v", rootWho, err)
	}

	// A user with no policy is denied IAM too, in IAM's words.
	_, err = is.iam(alice).ListUsers(ctx, &awsiam.ListUsersInput{})
	wantCode(t, err, "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/team/alice is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::"+testAccount+":user/ because no identity-based policy allows the iam:ListUsers action")

	if _, err := admin.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	_, err = admin.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("alice")})
	var limit *iamtypes.LimitExceededException
	if !errors.As(err, &limit) || limit.ErrorMessage() != "Cannot exceed quota for AccessKeysPerUser: 2" {
		t.Fatalf("third key: %v", err)
	}
	keys, err := admin.ListAccessKeys(ctx, &awsiam.ListAccessKeysInput{UserName: aws.String("alice")})
	if err != nil || len(keys.AccessKeyMetadata) != 2 {
		t.Fatalf("list keys: %v %v", keys, err)
	}

	// An inactive key no longer signs; an active one again does.
	if _, err := admin.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: key.AccessKey.AccessKeyId, Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	_, err = is.sts(alice).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "InvalidClientTokenId", "The security token included in the request is invalid.")
	_, err = is.sm(alice).ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{})
	wantCode(t, err, "UnrecognizedClientException", "")

	_, err = admin.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")})
	var conflict *iamtypes.DeleteConflictException
	if !errors.As(err, &conflict) || conflict.ErrorMessage() != "Cannot delete entity, must delete access keys first." {
		t.Fatalf("delete user with keys: %v", err)
	}
	for _, k := range keys.AccessKeyMetadata {
		if _, err := admin.DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: k.AccessKeyId}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	users, err := admin.ListUsers(ctx, &awsiam.ListUsersInput{})
	if err != nil || len(users.Users) != 0 {
		t.Fatalf("users after delete: %+v %v", users, err)
	}
}

func TestReadOnlyUserDescribesButCannotCreate(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	ro := is.newUser(t, "ro", `{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnly","Effect":"Allow","Action":["sagemaker:Describe*","sagemaker:List*"],"Resource":"*"}]}`)
	sm := is.sm(ro)

	d, err := sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("job1")})
	if err != nil || *d.AutoMLJobName != "job1" {
		t.Fatalf("describe: %v %v", d, err)
	}
	if _, err := sm.ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{}); err != nil {
		t.Fatal(err)
	}
	_, err = sm.CreateAutoMLJobV2(ctx, createJobInput("Job1"))
	wantCode(t, err, "AccessDeniedException", "User: arn:aws:iam::"+testAccount+":user/ro is not authorized to perform: sagemaker:CreateAutoMLJobV2 on resource: arn:aws:sagemaker:us-east-1:"+testAccount+":automl-job/job1 because no identity-based policy allows the sagemaker:CreateAutoMLJobV2 action")
	_, err = sm.StopAutoMLJob(ctx, &sagemaker.StopAutoMLJobInput{AutoMLJobName: aws.String("job1")})
	wantCode(t, err, "AccessDeniedException", "")
	if n := is.created.Load(); n != 0 {
		t.Fatalf("the denied create reached the operation %d times", n)
	}
	// The root keys stay allowed everything.
	if _, err := is.sm(rootCreds).CreateAutoMLJobV2(ctx, createJobInput("job1")); err != nil {
		t.Fatal(err)
	}

	// A new default version of a managed policy changes what the user may do.
	admin := is.iam(rootCreds)
	mp, err := admin.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("Creators"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sagemaker:CreateModel","Resource":"*"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("ro"), PolicyArn: mp.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = sm.CreateAutoMLJobV2(ctx, createJobInput("job2"))
	wantCode(t, err, "AccessDeniedException", "")
	if _, err := admin.CreatePolicyVersion(ctx, &awsiam.CreatePolicyVersionInput{PolicyArn: mp.Policy.Arn, SetAsDefault: true,
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sagemaker:CreateAutoMLJobV2","Resource":"arn:aws:sagemaker:*:*:automl-job/job*"}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateAutoMLJobV2(ctx, createJobInput("job2")); err != nil {
		t.Fatalf("create after the new policy version: %v", err)
	}
	_, err = sm.CreateAutoMLJobV2(ctx, createJobInput("other"))
	wantCode(t, err, "AccessDeniedException", "")
	attached, err := admin.ListAttachedUserPolicies(ctx, &awsiam.ListAttachedUserPoliciesInput{UserName: aws.String("ro")})
	if err != nil || len(attached.AttachedPolicies) != 1 || *attached.AttachedPolicies[0].PolicyName != "Creators" {
		t.Fatalf("attached: %+v %v", attached, err)
	}
	_, err = admin.DeletePolicy(ctx, &awsiam.DeletePolicyInput{PolicyArn: mp.Policy.Arn})
	wantCode(t, err, "DeleteConflict", "Cannot delete a policy attached to entities.")
	v1, err := admin.GetPolicyVersion(ctx, &awsiam.GetPolicyVersionInput{PolicyArn: mp.Policy.Arn, VersionId: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.QueryUnescape(*v1.PolicyVersion.Document); !strings.Contains(doc, "sagemaker:CreateModel") || v1.PolicyVersion.IsDefaultVersion {
		t.Fatalf("v1: %q default=%v", doc, v1.PolicyVersion.IsDefaultVersion)
	}
}

func TestBucketConfinedUserAndExplicitDeny(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	root := is.s3(rootCreds)
	for _, b := range []string{"bucket-a", "bucket-b"} {
		if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
		if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("data/x.csv"), Body: strings.NewReader("input,output\n")}); err != nil {
			t.Fatal(err)
		}
	}
	confined := is.s3(is.newUser(t, "confined", `{"Version":"2012-10-17","Statement":[
		{"Sid":"List","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bucket-a"},
		{"Sid":"Objects","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket-a/*"}]}`))

	if _, err := confined.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("data/x.csv")}); err != nil {
		t.Fatal(err)
	}
	list, err := confined.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bucket-a")})
	if err != nil || len(list.Contents) != 1 {
		t.Fatalf("list bucket-a: %v %v", list, err)
	}
	_, err = confined.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-b"), Key: aws.String("data/x.csv")})
	wantCode(t, err, "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/confined is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::bucket-b/data/x.csv because no identity-based policy allows the s3:GetObject action")
	_, err = confined.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bucket-b")})
	wantCode(t, err, "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/confined is not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::bucket-b because no identity-based policy allows the s3:ListBucket action")
	_, err = confined.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("stolen.csv"), CopySource: aws.String("bucket-b/data/x.csv")})
	wantCode(t, err, "AccessDenied", "")
	_, err = confined.ListBuckets(ctx, &s3.ListBucketsInput{})
	wantCode(t, err, "AccessDenied", "")

	// s3:prefix and ${aws:username}: each user lists and writes only their own home folder.
	homer := is.s3(is.newUser(t, "homer", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bucket-a","Condition":{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}},
		{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::bucket-a/home/${aws:username}/*"}]}`))
	if _, err := homer.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("home/homer/notes.txt"), Body: strings.NewReader("d'oh")}); err != nil {
		t.Fatal(err)
	}
	own, err := homer.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bucket-a"), Prefix: aws.String("home/homer/")})
	if err != nil || len(own.Contents) != 1 {
		t.Fatalf("own home: %v %v", own, err)
	}
	_, err = homer.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bucket-a"), Prefix: aws.String("home/marge/")})
	wantCode(t, err, "AccessDenied", "")
	_, err = homer.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bucket-a")})
	wantCode(t, err, "AccessDenied", "")
	_, err = homer.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("home/marge/x"), Body: strings.NewReader("x")})
	wantCode(t, err, "AccessDenied", "")

	// DeleteObjects is checked key by key: one key outside the home folder refuses the request.
	del := func(keys ...string) error {
		var ids []s3types.ObjectIdentifier
		for _, k := range keys {
			ids = append(ids, s3types.ObjectIdentifier{Key: aws.String(k)})
		}
		_, err := homer.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("bucket-a"), Delete: &s3types.Delete{Objects: ids}})
		return err
	}
	wantCode(t, del("home/homer/notes.txt", "data/x.csv"), "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/homer is not authorized to perform: s3:DeleteObject on resource: arn:aws:s3:::bucket-a/data/x.csv because no identity-based policy allows the s3:DeleteObject action")
	if _, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("home/homer/notes.txt")}); err != nil {
		t.Fatalf("the refused DeleteObjects deleted the allowed key: %v", err)
	}
	if err := del("home/homer/notes.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("home/homer/notes.txt")}); err == nil {
		t.Fatal("DeleteObjects of the own key did not delete it")
	}

	// aws:SourceIp: the test client connects from 127.0.0.1.
	local := is.s3(is.newUser(t, "local", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}}`))
	if _, err := local.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-b"), Key: aws.String("data/x.csv")}); err != nil {
		t.Fatalf("from an allowed address: %v", err)
	}
	office := is.s3(is.newUser(t, "office", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}}`))
	_, err = office.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-b"), Key: aws.String("data/x.csv")})
	wantCode(t, err, "AccessDenied", "")

	// Explicit Deny beats Allow: a group grants all of S3, the user's own policy denies bucket-b.
	admin := is.iam(rootCreds)
	if _, err := admin.CreateGroup(ctx, &awsiam.CreateGroupInput{GroupName: aws.String("s3-admins")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AttachGroupPolicy(ctx, &awsiam.AttachGroupPolicyInput{GroupName: aws.String("s3-admins"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AmazonS3FullAccess")}); err != nil {
		t.Fatal(err)
	}
	denied := is.s3(is.newUser(t, "denied", `{"Version":"2012-10-17","Statement":{"Sid":"NoB","Effect":"Deny","Action":"s3:*","Resource":["arn:aws:s3:::bucket-b","arn:aws:s3:::bucket-b/*"]}}`))
	_, err = denied.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("data/x.csv")})
	wantCode(t, err, "AccessDenied", "") // not in the group yet: implicit deny
	if _, err := admin.AddUserToGroup(ctx, &awsiam.AddUserToGroupInput{GroupName: aws.String("s3-admins"), UserName: aws.String("denied")}); err != nil {
		t.Fatal(err)
	}
	groups, err := admin.ListGroupsForUser(ctx, &awsiam.ListGroupsForUserInput{UserName: aws.String("denied")})
	if err != nil || len(groups.Groups) != 1 || *groups.Groups[0].GroupName != "s3-admins" {
		t.Fatalf("groups: %+v %v", groups, err)
	}
	if _, err := denied.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("data/x.csv")}); err != nil {
		t.Fatalf("group grant: %v", err)
	}
	_, err = denied.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-b"), Key: aws.String("data/x.csv")})
	wantCode(t, err, "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/denied is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::bucket-b/data/x.csv with an explicit deny in an identity-based policy")
}

func TestAssumeRoleCredentialsWorkUntilTheyExpire(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	admin := is.iam(rootCreds)
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:root"},"Action":"sts:AssumeRole"}]}`
	role, err := admin.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("trainer"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.QueryUnescape(*role.Role.AssumeRolePolicyDocument); doc != trust {
		t.Fatalf("trust policy comes back as %q", doc)
	}
	if _, err := admin.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("trainer"), PolicyName: aws.String("jobs"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["sagemaker:Describe*","sagemaker:List*"],"Resource":"*"}}`)}); err != nil {
		t.Fatal(err)
	}
	// The trust policy names the account, so the caller's own policies must allow sts:AssumeRole.
	dev := is.newUser(t, "dev", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"`+*role.Role.Arn+`"}}`)
	outsider := is.newUser(t, "outsider", "")

	_, err = is.sts(outsider).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("s")})
	wantCode(t, err, "ValidationError", "1 validation error detected: Value 's' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64")
	_, err = is.sts(outsider).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("s0")})
	wantCode(t, err, "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/outsider is not authorized to perform: sts:AssumeRole on resource: "+*role.Role.Arn)
	_, err = is.sts(dev).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + testAccount + ":role/nope"), RoleSessionName: aws.String("s1")})
	wantCode(t, err, "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/dev is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::"+testAccount+":role/nope")
	_, err = is.sts(dev).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(7200)})
	wantCode(t, err, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	if _, err := admin.UpdateRole(ctx, &awsiam.UpdateRoleInput{RoleName: aws.String("trainer"), MaxSessionDuration: aws.Int32(7200)}); err != nil {
		t.Fatal(err)
	}
	if _, err := is.sts(dev).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(7200)}); err != nil {
		t.Fatalf("after raising MaxSessionDuration: %v", err)
	}

	out, err := is.sts(dev).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("nightly"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	if !strings.HasPrefix(*c.AccessKeyId, "ASIA") || *c.SessionToken == "" || *out.AssumedRoleUser.Arn != "arn:aws:sts::"+testAccount+":assumed-role/trainer/nightly" {
		t.Fatalf("credentials %+v user %+v", c, out.AssumedRoleUser)
	}
	if d := time.Until(*c.Expiration); d < 14*time.Minute || d > 15*time.Minute {
		t.Fatalf("expires in %s, want 15 minutes", d)
	}
	session := credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
	who, err := is.sts(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || *who.Arn != "arn:aws:sts::"+testAccount+":assumed-role/trainer/nightly" || *who.UserId != *out.AssumedRoleUser.AssumedRoleId {
		t.Fatalf("caller: %v %v", who, err)
	}
	if _, err := is.sm(session).DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("j")}); err != nil {
		t.Fatal(err)
	}
	_, err = is.sm(session).CreateAutoMLJobV2(ctx, createJobInput("j"))
	wantCode(t, err, "AccessDeniedException", "User: arn:aws:sts::"+testAccount+":assumed-role/trainer/nightly is not authorized to perform: sagemaker:CreateAutoMLJobV2 on resource: arn:aws:sagemaker:us-east-1:"+testAccount+":automl-job/j because no identity-based policy allows the sagemaker:CreateAutoMLJobV2 action")

	// A session policy passed to AssumeRole narrows the role's permissions for that session.
	narrow, err := is.sts(dev).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("narrow"),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sagemaker:DescribeAutoMLJobV2","Resource":"*"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	nc := narrow.Credentials
	narrowed := is.sm(credentials.NewStaticCredentialsProvider(*nc.AccessKeyId, *nc.SecretAccessKey, *nc.SessionToken))
	if _, err := narrowed.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("j")}); err != nil {
		t.Fatal(err)
	}
	_, err = narrowed.ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{})
	wantCode(t, err, "AccessDeniedException", "User: arn:aws:sts::"+testAccount+":assumed-role/trainer/narrow is not authorized to perform: sagemaker:ListAutoMLJobs on resource: arn:aws:sagemaker:us-east-1:"+testAccount+":* because no session policy allows the sagemaker:ListAutoMLJobs action")

	// The session's key without its token, or with another token, is refused.
	_, err = is.sm(credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, "")).ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{})
	wantCode(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")

	// One second before the expiry the credentials still work; at the expiry they do not.
	is.iamOffset.Store(int64(time.Until(*c.Expiration) - time.Second))
	if _, err := is.sm(session).ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{}); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	is.iamOffset.Store(int64(time.Until(*c.Expiration) + time.Second))
	_, err = is.sm(session).ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{})
	wantCode(t, err, "ExpiredTokenException", "The security token included in the request is expired")
	_, err = is.sts(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "ExpiredToken", "The security token included in the request is expired")
	_, err = is.s3(session).ListBuckets(ctx, &s3.ListBucketsInput{})
	wantCode(t, err, "ExpiredToken", "The provided token has expired.")
}

func TestIAMPolicyDocumentsAreCheckedAsIAMDoes(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	admin := is.iam(rootCreds)
	if _, err := admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("u")}); err != nil {
		t.Fatal(err)
	}
	_, err := admin.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("u"), PolicyName: aws.String("p"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}`)})
	var mal *iamtypes.MalformedPolicyDocumentException
	if !errors.As(err, &mal) || mal.ErrorMessage() != "Policy document should not specify a principal." {
		t.Fatalf("principal in a user policy: %v", err)
	}
	_, err = admin.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}`)})
	if !errors.As(err, &mal) || mal.ErrorMessage() != "Missing required field Principal" {
		t.Fatalf("trust policy without principal: %v", err)
	}
	_, err = admin.GetUserPolicy(ctx, &awsiam.GetUserPolicyInput{UserName: aws.String("u"), PolicyName: aws.String("p")})
	wantCode(t, err, "NoSuchEntity", "The user policy with name p cannot be found.")
	_, err = admin.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("u"), PolicyArn: aws.String("arn:aws:iam::aws:policy/NoSuchPolicy")})
	wantCode(t, err, "NoSuchEntity", "Policy arn:aws:iam::aws:policy/NoSuchPolicy does not exist or is not attachable.")
	doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}}`
	if _, err := admin.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("u"), PolicyName: aws.String("home"), PolicyDocument: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	got, err := admin.GetUserPolicy(ctx, &awsiam.GetUserPolicyInput{UserName: aws.String("u"), PolicyName: aws.String("home")})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := url.QueryUnescape(*got.PolicyDocument); d != doc {
		t.Fatalf("document %q", d)
	}
	names, err := admin.ListUserPolicies(ctx, &awsiam.ListUserPoliciesInput{UserName: aws.String("u")})
	if err != nil || len(names.PolicyNames) != 1 || names.PolicyNames[0] != "home" {
		t.Fatalf("policy names %v %v", names, err)
	}
	_, err = admin.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("u")})
	wantCode(t, err, "DeleteConflict", "Cannot delete entity, must delete policies first.")
	pols, err := admin.ListPolicies(ctx, &awsiam.ListPoliciesInput{Scope: iamtypes.PolicyScopeTypeAws})
	if err != nil || len(pols.Policies) == 0 {
		t.Fatalf("AWS managed policies: %v %v", pols, err)
	}
}

func TestBucketPolicies(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	root := is.s3(rootCreds)
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shared"), Key: aws.String("a.csv"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	guest := is.s3(is.newUser(t, "guest", ""))
	get := func(c *s3.Client) error {
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("shared"), Key: aws.String("a.csv")})
		return err
	}
	wantCode(t, get(guest), "AccessDenied", "")
	_, err := root.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("shared")})
	wantCode(t, err, "NoSuchBucketPolicy", "The bucket policy does not exist")
	_, err = root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("shared"),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}}`)})
	wantCode(t, err, "MalformedPolicy", "Policy has invalid resource")
	_, err = root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("missing-bucket"),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::missing-bucket/*"}}`)})
	wantCode(t, err, "NoSuchBucket", "")

	// The bucket policy alone grants the named user (same account); nobody else.
	doc := `{"Version":"2012-10-17","Statement":[{"Sid":"Guest","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:user/guest"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*"},
		{"Sid":"NoWriter","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:user/writer"},"Action":"s3:*","Resource":["arn:aws:s3:::shared","arn:aws:s3:::shared/*"]}]}`
	if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("shared"), Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	got, err := root.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("shared")})
	if err != nil || *got.Policy != doc {
		t.Fatalf("policy back: %v %v", got, err)
	}
	if err := get(guest); err != nil {
		t.Fatalf("guest with the bucket policy: %v", err)
	}
	other := is.s3(is.newUser(t, "other", ""))
	wantCode(t, get(other), "AccessDenied", "")
	writerCreds := is.newUser(t, "writer", "")
	if _, err := is.iam(rootCreds).AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("writer"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AmazonS3FullAccess")}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, get(is.s3(writerCreds)), "AccessDenied", "User: arn:aws:iam::"+testAccount+":user/writer is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::shared/a.csv with an explicit deny in a resource-based policy")

	// A deny on plain HTTP (aws:SecureTransport) holds for every principal but the root.
	tlsOnly := `{"Version":"2012-10-17","Statement":[{"Sid":"Guest","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + testAccount + `:user/guest"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*"},
		{"Sid":"TLSOnly","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::shared","arn:aws:s3:::shared/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("shared"), Policy: aws.String(tlsOnly)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, get(guest), "AccessDenied", "")
	if err := get(root); err != nil {
		t.Fatal(err)
	}

	if _, err := root.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, get(guest), "AccessDenied", "")
	_, err = root.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("shared")})
	wantCode(t, err, "NoSuchBucketPolicy", "")

	// A deleted bucket takes its policy with it: a new bucket of the same name starts without one.
	if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("shared"), Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("shared"), Key: aws.String("a.csv")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	_, err = root.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("shared")})
	wantCode(t, err, "NoSuchBucketPolicy", "")
}

func TestInvokeEndpointIsAuthorizedOnTheEndpoint(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	user := is.newUser(t, "caller", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sagemaker:InvokeEndpoint","Resource":"arn:aws:sagemaker:us-east-1:`+testAccount+`:endpoint/stories"}}`)
	rt := sagemakerruntime.New(sagemakerruntime.Options{Region: testRegion, BaseEndpoint: aws.String(is.URL), Credentials: user,
		HTTPClient: is.sdkHTTPClient(), Retryer: aws.NopRetryer{}})
	invoke := func(name string) error {
		_, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(name), ContentType: aws.String("application/json"), Body: []byte(`{"inputs":"hi"}`)})
		return err
	}
	if err := invoke("Stories"); err != nil { // endpoint ARNs carry the name in lower case
		t.Fatal(err)
	}
	wantCode(t, invoke("other"), "AccessDeniedException", "User: arn:aws:iam::"+testAccount+":user/caller is not authorized to perform: sagemaker:InvokeEndpoint on resource: arn:aws:sagemaker:us-east-1:"+testAccount+":endpoint/other because no identity-based policy allows the sagemaker:InvokeEndpoint action")
}

func TestPrincipalTagsInConditions(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	admin := is.iam(rootCreds)
	doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sagemaker:Describe*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"ml"}}}}`
	for _, u := range []struct{ name, team string }{{"mlperson", "ml"}, {"webperson", "web"}} {
		if _, err := admin.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(u.name), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String(u.team)}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String(u.name), PolicyName: aws.String("team"), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := admin.GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("mlperson")})
	if err != nil || len(got.User.Tags) != 1 || *got.User.Tags[0].Value != "ml" {
		t.Fatalf("user tags: %+v %v", got, err)
	}
	keyFor := func(name string) aws.CredentialsProvider {
		k, err := admin.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return credentials.NewStaticCredentialsProvider(*k.AccessKey.AccessKeyId, *k.AccessKey.SecretAccessKey, "")
	}
	if _, err := is.sm(keyFor("mlperson")).DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("j")}); err != nil {
		t.Fatal(err)
	}
	web := is.sm(keyFor("webperson"))
	_, err = web.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("j")})
	wantCode(t, err, "AccessDeniedException", "")

	// Retagging the user changes what it may do at once.
	if _, err := admin.TagUser(ctx, &awsiam.TagUserInput{UserName: aws.String("webperson"), Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("ml")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := web.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("j")}); err != nil {
		t.Fatalf("after TagUser: %v", err)
	}
	tags, err := admin.ListUserTags(ctx, &awsiam.ListUserTagsInput{UserName: aws.String("webperson")})
	if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Value != "ml" {
		t.Fatalf("tags: %+v %v", tags, err)
	}
	if _, err := admin.UntagUser(ctx, &awsiam.UntagUserInput{UserName: aws.String("webperson"), TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	_, err = web.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("j")})
	wantCode(t, err, "AccessDeniedException", "")
}

func TestResourceTagsInConditions(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	sm := is.sm(is.newUser(t, "teammate", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sagemaker:DescribeAutoMLJobV2","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"ml"}}}}`))
	if _, err := sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("tagged")}); err != nil {
		t.Fatal(err)
	}
	_, err := sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("untagged")})
	wantCode(t, err, "AccessDeniedException", "")
}

// The raw documents, as IAM's API reference shows them (whitespace aside).
func TestIAMQueryWireShapes(t *testing.T) {
	is := startIAMServer(t)
	post := func(form string) (int, string, string) {
		t.Helper()
		r := signedRequest(t, http.MethodPost, is.URL+"/", "iam", http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}, []byte(form), "", time.Now())
		resp, body := do(t, r)
		if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
			t.Errorf("Content-Type %q", ct)
		}
		return resp.StatusCode, string(body), resp.Header.Get("x-amzn-RequestId")
	}
	status, body, id := post("Action=GetUser&UserName=nobody&Version=2010-05-08")
	want := `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>NoSuchEntity</Code>` +
		`<Message>The user with name nobody cannot be found.</Message></Error><RequestId>` + id + `</RequestId></ErrorResponse>`
	if status != http.StatusNotFound || body != want {
		t.Fatalf("%d %s\nwant %s", status, body, want)
	}
	status, body, id = post("Action=CreateGroup&GroupName=Admins&Version=2010-05-08")
	if status != http.StatusOK || !strings.HasPrefix(body, `<CreateGroupResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><CreateGroupResult><Group><Path>/</Path><GroupName>Admins</GroupName><GroupId>AGPA`) ||
		!strings.HasSuffix(body, `</Group></CreateGroupResult><ResponseMetadata><RequestId>`+id+`</RequestId></ResponseMetadata></CreateGroupResponse>`) ||
		!strings.Contains(body, `<Arn>arn:aws:iam::`+testAccount+`:group/Admins</Arn>`) {
		t.Fatalf("%d %s", status, body)
	}
	status, body, _ = post("Action=ListGroups&Version=2010-05-08&MaxItems=1&Marker=Admins")
	if status != http.StatusOK || !strings.Contains(body, `<ListGroupsResult><Groups></Groups><IsTruncated>false</IsTruncated></ListGroupsResult>`) {
		t.Fatalf("an empty list must still be an element (boto3 reads it as []): %d %s", status, body)
	}
	status, body, _ = post("Action=CreateUsers&Version=2010-05-08")
	if status != http.StatusBadRequest || !strings.Contains(body, `<Code>InvalidAction</Code><Message>Could not find operation CreateUsers for version 2010-05-08</Message>`) {
		t.Fatalf("%d %s", status, body)
	}
}
