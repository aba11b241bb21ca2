package server

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

// kmsBotoScript is what a user does with boto3's kms and s3 clients: a key and an alias, a data
// key, an object uploaded with SSE-KMS (boto3's managed transfer, in parts) and read back by
// range, then the key disabled.
const kmsBotoScript = `
import base64, io, json, os
import boto3, botocore
from botocore.config import Config
from boto3.s3.transfer import TransferConfig

url = os.environ["LATHE_URL"]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"})
results = {}

def call(name, fn):
    try:
        results[name] = {"ok": True, "value": fn()}
    except botocore.exceptions.ClientError as e:
        results[name] = {"ok": False, "code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", "")}

kms = boto3.client("kms", endpoint_url=url, region_name="us-east-1", config=cfg)
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=cfg)
key = kms.create_key(Description="py")["KeyMetadata"]
kms.create_alias(AliasName="alias/py", TargetKeyId=key["KeyId"])
dk = kms.generate_data_key(KeyId="alias/py", KeySpec="AES_256", EncryptionContext={"app": "py"})
call("data_key", lambda: kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"app": "py"})["Plaintext"] == dk["Plaintext"])
call("describe", lambda: kms.describe_key(KeyId="alias/py")["KeyMetadata"]["KeyState"])

s3.create_bucket(Bucket="pybucket")
body = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts of 5 MiB and 1 MiB
s3.upload_fileobj(io.BytesIO(body), "pybucket", "big.bin",
    ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/py"},
    Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
head = s3.head_object(Bucket="pybucket", Key="big.bin")
call("head", lambda: [head["ServerSideEncryption"], head["SSEKMSKeyId"] == key["Arn"], head["ContentLength"]])
call("range", lambda: s3.get_object(Bucket="pybucket", Key="big.bin", Range="bytes=5242870-5242889")["Body"].read() == body[5242870:5242890])
kms.disable_key(KeyId=key["KeyId"])
call("disabled", lambda: s3.get_object(Bucket="pybucket", Key="big.bin")["Body"].read())
print(json.dumps(results))
`

func TestBoto3KMSAndSSE(t *testing.T) {
	python := requireTool(t, "python3", "-c", "import boto3")
	ks := startKMSServer(t)
	cmd := exec.Command(python, "-c", kmsBotoScript)
	cmd.Env = clientEnv(t, testCreds, ks.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3 script: %v\n%s", err, stderr.String())
	}
	var results map[string]map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("boto3 output %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	for name, want := range map[string]string{"data_key": "true", "describe": `"Enabled"`, "head": `["aws:kms",true,6291456]`, "range": "true"} {
		r := results[name]
		got, _ := json.Marshal(r["value"])
		if r == nil || r["ok"] != true || string(got) != want {
			t.Errorf("%s: %v, want %s", name, r, want)
		}
	}
	if r := results["disabled"]; r == nil || r["ok"] != false || r["code"] != "KMS.DisabledException" {
		t.Errorf("GET under a disabled key: %v", r)
	}
}
