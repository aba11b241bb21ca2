package s3proxy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lathe-ml/lathe/internal/s3proxy"
	"github.com/lathe-ml/lathe/internal/server"
)

// botoScript is a user's boto3 session against Lathe's S3 API; it prints one JSON object of
// results, each {"ok": true, "value": ...} or {"ok": false, "code": ..., "status": ...}.
const botoScript = `
import hashlib, io, json, os, urllib.request
import boto3, botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

url = os.environ["LATHE_URL"]
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                  config=Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}))
results = {}

def call(name, fn):
    try:
        results[name] = {"ok": True, "value": fn()}
    except botocore.exceptions.ClientError as e:
        results[name] = {"ok": False, "code": e.response["Error"]["Code"],
                         "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}

work = os.environ["WORK"]
big = os.path.join(work, "big.bin")
with open(big, "wb") as f:
    f.write(hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32 + 7))
want = hashlib.sha256(open(big, "rb").read()).hexdigest()

call("create_bucket", lambda: s3.create_bucket(Bucket="boto")["ResponseMetadata"]["HTTPStatusCode"])
call("put_object", lambda: s3.put_object(Bucket="boto", Key="train/train.csv", Body=b"input,output\nhi,hello\n")["ResponseMetadata"]["HTTPStatusCode"])
# upload_file goes multipart in 8 MiB parts, several threads at once.
call("upload_file", lambda: s3.upload_file(big, "boto", "model/big.bin",
     Config=TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)))
# upload_fileobj of a stream it cannot seek.
class Stream(io.RawIOBase):
    def __init__(self, data): self.b = io.BytesIO(data)
    def readable(self): return True
    def readinto(self, buf):
        n = self.b.readinto(buf)
        return n
call("upload_fileobj", lambda: s3.upload_fileobj(Stream(b"streamed " * 1000), "boto", "stream.txt"))
call("download_file", lambda: (s3.download_file("boto", "model/big.bin", os.path.join(work, "back.bin")),
     hashlib.sha256(open(os.path.join(work, "back.bin"), "rb").read()).hexdigest() == want)[1])
call("copy_object", lambda: s3.copy_object(Bucket="boto", Key="copy.csv", CopySource={"Bucket": "boto", "Key": "train/train.csv"})["ResponseMetadata"]["HTTPStatusCode"])
call("get_copy", lambda: s3.get_object(Bucket="boto", Key="copy.csv")["Body"].read().decode())
call("list", lambda: [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="boto", PaginationConfig={"PageSize": 2}) for o in p.get("Contents", [])])
# boto3 presigns with SigV2 unless told otherwise; Lathe checks it and forwards.
call("presigned_get", lambda: urllib.request.urlopen(s3.generate_presigned_url("get_object", Params={"Bucket": "boto", "Key": "stream.txt"})).read().decode()[:9])
call("missing", lambda: s3.head_object(Bucket="boto", Key="nothing"))
call("delete_objects", lambda: len(s3.delete_objects(Bucket="boto", Delete={"Objects": [{"Key": k} for k in ["train/train.csv", "model/big.bin", "stream.txt", "copy.csv"]]})["Deleted"]))
call("delete_bucket", lambda: s3.delete_bucket(Bucket="boto")["ResponseMetadata"]["HTTPStatusCode"])
print(json.dumps(results, separators=(",", ":")))
`

type botoResult struct {
	OK     bool            `json:"ok"`
	Value  json.RawMessage `json:"value"`
	Code   string          `json:"code"`
	Status int             `json:"status"`
}

func TestProxyBoto3(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(python, "-c", "import boto3").Run()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 with boto3 is required in CI: %v", err)
		}
		t.Skipf("python3 with boto3 not usable: %v", err)
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ext := be.start(t)
			p, err := s3proxy.New(s3proxy.Options{Endpoint: ext.URL, PathStyle: true, Region: ext.Region,
				Credentials: credentials.NewStaticCredentialsProvider(ext.AccessKeyID, ext.SecretAccessKey, "")})
			if err != nil {
				t.Fatal(err)
			}
			h, err := server.New(server.Config{Region: "us-east-1", AccountID: "123456789012", Credentials: frontCreds, S3: p,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			front := httptest.NewServer(h)
			defer front.Close()
			results := runBoto(t, python, front.URL)
			want := map[string]string{
				"create_bucket": "200", "put_object": "200", "upload_file": "null", "upload_fileobj": "null",
				"download_file": "true", "copy_object": "200", "get_copy": `"input,output\nhi,hello\n"`,
				"list":          `["copy.csv","model/big.bin","stream.txt","train/train.csv"]`,
				"presigned_get": `"streamed "`, "delete_objects": "4", "delete_bucket": "204",
			}
			for name, v := range want {
				r := results[name]
				if !r.OK || string(r.Value) != v {
					t.Errorf("%s: ok=%v code=%s value %s, want %s", name, r.OK, r.Code, r.Value, v)
				}
			}
			if r := results["missing"]; r.OK || r.Status != 404 {
				t.Errorf("head_object of a missing key: %+v, want 404", r)
			}
		})
	}
}

func runBoto(t *testing.T, python, url string) map[string]botoResult {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_CONFIG_FILE="+config, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_ACCESS_KEY_ID="+frontCreds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+frontCreds.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "LATHE_URL="+url, "WORK="+dir, "HOME="+dir)
	cmd := exec.Command(python, "-c", botoScript)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("boto3 script: %v\n%s", err, stderr.String())
	}
	var results map[string]botoResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("boto3 output %q: %v\n%s", out, err, stderr.String())
	}
	return results
}
