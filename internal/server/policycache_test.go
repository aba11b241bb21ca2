package server

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
)

// TestChangedInlinePolicyIsHonouredAtOnce: parsed policies are cached, so the request right after a
// user's policy changes must already be decided by the new document, including a change back to a
// document whose parse is still cached, and the policy's removal.
func TestChangedInlinePolicyIsHonouredAtOnce(t *testing.T) {
	is := startIAMServer(t)
	ctx := context.Background()
	const (
		allow = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sagemaker:DescribeAutoMLJobV2","Resource":"*"}]}`
		deny  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sagemaker:ListAutoMLJobs","Resource":"*"},` +
			`{"Effect":"Deny","Action":"sagemaker:DescribeAutoMLJobV2","Resource":"*"}]}`
	)
	sm := is.sm(is.newUser(t, "poller", allow))
	admin := is.iam(rootCreds)
	describe := func() error {
		_, err := sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("job1")})
		return err
	}
	put := func(doc string) {
		t.Helper()
		if _, err := admin.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("poller"),
			PolicyName: aws.String("inline"), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 { // the second call evaluates the cached parse
		if err := describe(); err != nil {
			t.Fatalf("describe %d under the allowing policy: %v", i+1, err)
		}
	}
	put(deny)
	wantCode(t, describe(), "AccessDeniedException", "User: arn:aws:iam::"+testAccount+":user/poller is not authorized to perform: "+
		"sagemaker:DescribeAutoMLJobV2 on resource: arn:aws:sagemaker:us-east-1:"+testAccount+":automl-job/job1 with an explicit deny in an identity-based policy")
	put(allow)
	if err := describe(); err != nil {
		t.Fatalf("describe once the allowing policy is back: %v", err)
	}
	if _, err := admin.DeleteUserPolicy(ctx, &awsiam.DeleteUserPolicyInput{UserName: aws.String("poller"), PolicyName: aws.String("inline")}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, describe(), "AccessDeniedException", "")
}
