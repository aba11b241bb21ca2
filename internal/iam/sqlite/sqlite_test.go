package sqlite_test

import (
	"context"
	"encoding/xml"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/iam/iamtest"
	"github.com/lathe-ml/lathe/internal/iam/sqlite"
)

// A restarted server knows the users, keys and policies created before: the documents are in the
// file, not in memory.
func TestIAMStateSurvivesReopening(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "iam.db")
	open := func() (*sqlite.Store, *iam.Service) {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := iam.New(iam.Config{Store: st, AccountID: "123456789012"})
		if err != nil {
			t.Fatal(err)
		}
		return st, svc
	}
	call := func(svc *iam.Service, form url.Values) []byte {
		t.Helper()
		form.Set("Version", iam.IAMVersion)
		status, body := svc.ServeQuery(ctx, &iam.QueryRequest{Service: "iam", Form: form, Principal: svc.Root("AKIAROOT"), RequestID: "r"})
		if status != 200 {
			t.Fatalf("%s: %d %s", form.Get("Action"), status, body)
		}
		return body
	}
	st, svc := open()
	call(svc, url.Values{"Action": {"CreateUser"}, "UserName": {"kept"}})
	call(svc, url.Values{"Action": {"PutUserPolicy"}, "UserName": {"kept"}, "PolicyName": {"p"},
		"PolicyDocument": {`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}`}})
	var created struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := xml.Unmarshal(call(svc, url.Values{"Action": {"CreateAccessKey"}, "UserName": {"kept"}}), &created); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, svc = open()
	defer st.Close()
	if secret, ok := svc.LookupSecret(created.ID); !ok || secret != created.Secret {
		t.Fatalf("key after reopening: %q %v", secret, ok)
	}
	p, err := svc.Resolve(ctx, created.ID, "")
	if err != nil || p.ARN != "arn:aws:iam::123456789012:user/kept" {
		t.Fatalf("principal: %+v %v", p, err)
	}
	d, err := svc.Authorize(ctx, iam.Request{Principal: p, Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"})
	if err != nil || !d.Allowed {
		t.Fatalf("the inline policy after reopening: %+v %v", d, err)
	}
	d, err = svc.Authorize(ctx, iam.Request{Principal: p, Action: "s3:PutObject", Resource: "arn:aws:s3:::b/k"})
	if err != nil || d.Allowed || d.Message != "User: arn:aws:iam::123456789012:user/kept is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::b/k because no identity-based policy allows the s3:PutObject action" {
		t.Fatalf("put: %+v %v", d, err)
	}
}

func TestConformance(t *testing.T) {
	iamtest.Run(t, func(t *testing.T) iam.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "iam.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// The file keeps secret access keys: only its owner may read it.
func TestTheFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "iam.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil { // as an older Lathe might have left it
		t.Fatal(err)
	}
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(context.Background(), func(tx iam.Tx) error { return tx.Put("key", "AKIA", []byte("{}")) }); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}
