#!/usr/bin/env bash
# Soak: a real `lathe serve` with an endpoint on Stories260K under 32 concurrent InvokeEndpoint
# clients for SOAK_MINUTES (default 10), while a fine-tuning job is created every minute. The
# server's resident memory (VmRSS) and open files (/proc/PID/fd) are sampled every 10 s; the script
# prints the samples, the request count, errors and latencies, and flags growth: RSS in the last
# third of the run more than 25% above the first third (after the first minute's warm-up), or open
# files more than 16 above it. Exits non-zero on an error or flagged growth. Not part of CI.
#
#   bench/soak.sh                 # 10 minutes
#   SOAK_MINUTES=3 bench/soak.sh
#
# Environment: SOAK_MINUTES (10), SOAK_CLIENTS (32), SOAK_NEW_TOKENS (32), LATHE_BIN (a built lathe;
# default: build one), LATHE_TEST_MODEL (../shared/models/stories260K.gguf).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=${LATHE_TEST_MODEL:-$ROOT/../shared/models/stories260K.gguf}
[ -f "$MODEL" ] || { echo "base model not found at $MODEL" >&2; exit 1; }
WORK=$(mktemp -d /tmp/lathe-soak.XXXXXX)
BIN=${LATHE_BIN:-}
if [ -z "$BIN" ]; then
  BIN=$WORK/lathe
  go build -o "$BIN" ./cmd/lathe
fi
"$BIN" models import "$MODEL" --name Stories260K --data-dir "$WORK/data" >/dev/null

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LATHE_ROOT_ACCESS_KEY_ID=AKIASOAKTESTLATHE001
export LATHE_ROOT_SECRET_ACCESS_KEY=soakSecretKeyForLatheTests00000000000000
export AWS_ACCESS_KEY_ID=$LATHE_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$LATHE_ROOT_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
"$BIN" serve --addr "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$PORT/_lathe/health" >/dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { echo "lathe serve exited:" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
  sleep 0.2
done

status=0
SOAK_URL="http://127.0.0.1:$PORT" SOAK_PID=$PID python3 - <<'PY' || status=$?
import concurrent.futures, csv, io, json, os, random, sys, threading, time
import boto3, botocore
from botocore.config import Config

URL, PID = os.environ["SOAK_URL"], int(os.environ["SOAK_PID"])
MINUTES = float(os.environ.get("SOAK_MINUTES", "10"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "32"))
NEW_TOKENS = int(os.environ.get("SOAK_NEW_TOKENS", "32"))
BUCKET, ROLE = "soak", "arn:aws:iam::123456789012:role/Soak"
cfg = Config(retries={"max_attempts": 1}, read_timeout=120, max_pool_connections=CLIENTS + 4, s3={"addressing_style": "path"})
def client(svc):
    return boto3.session.Session().client(svc, endpoint_url=URL, region_name="us-east-1", config=cfg)

sm, s3 = client("sagemaker"), client("s3")
s3.create_bucket(Bucket=BUCKET)
buf = io.StringIO(); w = csv.writer(buf); w.writerow(["input", "output"])
w.writerows([("What is %d plus %d?" % (i, i + 1), "It is %d." % (2 * i + 1)) for i in range(40)])
s3.put_object(Bucket=BUCKET, Key="train/train.csv", Body=buf.getvalue().encode())
sm.create_model(ModelName="soak", ExecutionRoleArn=ROLE,
                PrimaryContainer={"Image": "lathe", "Environment": {"LATHE_BASE_MODEL": "Stories260K"}})
sm.create_endpoint_config(EndpointConfigName="soak", ProductionVariants=[{
    "VariantName": "AllTraffic", "ModelName": "soak", "InitialInstanceCount": 1, "InstanceType": "ml.g5.xlarge"}])
sm.create_endpoint(EndpointName="soak", EndpointConfigName="soak")
sm.get_waiter("endpoint_in_service").wait(EndpointName="soak", WaiterConfig={"Delay": 1, "MaxAttempts": 300})

def sample():
    rss = 0
    for line in open("/proc/%d/status" % PID):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) // 1024
    return rss, len(os.listdir("/proc/%d/fd" % PID))

lock = threading.Lock()
lat, errors, jobs = [], [], []
stop = threading.Event()
prompts = ["Once upon a time", "Tom found a red ball", "The little dog ran to the park and", "Lily liked to"]

def invoker(i):
    rt = client("sagemaker-runtime")
    rng = random.Random(i)
    while not stop.is_set():
        body = json.dumps({"inputs": rng.choice(prompts), "parameters": {"max_new_tokens": NEW_TOKENS, "do_sample": True, "seed": rng.randrange(1 << 30)}})
        t = time.time()
        try:
            out = json.loads(rt.invoke_endpoint(EndpointName="soak", ContentType="application/json", Body=body)["Body"].read())
            ok = isinstance(out, list) and "generated_text" in out[0]
            err = None if ok else "wrong answer %r" % out
        except botocore.exceptions.ClientError as e:
            err = "%s %s" % (e.response["ResponseMetadata"].get("HTTPStatusCode"), e.response["Error"]["Code"])
        except Exception as e:
            err = "%s: %s" % (type(e).__name__, e)
        with lock:
            if err:
                errors.append(err)
            else:
                lat.append(time.time() - t)

def job_maker():
    n = 0
    while not stop.is_set():
        name = "soak-%03d" % n
        try:
            sm.create_auto_ml_job_v2(
                AutoMLJobName=name,
                AutoMLJobInputDataConfig=[{"ChannelType": "training", "ContentType": "text/csv;header=present", "CompressionType": "None",
                                           "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://%s/train/" % BUCKET}}}],
                OutputDataConfig={"S3OutputPath": "s3://%s/output/" % BUCKET},
                AutoMLProblemTypeConfig={"TextGenerationJobConfig": {"BaseModelName": "Stories260K",
                    "TextGenerationHyperParameters": {"epochCount": "1", "batchSize": "4", "learningRate": "0.001"}}},
                RoleArn=ROLE, DataSplitConfig={"ValidationFraction": 0.2})
            with lock:
                jobs.append(name)
        except Exception as e:
            with lock:
                errors.append("CreateAutoMLJobV2 %s: %s" % (name, e))
        n += 1
        stop.wait(60)

threads = [threading.Thread(target=invoker, args=(i,), daemon=True) for i in range(CLIENTS)]
threads.append(threading.Thread(target=job_maker, daemon=True))
for t in threads:
    t.start()
t0 = time.time()
samples = []
print("%6s | %7s | %10s | %8s | %6s | %4s" % ("time s", "RSS MiB", "open files", "requests", "errors", "jobs"), flush=True)
while True:
    el = time.time() - t0
    rss, fds = sample()
    with lock:
        row = (el, rss, fds, len(lat), len(errors), len(jobs))
    samples.append(row)
    print("%6.0f | %7d | %10d | %8d | %6d | %4d" % row, flush=True)
    if el >= MINUTES * 60:
        break
    time.sleep(min(10, max(0.1, MINUTES * 60 - el)))
stop.set()
for t in threads:
    t.join(timeout=180)
states = {}
for name in jobs:
    deadline = time.time() + 300
    while True:
        st = sm.describe_auto_ml_job_v2(AutoMLJobName=name)["AutoMLJobStatus"]
        if st in ("Completed", "Failed", "Stopped") or time.time() > deadline:
            break
        time.sleep(1)
    states[st] = states.get(st, 0) + 1
lat.sort()
warm = [s for s in samples if s[0] >= 60] or samples
third = max(1, len(warm) // 3)
first, last = warm[:third], warm[-third:]
rss0, rss1 = sum(s[1] for s in first) / len(first), sum(s[1] for s in last) / len(last)
fd0, fd1 = sum(s[2] for s in first) / len(first), sum(s[2] for s in last) / len(last)
dur = samples[-1][0]
print()
print("requests %d (%.1f/s), errors %d, latency p50 %.0f ms p99 %.0f ms max %.0f ms" % (
    len(lat), len(lat) / dur, len(errors), 1000 * lat[len(lat) // 2] if lat else 0,
    1000 * lat[int(len(lat) * 0.99)] if lat else 0, 1000 * lat[-1] if lat else 0))
print("jobs created %d: %s" % (len(jobs), states))
print("RSS MiB: first third %.0f, last third %.0f (%+.0f%%), max %d" % (rss0, rss1, 100 * (rss1 - rss0) / rss0, max(s[1] for s in samples)))
print("open files: first third %.0f, last third %.0f, max %d" % (fd0, fd1, max(s[2] for s in samples)))
for e in sorted(set(errors))[:10]:
    print("error: %s (x%d)" % (e, errors.count(e)))
flags = []
if rss1 > 1.25 * rss0:
    flags.append("RSS grew %.0f%%" % (100 * (rss1 - rss0) / rss0))
if fd1 > fd0 + 16:
    flags.append("open files grew by %.0f" % (fd1 - fd0))
if errors:
    flags.append("%d errors" % len(errors))
if states.get("Completed", 0) != len(jobs):
    flags.append("jobs not all Completed: %s" % states)
print("FLAGGED: " + "; ".join(flags) if flags else "flat: no growth flagged, no errors")
sys.exit(1 if flags else 0)
PY
if [ $status -ne 0 ]; then
  echo "--- server log: warnings and errors (tail)"
  grep -E 'level=(WARN|ERROR)' "$WORK/server.log" | tail -20 || true
fi
kill $PID 2>/dev/null || true
wait $PID 2>/dev/null || true
trap - EXIT
rm -rf "$WORK"
exit $status
