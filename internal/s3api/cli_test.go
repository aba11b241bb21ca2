package s3api_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// awsCLI runs the AWS CLI against the server with throwaway credentials and no user config.
func awsCLI(t *testing.T, s *testServer, args ...string) string {
	t.Helper()
	cmd := exec.Command("aws", append([]string{"--endpoint-url", s.url}, args...)...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"), "AWS_PAGER=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the AWS CLI is required in CI: pip install awscli")
		}
		t.Skip("aws CLI not installed (pip install awscli)")
	}
	s := startServer(t)
	awsCLI(t, s, "s3", "mb", "s3://cli-bucket")

	src := t.TempDir()
	files := map[string][]byte{
		"train.csv":            []byte("input,output\nhi,hello\n"),
		"nested/dir/ü b+c.txt": []byte("unicode name"),
		"big.bin":              randomBytes(9<<20, 5), // over the CLI's 8 MiB multipart threshold
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	awsCLI(t, s, "s3", "cp", filepath.Join(src, "train.csv"), "s3://cli-bucket/data/train.csv")
	if got := s.get(t, "cli-bucket", "data/train.csv"); !bytes.Equal(got, files["train.csv"]) {
		t.Errorf("cp upload stored %q", got)
	}
	awsCLI(t, s, "s3", "sync", src, "s3://cli-bucket/synced/")
	for name, data := range files {
		if got := s.get(t, "cli-bucket", "synced/"+name); !bytes.Equal(got, data) {
			t.Errorf("sync stored %d bytes for %s, want %d", len(got), name, len(data))
		}
	}
	// A second sync finds nothing to do: sizes and times listed by the server match.
	if out := awsCLI(t, s, "s3", "sync", src, "s3://cli-bucket/synced/"); strings.Contains(out, "upload:") {
		t.Errorf("second sync uploaded again:\n%s", out)
	}

	ls := awsCLI(t, s, "s3", "ls", "s3://cli-bucket/synced/")
	for _, want := range []string{"PRE nested/", "train.csv", "big.bin"} {
		if !strings.Contains(ls, want) {
			t.Errorf("ls lacks %q:\n%s", want, ls)
		}
	}
	lsAll := awsCLI(t, s, "s3", "ls", "--recursive", "s3://cli-bucket/")
	if !strings.Contains(lsAll, "synced/nested/dir/ü b+c.txt") || !strings.Contains(lsAll, "data/train.csv") {
		t.Errorf("recursive ls:\n%s", lsAll)
	}
	if out := awsCLI(t, s, "s3", "ls"); !strings.Contains(out, "cli-bucket") {
		t.Errorf("ls of buckets:\n%s", out)
	}

	dst := t.TempDir()
	awsCLI(t, s, "s3", "sync", "s3://cli-bucket/synced/", dst)
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("sync download of %s: %d bytes, %v", name, len(got), err)
		}
	}
	awsCLI(t, s, "s3", "cp", "s3://cli-bucket/data/train.csv", filepath.Join(dst, "copy.csv"))
	if got, _ := os.ReadFile(filepath.Join(dst, "copy.csv")); !bytes.Equal(got, files["train.csv"]) {
		t.Errorf("cp download: %q", got)
	}

	awsCLI(t, s, "s3", "rm", "--recursive", "s3://cli-bucket/")
	if out := awsCLI(t, s, "s3", "ls", "--recursive", "s3://cli-bucket/"); strings.TrimSpace(out) != "" {
		t.Errorf("objects left after rm --recursive:\n%s", out)
	}
	awsCLI(t, s, "s3", "rb", "s3://cli-bucket")
	if out := awsCLI(t, s, "s3", "ls"); strings.Contains(out, "cli-bucket") {
		t.Errorf("bucket left after rb:\n%s", out)
	}
}
