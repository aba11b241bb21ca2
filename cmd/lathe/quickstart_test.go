package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The quickstart notices that its port is taken by another process, even one that answers Lathe's
// health check (another Lathe, say), instead of running its aws commands against that process; it
// says "port N in use" and how to pick another.
func TestQuickstartPortInUse(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the quickstart needs %s: %v", tool, err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintln(w, `{"status":"ok"}`) // answers /_lathe/health like a Lathe server
	})}
	go other.Serve(l)
	t.Cleanup(func() { other.Close() })
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "examples/quickstart.sh")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(cmd.Environ(), "PORT="+port, "LATHE_DATA_DIR="+t.TempDir(), "JOB=port-test")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	want := "quickstart: port " + port + " in use: another process listens on 127.0.0.1:" + port + ", so Lathe could not start."
	if err == nil || !strings.Contains(stderr.String(), want) {
		t.Errorf("quickstart with port %s taken: %v\nstdout:\n%s\nstderr:\n%s\nwant stderr to say %q", port, err, stdout.String(), stderr.String(), want)
	}
}
