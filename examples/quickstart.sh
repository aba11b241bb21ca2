#!/usr/bin/env bash
# Lathe's quickstart: build lathe, serve it on its embedded defaults (SQLite metadata, the embedded S3,
# the pure-Go engine), then fine-tune Stories260K on examples/data/train.csv with the aws CLI, exactly as
# a SageMaker user would, and print the metrics. Ctrl-C stops everything.
#
#   bash examples/quickstart.sh            # port 8080, data in ./lathe-data
#   PORT=9000 bash examples/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8080}
DATA=${LATHE_DATA_DIR:-$PWD/lathe-data}
JOB=${JOB:-stories-$(date +%H%M%S)}

go build -o bin/lathe ./cmd/lathe

# The base model. A user pulls it from the Hugging Face hub; machines without the hub import a local copy.
if ! bin/lathe models list --data-dir "$DATA" | grep -Eq '^Stories260K +gguf '; then
  if [ -f ../shared/models/stories260K.gguf ]; then
    bin/lathe models import ../shared/models/stories260K.gguf --name Stories260K --data-dir "$DATA"
  else
    bin/lathe models pull Stories260K --data-dir "$DATA"
  fi
fi

export AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
unset AWS_PROFILE AWS_SESSION_TOKEN

bin/lathe serve --addr 127.0.0.1:"$PORT" --data-dir "$DATA" > "$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
# Wait for *this* server: it logs "lathe is serving" once it holds the port. Another process already on
# the port would answer the health check too (and then refuse our keys), so the check alone proves nothing.
for _ in $(seq 150); do
  if ! kill -0 "$SERVER" 2>/dev/null; then
    if grep -q "address already in use" "$DATA/server.log"; then
      echo "quickstart: port $PORT in use: another process listens on 127.0.0.1:$PORT, so Lathe could not start." >&2
      echo "  Stop it, or run the quickstart on another port: PORT=9000 bash examples/quickstart.sh" >&2
    else
      echo "quickstart: lathe serve exited; its log ($DATA/server.log):" >&2
      cat "$DATA/server.log" >&2
    fi
    exit 1
  fi
  grep -q 'msg="lathe is serving"' "$DATA/server.log" && break
  sleep 0.2
done
grep -q 'msg="lathe is serving"' "$DATA/server.log" && curl -sf "$AWS_ENDPOINT_URL/_lathe/health" >/dev/null || {
  echo "quickstart: lathe serve did not come up in 30 s; its log ($DATA/server.log):" >&2
  cat "$DATA/server.log" >&2
  exit 1
}

# Credentials: the data dir's root keys, which the server generated on its first start (or took from
# LATHE_ROOT_ACCESS_KEY_ID / LATHE_ROOT_SECRET_ACCESS_KEY) and keeps in $DATA/credentials.json, so a
# later `lathe serve --data-dir $DATA` signs with the same ones.
eval "$(bin/lathe credentials --data-dir "$DATA")"

aws s3 mb s3://quickstart 2>/dev/null || true
aws s3 cp examples/data/train.csv s3://quickstart/train/train.csv
sed "s/\"AutoMLJobName\": \"[^\"]*\"/\"AutoMLJobName\": \"$JOB\"/" examples/job.json > "$DATA/job.json"
aws sagemaker create-auto-ml-job-v2 --cli-input-json "file://$DATA/job.json"

# Progress bar with loss, tokens/s and ETA; then the metrics of BestCandidate.
bin/lathe jobs wait "$JOB" --endpoint "$AWS_ENDPOINT_URL"
aws sagemaker describe-auto-ml-job-v2 --auto-ml-job-name "$JOB" \
  --query 'BestCandidate.CandidateProperties.CandidateMetrics' --output table
echo "base model vs fine-tuned (s3://quickstart/output/$JOB/metrics.json):"
aws s3 cp "s3://quickstart/output/$JOB/metrics.json" - | python3 -c '
import json, sys
m = json.load(sys.stdin)
for k in ("ValidationLoss", "Perplexity", "Rouge1", "Rouge2", "RougeL", "RougeLSum"):
    print("  %-16s %10.4f -> %10.4f" % (k, m["base"][k], m["fine_tuned"][k]))'

echo
echo "The data dir's root keys (every lathe serve --data-dir $DATA uses them):"
echo "  eval \"\$(bin/lathe credentials --data-dir $DATA)\"   # sets AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID and its secret"
