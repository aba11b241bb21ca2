#!/usr/bin/env bash
# The test command from the README: static checks, the Go tests, then the end-to-end journey with the
# aws CLI and boto3 against a real `lathe serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$(go env GOPATH)/bin:$PATH"
echo "== gofmt / go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" $unformatted >&2
  exit 1
fi
go vet ./...
echo "== go mod tidy -diff"
go mod tidy -diff
if command -v staticcheck >/dev/null; then
  echo "== staticcheck"
  staticcheck ./...
else
  echo "staticcheck not installed (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2): skipped" >&2
fi

echo "== go test"
go test -count=1 -timeout 20m ./...

echo "== fuzz targets (FUZZTIME each, default 10s)"
bash scripts/fuzz.sh

echo "== end to end (aws CLI + boto3)"
bash scripts/e2e.sh

echo "== reliability (hostile requests, broken datasets, kill -9, overload)"
python3 scripts/reliability.py
