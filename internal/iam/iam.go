// Package iam is Lathe's IAM and STS: users, access keys, groups, roles with trust policies,
// inline and managed policies, and temporary credentials from AssumeRole, served over IAM's and
// STS's Query protocols; and the one place that answers "may this principal do this action on this
// resource?" for every API on the port (the front door asks it; the policy language itself is in
// iam/policy).
//
// The account's root keys stay outside IAM (they are the server's configured credentials) and
// are allowed everything, as the root user is on AWS.
package iam

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/iam/policy"
)

// Config wires the service.
type Config struct {
	Store     Store
	AccountID string // 12 digits
	// Now is the clock of credential expiry and aws:CurrentTime; nil means time.Now. Tests move it
	// to expire AssumeRole credentials without waiting.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is IAM and STS over a Store.
type Service struct {
	store   Store
	account string
	now     func() time.Time
	log     *slog.Logger
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("iam: Config.Store is nil")
	}
	if len(cfg.AccountID) != 12 {
		return nil, fmt.Errorf("iam: account id %q is not 12 digits", cfg.AccountID)
	}
	s := &Service{store: cfg.Store, account: cfg.AccountID, now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// PrincipalType is the kind of identity that signed a request.
type PrincipalType string

// The principal types Lathe has (aws:PrincipalType's values).
const (
	TypeRoot        PrincipalType = "Account"
	TypeUser        PrincipalType = "User"
	TypeAssumedRole PrincipalType = "AssumedRole"
)

// Principal is who signed a request.
type Principal struct {
	Type        PrincipalType
	ARN         string // arn:aws:iam::ACCT:user/path/name, arn:aws:sts::ACCT:assumed-role/role/session, arn:aws:iam::ACCT:root
	Account     string
	UserID      string // AIDA..., AROA...:session, or the account id for the root
	Name        string // the user's or the role's name
	RoleARN     string // assumed roles: the role's ARN
	SessionName string
	AccessKeyID string

	sessionPolicy string
}

// Root returns the account's root principal.
func (s *Service) Root(accessKeyID string) *Principal {
	return &Principal{Type: TypeRoot, ARN: "arn:aws:iam::" + s.account + ":root", Account: s.account, UserID: s.account, AccessKeyID: accessKeyID}
}

// Errors Resolve returns; the front door answers each in its protocol's words.
var (
	ErrExpiredToken = errors.New("iam: the security token included in the request is expired")
	ErrInvalidToken = errors.New("iam: the security token included in the request is invalid")
)

// LookupSecret is a sigv4.SecretLookup over the active access keys of users and the temporary
// credentials of sessions (expired ones too, so that their expiry, not an unknown key, is reported).
func (s *Service) LookupSecret(accessKeyID string) (string, bool) {
	ctx := context.Background()
	var secret string
	err := s.store.View(ctx, func(tx Tx) error {
		if strings.HasPrefix(accessKeyID, "ASIA") {
			sess, err := getDoc[Session](tx, kindSession, accessKeyID)
			if err != nil {
				return err
			}
			secret = sess.Secret
			return nil
		}
		k, err := getDoc[AccessKey](tx, kindKey, accessKeyID)
		if err != nil {
			return err
		}
		if k.Status != "Active" {
			return ErrNotFound
		}
		secret = k.Secret
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			s.log.Error("look up access key", "access_key", accessKeyID, "err", err)
		}
		return "", false
	}
	return secret, true
}

// Resolve returns the principal of an access key that signed a request; token is the request's
// X-Amz-Security-Token (required for, and checked against, temporary credentials).
func (s *Service) Resolve(ctx context.Context, accessKeyID, token string) (*Principal, error) {
	var p *Principal
	err := s.store.View(ctx, func(tx Tx) error {
		if strings.HasPrefix(accessKeyID, "ASIA") {
			sess, err := getDoc[Session](tx, kindSession, accessKeyID)
			if err != nil {
				return err
			}
			if subtle.ConstantTimeCompare([]byte(token), []byte(sess.Token)) != 1 {
				return ErrInvalidToken
			}
			if !s.now().Before(sess.Expiration) {
				return ErrExpiredToken
			}
			p = &Principal{Type: TypeAssumedRole, Account: s.account, Name: sess.RoleName,
				ARN:     "arn:aws:sts::" + s.account + ":assumed-role/" + sess.RoleName + "/" + sess.SessionName,
				RoleARN: s.arn("role", sess.RolePath, sess.RoleName), UserID: sess.RoleID + ":" + sess.SessionName,
				SessionName: sess.SessionName, AccessKeyID: accessKeyID, sessionPolicy: sess.Policy}
			return nil
		}
		k, err := getDoc[AccessKey](tx, kindKey, accessKeyID)
		if err != nil {
			return err
		}
		u, err := getDoc[User](tx, kindUser, strings.ToLower(k.UserName))
		if err != nil {
			return err
		}
		p = &Principal{Type: TypeUser, ARN: s.arn("user", u.Path, u.Name), Account: s.account, UserID: u.ID, Name: u.Name, AccessKeyID: accessKeyID}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	return p, err
}

// arn builds an IAM ARN: arn:aws:iam::ACCOUNT:user/path/name.
func (s *Service) arn(kind, path, name string) string {
	if path == "" {
		path = "/"
	}
	return "arn:aws:iam::" + s.account + ":" + kind + path + name
}

// Request is one authorization question.
type Request struct {
	Principal *Principal
	Action    string // "s3:GetObject"
	Resource  string // the resource's ARN, "*" when the action has none
	Context   policy.Context
	// ResourcePolicy is the resource's own policy (an S3 bucket policy), or nil.
	ResourcePolicy *policy.Policy
}

// Decision is the answer: Allowed, and when not, the message AWS would send.
type Decision struct {
	Allowed bool
	Result  policy.Result // the deciding policy and statement (zero for the root)
	Message string        // "User: ARN is not authorized to perform: ACTION on resource: RES because ..."
}

// Authorize evaluates the principal's policies for the request as AWS does within one account: an
// explicit Deny in any policy wins; an Allow in an identity-based or the resource-based policy
// allows (a session policy must allow too); otherwise the request is implicitly denied.
func (s *Service) Authorize(ctx context.Context, req Request) (Decision, error) {
	p := req.Principal
	if p == nil {
		return Decision{}, errors.New("iam: authorize without a principal")
	}
	if p.Type == TypeRoot {
		return Decision{Allowed: true}, nil
	}
	c := policy.Context{}
	for k, v := range req.Context {
		c[k] = v
	}
	s.principalContext(p, c)
	identity, tags, err := s.identityPolicies(ctx, p)
	if err != nil {
		return Decision{}, err
	}
	for _, t := range tags {
		c.Set("aws:PrincipalTag/"+t.Key, t.Value)
	}
	preq := &policy.Request{Action: req.Action, Resource: req.Resource, Context: c,
		Principals: principalARNs(p), Account: p.Account}
	id := policy.Evaluate(preq, identity...)
	var res policy.Result
	if req.ResourcePolicy != nil {
		res = policy.Evaluate(preq, policy.Named{Name: "resource-policy", Policy: req.ResourcePolicy})
	}
	deny := func(r policy.Result, where string) Decision {
		return Decision{Result: r, Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s with an explicit deny in %s",
			p.ARN, req.Action, req.Resource, where)}
	}
	switch {
	case id.Decision == policy.ExplicitDeny:
		return deny(id, "an identity-based policy"), nil
	case res.Decision == policy.ExplicitDeny:
		return deny(res, "a resource-based policy"), nil
	}
	if p.sessionPolicy != "" {
		sp, err := parsePolicy(p.sessionPolicy, policy.Identity)
		if err != nil {
			return Decision{}, fmt.Errorf("parse session policy of %s: %w", p.ARN, err)
		}
		sr := policy.Evaluate(preq, policy.Named{Name: "session-policy", Policy: sp})
		switch sr.Decision {
		case policy.ExplicitDeny:
			return deny(sr, "a session policy"), nil
		case policy.ImplicitDeny:
			return Decision{Result: sr, Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no session policy allows the %s action",
				p.ARN, req.Action, req.Resource, req.Action)}, nil
		}
	}
	if id.Decision == policy.Allowed {
		return Decision{Allowed: true, Result: id}, nil
	}
	if res.Decision == policy.Allowed {
		return Decision{Allowed: true, Result: res}, nil
	}
	return Decision{Result: id, Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
		p.ARN, req.Action, req.Resource, req.Action)}, nil
}

// principalContext adds the global condition keys that describe the caller and the time.
func (s *Service) principalContext(p *Principal, c policy.Context) {
	now := s.now().UTC()
	c.Set("aws:CurrentTime", now.Format(time.RFC3339))
	c.Set("aws:EpochTime", strconv.FormatInt(now.Unix(), 10))
	c.Set("aws:PrincipalAccount", p.Account)
	c.Set("aws:PrincipalType", string(p.Type))
	c.Set("aws:userid", p.UserID)
	switch p.Type {
	case TypeUser:
		c.Set("aws:username", p.Name)
		c.Set("aws:PrincipalArn", p.ARN)
	case TypeAssumedRole:
		// As on AWS, aws:PrincipalArn of a role session is the role's ARN, not the session's.
		c.Set("aws:PrincipalArn", p.RoleARN)
	default:
		c.Set("aws:PrincipalArn", p.ARN)
	}
}

func principalARNs(p *Principal) []string {
	if p.RoleARN != "" {
		return []string{p.ARN, p.RoleARN}
	}
	return []string{p.ARN}
}

// identityPolicies gathers the policies of a user (its own and its groups') or an assumed role,
// and the user's or role's tags (aws:PrincipalTag).
func (s *Service) identityPolicies(ctx context.Context, p *Principal) ([]policy.Named, []Tag, error) {
	type source struct {
		owner    string
		inline   map[string]string
		attached []string
	}
	var sources []source
	var tags []Tag
	err := s.store.View(ctx, func(tx Tx) error {
		switch p.Type {
		case TypeUser:
			u, err := getDoc[User](tx, kindUser, strings.ToLower(p.Name))
			if err != nil {
				return err
			}
			sources = append(sources, source{"user/" + u.Name, u.Inline, u.Attached})
			tags = u.Tags
			for _, g := range u.Groups {
				grp, err := getDoc[Group](tx, kindGroup, strings.ToLower(g))
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				sources = append(sources, source{"group/" + grp.Name, grp.Inline, grp.Attached})
			}
		case TypeAssumedRole:
			r, err := getDoc[Role](tx, kindRole, strings.ToLower(p.Name))
			if err != nil {
				return err
			}
			sources = append(sources, source{"role/" + r.Name, r.Inline, r.Attached})
			tags = r.Tags
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil // a deleted user or role has no policies left: everything is denied
	}
	if err != nil {
		return nil, nil, err
	}
	var out []policy.Named
	for _, src := range sources {
		for name, doc := range src.inline {
			p, err := parsePolicy(doc, policy.Identity)
			if err != nil {
				s.log.Error("stored inline policy does not parse", "owner", src.owner, "policy", name, "err", err)
				continue
			}
			out = append(out, policy.Named{Name: src.owner + "/" + name, Policy: p})
		}
		for _, arn := range src.attached {
			doc, err := s.managedDocument(ctx, arn)
			if err != nil {
				return nil, nil, err
			}
			if doc == "" {
				continue
			}
			p, err := parsePolicy(doc, policy.Identity)
			if err != nil {
				s.log.Error("stored managed policy does not parse", "policy", arn, "err", err)
				continue
			}
			out = append(out, policy.Named{Name: arn, Policy: p})
		}
	}
	return out, tags, nil
}

// managedDocument returns the default version's document of a managed policy ("" if it is gone).
func (s *Service) managedDocument(ctx context.Context, arn string) (string, error) {
	if doc, ok := awsManaged[arn]; ok {
		return doc.document, nil
	}
	name, ok := s.customerPolicyName(arn)
	if !ok {
		return "", nil
	}
	var doc string
	err := s.store.View(ctx, func(tx Tx) error {
		mp, err := getDoc[ManagedPolicy](tx, kindPolicy, strings.ToLower(name))
		if err != nil {
			return err
		}
		for _, v := range mp.Versions {
			if v.ID == mp.DefaultVersion {
				doc = v.Document
			}
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return doc, err
}

// customerPolicyName extracts the name from arn:aws:iam::ACCOUNT:policy/path/name.
func (s *Service) customerPolicyName(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::"+s.account+":policy/")
	if !ok || rest == "" {
		return "", false
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest = rest[i+1:]
	}
	return rest, rest != ""
}

// randomID returns prefix followed by n upper-case letters and digits, as AWS's ids look.
func randomID(prefix string, n int) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)] // 256 is a multiple of 32: uniform
	}
	return prefix + string(b)
}

// randomSecret returns a 40-character secret access key.
func randomSecret() string {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
