package main

import (
	"bytes"
	"net"
	"testing"
)

// With no server at the endpoint, every jobs verb says so and how to start one, at once, instead
// of the SDK's retry error (and before asking for credentials, which a first-time user lacks too).
func TestJobsWithoutAServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("LATHE_ROOT_ACCESS_KEY_ID", "")
	t.Setenv("LATHE_ROOT_SECRET_ACCESS_KEY", "")
	want := "no Lathe server at " + url + "; start one with lathe serve (or set --endpoint / LATHE_ENDPOINT to yours)"
	verbs := [][]string{
		{"list"}, {"describe", "j1"}, {"stop", "j1"}, {"wait", "j1"}, {"logs", "j1"},
		{"create", "j1", "--train", "s3://b/train/", "--output", "s3://b/out/"},
	}
	for i := range verbs { // the same with credentials at hand: the SDK would retry, then give up
		verbs = append(verbs, append([]string{"with credentials"}, verbs[i]...))
	}
	for _, args := range verbs {
		if args[0] == "with credentials" {
			args = args[1:]
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
		}
		cmd := jobsCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args, "--endpoint", url, "--data-dir", t.TempDir()))
		err := cmd.Execute()
		if err == nil || err.Error() != want {
			t.Errorf("lathe jobs %v: %v, want %q", args, err, want)
		}
	}
}
