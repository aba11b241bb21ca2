package endpoint_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// botoScript is what a user's boto3 script does with an endpoint: the waiters, invoke, the stream
// (botocore parses the event-stream framing), the errors, delete. It prints one JSON object.
const botoScript = `
import json, os
import boto3, botocore
from botocore.config import Config

url = os.environ["LATHE_URL"]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"})
sm = boto3.client("sagemaker", endpoint_url=url, config=cfg)
rt = boto3.client("sagemaker-runtime", endpoint_url=url, config=cfg)
out = {}

def err(f):
    try:
        f()
        return {"ok": True}
    except botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "original": e.response.get("OriginalStatusCode")}

sm.get_waiter("endpoint_in_service").wait(EndpointName="stories", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
body = {"inputs": "Once upon a time, there was a little girl named Lily.", "parameters": {"max_new_tokens": 16}}
r = rt.invoke_endpoint(EndpointName="stories", ContentType="application/json", Body=json.dumps(body))
out["invoke"] = json.loads(r["Body"].read())
out["variant"] = r["InvokedProductionVariant"]
s = rt.invoke_endpoint_with_response_stream(EndpointName="stories", ContentType="application/json", Body=json.dumps(body))
raw = b"".join(ev["PayloadPart"]["Bytes"] for ev in s["Body"])
events = [json.loads(line[len(b"data:"):]) for line in raw.split(b"\n") if line.startswith(b"data:")]
out["stream_text"] = "".join(e["token"]["text"] for e in events)
out["stream_last"] = events[-1]["generated_text"]
out["missing"] = err(lambda: rt.invoke_endpoint(EndpointName="nope", Body=b'{"inputs":"x"}'))
out["bad_payload"] = err(lambda: rt.invoke_endpoint(EndpointName="stories", Body=b'{"inputs":"x","parameters":{"top_k":0}}'))
sm.delete_endpoint(EndpointName="stories")
sm.get_waiter("endpoint_deleted").wait(EndpointName="stories", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
out["describe_deleted"] = err(lambda: sm.describe_endpoint(EndpointName="stories"))
print(json.dumps(out))
`

func TestBoto3(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import boto3").Run()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 with boto3 is needed: %v", err)
		}
		t.Skipf("python3 with boto3 is not usable: %v", err)
	}
	e := startEnv(t, t.TempDir(), serving.Options{})
	e.deploy(t, "stories", baseModelContainer("raw"))

	home := t.TempDir()
	cmd := exec.Command(py, "-c", botoScript)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+home, "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"),
		"AWS_ACCESS_KEY_ID="+testAccessKey, "AWS_SECRET_ACCESS_KEY="+testSecretKey, "AWS_DEFAULT_REGION="+region, "LATHE_URL="+e.url)
	stdout, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("boto3 script: %v\n%s", err, stderr)
	}
	var got struct {
		Invoke     []tgiOut `json:"invoke"`
		Variant    string   `json:"variant"`
		StreamText string   `json:"stream_text"`
		StreamLast string   `json:"stream_last"`
		Missing    struct {
			Code, Message string
			Status        int
		} `json:"missing"`
		BadPayload struct {
			Code     string
			Status   int
			Original int
		} `json:"bad_payload"`
		DescribeDeleted struct{ Code, Message string } `json:"describe_deleted"`
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("%s: %v", stdout, err)
	}
	const want = "She loved to play outside in the park."
	if len(got.Invoke) != 1 || !strings.HasPrefix(strings.TrimSpace(got.Invoke[0].GeneratedText), want) || got.Variant != "AllTraffic" {
		t.Errorf("invoke = %+v (variant %s), want text starting %q", got.Invoke, got.Variant, want)
	}
	if len(got.Invoke) == 1 && (got.StreamText != got.Invoke[0].GeneratedText || got.StreamLast != got.Invoke[0].GeneratedText) {
		t.Errorf("stream text %q, last generated_text %q; want %q", got.StreamText, got.StreamLast, got.Invoke[0].GeneratedText)
	}
	if got.Missing.Code != "ValidationError" || got.Missing.Status != 400 || got.Missing.Message != "Endpoint nope of account 123456789012 not found." {
		t.Errorf("missing endpoint: %+v", got.Missing)
	}
	if got.BadPayload.Code != "ModelError" || got.BadPayload.Status != 424 || got.BadPayload.Original != 422 {
		t.Errorf("bad payload: %+v", got.BadPayload)
	}
	if got.DescribeDeleted.Code != "ValidationException" || got.DescribeDeleted.Message != `Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/stories".` {
		t.Errorf("describe after delete: %+v", got.DescribeDeleted)
	}
}
