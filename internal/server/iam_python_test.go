package server

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

// iamBotoScript is what a user does with boto3: the root creates a user, a key and a policy, the
// user works with the key, and assumes a role.
const iamBotoScript = `
import json, os
import boto3, botocore
from botocore.config import Config

url = os.environ["LATHE_URL"]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"})
results = {}

def call(name, fn):
    try:
        results[name] = {"ok": True, "value": fn()}
    except botocore.exceptions.ClientError as e:
        results[name] = {"ok": False, "code": e.response["Error"]["Code"],
                         "message": e.response["Error"].get("Message", ""),
                         "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}

def client(service, **kw):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", config=cfg, **kw)

iam = client("iam")
call("create_user", lambda: iam.create_user(UserName="analyst")["User"]["Arn"])
key = iam.create_access_key(UserName="analyst")["AccessKey"]
as_user = dict(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
call("whoami", lambda: client("sts", **as_user).get_caller_identity()["Arn"])
call("list_before", lambda: client("sagemaker", **as_user).list_auto_ml_jobs()["AutoMLJobSummaries"][0]["AutoMLJobName"])
doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sagemaker:List*", "sts:AssumeRole"], "Resource": "*"}]}
iam.put_user_policy(UserName="analyst", PolicyName="list", PolicyDocument=json.dumps(doc))
call("policy_back", lambda: iam.get_user_policy(UserName="analyst", PolicyName="list")["PolicyDocument"] == doc)
call("list_after", lambda: client("sagemaker", **as_user).list_auto_ml_jobs()["AutoMLJobSummaries"][0]["AutoMLJobName"])
call("users", lambda: [u["UserName"] for u in iam.list_users()["Users"]])

trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/analyst"}, "Action": "sts:AssumeRole"}]}
call("create_role", lambda: iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["AssumeRolePolicyDocument"] == trust)
creds = client("sts", **as_user).assume_role(RoleArn="arn:aws:iam::123456789012:role/reader", RoleSessionName="py")["Credentials"]
as_role = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
call("role_whoami", lambda: client("sts", **as_role).get_caller_identity()["Arn"])
call("role_list", lambda: client("sagemaker", **as_role).list_auto_ml_jobs())
call("role_s3", lambda: client("s3", **as_role).list_buckets())
print(json.dumps(results))
`

func TestBoto3IAMUserKeyAndRole(t *testing.T) {
	python := requireTool(t, "python3", "-c", "import boto3")
	is := startIAMServer(t)
	cmd := exec.Command(python, "-c", iamBotoScript)
	cmd.Env = clientEnv(t, testCreds, is.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3 script: %v\n%s", err, stderr.String())
	}
	var results map[string]map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("boto3 output %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	ok := map[string]any{
		"create_user": "arn:aws:iam::123456789012:user/analyst",
		"whoami":      "arn:aws:iam::123456789012:user/analyst",
		"policy_back": true, // boto3 decodes the URL-encoded document IAM returns into the same dict
		"list_after":  "-job",
		"create_role": true,
		"role_whoami": "arn:aws:sts::123456789012:assumed-role/reader/py",
	}
	for name, want := range ok {
		if r := results[name]; r == nil || r["ok"] != true || r["value"] != want {
			t.Errorf("%s: %v, want %v", name, r, want)
		}
	}
	if r := results["users"]; r["ok"] != true || len(r["value"].([]any)) != 1 {
		t.Errorf("users: %v", r)
	}
	denied := map[string]string{
		"list_before": "User: arn:aws:iam::123456789012:user/analyst is not authorized to perform: sagemaker:ListAutoMLJobs on resource: arn:aws:sagemaker:us-east-1:123456789012:* because no identity-based policy allows the sagemaker:ListAutoMLJobs action",
		"role_list":   "User: arn:aws:sts::123456789012:assumed-role/reader/py is not authorized to perform: sagemaker:ListAutoMLJobs on resource: arn:aws:sagemaker:us-east-1:123456789012:* because no identity-based policy allows the sagemaker:ListAutoMLJobs action",
		"role_s3":     "User: arn:aws:sts::123456789012:assumed-role/reader/py is not authorized to perform: s3:ListAllMyBuckets on resource: arn:aws:s3:::* because no identity-based policy allows the s3:ListAllMyBuckets action",
	}
	for name, msg := range denied {
		r := results[name]
		code := "AccessDeniedException"
		if name == "role_s3" {
			code = "AccessDenied"
		}
		if r == nil || r["ok"] != false || r["code"] != code || r["message"] != msg {
			t.Errorf("%s: %v, want %s %q", name, r, code, msg)
		}
	}
}
