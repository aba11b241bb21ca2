package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/blob"
)

// --model takes what an endpoint takes: a model of the store by name, and a job's artifact by its
// s3:// URI (read through the server's S3 API, prompted as its base model); both answer as the file
// itself does.
func TestGenerateFromStoreNameAndS3(t *testing.T) {
	dataDir := t.TempDir()
	if _, err := runModels(t, "import", storiesModel, "--name", "Stories260K", "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	greedy := func(args ...string) string {
		t.Helper()
		var stderr bytes.Buffer
		out, err := runCommand(context.Background(), generateCommand(), nil, &stderr,
			append(args, "--raw", "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "30")...)
		if err != nil {
			t.Fatalf("lathe generate %v: %v (stderr %s)", args, err, stderr.String())
		}
		return out
	}
	if out := greedy("--model", "Stories260K", "--data-dir", dataDir); !strings.HasPrefix(out, storiesGreedy) {
		t.Errorf("--model Stories260K: %q, want %q", out, storiesGreedy)
	}

	t.Setenv("LATHE_ROOT_ACCESS_KEY_ID", dbTestAccessKey)
	t.Setenv("LATHE_ROOT_SECRET_ACCESS_KEY", dbTestSecretKey)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("LATHE_S3_ENDPOINT", "")
	url := startServe(t, "").Options().BaseEndpoint
	ctx := context.Background()
	objects, err := blob.New(ctx, blob.Options{Endpoint: *url, Region: "us-east-1", AccessKeyID: dbTestAccessKey,
		SecretAccessKey: dbTestSecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := objects.CreateBucket(ctx, "gen-bucket"); err != nil {
		t.Fatal(err)
	}
	// A job's artifact: the model under <job>/model/, metrics.json naming the base model beside it.
	if err := objects.PutFile(ctx, "s3://gen-bucket/out/job/model/model.gguf", storiesModel); err != nil {
		t.Fatal(err)
	}
	if err := objects.PutBytes(ctx, "s3://gen-bucket/out/job/metrics.json", []byte(`{"base_model":"Stories260K"}`), "application/json"); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "lathe-generate-*"))
	if out := greedy("--model", "s3://gen-bucket/out/job/model/", "--endpoint", *url, "--data-dir", t.TempDir()); !strings.HasPrefix(out, storiesGreedy) {
		t.Errorf("--model s3://gen-bucket/out/job/model/: %q, want %q", out, storiesGreedy)
	}
	if after, _ := filepath.Glob(filepath.Join(os.TempDir(), "lathe-generate-*")); len(after) != len(before) {
		t.Errorf("the downloaded model was left behind: %v", after)
	}
	if _, err := runCommand(ctx, generateCommand(), nil, nil, "--model", "s3://gen-bucket/out/nothing/", "--endpoint", *url, "--prompt", "x"); err == nil ||
		!strings.Contains(err.Error(), "model s3://gen-bucket/out/nothing/: no model data at s3://gen-bucket/out/nothing/") {
		t.Errorf("an empty prefix: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + l.Addr().String()
	l.Close()
	if _, err := runCommand(ctx, generateCommand(), nil, nil, "--model", "s3://gen-bucket/out/job/model/", "--endpoint", gone, "--prompt", "x"); err == nil ||
		err.Error() != "no Lathe server at "+gone+"; start one with lathe serve (or set --endpoint / LATHE_ENDPOINT to yours)" {
		t.Errorf("no server at --endpoint: %v", err)
	}
}
