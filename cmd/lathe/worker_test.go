package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// lathe worker and serve --workers refuse bad settings before they touch a database or an S3,
// naming the flag.
func TestWorkerRejectsBadInput(t *testing.T) {
	t.Setenv("LATHE_DATABASE", "")
	t.Setenv("LATHE_S3_ENDPOINT", "")
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--s3-endpoint", "http://127.0.0.1:1"}, "--database is required"},
		{[]string{"--database", "postgres://127.0.0.1:1/x"}, "--s3-endpoint is required"},
		{[]string{"--database", "postgres://127.0.0.1:1/x", "--s3-endpoint", "http://127.0.0.1:1", "--jobs", "0"}, "--jobs must be at least 1, got 0"},
		{[]string{"--database", "postgres://127.0.0.1:1/x", "--s3-endpoint", "http://127.0.0.1:1", "--lease", "10ms"}, "--lease must be at least 1s, got 10ms"},
	} {
		_, err := runCommand(context.Background(), workerCommand(), nil, nil, append(tc.args, "--data-dir", filepath.Join(dir, "w"))...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("lathe worker %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	_, err := runCommand(context.Background(), serveCommand(), nil, nil, "--workers", "-1", "--data-dir", filepath.Join(dir, "s"))
	if err == nil || !strings.Contains(err.Error(), "--workers must be 0 (API only) or more, got -1") {
		t.Errorf("lathe serve --workers -1: %v", err)
	}
}
