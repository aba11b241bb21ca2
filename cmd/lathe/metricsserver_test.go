package main

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/s3test"
	"github.com/lathe-ml/lathe/internal/store/pgtest"
	"github.com/lathe-ml/lathe/internal/store/storeopen"
	"github.com/lathe-ml/lathe/internal/store/storetest"
)

// `lathe worker --metrics-addr` serves /metrics although it has no API port: the job figures of the
// shared database, and its process.
func TestWorkerMetrics(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ext := s3test.Lathe(t)
	t.Setenv("AWS_ACCESS_KEY_ID", ext.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ext.SecretAccessKey)
	t.Setenv("AWS_REGION", ext.Region)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ctx := context.Background()

	// One job in the shared database, as an API node would have created it.
	st, err := storeopen.Open(ctx, url, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateJob(ctx, storetest.NewJob("queued", time.Now().Add(-time.Minute)), nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	cmd := workerCommand()
	cmd.SetArgs([]string{"--database", url, "--s3-endpoint", ext.URL, "--data-dir", t.TempDir(), "--metrics-addr", addr})
	go func() { done <- cmd.ExecuteContext(wctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("lathe worker: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("lathe worker did not stop within 60 s")
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("lathe worker exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no /metrics from lathe worker within 60 s")
		}
	}

	fams := scrapeMetrics(t, "http://"+addr+"/metrics")
	// Whether the worker has claimed the job yet or not (its spec is not a real job's, so it fails
	// at once), there is one job, in one status.
	total := 0.0
	for _, status := range []string{"InProgress", "Stopping", "Completed", "Failed", "Stopped"} {
		total += sampleValue(t, fams, "lathe_jobs", map[string]string{"status": status})
	}
	if total != 1 {
		t.Errorf("lathe_jobs adds up to %v, want 1", total)
	}
	if got := sampleValue(t, fams, "lathe_job_metrics_scrape_error", nil); got != 0 {
		t.Errorf("lathe_job_metrics_scrape_error = %v", got)
	}
	if _, ok := fams["process_resident_memory_bytes"]; !ok {
		t.Error("no process metrics")
	}
	if resp, err := http.Get("http://" + addr + "/other"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %v, %v; want 404", resp, err)
	} else {
		resp.Body.Close()
	}
}
