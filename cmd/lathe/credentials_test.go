package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/server"
)

// The quickstart's keys outlive the quickstart: a server first started with LATHE_ROOT_* keeps them
// in its data dir, and afterwards `lathe credentials` (what the quickstart and the server's banner
// tell the user to run) prints those same keys without the variables; a data dir never served has
// none to print.
func TestCredentialsOfADataDir(t *testing.T) {
	run := func(dir string) (string, error) {
		cmd := credentialsCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"--data-dir", dir})
		err := cmd.Execute()
		return out.String(), err
	}
	dir := t.TempDir()
	t.Setenv(server.EnvRootAccessKeyID, "")
	t.Setenv(server.EnvRootSecretAccessKey, "")
	if _, err := run(dir); err == nil || !strings.Contains(err.Error(), "no root credentials in "+dir) {
		t.Errorf("a data dir never served: %v", err)
	}

	t.Setenv(server.EnvRootAccessKeyID, "AKIAQUICKSTART000001")
	t.Setenv(server.EnvRootSecretAccessKey, "quickstartSecretKey000000000000000000000")
	if _, err := server.LoadRootKeys(dir, true); err != nil { // what lathe serve does first
		t.Fatal(err)
	}
	t.Setenv(server.EnvRootAccessKeyID, "")
	t.Setenv(server.EnvRootSecretAccessKey, "")
	keys, err := server.LoadRootKeys(dir, true) // a later plain lathe serve
	if err != nil || keys.Generated {
		t.Fatalf("later start: %+v, %v; want the kept keys", keys, err)
	}
	out, err := run(dir)
	want := "export AWS_ACCESS_KEY_ID=AKIAQUICKSTART000001\nexport AWS_SECRET_ACCESS_KEY=quickstartSecretKey000000000000000000000\n"
	if err != nil || out != want {
		t.Errorf("lathe credentials printed %q, %v; want %q", out, err, want)
	}
}
