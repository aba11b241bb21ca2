#!/usr/bin/env python3
"""End-to-end checks of a real `lathe serve`, driven with boto3 and the aws CLI as SageMaker users do.

scripts/e2e.sh builds lathe and sets LATHE_E2E_* before running this. Each check prints PASS/FAIL and
the run ends with the line "N passed, N failed"; the exit status is non-zero when any check failed.
"""
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import traceback
import urllib.request

import boto3
import botocore
from botocore.config import Config

URL = os.environ["LATHE_E2E_URL"]
BIN = os.environ["LATHE_E2E_BIN"]
DATA = os.environ["LATHE_E2E_DATA"]
LOG = os.environ["LATHE_E2E_LOG"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLE = "arn:aws:iam::123456789012:role/LatheE2E"
BUCKET = "lathe-e2e"

server = None


def start_server():
    global server
    log = open(LOG, "a")
    server = subprocess.Popen(
        [BIN, "serve", "--addr", URL.removeprefix("http://"), "--data-dir", DATA],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(URL + "/_lathe/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        if server.poll() is not None:
            raise RuntimeError("lathe serve exited with %s; log:\n%s" % (server.returncode, open(LOG).read()[-4000:]))
        time.sleep(0.2)
    raise RuntimeError("lathe serve did not become healthy in 60 s")


def stop_server(sig=signal.SIGTERM):
    if server and server.poll() is None:
        server.send_signal(sig)
        server.wait(timeout=60)


def client(service, **kw):
    cfg = Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"})
    return boto3.client(service, endpoint_url=URL, region_name="us-east-1",
                        aws_access_key_id=kw.get("key", os.environ["AWS_ACCESS_KEY_ID"]),
                        aws_secret_access_key=kw.get("secret", os.environ["AWS_SECRET_ACCESS_KEY"]),
                        config=cfg)


def aws(*args, input_json=None):
    cmd = ["aws", "--endpoint-url", URL, "--region", "us-east-1", "--output", "json"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError("aws %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    if args[0] == "s3":  # the high-level s3 commands print text, not JSON
        return p.stdout
    return json.loads(p.stdout) if p.stdout.strip() else {}


def expect_error(fn, code, *needles):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        msg = e.response["Error"].get("Message", "")
        assert got == code, "want error %s, got %s: %s" % (code, got, msg)
        for n in needles:
            assert n in msg, "error message %r does not mention %r" % (msg, n)
        return msg
    raise AssertionError("want error %s, got success" % code)


def job_request(name, train_prefix, base="Stories260K", hp=None, **extra):
    req = {
        "AutoMLJobName": name,
        "AutoMLJobInputDataConfig": [{
            "ChannelType": "training",
            "ContentType": "text/csv;header=present",
            "CompressionType": "None",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://%s/%s" % (BUCKET, train_prefix)}},
        }],
        "OutputDataConfig": {"S3OutputPath": "s3://%s/output/" % BUCKET},
        "AutoMLProblemTypeConfig": {"TextGenerationJobConfig": {
            "BaseModelName": base,
            "TextGenerationHyperParameters": hp or {"epochCount": "1", "batchSize": "8", "learningRate": "0.001", "learningRateWarmupSteps": "5"},
            "ModelAccessConfig": {"AcceptEula": True},
        }},
        "RoleArn": ROLE,
        "DataSplitConfig": {"ValidationFraction": 0.2},
    }
    req.update(extra)
    return req


def wait_job(sm, name, timeout=900, until=("Completed", "Failed", "Stopped")):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sm.describe_auto_ml_job_v2(AutoMLJobName=name)
        if d["AutoMLJobStatus"] in until:
            return d
        time.sleep(1)
    raise AssertionError("job %s still %s/%s after %d s" % (name, d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"], timeout))


def describe_raw(name):
    """DescribeAutoMLJobV2 with every member: boto3 drops members its model does not know, such as
    Lathe's TrainingProgress, so this goes through `lathe jobs describe`."""
    p = subprocess.run([BIN, "jobs", "describe", name, "--endpoint", URL], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("lathe jobs describe %s: %s" % (name, p.stderr.strip()))
    return json.loads(p.stdout)


def put_csv(s3, key, rows, header=("input", "output")):
    buf = io.StringIO()
    w = csv.writer(buf)
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    s3.put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue().encode())


# ---------------------------------------------------------------------------------------------- checks

def check_auth():
    with urllib.request.urlopen(URL + "/_lathe/health") as r:
        assert r.status == 200
    req = urllib.request.Request(URL + "/", data=b"{}", method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListAutoMLJobs"})
    try:
        urllib.request.urlopen(req)
        raise AssertionError("an unsigned request was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 403, e.code
    bad = client("sagemaker", secret="not-the-secret-" + "x" * 25)
    expect_error(lambda: bad.list_auto_ml_jobs(), "InvalidSignatureException")
    unknown = client("sagemaker", key="AKIAUNKNOWNKEY000000")
    expect_error(lambda: unknown.list_auto_ml_jobs(), "UnrecognizedClientException")


def check_s3_cli():
    aws("s3", "mb", "s3://" + BUCKET)
    aws("s3", "cp", os.path.join(ROOT, "examples/data/train.csv"), "s3://%s/train/train.csv" % BUCKET)
    out = subprocess.run(["aws", "--endpoint-url", URL, "s3", "ls", "s3://%s/train/" % BUCKET],
                         capture_output=True, text=True, check=True).stdout
    assert "train.csv" in out, out
    s3 = client("s3")
    body = s3.get_object(Bucket=BUCKET, Key="train/train.csv")["Body"].read()
    assert body == open(os.path.join(ROOT, "examples/data/train.csv"), "rb").read(), "object corrupted in S3"
    key = "odd keys/a+b=c ünïcode ✓.txt"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"hello")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"hello"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="odd keys/")["Contents"]]
    assert keys == [key], keys


def check_validation():
    sm = client("sagemaker")
    expect_error(lambda: sm.create_auto_ml_job_v2(**job_request("bad_name!", "train/")),
                 "ValidationException", "autoMLJobName")
    req = job_request("two-trainings", "train/")
    req["AutoMLJobInputDataConfig"].append(dict(req["AutoMLJobInputDataConfig"][0]))
    expect_error(lambda: sm.create_auto_ml_job_v2(**req), "ValidationException")
    expect_error(lambda: sm.create_auto_ml_job_v2(**job_request("bad-hp", "train/", hp={"epochCount": "11"})),
                 "ValidationException", "epochCount")
    expect_error(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="no-such-job"), "ResourceNotFound")
    names = [j["AutoMLJobName"] for j in sm.list_auto_ml_jobs()["AutoMLJobSummaries"]]
    assert not names, "rejected requests stored jobs: %s" % names


def check_finetune():
    sm = client("sagemaker")
    req = job_request("stories-e2e", "train/", hp={"epochCount": "2", "batchSize": "8",
                                                  "learningRate": "0.002", "learningRateWarmupSteps": "10"})
    path = os.path.join(os.path.dirname(LOG), "job.json")
    with open(path, "w") as f:
        json.dump(req, f)
    arn = aws("sagemaker", "create-auto-ml-job-v2", "--cli-input-json", "file://" + path)["AutoMLJobArn"]
    assert arn.endswith(":automl-job/stories-e2e"), arn
    expect_error(lambda: sm.create_auto_ml_job_v2(**req), "ResourceInUse")
    d = wait_job(sm, "stories-e2e")
    assert d["AutoMLJobStatus"] == "Completed", "job ended %s: %s" % (d["AutoMLJobStatus"], d.get("FailureReason"))
    best = d["BestCandidate"]
    metrics = {m["StandardMetricName"]: m for m in best["CandidateProperties"]["CandidateMetrics"]}
    want = {"TrainingLoss": "Train", "ValidationLoss": "Validation", "Perplexity": "Validation",
            "Rouge1": "Validation", "Rouge2": "Validation", "RougeL": "Validation", "RougeLSum": "Validation"}
    for name, set_ in want.items():
        assert name in metrics, "metric %s missing: %s" % (name, sorted(metrics))
        assert metrics[name]["Set"] == set_, metrics[name]
    url = best["InferenceContainers"][0]["ModelDataUrl"]
    assert url.startswith("s3://%s/output/stories-e2e/" % BUCKET), url
    s3 = client("s3")
    report = json.loads(s3.get_object(Bucket=BUCKET, Key="output/stories-e2e/metrics.json")["Body"].read())
    base, tuned = report["base"], report["fine_tuned"]
    assert tuned["ValidationLoss"] < base["ValidationLoss"], report
    assert tuned["RougeL"] > base["RougeL"], report
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="output/stories-e2e/")["Contents"]}
    for k in ("model/model.safetensors", "model/config.json", "model/model.gguf",
              "training-log.jsonl", "data-report.json", "samples.jsonl"):
        assert "output/stories-e2e/" + k in keys, "artifact %s missing: %s" % (k, sorted(keys))
    cands = sm.list_candidates_for_auto_ml_job(AutoMLJobName="stories-e2e")["Candidates"]
    assert len(cands) == 1 and cands[0]["CandidateName"] == best["CandidateName"], cands
    print("   base: %s" % json.dumps(base))
    print("   fine-tuned: %s" % json.dumps(tuned))


def check_bad_datasets():
    sm = client("sagemaker")
    s3 = client("s3")
    good = [("What is one plus one?", "Two.")] * 10
    cases = {
        "wrong-columns": (lambda p: put_csv(s3, p + "a.csv", good, header=("prompt", "completion")), "input"),
        "extra-columns": (lambda p: put_csv(s3, p + "a.csv", [r + ("x",) for r in good], header=("input", "output", "extra")), "extra"),
        "empty-file": (lambda p: s3.put_object(Bucket=BUCKET, Key=p + "a.csv", Body=b""), "empty"),
        "header-only": (lambda p: put_csv(s3, p + "a.csv", []), "no data rows"),
        "broken-quoting": (lambda p: s3.put_object(Bucket=BUCKET, Key=p + "a.csv",
                                                   Body=b'input,output\n"unterminated,quote\nsecond,row\n'), "a.csv"),
        "bad-utf8": (lambda p: s3.put_object(Bucket=BUCKET, Key=p + "a.csv", Body=b"input,output\nab\xff\xfe,cd\n" * 3), "UTF-8"),
        "no-objects": (lambda p: None, "no objects under this prefix"),
    }
    for name, (setup, needle) in cases.items():
        prefix = "bad/%s/" % name
        setup(prefix)
        sm.create_auto_ml_job_v2(**job_request("bad-" + name, prefix))
    for name, (_, needle) in cases.items():
        d = wait_job(sm, "bad-" + name, timeout=120)
        assert d["AutoMLJobStatus"] == "Failed", "%s: %s" % (name, d["AutoMLJobStatus"])
        reason = d.get("FailureReason", "")
        assert needle.lower() in reason.lower(), "%s: FailureReason %r does not mention %r" % (name, reason, needle)
        print("   %-15s %s" % (name, reason[:150]))


def check_kill_and_resume():
    sm = client("sagemaker")
    sm.create_auto_ml_job_v2(**job_request("resume-e2e", "train/", hp={"epochCount": "3", "batchSize": "4",
                                                                     "learningRate": "0.001", "learningRateWarmupSteps": "0"}))
    deadline = time.time() + 300
    while time.time() < deadline:
        d = describe_raw("resume-e2e")
        p = d.get("TrainingProgress") or {}
        if d["AutoMLJobSecondaryStatus"] == "TrainingModels" and p.get("Step", 0) >= 30:
            break
        assert d["AutoMLJobStatus"] == "InProgress", d.get("FailureReason")
        time.sleep(0.5)
    stop_server(signal.SIGKILL)
    start_server()
    d = wait_job(sm, "resume-e2e", timeout=900)
    assert d["AutoMLJobStatus"] == "Completed", "%s: %s" % (d["AutoMLJobStatus"], d.get("FailureReason"))
    s3 = client("s3")
    log = s3.get_object(Bucket=BUCKET, Key="output/resume-e2e/training-log.jsonl")["Body"].read().decode()
    assert any(json.loads(l).get("event") == "resumed" for l in log.splitlines() if l.strip()), "no resume in the training log"
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix="output/resume-e2e/checkpoints/")
    assert left.get("KeyCount", 0) == 0, "the checkpoint outlived the completed job: %s" % left.get("Contents")


def check_stop():
    sm = client("sagemaker")
    sm.create_auto_ml_job_v2(**job_request("stop-e2e", "train/", hp={"epochCount": "10", "batchSize": "2"}))
    deadline = time.time() + 300
    while time.time() < deadline:
        d = sm.describe_auto_ml_job_v2(AutoMLJobName="stop-e2e")
        if d["AutoMLJobSecondaryStatus"] == "TrainingModels":
            break
        assert d["AutoMLJobStatus"] == "InProgress", d.get("FailureReason")
        time.sleep(0.3)
    t0 = time.time()
    sm.stop_auto_ml_job(AutoMLJobName="stop-e2e")
    d = wait_job(sm, "stop-e2e", timeout=60)
    assert d["AutoMLJobStatus"] == "Stopped", d["AutoMLJobStatus"]
    assert time.time() - t0 < 30, "stop took %.1f s" % (time.time() - t0)
    assert "EndTime" in d


def check_conformance():
    """scripts/conformance.py (the SageMaker control-plane conformance suite) against this server: every
    case must pass. It runs last: check_validation asserts that the store holds no job yet."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "conformance.py"), "--endpoint-url", URL],
                       capture_output=True, text=True, timeout=600)
    for line in p.stdout.splitlines():
        if not line.startswith("PASS "):
            print("   " + line)
    assert p.returncode == 0, "conformance.py exited %d: %s" % (p.returncode, p.stderr.strip()[-2000:])


def check_boto3_example():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "finetune_boto3.py"), "--endpoint-url", URL,
                        "--job", "boto3-example", "--epochs", "1"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, "examples/finetune_boto3.py failed: %s %s" % (p.stdout[-2000:], p.stderr[-2000:])
    for name in ("TrainingLoss", "ValidationLoss", "Perplexity", "Rouge1", "Rouge2", "RougeL", "RougeLSum"):
        assert name in p.stdout, "the example did not print %s: %s" % (name, p.stdout[-2000:])


def check_deploy_and_invoke():
    """ModelDeployConfig: the job deploys its model; the endpoint answers InvokeEndpoint (plain and
    streamed) and the OpenAI API; the SDK waiters work; deleting it works."""
    sm = client("sagemaker")
    rt = client("sagemaker-runtime")
    req = job_request("deploy-e2e", "train/", hp={"epochCount": "1", "batchSize": "8", "learningRate": "0.002"},
                      ModelDeployConfig={"AutoGenerateEndpointName": False, "EndpointName": "stories-e2e"})
    sm.create_auto_ml_job_v2(**req)
    d = wait_job(sm, "deploy-e2e")
    assert (d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"]) == ("Completed", "Completed"), \
        "%s/%s: %s" % (d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"], d.get("FailureReason"))
    assert d["ModelDeployResult"]["EndpointName"] == "stories-e2e", d.get("ModelDeployResult")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="stories-e2e", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    prompt = "Write a story about a cat named Tom who finds a red ball in the park and feels happy."
    body = json.dumps({"inputs": prompt, "parameters": {"max_new_tokens": 64, "do_sample": False}})
    out = json.loads(rt.invoke_endpoint(EndpointName="stories-e2e", ContentType="application/json", Body=body)["Body"].read())
    text = out[0]["generated_text"]
    assert "Tom" in text and "red ball" in text, "the fine-tuned endpoint did not follow the task: %r" % text
    stream = rt.invoke_endpoint_with_response_stream(EndpointName="stories-e2e", ContentType="application/json", Body=body)
    chunks = b"".join(ev["PayloadPart"]["Bytes"] for ev in stream["Body"] if "PayloadPart" in ev)
    assert b"Tom" in chunks, chunks[:500]
    expect_error(lambda: rt.invoke_endpoint(EndpointName="no-such-endpoint", Body=body), "ValidationError", "no-such-endpoint")
    key = open(os.path.join(DATA, "openai-key")).read().strip()
    req = urllib.request.Request(URL + "/v1/chat/completions", method="POST", headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"},
        data=json.dumps({"model": "stories-e2e", "max_tokens": 64,
                         "messages": [{"role": "user", "content": prompt}]}).encode())
    with urllib.request.urlopen(req, timeout=120) as r:
        answer = json.loads(r.read())["choices"][0]["message"]["content"]
    assert "Tom" in answer, answer
    sm.delete_endpoint(EndpointName="stories-e2e")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="stories-e2e", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    print("   endpoint answered: %r" % text[:120])


def deployed_job(sm, req, endpoint):
    """Runs a job with ModelDeployConfig to Completed and its endpoint to InService; returns Describe."""
    d = wait_job(sm, req["AutoMLJobName"])
    assert (d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"]) == ("Completed", "Completed"), \
        "%s/%s: %s" % (d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"], d.get("FailureReason"))
    names = {m["StandardMetricName"] for m in d["BestCandidate"]["CandidateProperties"]["CandidateMetrics"]}
    for name in ("TrainingLoss", "ValidationLoss", "Perplexity", "Rouge1", "Rouge2", "RougeL", "RougeLSum"):
        assert name in names, "metric %s missing: %s" % (name, sorted(names))
    assert d["ModelDeployResult"]["EndpointName"] == endpoint, d.get("ModelDeployResult")
    client("sagemaker").get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return d


def check_falcon_guide_request():
    """The guide's own example: BaseModelName Falcon7BInstruct, pulled at job start from the hub
    (HF_ENDPOINT: scripts/testhub serves a tiny random model in Falcon-7B's exact layout with Falcon's
    real tokenizer under tiiuae/falcon-7b-instruct), training and validation channels, the guide's
    hyperparameter names, the EULA accepted, and the model deployed to an endpoint that answers."""
    sm = client("sagemaker")
    rt = client("sagemaker-runtime")
    s3 = client("s3")
    rows = [("Name a color of the sky.", "The sky is blue."), ("Name a color of grass.", "Grass is green.")] * 20
    put_csv(s3, "falcon/training/train.csv", rows[:32])
    put_csv(s3, "falcon/validation/validation.csv", rows[32:])
    channel = lambda kind: {"ChannelType": kind, "CompressionType": "None", "ContentType": "text/csv;header=present",
                            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": "s3://%s/falcon/%s/" % (BUCKET, kind)}}}
    sm.create_auto_ml_job_v2(
        AutoMLJobName="falcon-guide",
        AutoMLJobInputDataConfig=[channel("training"), channel("validation")],
        OutputDataConfig={"S3OutputPath": "s3://%s/output/" % BUCKET},
        AutoMLProblemTypeConfig={"TextGenerationJobConfig": {
            "BaseModelName": "Falcon7BInstruct",
            "TextGenerationHyperParameters": {"epochCount": "5", "learningRate": "0.003", "batchSize": "8",
                                              "learningRateWarmupSteps": "2"},
            "ModelAccessConfig": {"AcceptEula": True},
        }},
        RoleArn=ROLE,
        ModelDeployConfig={"AutoGenerateEndpointName": False, "EndpointName": "falcon-guide"})
    d = deployed_job(sm, {"AutoMLJobName": "falcon-guide"}, "falcon-guide")
    cfg = json.loads(s3.get_object(Bucket=BUCKET, Key="output/falcon-guide/model/config.json")["Body"].read())
    assert cfg["model_type"] == "falcon", cfg
    report = json.loads(s3.get_object(Bucket=BUCKET, Key="output/falcon-guide/metrics.json")["Body"].read())
    assert report["fine_tuned"]["ValidationLoss"] < report["base"]["ValidationLoss"], report
    body = json.dumps({"inputs": "Name a color of the sky.", "parameters": {"max_new_tokens": 8, "do_sample": False}})
    out = json.loads(rt.invoke_endpoint(EndpointName="falcon-guide", ContentType="application/json", Body=body)["Body"].read())
    assert isinstance(out[0]["generated_text"], str), out
    sm.delete_endpoint(EndpointName="falcon-guide")
    metrics = {m["StandardMetricName"]: round(m["Value"], 3) for m in d["BestCandidate"]["CandidateProperties"]["CandidateMetrics"]}
    print("   falcon: %s; endpoint answered %r" % (metrics, out[0]["generated_text"][:80]))


def check_flan_t5():
    """A Flan-T5-shaped job (FlanT5L, pulled from the test hub as a tiny T5 with a T5 Unigram
    tokenizer): the input goes to the encoder, the output is the decoder's target; the exported model
    is a T5ForConditionalGeneration, and its endpoint answers InvokeEndpoint and the OpenAI route."""
    sm = client("sagemaker")
    rt = client("sagemaker-runtime")
    s3 = client("s3")
    rows = [("Translate to French: the cat.", "le chat"), ("Translate to French: the dog.", "le chien")] * 20
    put_csv(s3, "t5/train/train.csv", rows)
    sm.create_auto_ml_job_v2(**job_request("flan-t5-e2e", "t5/train/", base="FlanT5L",
                                           hp={"epochCount": "4", "batchSize": "8", "learningRate": "0.003"},
                                           ModelDeployConfig={"AutoGenerateEndpointName": False, "EndpointName": "flan-t5-e2e"}))
    deployed_job(sm, {"AutoMLJobName": "flan-t5-e2e"}, "flan-t5-e2e")
    report = json.loads(s3.get_object(Bucket=BUCKET, Key="output/flan-t5-e2e/metrics.json")["Body"].read())
    assert report["fine_tuned"]["ValidationLoss"] < report["base"]["ValidationLoss"], report
    cfg = json.loads(s3.get_object(Bucket=BUCKET, Key="output/flan-t5-e2e/model/config.json")["Body"].read())
    assert cfg["model_type"] == "t5" and cfg["architectures"] == ["T5ForConditionalGeneration"], cfg
    body = json.dumps({"inputs": "Translate to French: the cat.", "parameters": {"max_new_tokens": 8, "do_sample": False}})
    text = json.loads(rt.invoke_endpoint(EndpointName="flan-t5-e2e", ContentType="application/json", Body=body)["Body"].read())[0]["generated_text"]
    stream = rt.invoke_endpoint_with_response_stream(EndpointName="flan-t5-e2e", ContentType="application/json", Body=body)
    chunks = b"".join(ev["PayloadPart"]["Bytes"] for ev in stream["Body"] if "PayloadPart" in ev)
    assert chunks, "the stream carried nothing"
    sm.delete_endpoint(EndpointName="flan-t5-e2e")
    print("   flan-t5: validation loss %.3f -> %.3f, endpoint answered %r" % (
        report["base"]["ValidationLoss"], report["fine_tuned"]["ValidationLoss"], text))


CHECKS = [check_auth, check_s3_cli, check_validation, check_bad_datasets, check_finetune, check_deploy_and_invoke, check_falcon_guide_request,
          check_flan_t5, check_boto3_example, check_stop,
          check_kill_and_resume, check_conformance]


def main():
    passed = failed = 0
    only = os.environ.get("LATHE_E2E_ONLY")  # a developer's comma-separated subset, e.g. check_flan_t5
    checks = [c for c in CHECKS if not only or c.__name__ in only.split(",")]
    start_server()
    if only:  # the bucket the skipped checks would have made
        try:
            client("s3").create_bucket(Bucket=BUCKET)
        except botocore.exceptions.ClientError:
            pass
    try:
        for check in checks:
            t0 = time.time()
            try:
                check()
                passed += 1
                print("PASS %s (%.1f s)" % (check.__name__, time.time() - t0), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s (%.1f s)" % (check.__name__, time.time() - t0), flush=True)
                traceback.print_exc()
    finally:
        stop_server()
    if failed:
        print("--- server log (tail)")
        print(open(LOG).read()[-6000:])
    print("e2e: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
