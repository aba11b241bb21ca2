package policy

import (
	"encoding/json"
	"testing"
)

// fuzzRequests are asked of every policy the fuzzer finds parseable.
var fuzzRequests = []*Request{
	{Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket-a/key", Context: ctx("aws:username", "alice", "aws:SourceIp", "10.1.2.3", "aws:SecureTransport", "false", "aws:CurrentTime", "2026-01-01T00:00:00Z")},
	{Action: "sagemaker:CreateAutoMLJobV2", Resource: "arn:aws:sagemaker:us-east-1:000000000000:automl-job/j", Principals: []string{"arn:aws:iam::000000000000:user/alice"}, Account: "000000000000", Context: ctx("aws:TagKeys", "a", "aws:TagKeys", "b")},
	{Action: "iam:CreateUser", Resource: "*", Context: Context{}},
}

// go test -fuzz FuzzParse ./internal/iam/policy
//
// A document either fails with a MalformedError or parses into a policy that evaluates without a
// panic and whose decisions do not change when the document is re-encoded; a document that does
// not parse can never be evaluated (the callers store and evaluate only parsed policies).
func FuzzParse(f *testing.F) {
	for _, doc := range []string{getListDenyReports, carlos, homeFolder, denyIP, dateWindow, notActionAll, denyNotBucket,
		secureOnly, tagKeysAll, tagKeysAny, notEqualsDeny, ifExists, nullCheck, legacyVars, numeric, arnLike, defaultVar,
		`{"Statement":{"Effect":"Allow","Principal":{"AWS":["*","123456789012"]},"Action":"sts:AssumeRole"}}`,
		`{"Statement":[{"Effect":"Deny","NotAction":"s3:*","NotResource":"arn:*:*:*:*:*","Condition":{"ForAllValues:StringNotLike":{"aws:TagKeys":["${*}x${aws:username, 'd'}"]}}}]}`,
	} {
		f.Add([]byte(doc), uint8(0))
	}
	f.Fuzz(func(t *testing.T, doc []byte, k uint8) {
		kind := Kind(k % 3)
		p, err := Parse(doc, kind)
		if err != nil {
			if _, ok := err.(*MalformedError); !ok {
				t.Fatalf("error %T %v is not a MalformedError", err, err)
			}
			if p != nil {
				t.Fatal("a malformed document returned a policy")
			}
			return
		}
		var raw any
		if err := json.Unmarshal(doc, &raw); err != nil {
			t.Fatalf("parsed a document that is not JSON: %v", err)
		}
		again, _ := json.Marshal(raw)
		q, err := Parse(again, kind)
		if err != nil {
			t.Fatalf("re-encoded document does not parse: %v\n%s", err, again)
		}
		for _, req := range fuzzRequests {
			a, b := Evaluate(req, Named{Policy: p}), Evaluate(req, Named{Policy: q})
			if a.Decision != b.Decision {
				t.Fatalf("%s: %v vs %v after re-encoding", req.Action, a.Decision, b.Decision)
			}
			if a.Decision != ImplicitDeny && a.Statement == nil {
				t.Fatalf("decision %v without a statement", a.Decision)
			}
		}
	})
}

// go test -fuzz FuzzCondition ./internal/iam/policy
//
// Each operator, its negation and its IfExists form agree with one another for any key value and
// policy value: a negated operator is the exact opposite of its positive one when the key has one
// value, IfExists changes only the missing-key answer, and a missing key follows AWS's rule
// (false, true for negated operators).
func FuzzCondition(f *testing.F) {
	f.Add("StringLike", "home/al*", "home/alice", "alice")
	f.Add("IpAddress", "10.0.0.0/8", "10.1.2.3", "")
	f.Add("DateLessThan", "2020-01-01T00:00:00Z", "1577836799", "")
	f.Add("NumericGreaterThan", "1e3", "1001", "")
	f.Add("ArnLike", "arn:aws:iam::*:user/${aws:username}", "arn:aws:iam::1:user/bob", "bob")
	f.Add("StringEqualsIgnoreCase", "ABC", "abc", "")
	f.Add("Bool", "true", "TRUE", "")
	pairs := map[string]string{
		"StringEquals": "StringNotEquals", "StringEqualsIgnoreCase": "StringNotEqualsIgnoreCase", "StringLike": "StringNotLike",
		"NumericEquals": "NumericNotEquals", "DateEquals": "DateNotEquals", "IpAddress": "NotIpAddress",
		"ArnEquals": "ArnNotEquals", "ArnLike": "ArnNotLike",
	}
	f.Fuzz(func(t *testing.T, op, policyValue, keyValue, username string) {
		if info, ok := operators[op]; !ok || op == "Null" || info.negated {
			return
		}
		if !validValue(op, policyValue) {
			return
		}
		present := ctx("k:k", keyValue, "aws:username", username)
		missing := ctx("aws:username", username)
		cond := func(operator string) *Condition {
			set, base, ifExists, ok := parseOperator(operator)
			if !ok {
				t.Fatalf("operator %q does not parse", operator)
			}
			return &Condition{Operator: operator, Base: base, Set: set, IfExists: ifExists, Key: "k:k", Values: []string{policyValue}}
		}
		pos := cond(op)
		got := pos.eval(present, true)
		if neg, ok := pairs[op]; ok {
			if cond(neg).eval(present, true) == got {
				t.Fatalf("%s and %s agree (%v) on %q vs %q", op, neg, got, keyValue, policyValue)
			}
			if !cond(neg).eval(missing, true) {
				t.Fatalf("%s on a missing key is false", neg)
			}
		}
		if pos.eval(missing, true) {
			t.Fatalf("%s on a missing key is true", op)
		}
		if ie := cond(op + "IfExists"); ie.eval(present, true) != got || !ie.eval(missing, true) {
			t.Fatalf("%sIfExists disagrees", op)
		}
		if cond("ForAnyValue:"+op).eval(present, true) != got || cond("ForAllValues:"+op).eval(present, true) != got {
			t.Fatalf("set operators disagree with %s on one value", op)
		}
	})
}
