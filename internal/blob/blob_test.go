package blob_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/s3api"
)

func TestParseURI(t *testing.T) {
	cases := []struct {
		uri, bucket, key string
		ok               bool
	}{
		{"s3://bucket/key", "bucket", "key", true},
		{"s3://bucket/dir/sub/file.csv", "bucket", "dir/sub/file.csv", true},
		{"s3://bucket/prefix/", "bucket", "prefix/", true},
		{"s3://bucket", "bucket", "", true},
		{"s3://bucket/", "bucket", "", true},
		{"s3://bucket/a b+c", "bucket", "a b+c", true},
		{"s3:///key", "", "", false},
		{"s3://", "", "", false},
		{"http://bucket/key", "", "", false},
		{"bucket/key", "", "", false},
		{"", "", "", false},
	}
	for _, c := range cases {
		b, k, err := blob.ParseURI(c.uri)
		if (err == nil) != c.ok || b != c.bucket || k != c.key {
			t.Errorf("ParseURI(%q) = %q, %q, %v; want %q, %q, ok=%v", c.uri, b, k, err, c.bucket, c.key, c.ok)
		}
	}
}

// backend is an S3 server the client is tested against.
type backend struct {
	name  string
	start func(t *testing.T) blob.Options
}

var backends = []backend{
	{"embedded s3api", startEmbedded},
	{"versitygw", startVersityGW},
}

func startEmbedded(t *testing.T) blob.Options {
	h, err := s3api.New(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return blob.Options{Endpoint: "http://" + ln.Addr().String(), Region: "us-east-1",
		AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", PathStyle: true}
}

// versityGW finds the versitygw binary: $LATHE_VERSITYGW, else bin/versitygw at the module
// root, else PATH.
func versityGW() string {
	if p := os.Getenv("LATHE_VERSITYGW"); p != "" {
		return p
	}
	if dir, err := os.Getwd(); err == nil {
		for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				if p := filepath.Join(dir, "bin", "versitygw"); fileExists(p) {
					return p
				}
				break
			}
		}
	}
	p, _ := exec.LookPath("versitygw")
	return p
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func startVersityGW(t *testing.T) blob.Options {
	bin := versityGW()
	if bin == "" {
		const install = "GOBIN=$PWD/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (at the repo root)"
		if os.Getenv("CI") == "true" {
			t.Fatal("versitygw is required in CI: " + install)
		}
		t.Skip("versitygw not found; install it with " + install)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const access, secret = "vgwaccess", "vgwsecret1234"
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr, "posix", t.TempDir())
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
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
	return blob.Options{Endpoint: "http://" + addr, Region: "us-east-1", AccessKeyID: access, SecretAccessKey: secret, PathStyle: true}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// onlyReader hides every method but Read, so that Put cannot seek or learn the length.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestClient(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			opts := be.start(t)
			ctx := context.Background()
			c, err := blob.New(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CreateBucket(ctx, "blob-test"); err != nil {
				t.Fatal(err)
			}
			if err := c.CreateBucket(ctx, "blob-test"); err != nil {
				t.Errorf("creating an existing bucket again: %v", err)
			}
			testClient(t, c, opts)
		})
	}
}

func testClient(t *testing.T, c *blob.Client, opts blob.Options) {
	ctx := context.Background()

	// Small objects: PutBytes, Get, Open, Exists.
	small := map[string]string{
		"s3://blob-test/data/train.csv":      "input,output\nhi,hello\n",
		"s3://blob-test/data/valid.csv":      "input,output\nbye,goodbye\n",
		"s3://blob-test/data/sub/extra.txt":  "extra",
		"s3://blob-test/other.txt":           "other",
		"s3://blob-test/data/ünï cöde+=.txt": "unicode key",
	}
	for uri, body := range small {
		if err := c.PutBytes(ctx, uri, []byte(body), "text/plain"); err != nil {
			t.Fatalf("PutBytes %s: %v", uri, err)
		}
	}
	for uri, body := range small {
		got, err := c.Get(ctx, uri)
		if err != nil || string(got) != body {
			t.Errorf("Get %s = %q, %v; want %q", uri, got, err, body)
		}
		ok, err := c.Exists(ctx, uri)
		if err != nil || !ok {
			t.Errorf("Exists %s = %v, %v", uri, ok, err)
		}
	}
	rc, err := c.Open(ctx, "s3://blob-test/data/train.csv")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 5)
	if _, err := io.ReadFull(rc, head); err != nil || string(head) != "input" {
		t.Errorf("Open then read 5 bytes: %q, %v", head, err)
	}
	rc.Close()

	// List follows pagination: three keys per page.
	blob.SetListPageSize(c, 2)
	objs, err := c.List(ctx, "s3://blob-test/data/")
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, o := range objs {
		uris = append(uris, o.URI)
		if want := small[o.URI]; o.Size != int64(len(want)) || o.ETag != `"`+md5hex([]byte(want))+`"` || o.LastModified.IsZero() {
			t.Errorf("listed %s: size %d etag %s modified %v", o.URI, o.Size, o.ETag, o.LastModified)
		}
	}
	wantURIs := []string{"s3://blob-test/data/sub/extra.txt", "s3://blob-test/data/train.csv",
		"s3://blob-test/data/valid.csv", "s3://blob-test/data/ünï cöde+=.txt"}
	if !slices.Equal(uris, wantURIs) {
		t.Errorf("List data/ = %q, want %q", uris, wantURIs)
	}
	all, err := c.List(ctx, "s3://blob-test")
	if err != nil || len(all) != len(small) {
		t.Errorf("List whole bucket: %d objects, %v", len(all), err)
	}
	none, err := c.List(ctx, "s3://blob-test/nothing/")
	if err != nil || len(none) != 0 {
		t.Errorf("List of an empty prefix: %v, %v", none, err)
	}

	// PutFile over one part goes multipart; Download brings it back intact.
	dir := t.TempDir()
	big := randomBytes(blob.DefaultPartSize+3<<20, 1)
	src := filepath.Join(dir, "weights.bin")
	if err := os.WriteFile(src, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.PutFile(ctx, "s3://blob-test/model/weights.bin", src); err != nil {
		t.Fatalf("PutFile: %v", err)
	}
	dst := filepath.Join(dir, "downloaded.bin")
	if err := c.Download(ctx, "s3://blob-test/model/weights.bin", dst); err != nil {
		t.Fatalf("Download: %v", err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, big) {
		t.Errorf("downloaded %d bytes differ from the %d uploaded", len(got), len(big))
	}
	// S3 gives multipart objects an ETag ending in -<parts>.
	raw := rawClient(opts)
	hd, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("blob-test"), Key: aws.String("model/weights.bin")})
	if err != nil || !strings.HasSuffix(aws.ToString(hd.ETag), `-2"`) {
		t.Errorf("PutFile of %d bytes: ETag %v (%v), want a 2-part multipart ETag", len(big), aws.ToString(hd.ETag), err)
	}
	if aws.ToString(hd.ContentType) != "application/octet-stream" {
		t.Errorf("PutFile content type %q, want the one for .bin", aws.ToString(hd.ContentType))
	}

	// Put streams a reader of unknown length, multipart past one part.
	streamed := randomBytes(blob.DefaultPartSize*2+12345, 2)
	if err := c.Put(ctx, "s3://blob-test/stream/big", onlyReader{bytes.NewReader(streamed)}, ""); err != nil {
		t.Fatalf("Put stream: %v", err)
	}
	if got, err := c.Get(ctx, "s3://blob-test/stream/big"); err != nil || !bytes.Equal(got, streamed) {
		t.Errorf("streamed object: %d bytes, %v", len(got), err)
	}
	if err := c.Put(ctx, "s3://blob-test/stream/small", onlyReader{strings.NewReader("short stream")}, "text/plain"); err != nil {
		t.Fatalf("Put small stream: %v", err)
	}
	if got, err := c.Get(ctx, "s3://blob-test/stream/small"); err != nil || string(got) != "short stream" {
		t.Errorf("small streamed object: %q, %v", got, err)
	}
	if err := c.Put(ctx, "s3://blob-test/stream/empty", onlyReader{strings.NewReader("")}, ""); err != nil {
		t.Fatalf("Put empty stream: %v", err)
	}
	if got, err := c.Get(ctx, "s3://blob-test/stream/empty"); err != nil || len(got) != 0 {
		t.Errorf("empty object: %q, %v", got, err)
	}

	// Delete, and every way of meeting a missing object.
	if err := c.Delete(ctx, "s3://blob-test/other.txt"); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Exists(ctx, "s3://blob-test/other.txt"); err != nil || ok {
		t.Errorf("Exists after Delete = %v, %v", ok, err)
	}
	missing := []struct {
		name string
		call func() error
	}{
		{"Get deleted", func() error { _, err := c.Get(ctx, "s3://blob-test/other.txt"); return err }},
		{"Open never written", func() error { _, err := c.Open(ctx, "s3://blob-test/never"); return err }},
		{"Download never written", func() error { return c.Download(ctx, "s3://blob-test/never", filepath.Join(dir, "x")) }},
		{"Get in a missing bucket", func() error { _, err := c.Get(ctx, "s3://no-such-bucket/k"); return err }},
		{"List a missing bucket", func() error { _, err := c.List(ctx, "s3://no-such-bucket/"); return err }},
	}
	for _, m := range missing {
		err := m.call()
		if !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("%s: got %v, want ErrNotFound", m.name, err)
		} else if !strings.Contains(err.Error(), "s3://") {
			t.Errorf("%s: error %q does not name the URI", m.name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Errorf("a failed Download left a file: %v", err)
	}
	if ok, err := c.Exists(ctx, "s3://no-such-bucket/k"); ok || err != nil {
		t.Errorf("Exists in a missing bucket = %v, %v; want false, nil", ok, err)
	}
	for _, bad := range []string{"s3://blob-test", "s3://blob-test/", "file:///etc/passwd"} {
		if _, err := c.Get(ctx, bad); err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Get %q: got %v, want a URI error", bad, err)
		}
	}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// rawClient is a plain SDK client for checks the blob API does not expose.
func rawClient(opts blob.Options) *s3.Client {
	c, err := blob.New(context.Background(), opts)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return c.S3()
}

func TestOptionsFromEnv(t *testing.T) {
	embedded := blob.Options{Endpoint: "http://127.0.0.1:1", AccessKeyID: "root", SecretAccessKey: "s", PathStyle: true}
	t.Setenv("LATHE_S3_ENDPOINT", "")
	if got := blob.OptionsFromEnv(embedded); got != embedded {
		t.Errorf("without LATHE_S3_ENDPOINT: %+v, want the embedded options", got)
	}
	t.Setenv("LATHE_S3_ENDPOINT", "https://s3.example.com")
	if got := blob.OptionsFromEnv(embedded); got != (blob.Options{Endpoint: "https://s3.example.com", PathStyle: true}) {
		t.Errorf("with LATHE_S3_ENDPOINT: %+v", got)
	}
	t.Setenv("LATHE_S3_PATH_STYLE", "false")
	if got := blob.OptionsFromEnv(embedded); got.PathStyle {
		t.Errorf("LATHE_S3_PATH_STYLE=false still path style: %+v", got)
	}
}

// An external S3 named by LATHE_S3_ENDPOINT is reached with the credentials of the usual AWS
// environment variables; versitygw checks the signatures, so a wrong key would fail.
func TestExternalS3FromEnvironment(t *testing.T) {
	vgw := startVersityGW(t)
	home := t.TempDir()
	t.Setenv("LATHE_S3_ENDPOINT", vgw.Endpoint)
	t.Setenv("LATHE_S3_PATH_STYLE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", vgw.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", vgw.SecretAccessKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "none"))
	ctx := context.Background()
	c, err := blob.New(ctx, blob.OptionsFromEnv(blob.Options{Endpoint: "http://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateBucket(ctx, "env-bucket"); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBytes(ctx, "s3://env-bucket/k", []byte("via env"), ""); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "s3://env-bucket/k"); err != nil || string(got) != "via env" {
		t.Errorf("Get = %q, %v", got, err)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	bad, err := blob.New(ctx, blob.OptionsFromEnv(blob.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Get(ctx, "s3://env-bucket/k"); err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Get with a wrong secret: got %v, want a signature error", err)
	}
}
