// Package policy parses IAM policy documents and evaluates them as AWS does: an explicit Deny in any
// policy wins, else an Allow in any policy, else the request is implicitly denied. It knows the
// policy language (Action/NotAction, Resource/NotResource, Principal/NotPrincipal, Condition with
// its operators, set qualifiers and ...IfExists, policy variables), not who the caller is: the
// caller gathers the policies that apply and the request context.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Kind says where a policy is attached, which decides the elements it must and must not have.
type Kind int

const (
	// Identity is a user's, group's or role's permissions policy: no Principal, Resource required.
	Identity Kind = iota
	// Resource is a resource-based policy such as an S3 bucket policy: Principal and Resource required.
	Resource
	// Trust is a role's trust (assume-role) policy: Principal required, Resource not allowed.
	Trust
)

// Effect is Allow or Deny.
type Effect string

// The two effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Versions of the policy language. Policy variables are only substituted under Version2012.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Policy is a parsed policy document.
type Policy struct {
	Version    string
	ID         string
	Statements []*Statement
}

// Statement is one statement. Exactly one of Action/NotAction is set (NotAction true means Actions
// lists the exceptions), likewise Resource/NotResource and Principal/NotPrincipal.
type Statement struct {
	Sid          string
	Index        int // position in the policy, for messages when Sid is empty
	Effect       Effect
	Actions      []string
	NotAction    bool
	Resources    []string
	NotResource  bool
	HasResource  bool
	Principals   *Principal
	NotPrincipal bool
	Conditions   []Condition
}

// Principal is the parsed Principal (or NotPrincipal) element. Any is "*" (or {"AWS": "*"}).
type Principal struct {
	Any       bool
	AWS       []string // ARNs or 12-digit account ids
	Service   []string
	Federated []string
	Canonical []string
}

// MalformedError is a policy document that does not parse; IAM answers MalformedPolicyDocument
// with its message.
type MalformedError struct{ Message string }

func (e *MalformedError) Error() string { return e.Message }

func malformed(format string, args ...any) error {
	return &MalformedError{Message: fmt.Sprintf(format, args...)}
}

// MaxDocumentSize bounds a document; IAM's own limits are 2,048 (user) to 10,240 (role) characters,
// managed policies 6,144; bucket policies 20 KiB.
const MaxDocumentSize = 20 * 1024

// Parse parses and checks a policy document for where it will be attached.
func Parse(doc []byte, kind Kind) (*Policy, error) {
	if len(doc) > MaxDocumentSize {
		return nil, malformed("Cannot exceed quota for PolicySize: %d", MaxDocumentSize)
	}
	var raw map[string]json.RawMessage
	if err := decodeStrict(doc, &raw); err != nil || raw == nil {
		return nil, malformed("Syntax errors in policy.")
	}
	p := &Policy{}
	for key, val := range raw {
		switch key {
		case "Version":
			if err := json.Unmarshal(val, &p.Version); err != nil {
				return nil, malformed("Syntax errors in policy.")
			}
			if p.Version != Version2012 && p.Version != Version2008 {
				return nil, malformed("The policy failed legacy parsing")
			}
		case "Id":
			if err := json.Unmarshal(val, &p.ID); err != nil {
				return nil, malformed("Syntax errors in policy.")
			}
		case "Statement":
		default:
			return nil, malformed("Syntax errors in policy.")
		}
	}
	stmts, ok := raw["Statement"]
	if !ok {
		return nil, malformed("Syntax errors in policy.")
	}
	var list []json.RawMessage
	if t := bytes.TrimSpace(stmts); len(t) > 0 && t[0] == '{' {
		list = []json.RawMessage{stmts}
	} else if err := json.Unmarshal(stmts, &list); err != nil {
		return nil, malformed("Syntax errors in policy.")
	}
	if len(list) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	sids := map[string]bool{}
	for i, r := range list {
		s, err := parseStatement(r, kind)
		if err != nil {
			return nil, err
		}
		s.Index = i
		if s.Sid != "" {
			if sids[s.Sid] {
				return nil, malformed("Statement IDs (SID) in a single policy must be unique.")
			}
			sids[s.Sid] = true
		}
		p.Statements = append(p.Statements, s)
	}
	return p, nil
}

// decodeStrict decodes exactly one JSON value; trailing data makes the document invalid.
func decodeStrict(doc []byte, v any) error {
	if !json.Valid(doc) {
		return errors.New("not one JSON value")
	}
	return json.Unmarshal(doc, v)
}

func parseStatement(r json.RawMessage, kind Kind) (*Statement, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r, &raw); err != nil || raw == nil {
		return nil, malformed("Syntax errors in policy.")
	}
	s := &Statement{}
	var haveAction, haveNotAction, haveResource, haveNotResource, havePrincipal, haveNotPrincipal bool
	for key, val := range raw {
		var err error
		switch key {
		case "Sid":
			if err = json.Unmarshal(val, &s.Sid); err == nil && !validSid(s.Sid) {
				return nil, malformed("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*")
			}
		case "Effect":
			var e string
			if err = json.Unmarshal(val, &e); err == nil {
				switch Effect(e) {
				case Allow, Deny:
					s.Effect = Effect(e)
				default:
					return nil, malformed("Invalid effect: %s", e)
				}
			}
		case "Action":
			s.Actions, err = stringOrList(val)
			haveAction = true
		case "NotAction":
			s.Actions, err = stringOrList(val)
			haveNotAction = true
		case "Resource":
			s.Resources, err = stringOrList(val)
			haveResource = true
		case "NotResource":
			s.Resources, err = stringOrList(val)
			haveNotResource = true
		case "Principal":
			s.Principals, err = parsePrincipal(val)
			havePrincipal = true
		case "NotPrincipal":
			s.Principals, err = parsePrincipal(val)
			haveNotPrincipal = true
		case "Condition":
			s.Conditions, err = parseConditions(val)
		default:
			return nil, malformed("Syntax errors in policy.")
		}
		if err != nil {
			var me *MalformedError
			if errors.As(err, &me) {
				return nil, err
			}
			return nil, malformed("Syntax errors in policy.")
		}
	}
	if s.Effect == "" {
		return nil, malformed("Syntax errors in policy.")
	}
	switch {
	case haveAction && haveNotAction:
		return nil, malformed("Syntax errors in policy.")
	case !haveAction && !haveNotAction:
		return nil, malformed("Policy statement must contain actions.")
	}
	s.NotAction = haveNotAction
	for _, a := range s.Actions {
		if a != "*" && !validAction(a) {
			return nil, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
		}
	}
	if haveResource && haveNotResource {
		return nil, malformed("Syntax errors in policy.")
	}
	s.NotResource, s.HasResource = haveNotResource, haveResource || haveNotResource
	for _, res := range s.Resources {
		if res != "*" && !strings.HasPrefix(res, "arn:") {
			return nil, malformed("Resource %s must be in ARN format or \"*\".", res)
		}
	}
	if havePrincipal && haveNotPrincipal {
		return nil, malformed("Syntax errors in policy.")
	}
	s.NotPrincipal = haveNotPrincipal
	switch kind {
	case Identity:
		if havePrincipal || haveNotPrincipal {
			return nil, malformed("Policy document should not specify a principal.")
		}
		if !s.HasResource {
			return nil, malformed("Policy statement must contain resources.")
		}
	case Resource:
		if !havePrincipal && !haveNotPrincipal {
			return nil, malformed("Missing required field Principal")
		}
		if !s.HasResource {
			return nil, malformed("Policy statement must contain resources.")
		}
	case Trust:
		if !havePrincipal && !haveNotPrincipal {
			return nil, malformed("Missing required field Principal")
		}
		if s.HasResource {
			return nil, malformed("Has prohibited field Resource")
		}
	}
	return s, nil
}

func validSid(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// validAction checks "vendor:pattern" where vendor is letters, digits and '-'.
func validAction(a string) bool {
	vendor, rest, ok := strings.Cut(a, ":")
	if !ok || vendor == "" || rest == "" {
		return false
	}
	for _, c := range vendor {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// stringOrList decodes "x" or ["x", "y"] (not empty, no empty strings).
func stringOrList(b json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		if one == "" {
			return nil, errors.New("empty string")
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return nil, err
	}
	if len(many) == 0 {
		return nil, errors.New("empty list")
	}
	for _, s := range many {
		if s == "" {
			return nil, errors.New("empty string")
		}
	}
	return many, nil
}

func parsePrincipal(b json.RawMessage) (*Principal, error) {
	var star string
	if err := json.Unmarshal(b, &star); err == nil {
		if star != "*" {
			return nil, malformed("Invalid principal in policy: %q", star)
		}
		return &Principal{Any: true}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || len(m) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	p := &Principal{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals, err := stringOrList(m[k])
		if err != nil {
			return nil, malformed("Syntax errors in policy.")
		}
		switch k {
		case "AWS":
			for _, v := range vals {
				if v == "*" {
					p.Any = true
					continue
				}
				if !isAccountID(v) && !strings.HasPrefix(v, "arn:") {
					return nil, malformed("Invalid principal in policy: \"AWS\":\"%s\"", v)
				}
				p.AWS = append(p.AWS, v)
			}
		case "Service":
			p.Service = append(p.Service, vals...)
		case "Federated":
			p.Federated = append(p.Federated, vals...)
		case "CanonicalUser":
			p.Canonical = append(p.Canonical, vals...)
		default:
			return nil, malformed("Invalid principal in policy: %q", k)
		}
	}
	return p, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
