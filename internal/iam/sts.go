package iam

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/iam/policy"
)

func getCallerIdentity(s *Service, c *call) (any, error) {
	// GetCallerIdentity needs no permission: AWS answers it even when a policy denies it.
	p := c.Principal
	return struct {
		Arn     string
		UserId  string //lint:ignore ST1003 the wire name
		Account string
	}{p.ARN, p.UserID, p.Account}, nil
}

var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)

// roleChainMax is the longest session AWS grants when a role session assumes another role.
const roleChainMax = time.Hour

func assumeRole(s *Service, c *call) (any, error) {
	roleARN, err := c.required("RoleArn")
	if err != nil {
		return nil, err
	}
	if len(roleARN) < 20 || len(roleARN) > 2048 {
		return nil, validationError("1 validation error detected: Value '%s' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20", roleARN)
	}
	sessionName, err := c.required("RoleSessionName")
	if err != nil {
		return nil, err
	}
	if len(sessionName) < 2 || len(sessionName) > 64 {
		return nil, validationError("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64", sessionName)
	}
	if !sessionNamePattern.MatchString(sessionName) {
		return nil, validationError(`1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`, sessionName)
	}
	duration := 3600
	if v := c.Form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 43200 {
			return nil, validationError("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", v)
		}
		duration = n
	}
	sessionPolicy := c.Form.Get("Policy")
	if sessionPolicy != "" {
		if _, err := policy.Parse([]byte(sessionPolicy), policy.Identity); err != nil {
			var me *policy.MalformedError
			if errors.As(err, &me) {
				return nil, errorf(http.StatusBadRequest, "MalformedPolicyDocument", "%s", me.Message)
			}
			return nil, err
		}
	}
	p := c.Principal
	denied := AccessDenied("User: " + p.ARN + " is not authorized to perform: sts:AssumeRole on resource: " + roleARN)
	if p.Type == TypeRoot {
		return nil, AccessDenied("Roles may not be assumed by root accounts.")
	}
	role, err := s.roleByARN(c, roleARN)
	if errors.Is(err, ErrNotFound) {
		return nil, denied
	}
	if err != nil {
		return nil, err
	}
	if duration > role.MaxSessionDuration {
		return nil, validationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	if p.Type == TypeAssumedRole && time.Duration(duration)*time.Second > roleChainMax {
		return nil, validationError("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	if ok, err := s.trusts(c, role, roleARN, sessionName); err != nil {
		return nil, err
	} else if !ok {
		return nil, denied
	}

	now := s.now().UTC().Truncate(time.Second)
	sess := &Session{AccessKeyID: randomID("ASIA", 16), Secret: randomSecret(), Token: sessionToken(),
		RoleName: role.Name, RoleID: role.ID, RolePath: role.Path, SessionName: sessionName,
		Expiration: now.Add(time.Duration(duration) * time.Second), Policy: sessionPolicy, SourceARN: p.ARN}
	err = s.store.Update(c.ctx, func(tx Tx) error {
		// Sessions that ended a day ago are of no further use, not even to say they expired.
		old, err := listDocs[Session](tx, kindSession)
		if err != nil {
			return err
		}
		for _, o := range old {
			if now.Sub(o.Expiration) > 24*time.Hour {
				if err := tx.Delete(kindSession, o.AccessKeyID); err != nil {
					return err
				}
			}
		}
		return putDoc(tx, kindSession, sess.AccessKeyID, sess)
	})
	if err != nil {
		return nil, err
	}
	type credentialsXML struct {
		AccessKeyId     string //lint:ignore ST1003 the wire name
		SecretAccessKey string
		SessionToken    string
		Expiration      isoTime
	}
	type assumedXML struct {
		AssumedRoleId string //lint:ignore ST1003 the wire name
		Arn           string
	}
	return struct {
		Credentials     credentialsXML
		AssumedRoleUser assumedXML
	}{
		credentialsXML{sess.AccessKeyID, sess.Secret, sess.Token, isoTime(sess.Expiration)},
		assumedXML{role.ID + ":" + sessionName, "arn:aws:sts::" + s.account + ":assumed-role/" + role.Name + "/" + sessionName},
	}, nil
}

// roleByARN finds the role an ARN names (path included).
func (s *Service) roleByARN(c *call, arn string) (*Role, error) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::"+s.account+":role/")
	if !ok {
		return nil, ErrNotFound
	}
	name := rest[strings.LastIndexByte(rest, '/')+1:]
	var r *Role
	err := s.store.View(c.ctx, func(tx Tx) error {
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

// trusts decides AssumeRole as AWS does within one account: the trust policy naming the caller
// is enough; a trust policy naming the account delegates to the caller's identity policies,
// which must then allow sts:AssumeRole on the role; a Deny in either refuses.
func (s *Service) trusts(c *call, role *Role, roleARN, sessionName string) (bool, error) {
	trust, err := policy.Parse([]byte(role.TrustPolicy), policy.Trust)
	if err != nil {
		return false, err
	}
	p := c.Principal
	cx := policy.Context{}
	for k, v := range c.Context {
		cx[k] = v
	}
	s.principalContext(p, cx)
	cx.Set("sts:RoleSessionName", sessionName)
	if v := c.Form.Get("ExternalId"); v != "" {
		cx.Set("sts:ExternalId", v)
	}
	req := &policy.Request{Action: "sts:AssumeRole", Resource: roleARN, Principals: principalARNs(p), Account: p.Account, Context: cx}
	direct := policy.Evaluate(req, policy.Named{Name: "trust", Policy: trust})
	if direct.Decision == policy.ExplicitDeny {
		return false, nil
	}
	identity, err := s.Authorize(c.ctx, Request{Principal: p, Action: "sts:AssumeRole", Resource: roleARN, Context: cx})
	if err != nil {
		return false, err
	}
	if identity.Result.Decision == policy.ExplicitDeny {
		return false, nil
	}
	if direct.Decision == policy.Allowed {
		return true, nil
	}
	req.AccountPrincipals = true
	delegated := policy.Evaluate(req, policy.Named{Name: "trust", Policy: trust})
	return delegated.Decision == policy.Allowed && identity.Allowed, nil
}

// sessionToken returns an opaque token of the length STS's have.
func sessionToken() string {
	b := make([]byte, 264)
	_, _ = rand.Read(b)
	return "FwoGZXIvYXdzE" + base64.StdEncoding.EncodeToString(b)
}
