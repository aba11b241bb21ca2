package iam

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/iam/policy"
)

// The execution role of SageMaker jobs and models: who may pass it, and the principal a job then
// acts as.

// ExecSessionName is the session name of a job's role session (its ARN is
// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SageMaker, as in SageMaker's CloudTrail entries).
const ExecSessionName = "SageMaker"

// ExecutionRole decides, when p creates a job or a model with roleARN, whom it will run as.
//
// A role that exists must trust sagemaker.amazonaws.com (SageMaker assumes it) and p needs
// iam:PassRole on it (AccessDeniedException otherwise); the job then runs as the role. A role
// that does not exist is refused when requireRoles is set, with SageMaker's words; otherwise the
// job runs with p's own permissions (p's ARN, or the role of an assumed-role session; "" for the
// root, which may do everything). c is the request's condition keys; note, when not nil, hears the
// iam:PassRole decision (for the audit trail).
func (s *Service) ExecutionRole(ctx context.Context, p *Principal, roleARN string, requireRoles bool, c policy.Context,
	note func(p *Principal, action, resource string, d Decision)) (string, error) {
	cannotAssume := awserr.Validation("Could not assume role %s. Please ensure that the role exists and allows principal 'sagemaker.amazonaws.com' to assume the role.", roleARN)
	role, err := s.lookupRole(ctx, roleARN)
	if errors.Is(err, ErrNotFound) {
		if requireRoles {
			return "", cannotAssume
		}
		switch {
		case p == nil || p.Type == TypeRoot:
			return "", nil
		case p.Type == TypeAssumedRole:
			return p.RoleARN, nil
		}
		return p.ARN, nil
	}
	if err != nil {
		return "", err
	}
	trust, err := policy.Parse([]byte(role.TrustPolicy), policy.Trust)
	if err != nil {
		return "", cannotAssume
	}
	treq := &policy.Request{Action: "sts:AssumeRole", Resource: roleARN, Service: "sagemaker.amazonaws.com", Account: s.account, Context: policy.Context{}}
	if policy.Evaluate(treq, policy.Named{Name: "trust", Policy: trust}).Decision != policy.Allowed {
		return "", cannotAssume
	}
	if p != nil && p.Type != TypeRoot {
		d, err := s.Authorize(ctx, Request{Principal: p, Action: "iam:PassRole", Resource: roleARN, Context: c})
		if err != nil {
			return "", err
		}
		if note != nil {
			note(p, "iam:PassRole", roleARN, d)
		}
		if !d.Allowed {
			return "", awserr.New(http.StatusBadRequest, "AccessDeniedException", "%s", d.Message)
		}
	}
	return roleARN, nil
}

// lookupRole finds the role an ARN names (path included), or ErrNotFound.
func (s *Service) lookupRole(ctx context.Context, arn string) (*Role, error) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::"+s.account+":role/")
	if !ok {
		return nil, ErrNotFound
	}
	name := rest[strings.LastIndexByte(rest, '/')+1:]
	var r *Role
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		r, err = getDoc[Role](tx, kindRole, strings.ToLower(name))
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.arn("role", r.Path, r.Name) != arn {
		return nil, ErrNotFound
	}
	return r, nil
}

// RunAs returns the principal a job recorded as its job.Spec.RunAs acts as: a role's session
// (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SageMaker), a user, or nil for "" and the root (no
// checks). A role or user deleted since is a principal without policies: everything is denied.
func (s *Service) RunAs(ctx context.Context, arn string) (*Principal, error) {
	switch {
	case arn == "" || arn == "arn:aws:iam::"+s.account+":root":
		return nil, nil
	case strings.HasPrefix(arn, "arn:aws:iam::"+s.account+":role/"):
		name := arn[strings.LastIndexByte(arn, '/')+1:]
		p := &Principal{Type: TypeAssumedRole, Account: s.account, Name: name, RoleARN: arn, SessionName: ExecSessionName,
			ARN: "arn:aws:sts::" + s.account + ":assumed-role/" + name + "/" + ExecSessionName}
		if r, err := s.lookupRole(ctx, arn); err == nil {
			p.UserID = r.ID + ":" + ExecSessionName
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return p, nil
	case strings.HasPrefix(arn, "arn:aws:iam::"+s.account+":user/"):
		name := arn[strings.LastIndexByte(arn, '/')+1:]
		p := &Principal{Type: TypeUser, Account: s.account, Name: name, ARN: arn}
		err := s.store.View(ctx, func(tx Tx) error {
			u, err := getDoc[User](tx, kindUser, strings.ToLower(name))
			if err == nil {
				p.UserID = u.ID
			}
			return err
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return p, nil
	}
	return nil, errors.New("iam: a job cannot run as " + arn)
}
