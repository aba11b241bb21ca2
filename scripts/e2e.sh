#!/usr/bin/env bash
# End-to-end: a real `lathe serve` driven the way users drive SageMaker, with the aws CLI and boto3.
# Builds lathe, starts it on a free loopback port with a fresh data dir, imports the base model from
# ../shared/models (a user would `lathe models pull Stories260K` from the hub), then runs scripts/e2e.py.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=${LATHE_TEST_MODEL:-$ROOT/../shared/models/stories260K.gguf}
[ -f "$MODEL" ] || { echo "base model not found at $MODEL" >&2; exit 1; }

WORK=$(mktemp -d /tmp/lathe-e2e.XXXXXX)
go build -o "$WORK/lathe" ./cmd/lathe
go build -o "$WORK/testhub" ./scripts/testhub

# The Hugging Face hub of this run: tiny random models in the exact layouts of the catalog's Falcon and
# Flan-T5 repositories (no hub is reachable here); `lathe serve` pulls them at job start as it would
# pull the real ones.
"$WORK/testhub" -root "$WORK/hub" -shared "$ROOT/../shared" >"$WORK/hub.url" 2>"$WORK/hub.log" &
HUB_PID=$!
trap 'kill $HUB_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/hub.url" ] && break; sleep 0.2; done
[ -s "$WORK/hub.url" ] || { echo "testhub did not start:" >&2; cat "$WORK/hub.log" >&2; exit 1; }
export HF_ENDPOINT=$(cat "$WORK/hub.url")

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LATHE_ROOT_ACCESS_KEY_ID=AKIAE2ETESTLATHE0001
export LATHE_ROOT_SECRET_ACCESS_KEY=e2eSecretKeyForLatheTests0000000000000000
export AWS_ACCESS_KEY_ID=$LATHE_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$LATHE_ROOT_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
export LATHE_E2E_URL="http://127.0.0.1:$PORT" LATHE_E2E_BIN="$WORK/lathe" LATHE_E2E_DATA="$WORK/data"

"$WORK/lathe" models import "$MODEL" --name Stories260K --data-dir "$WORK/data"

export LATHE_E2E_LOG="$WORK/server.log"
status=0
python3 scripts/e2e.py || status=$?
rm -rf "$WORK"
exit $status
