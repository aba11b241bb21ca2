package policy

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t *testing.T, doc string, kind Kind) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		t.Fatalf("parse %s: %v", doc, err)
	}
	return p
}

func ctx(kv ...string) Context {
	c := Context{}
	for i := 0; i+1 < len(kv); i += 2 {
		c[strings.ToLower(kv[i])] = append(c[strings.ToLower(kv[i])], kv[i+1])
	}
	return c
}

// The policies below are the examples of the IAM User Guide's policy evaluation pages
// ("The difference between explicit and implicit denies", "Policy evaluation for requests within a
// single account", the condition operator and policy variable pages); each case is the outcome
// the guide states for it.
const (
	// reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay
	getListDenyReports = `{"Version":"2012-10-17","Statement":[
		{"Sid":"AllowGetList","Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"},
		{"Sid":"DenyReports","Effect":"Deny","Action":"iam:*Report","Resource":"*"}]}`
	allowCredentialReport = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:GenerateCredentialReport","Resource":"*"}}`
	// reference_policies_evaluation-logic_policy-eval-basics: carlossalazar's identity policy
	carlos = `{"Version":"2012-10-17","Statement":[
		{"Sid":"AllowS3ListRead","Effect":"Allow","Action":["s3:GetBucketLocation","s3:GetObjectVersion","s3:ListAllMyBuckets"],"Resource":"arn:aws:s3:::*"},
		{"Sid":"AllowS3Self","Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar/*","arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar"]},
		{"Sid":"DenyS3Logs","Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::*log*"}]}`
	// reference_policies_variables: each user's home folder
	homeFolder = `{"Version":"2012-10-17","Statement":[
		{"Sid":"ListHome","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket",
		 "Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}},
		{"Sid":"RWHome","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/*"}]}`
	// reference_policies_examples_aws_deny-ip
	denyIP = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"*","Resource":"*"},
		{"Sid":"DenyOutside","Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}}]}`
	// reference_policies_examples_aws-dates
	dateWindow = `{"Version":"2012-10-17","Statement":{"Sid":"Window","Effect":"Allow","Action":"sagemaker:*","Resource":"*",
		"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}}}`
	// reference_policies_examples_s3_deny-except-bucket style: NotAction and NotResource
	notActionAll  = `{"Version":"2012-10-17","Statement":{"Sid":"AllButIAM","Effect":"Allow","NotAction":"iam:*","Resource":"*"}}`
	denyNotBucket = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":"*"},
		{"Sid":"OnlyBucketA","Effect":"Deny","Action":"s3:*","NotResource":["arn:aws:s3:::bucket-a","arn:aws:s3:::bucket-a/*"]}]}`
	secureOnly = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":"*"},
		{"Sid":"TLS","Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	// reference_policies_condition-single-vs-multi-valued-context-keys: ForAllValues on a missing key
	tagKeysAll = `{"Version":"2012-10-17","Statement":{"Sid":"Tags","Effect":"Allow","Action":"sagemaker:AddTags","Resource":"*",
		"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["project","team"]}}}}`
	tagKeysAny = `{"Version":"2012-10-17","Statement":{"Sid":"Tags","Effect":"Allow","Action":"sagemaker:AddTags","Resource":"*",
		"Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["project"]}}}}`
	notEqualsDeny = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"},
		{"Sid":"TeamOnly","Effect":"Deny","Action":"sagemaker:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalTag/team":"ml"}}}]}`
	ifExists = `{"Version":"2012-10-17","Statement":{"Sid":"Small","Effect":"Allow","Action":"sagemaker:CreateEndpointConfig","Resource":"*",
		"Condition":{"StringLikeIfExists":{"sagemaker:InstanceTypes":"ml.t3.*"}}}}`
	nullCheck = `{"Version":"2012-10-17","Statement":{"Sid":"NeedsTag","Effect":"Deny","Action":"sagemaker:Create*","Resource":"*",
		"Condition":{"Null":{"aws:RequestTag/project":"true"}}}}`
	legacyVars = `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}}`
	numeric    = `{"Version":"2012-10-17","Statement":{"Sid":"Few","Effect":"Allow","Action":"s3:ListBucket","Resource":"*","Condition":{"NumericLessThanEquals":{"s3:max-keys":"10"}}}}`
	arnLike    = `{"Version":"2012-10-17","Statement":{"Sid":"Src","Effect":"Allow","Action":"sts:AssumeRole","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/dev-*"}}}}`
	defaultVar = `{"Version":"2012-10-17","Statement":{"Sid":"Def","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:PrincipalTag/team, 'shared'}/*"}}`
)

func TestEvaluateAsTheGuideSays(t *testing.T) {
	cases := []struct {
		name     string
		policies []string
		action   string
		resource string
		ctx      Context
		want     Decision
		sid      string
	}{
		{"Get is allowed by AllowGetList", []string{getListDenyReports}, "iam:GetUser", "arn:aws:iam::111122223333:user/x", nil, Allowed, "AllowGetList"},
		{"List action name case does not matter", []string{getListDenyReports}, "IAM:listusers", "*", nil, Allowed, "AllowGetList"},
		{"CreatePolicy is implicitly denied", []string{getListDenyReports}, "iam:CreatePolicy", "*", nil, ImplicitDeny, ""},
		{"a report Get is explicitly denied", []string{getListDenyReports}, "iam:GetOrganizationsAccessReport", "*", nil, ExplicitDeny, "DenyReports"},
		{"another policy's Allow cannot beat DenyReports", []string{allowCredentialReport, getListDenyReports}, "iam:GenerateCredentialReport", "*", nil, ExplicitDeny, "DenyReports"},

		{"carlos reads his bucket", []string{carlos}, "s3:PutObject", "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar/notes.txt", nil, Allowed, "AllowS3Self"},
		{"carlos cannot write the logs bucket", []string{carlos}, "s3:PutObject", "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs/x", nil, ExplicitDeny, "DenyS3Logs"},
		{"carlos gets a bucket location anywhere", []string{carlos}, "s3:GetBucketLocation", "arn:aws:s3:::other", nil, Allowed, "AllowS3ListRead"},
		{"carlos cannot delete others' objects", []string{carlos}, "s3:DeleteObject", "arn:aws:s3:::other/x", nil, ImplicitDeny, ""},

		{"home folder: own prefix listed", []string{homeFolder}, "s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket", ctx("aws:username", "alice", "s3:prefix", "home/alice/docs"), Allowed, "ListHome"},
		{"home folder: other prefix not listed", []string{homeFolder}, "s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket", ctx("aws:username", "alice", "s3:prefix", "home/bob/"), ImplicitDeny, ""},
		{"home folder: no prefix, no listing", []string{homeFolder}, "s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket", ctx("aws:username", "alice"), ImplicitDeny, ""},
		{"home folder: own object", []string{homeFolder}, "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/a.txt", ctx("aws:username", "alice"), Allowed, "RWHome"},
		{"home folder: other's object", []string{homeFolder}, "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home/bob/a.txt", ctx("aws:username", "alice"), ImplicitDeny, ""},
		{"home folder: no username (a role) matches nothing", []string{homeFolder}, "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home//a.txt", nil, ImplicitDeny, ""},
		{"2008 policies do not substitute variables", []string{legacyVars}, "s3:GetObject", "arn:aws:s3:::b/alice/x", ctx("aws:username", "alice"), ImplicitDeny, ""},
		{"2008 policies match the variable text literally", []string{legacyVars}, "s3:GetObject", "arn:aws:s3:::b/${aws:username}/x", ctx("aws:username", "alice"), Allowed, ""},
		{"a variable's default applies when the key is missing", []string{defaultVar}, "s3:GetObject", "arn:aws:s3:::b/shared/x", nil, Allowed, "Def"},
		{"a variable's value beats its default", []string{defaultVar}, "s3:GetObject", "arn:aws:s3:::b/shared/x", ctx("aws:PrincipalTag/team", "ml"), ImplicitDeny, ""},

		{"source IP inside the ranges", []string{denyIP}, "s3:GetObject", "arn:aws:s3:::b/k", ctx("aws:SourceIp", "203.0.113.7"), Allowed, ""},
		{"source IP outside the ranges", []string{denyIP}, "s3:GetObject", "arn:aws:s3:::b/k", ctx("aws:SourceIp", "198.51.100.1"), ExplicitDeny, "DenyOutside"},
		{"IPv6 source outside the ranges", []string{denyIP}, "s3:GetObject", "arn:aws:s3:::b/k", ctx("aws:SourceIp", "::1"), ExplicitDeny, "DenyOutside"},

		{"inside the date window", []string{dateWindow}, "sagemaker:ListModels", "*", ctx("aws:CurrentTime", "2020-05-01T12:00:00Z"), Allowed, "Window"},
		{"after the date window", []string{dateWindow}, "sagemaker:ListModels", "*", ctx("aws:CurrentTime", "2020-07-01T00:00:00Z"), ImplicitDeny, ""},
		{"epoch time before the window", []string{dateWindow}, "sagemaker:ListModels", "*", ctx("aws:CurrentTime", "1577836800"), ImplicitDeny, ""},

		{"NotAction allows what it does not list", []string{notActionAll}, "s3:GetObject", "arn:aws:s3:::b/k", nil, Allowed, "AllButIAM"},
		{"NotAction does not allow what it lists", []string{notActionAll}, "iam:CreateUser", "*", nil, ImplicitDeny, ""},
		{"NotResource deny spares bucket-a", []string{denyNotBucket}, "s3:GetObject", "arn:aws:s3:::bucket-a/x", nil, Allowed, ""},
		{"NotResource deny hits bucket-b", []string{denyNotBucket}, "s3:GetObject", "arn:aws:s3:::bucket-b/x", nil, ExplicitDeny, "OnlyBucketA"},

		{"TLS request passes", []string{secureOnly}, "s3:GetObject", "arn:aws:s3:::b/k", ctx("aws:SecureTransport", "true"), Allowed, ""},
		{"plain HTTP request is denied", []string{secureOnly}, "s3:GetObject", "arn:aws:s3:::b/k", ctx("aws:SecureTransport", "false"), ExplicitDeny, "TLS"},

		{"ForAllValues: every tag key listed", []string{tagKeysAll}, "sagemaker:AddTags", "*", ctx("aws:TagKeys", "project", "aws:TagKeys", "team"), Allowed, "Tags"},
		{"ForAllValues: one tag key not listed", []string{tagKeysAll}, "sagemaker:AddTags", "*", ctx("aws:TagKeys", "project", "aws:TagKeys", "cost"), ImplicitDeny, ""},
		{"ForAllValues: no tag keys at all is true", []string{tagKeysAll}, "sagemaker:AddTags", "*", nil, Allowed, "Tags"},
		{"ForAnyValue: one matching key", []string{tagKeysAny}, "sagemaker:AddTags", "*", ctx("aws:TagKeys", "cost", "aws:TagKeys", "project"), Allowed, "Tags"},
		{"ForAnyValue: no keys is false", []string{tagKeysAny}, "sagemaker:AddTags", "*", nil, ImplicitDeny, ""},

		{"StringNotEquals on a missing key is true (deny applies)", []string{notEqualsDeny}, "sagemaker:ListModels", "*", nil, ExplicitDeny, "TeamOnly"},
		{"StringNotEquals on the right tag", []string{notEqualsDeny}, "sagemaker:ListModels", "*", ctx("aws:PrincipalTag/team", "ml"), Allowed, ""},
		{"IfExists: key missing passes", []string{ifExists}, "sagemaker:CreateEndpointConfig", "*", nil, Allowed, "Small"},
		{"IfExists: key present must match", []string{ifExists}, "sagemaker:CreateEndpointConfig", "*", ctx("sagemaker:InstanceTypes", "ml.p4d.24xlarge"), ImplicitDeny, ""},
		{"Null true: missing request tag denies", []string{nullCheck}, "sagemaker:CreateModel", "*", nil, ExplicitDeny, "NeedsTag"},
		{"Null true: present request tag", []string{nullCheck}, "sagemaker:CreateModel", "*", ctx("aws:RequestTag/project", "x"), ImplicitDeny, ""},
		{"numeric at the bound", []string{numeric}, "s3:ListBucket", "arn:aws:s3:::b", ctx("s3:max-keys", "10"), Allowed, "Few"},
		{"numeric above the bound", []string{numeric}, "s3:ListBucket", "arn:aws:s3:::b", ctx("s3:max-keys", "11"), ImplicitDeny, ""},
		{"ArnLike per component", []string{arnLike}, "sts:AssumeRole", "*", ctx("aws:PrincipalArn", "arn:aws:iam::111122223333:user/dev-ann"), Allowed, "Src"},
		{"ArnLike '*' does not cross ':'", []string{arnLike}, "sts:AssumeRole", "*", ctx("aws:PrincipalArn", "arn:aws:iam::111122223333:role/x:user/dev-a"), ImplicitDeny, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var named []Named
			for i, doc := range c.policies {
				named = append(named, Named{Name: string(rune('A' + i)), Policy: mustParse(t, doc, Identity)})
			}
			cx := c.ctx
			if cx == nil {
				cx = Context{}
			}
			got := Evaluate(&Request{Action: c.action, Resource: c.resource, Context: cx}, named...)
			if got.Decision != c.want {
				t.Fatalf("decision %v, want %v", got.Decision, c.want)
			}
			if c.sid != "" && (got.Statement == nil || got.Statement.Sid != c.sid) {
				t.Fatalf("decided by %+v, want statement %s", got.Statement, c.sid)
			}
			if c.want == ImplicitDeny && got.Statement != nil {
				t.Fatalf("implicit deny names a statement: %+v", got.Statement)
			}
		})
	}
}

func TestPrincipalsOfTrustAndResourcePolicies(t *testing.T) {
	trust := mustParse(t, `{"Version":"2012-10-17","Statement":[
		{"Sid":"Alice","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sts:AssumeRole"},
		{"Sid":"Account","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}},
		{"Sid":"Svc","Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, Trust)
	cases := []struct {
		name string
		req  Request
		want Decision
		sid  string
	}{
		{"named user", Request{Principals: []string{"arn:aws:iam::111122223333:user/alice"}, Account: "111122223333"}, Allowed, "Alice"},
		{"other user, account not delegated", Request{Principals: []string{"arn:aws:iam::111122223333:user/bob"}, Account: "111122223333", Context: ctx("sts:ExternalId", "x")}, ImplicitDeny, ""},
		{"other user, account delegated", Request{Principals: []string{"arn:aws:iam::111122223333:user/bob"}, Account: "111122223333", AccountPrincipals: true, Context: ctx("sts:ExternalId", "x")}, Allowed, "Account"},
		{"the account root", Request{Principals: []string{"arn:aws:iam::111122223333:root"}, Account: "111122223333", Context: ctx("sts:ExternalId", "x")}, Allowed, "Account"},
		{"another account", Request{Principals: []string{"arn:aws:iam::444455556666:user/alice"}, Account: "444455556666", AccountPrincipals: true, Context: ctx("sts:ExternalId", "x")}, ImplicitDeny, ""},
		{"the SageMaker service", Request{Service: "sagemaker.amazonaws.com"}, Allowed, "Svc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.Action = "sts:AssumeRole"
			if c.req.Context == nil {
				c.req.Context = Context{}
			}
			got := Evaluate(&c.req, Named{Name: "trust", Policy: trust})
			if got.Decision != c.want || (c.sid != "" && got.Statement.Sid != c.sid) {
				t.Fatalf("got %v by %+v, want %v by %s", got.Decision, got.Statement, c.want, c.sid)
			}
		})
	}
}

func TestParseRefusesWhatIAMRefuses(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		kind Kind
		msg  string
	}{
		{"not JSON", `{"Version":`, Identity, "Syntax errors in policy."},
		{"unknown version", `{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`, Identity, "The policy failed legacy parsing"},
		{"no statement", `{"Version":"2012-10-17"}`, Identity, "Syntax errors in policy."},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, Identity, "Syntax errors in policy."},
		{"bad effect", `{"Statement":{"Effect":"Maybe","Action":"s3:*","Resource":"*"}}`, Identity, "Invalid effect: Maybe"},
		{"no effect", `{"Statement":{"Action":"s3:*","Resource":"*"}}`, Identity, "Syntax errors in policy."},
		{"no action", `{"Statement":{"Effect":"Allow","Resource":"*"}}`, Identity, "Policy statement must contain actions."},
		{"action and NotAction", `{"Statement":{"Effect":"Allow","Action":"s3:*","NotAction":"iam:*","Resource":"*"}}`, Identity, "Syntax errors in policy."},
		{"action without vendor", `{"Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}`, Identity, "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."},
		{"no resource", `{"Statement":{"Effect":"Allow","Action":"s3:*"}}`, Identity, "Policy statement must contain resources."},
		{"resource not an ARN", `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}}`, Identity, `Resource bucket must be in ARN format or "*".`},
		{"principal in identity policy", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}`, Identity, "Policy document should not specify a principal."},
		{"trust policy without principal", `{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}`, Trust, "Missing required field Principal"},
		{"trust policy with resource", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}}`, Trust, "Has prohibited field Resource"},
		{"unknown operator", `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringSortOf":{"a:b":"c"}}}}`, Identity, "Invalid Condition type : StringSortOf"},
		{"NullIfExists is not an operator", `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NullIfExists":{"a:b":"true"}}}}`, Identity, "Invalid Condition type : NullIfExists"},
		{"numeric value not a number", `{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}}`, Identity, `Invalid value "ten" for Condition operator NumericLessThan on key s3:max-keys`},
		{"bad CIDR", `{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/99"}}}}`, Identity, `Invalid value "10.0.0.0/99" for Condition operator NotIpAddress on key aws:SourceIp`},
		{"bad date", `{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}}`, Identity, `Invalid value "tomorrow" for Condition operator DateLessThan on key aws:CurrentTime`},
		{"duplicate Sid", `{"Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"s3:*","Resource":"*"}]}`, Identity, "Statement IDs (SID) in a single policy must be unique."},
		{"unknown element", `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Actions":"s3:*"}}`, Identity, "Syntax errors in policy."},
		{"trailing data", `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}} {}`, Identity, "Syntax errors in policy."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), c.kind)
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a MalformedError", err)
			}
			if me.Message != c.msg {
				t.Fatalf("message %q, want %q", me.Message, c.msg)
			}
		})
	}
}

func TestStatementAsObjectOrList(t *testing.T) {
	one := mustParse(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}`, Identity)
	list := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/*"]}]}`, Identity)
	for _, p := range []*Policy{one, list} {
		got := Evaluate(&Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/x/y", Context: Context{}}, Named{Policy: p})
		if got.Decision != Allowed {
			t.Fatalf("decision %v", got.Decision)
		}
	}
}
