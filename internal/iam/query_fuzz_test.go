package iam_test

import (
	"context"
	"encoding/xml"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/iam/sqlite"
)

// go test -fuzz FuzzServeQuery ./internal/iam
//
// Whatever form a client posts, IAM answers with well-formed XML (a response or an ErrorResponse
// with a status that matches it) and never a server failure: a bad parameter is the client's
// error.
func FuzzServeQuery(f *testing.F) {
	f.Add("CreateUser", "UserName", "alice", "Path", "/team/")
	f.Add("PutUserPolicy", "UserName", "alice", "PolicyDocument", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`)
	f.Add("CreateRole", "RoleName", "r", "AssumeRolePolicyDocument", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}`)
	f.Add("ListUsers", "MaxItems", "0", "Marker", "zzz")
	f.Add("CreatePolicyVersion", "PolicyArn", "arn:aws:iam::123456789012:policy/x", "PolicyDocument", "{")
	f.Add("GetPolicyVersion", "PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess", "VersionId", "v1")
	f.Add("AttachUserPolicy", "UserName", "alice", "PolicyArn", "arn:aws:iam::aws:policy/AdministratorAccess")
	f.Add("TagUser", "UserName", "fuzzer", "Tags.member.1.Key", "")
	f.Add("UntagRole", "RoleName", "r", "TagKeys.member.1", "k")
	f.Add("GetAccessKeyLastUsed", "AccessKeyId", "AKIA", "UserName", "x")
	f.Add("AssumeRole", "RoleArn", "arn:aws:iam::123456789012:role/r", "RoleSessionName", "s")
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "iam.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	svc, err := iam.New(iam.Config{Store: st, AccountID: "123456789012"})
	if err != nil {
		f.Fatal(err)
	}
	// An IAM user allowed all of IAM asks too, so the authorization path runs on every input.
	root := svc.Root("AKIAROOT")
	setup := func(form url.Values) []byte {
		form.Set("Version", iam.IAMVersion)
		status, body := svc.ServeQuery(context.Background(), &iam.QueryRequest{Service: "iam", Form: form, Principal: root, RequestID: "r"})
		if status != 200 {
			f.Fatalf("%s: %d %s", form.Get("Action"), status, body)
		}
		return body
	}
	setup(url.Values{"Action": {"CreateUser"}, "UserName": {"fuzzer"}})
	setup(url.Values{"Action": {"PutUserPolicy"}, "UserName": {"fuzzer"}, "PolicyName": {"all"},
		"PolicyDocument": {`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["iam:*","sts:*"],"Resource":"*"}}`}})
	var key struct {
		ID string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
	}
	if err := xml.Unmarshal(setup(url.Values{"Action": {"CreateAccessKey"}, "UserName": {"fuzzer"}}), &key); err != nil {
		f.Fatal(err)
	}
	user, err := svc.Resolve(context.Background(), key.ID, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, action, k1, v1, k2, v2 string) {
		service := "iam"
		form := url.Values{"Action": {action}, "Version": {iam.IAMVersion}, k1: {v1}, k2: {v2}}
		if action == "AssumeRole" || action == "GetCallerIdentity" {
			service = "sts"
			form.Set("Version", iam.STSVersion)
		}
		for _, p := range []*iam.Principal{root, user} {
			status, body := svc.ServeQuery(context.Background(), &iam.QueryRequest{Service: service, Form: form, Principal: p, RequestID: "r"})
			var doc struct {
				XMLName xml.Name
				Code    string `xml:"Error>Code"`
			}
			if err := xml.Unmarshal(body, &doc); err != nil {
				t.Fatalf("%s: body is not XML: %v\n%s", action, err, body)
			}
			switch {
			case status >= 500:
				t.Fatalf("%s %v: server failure %d %s", action, form, status, body)
			case status == 200 && doc.XMLName.Local != action+"Response":
				t.Fatalf("%s: 200 with <%s>", action, doc.XMLName.Local)
			case status != 200 && (doc.XMLName.Local != "ErrorResponse" || doc.Code == ""):
				t.Fatalf("%s: %d with <%s> code %q", action, status, doc.XMLName.Local, doc.Code)
			}
		}
	})
}
