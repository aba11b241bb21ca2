package postgres_test

import (
	"context"
	"encoding/xml"
	"os"
	"testing"

	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/iam/iamtest"
	"github.com/lathe-ml/lathe/internal/iam/postgres"
	"github.com/lathe-ml/lathe/internal/store/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	iamtest.Run(t, func(t *testing.T) iam.Store {
		s, err := postgres.Open(context.Background(), pgtest.Shared(t).NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Two processes sharing the database see the same IAM: a user created through one is known to
// the other, and its key signs for both.
func TestTwoNodesShareUsers(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	open := func() *iam.Service {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		svc, err := iam.New(iam.Config{Store: s, AccountID: "123456789012"})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a, b := open(), open()
	var body []byte
	for _, action := range []string{"CreateUser", "CreateAccessKey"} {
		form := map[string][]string{"Action": {action}, "Version": {iam.IAMVersion}, "UserName": {"shared"}}
		var status int
		if status, body = a.ServeQuery(ctx, &iam.QueryRequest{Service: "iam", Form: form, Principal: a.Root("AKIAROOT")}); status != 200 {
			t.Fatalf("%s: %d %s", action, status, body)
		}
	}
	var key struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := xml.Unmarshal(body, &key); err != nil {
		t.Fatal(err)
	}
	if secret, ok := b.LookupSecret(key.ID); !ok || secret != key.Secret {
		t.Fatalf("the other node does not know the key: %q %v", secret, ok)
	}
	form := map[string][]string{"Action": {"GetUser"}, "Version": {iam.IAMVersion}, "UserName": {"shared"}}
	if status, body := b.ServeQuery(ctx, &iam.QueryRequest{Service: "iam", Form: form, Principal: b.Root("AKIAROOT")}); status != 200 {
		t.Fatalf("the other node: %d %s", status, body)
	}
}
