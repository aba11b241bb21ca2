package server

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool finds an external client. Missing clients fail the test in CI (CI=true), where they
// are installed on purpose, and skip it elsewhere.
func requireTool(t *testing.T, name string, check ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		err = exec.Command(path, check...).Run()
	}
	if err != nil {
		msg := name + " " + strings.Join(check, " ") + " is not usable (" + err.Error() + "); install python3 with boto3 1.43+ and the AWS CLI to run the real-client tests"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// clientEnv is a clean environment for the Python clients: no AWS settings of the machine's own.
func clientEnv(t *testing.T, creds Credentials, url string) []string {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_CONFIG_FILE="+config, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_MAX_ATTEMPTS=1", "LATHE_URL="+url, "HOME="+dir)
}

// botoScript calls the server the way a user's script would and prints one JSON object of results:
// {"name": {"ok": true, "value": ...}} or {"name": {"ok": false, "code": ..., "status": ...}}.
const botoScript = `
import json, os, sys, urllib.request
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

sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", config=cfg)
call("list", lambda: sm.list_auto_ml_jobs(NameContains="boto", NextToken="t1")["AutoMLJobSummaries"][0]["AutoMLJobName"])
call("describe_missing", lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="missing"))

s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=cfg)
data = bytes(range(256)) * 20  # 5 KiB
keys = ["boto key with space.csv", "a+b=c.csv", "ünïcode/文字 (1).csv"]
for k in keys:
    call("put:" + k, lambda k=k: s3.put_object(Bucket="datasets", Key=k, Body=data)["ResponseMetadata"]["HTTPStatusCode"])
    call("get:" + k, lambda k=k: s3.get_object(Bucket="datasets", Key=k)["Body"].read() == data)

# boto3 presigns S3 URLs with SigV2 (AWSAccessKeyId/Expires/Signature) unless told s3v4.
s3v4 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                    config=cfg.merge(Config(signature_version="s3v4")))

def presigned(client, method, key):
    params = {"Bucket": "datasets", "Key": key}
    if method == "put_object":
        params["ContentType"] = "text/csv"  # SigV2 signs the content type
    u = client.generate_presigned_url(method, Params=params, ExpiresIn=300)
    try:
        if method == "put_object":
            req = urllib.request.Request(u, data=data[::-1], method="PUT", headers={"Content-Type": "text/csv"})
            return urllib.request.urlopen(req).status
        return urllib.request.urlopen(u).read() == data
    except urllib.error.HTTPError as e:
        return "%d %s" % (e.code, e.read().decode())

if results.get("put:" + keys[2], {}).get("ok"):
    for name, client in (("v4", s3v4), ("v2", s3)):
        for k in keys:
            call("presigned_get_%s:%s" % (name, k), lambda k=k: presigned(client, "get_object", k))
        call("presigned_put_" + name, lambda: presigned(client, "put_object", "presigned put " + name + ".bin"))

print(json.dumps(results))
`

func runBoto(t *testing.T, python string, ts *testServer, creds Credentials) map[string]map[string]any {
	t.Helper()
	cmd := exec.Command(python, "-c", botoScript)
	cmd.Env = clientEnv(t, creds, ts.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3 script: %v\n%s", err, stderr.String())
	}
	var results map[string]map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("boto3 output %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	return results
}

func TestBoto3Signatures(t *testing.T) {
	python := requireTool(t, "python3", "-c", "import boto3")
	ts := startServer(t, false)

	results := runBoto(t, python, ts, testCreds)
	want := map[string]any{
		"list":                        "boto-job",
		"put:boto key with space.csv": 200.0,
		"get:boto key with space.csv": true,
		"put:a+b=c.csv":               200.0,
		"get:a+b=c.csv":               true,
		"put:ünïcode/文字 (1).csv":      200.0,
		"get:ünïcode/文字 (1).csv":      true,
	}
	for name, value := range want {
		r := results[name]
		if r == nil || r["ok"] != true || r["value"] != value {
			t.Errorf("%s: %v, want value %v", name, r, value)
		}
	}
	for _, v := range []string{"v4", "v2"} {
		for _, k := range []string{"boto key with space.csv", "a+b=c.csv", "ünïcode/文字 (1).csv"} {
			if r := results["presigned_get_"+v+":"+k]; r["value"] != true {
				t.Errorf("presigned %s GET of %q: %v", v, k, r)
			}
		}
		if r := results["presigned_put_"+v]; r["value"] != 200.0 {
			t.Errorf("presigned %s PUT: %v", v, r)
		}
	}
	if r := results["describe_missing"]; r["code"] != "ResourceNotFound" || r["status"] != 400.0 {
		t.Errorf("describe_missing: %v", r)
	}
	if got := ts.s3.objects["/datasets/ünïcode/文字 (1).csv"]; len(got) != 5120 {
		t.Errorf("the unicode key was stored under another name: %d bytes", len(got))
	}

	wrong := runBoto(t, python, ts, Credentials{testCreds.AccessKeyID, "wrong-secret"})
	if r := wrong["list"]; r["code"] != "InvalidSignatureException" || r["status"] != 403.0 {
		t.Errorf("sagemaker with a wrong secret: %v", r)
	}
	if r := wrong["put:a+b=c.csv"]; r["code"] != "SignatureDoesNotMatch" || r["status"] != 403.0 {
		t.Errorf("s3 with a wrong secret: %v", r)
	}
}

func TestAWSCLISignatures(t *testing.T) {
	aws := requireTool(t, "aws", "--version")
	ts := startServer(t, false)
	run := func(creds Credentials, stdin []byte, args ...string) (string, error) {
		cmd := exec.Command(aws, append([]string{"--endpoint-url", ts.URL}, args...)...)
		cmd.Env = clientEnv(t, creds, ts.URL)
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(testCreds, nil, "sagemaker", "list-auto-ml-jobs", "--name-contains", "cli")
	if err != nil || !strings.Contains(out, `"AutoMLJobName": "cli-job"`) {
		t.Fatalf("aws sagemaker list-auto-ml-jobs: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "train data.csv")
	data := bytes.Repeat([]byte("input,output\nq,a\n"), 300)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(testCreds, nil, "s3", "cp", file, "s3://datasets/cli dir/train+data=1.csv"); err != nil {
		t.Fatalf("aws s3 cp up: %v\n%s", err, out)
	}
	if got := ts.s3.objects["/datasets/cli dir/train+data=1.csv"]; !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(data))
	}
	if out, err := run(testCreds, nil, "s3", "cp", "s3://datasets/cli dir/train+data=1.csv", "-"); err != nil || out != string(data) {
		t.Fatalf("aws s3 cp down: %v\n%.200s", err, out)
	}
	out, err = run(Credentials{testCreds.AccessKeyID, "wrong"}, nil, "sagemaker", "list-auto-ml-jobs")
	if err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Fatalf("wrong secret: %v\n%s", err, out)
	}
}
