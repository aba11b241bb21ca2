package policy

import (
	"strings"
)

// Request is the question asked of the policies: may this principal do this action on this
// resource, in this context?
type Request struct {
	Action   string // "sagemaker:CreateAutoMLJobV2"
	Resource string // an ARN, or "*" for actions without a resource
	// Principals are the ARNs that name the caller, matched by Principal elements of resource and
	// trust policies: a user's ARN; an assumed-role session's ARN and its role's ARN; the root's
	// arn:aws:iam::ACCOUNT:root.
	Principals []string
	// Account is the caller's account. When AccountPrincipals is true, a Principal that names the
	// account (its id or its :root ARN) matches every principal of that account, which is how a
	// trust or resource policy delegates the decision to the account's identity policies.
	Account           string
	AccountPrincipals bool
	Service           string // the calling AWS service, for Principal {"Service": ...}
	Context           Context
}

// Decision is the outcome of an evaluation.
type Decision int

// The three outcomes.
const (
	ImplicitDeny Decision = iota // no statement allowed it
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Named is a policy with the name the caller knows it by (for the audit trail and messages).
type Named struct {
	Name   string // e.g. "user/alice/inline/ReadOnly" or a managed policy ARN
	Policy *Policy
}

// Result says what was decided and which statement decided it (nil for an implicit deny).
type Result struct {
	Decision  Decision
	Policy    string
	Statement *Statement
}

// Evaluate runs the request against every statement of every policy: an applicable Deny decides at
// once; otherwise the first applicable Allow decides; otherwise the request is implicitly denied.
func Evaluate(req *Request, policies ...Named) Result {
	var allow Result
	for _, np := range policies {
		if np.Policy == nil {
			continue
		}
		vars := np.Policy.Version == Version2012
		for _, s := range np.Policy.Statements {
			if !s.applies(req, vars) {
				continue
			}
			if s.Effect == Deny {
				return Result{Decision: ExplicitDeny, Policy: np.Name, Statement: s}
			}
			if allow.Decision != Allowed {
				allow = Result{Decision: Allowed, Policy: np.Name, Statement: s}
			}
		}
	}
	return allow
}

// applies reports whether the statement matches the request (principal, action, resource and
// every condition).
func (s *Statement) applies(req *Request, vars bool) bool {
	if s.Principals != nil && s.Principals.matches(req) == s.NotPrincipal {
		return false
	}
	if s.anyAction(req.Action) == s.NotAction {
		return false
	}
	if s.HasResource && s.anyResource(req, vars) == s.NotResource {
		return false
	}
	for i := range s.Conditions {
		if !s.Conditions[i].eval(req.Context, vars) {
			return false
		}
	}
	return true
}

func (s *Statement) anyAction(action string) bool {
	for _, a := range s.Actions {
		if matchAction(a, action) {
			return true
		}
	}
	return false
}

func (s *Statement) anyResource(req *Request, vars bool) bool {
	for _, r := range s.Resources {
		if r == "*" {
			return true
		}
		pat, ok := substitute(r, req.Context, vars)
		if !ok {
			continue
		}
		if matchARN(pat, req.Resource) {
			return true
		}
	}
	return false
}

func (p *Principal) matches(req *Request) bool {
	if p.Any {
		return true
	}
	for _, want := range p.AWS {
		account := ""
		if isAccountID(want) {
			account = want
		} else if a, ok := strings.CutPrefix(want, "arn:aws:iam::"); ok && strings.HasSuffix(a, ":root") && isAccountID(strings.TrimSuffix(a, ":root")) {
			account = strings.TrimSuffix(a, ":root")
		}
		if account != "" {
			if req.AccountPrincipals && req.Account == account {
				return true
			}
			want = "arn:aws:iam::" + account + ":root"
		}
		for _, got := range req.Principals {
			if got == want {
				return true
			}
		}
	}
	for _, svc := range p.Service {
		if req.Service != "" && svc == req.Service {
			return true
		}
	}
	return false
}
