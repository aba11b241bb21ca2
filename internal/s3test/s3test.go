// Package s3test starts real S3 services for tests: versitygw (a real S3 gateway, built from its
// Go module) and Lathe's own front door over its embedded S3 API, each on a free port of
// 127.0.0.1 and stopped when the test ends.
package s3test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/s3api"
	"github.com/lathe-ml/lathe/internal/server"
)

// Service is a running S3 service and the keys it accepts.
type Service struct {
	Name            string
	URL             string // http://127.0.0.1:PORT
	AccessKeyID     string
	SecretAccessKey string
	Region          string
}

// Install is how to build versitygw at the module root.
const Install = "GOBIN=$PWD/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (at the repo root)"

// VersityGWBinary finds versitygw: $LATHE_VERSITYGW, else bin/versitygw at the module root, else
// PATH; "" when there is none.
func VersityGWBinary() string {
	if p := os.Getenv("LATHE_VERSITYGW"); p != "" {
		return p
	}
	if dir, err := os.Getwd(); err == nil {
		for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, "bin", "versitygw")
				if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
					return p
				}
				break
			}
		}
	}
	p, _ := exec.LookPath("versitygw")
	return p
}

// VersityGW starts versitygw's POSIX backend over a temporary directory. Without the binary the
// test is skipped, or fails under CI=true.
func VersityGW(t testing.TB) Service {
	t.Helper()
	bin := VersityGWBinary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("versitygw is required in CI: " + Install)
		}
		t.Skip("versitygw not found; install it with " + Install)
	}
	addr := freeAddr(t)
	const access, secret = "vgwaccess", "vgwsecret1234"
	var logs syncBuffer
	cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr, "posix", t.TempDir())
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Ready when it answers HTTP (an unsigned request gets an S3 error, which is an answer).
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("versitygw exited: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer on %s within a minute\n%s", addr, logs.String())
		}
	}
	return Service{Name: "versitygw", URL: "http://" + addr, AccessKeyID: access, SecretAccessKey: secret, Region: "us-east-1"}
}

// Lathe starts Lathe's front door over its embedded S3 API (SigV4, aws-chunked, the S3 error
// documents), as another `lathe serve` would serve it.
func Lathe(t testing.TB) Service {
	t.Helper()
	creds := server.Credentials{AccessKeyID: "AKIAOTHERLATHE000001", SecretAccessKey: "other/lathe/secret+key/0123456789abcdef"}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s3h, err := s3api.New(t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{Region: "us-east-1", AccountID: "111111111111", Credentials: creds, S3: s3h, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return Service{Name: "lathe", URL: "http://" + ln.Addr().String(), AccessKeyID: creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey, Region: "us-east-1"}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
