package kms

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/iam/policy"
)

// Permission is one action on one resource that a KMS request needs, with the key's policy (the
// resource-based policy evaluated beside the caller's identity policies).
type Permission struct {
	Action   string // "kms:Decrypt"
	Resource string // a key or alias ARN, or "*"
	Policy   *policy.Policy
}

// Permissions returns what a request needs, and the condition keys it carries
// (kms:EncryptionContext:KEY, kms:EncryptionContextKeys). A request naming a key that does not
// exist fails here with KMS's NotFoundException, before authorization, as the key's ARN is its
// resource.
func (s *Service) Permissions(ctx context.Context, op string, body []byte) ([]Permission, policy.Context, error) {
	var in struct {
		KeyId, AliasName, TargetKeyId, SourceKeyId, DestinationKeyId string
		CiphertextBlob                                               []byte
		EncryptionContext, DestinationEncryptionContext              map[string]string
	}
	_ = json.Unmarshal(body, &in)
	c := policy.Context{}
	if ec := in.EncryptionContext; len(ec) > 0 {
		keys := make([]string, 0, len(ec))
		for k, v := range ec {
			c.Set("kms:EncryptionContext:"+k, v)
			keys = append(keys, k)
		}
		sort.Strings(keys)
		c.Set("kms:EncryptionContextKeys", keys...)
	}
	action := "kms:" + op
	var out []Permission
	err := s.store.View(ctx, func(tx iam.Tx) error {
		onKey := func(action, ref string) error {
			k, err := s.resolve(tx, ref)
			if err != nil {
				return err
			}
			out = append(out, Permission{Action: action, Resource: s.KeyARN(k.ID), Policy: s.parsedPolicy(k)})
			return nil
		}
		switch op {
		case "CreateKey", "ListKeys", "ListAliases", "GenerateRandom":
			out = append(out, Permission{Action: action, Resource: "*"})
		case "CreateAlias", "UpdateAlias":
			out = append(out, Permission{Action: action, Resource: s.aliasARN(in.AliasName)})
			if in.TargetKeyId != "" {
				return onKey(action, in.TargetKeyId)
			}
		case "DeleteAlias":
			out = append(out, Permission{Action: action, Resource: s.aliasARN(in.AliasName)})
			if a, err := s.getAlias(tx, in.AliasName); err == nil {
				return onKey(action, a.KeyID)
			}
		case "Decrypt":
			if id, err := KeyIDOf(in.CiphertextBlob); err == nil {
				return onKey(action, id)
			}
		case "ReEncrypt":
			if id, err := KeyIDOf(in.CiphertextBlob); err == nil {
				if err := onKey("kms:ReEncryptFrom", id); err != nil {
					return err
				}
			}
			if in.DestinationKeyId != "" {
				return onKey("kms:ReEncryptTo", in.DestinationKeyId)
			}
		default:
			if in.KeyId == "" {
				return nil // the operation answers the missing field
			}
			return onKey(action, in.KeyId)
		}
		return nil
	})
	return out, c, err
}

// parsedPolicy is a key's policy for evaluation; one that does not parse counts as none.
func (s *Service) parsedPolicy(k *key) *policy.Policy {
	p, err := policy.Parse([]byte(k.Policy), policy.Resource)
	if err != nil {
		s.log.Error("stored key policy does not parse", "key", k.ID, "err", err)
		return nil
	}
	return p
}

// Authorizer decides whether the caller behind ctx may run a kms action on a key: it returns ""
// when allowed, else AWS's denial message.
type Authorizer func(ctx context.Context, action, keyARN string, keyPolicy *policy.Policy) (string, error)

type authorizerKey struct{}

// WithAuthorizer makes the in-process calls below (S3's SSE-KMS, the jobs' artifacts) check the
// caller's kms permissions. Without one (the server's own work as root) every call is allowed.
func WithAuthorizer(ctx context.Context, a Authorizer) context.Context {
	return context.WithValue(ctx, authorizerKey{}, a)
}

func (s *Service) allow(ctx context.Context, action string, k *key) error {
	a, _ := ctx.Value(authorizerKey{}).(Authorizer)
	if a == nil {
		return nil
	}
	msg, err := a(ctx, action, s.KeyARN(k.ID), s.parsedPolicy(k))
	if err != nil {
		return err
	}
	if msg != "" {
		return awserr.New(http.StatusBadRequest, "AccessDeniedException", "%s", msg)
	}
	return nil
}

// Key resolves a key reference (id, key ARN, alias name, alias ARN) to the key's ARN, and checks
// that the key can encrypt now (KMS's NotFoundException, DisabledException or
// KMSInvalidStateException otherwise).
func (s *Service) Key(ctx context.Context, ref string) (string, error) {
	k, _, err := s.usable(ctx, ref)
	if err != nil {
		return "", err
	}
	return s.KeyARN(k.ID), nil
}

// NewDataKey makes a 32-byte data key under the key ref names, as GenerateDataKey does (and
// authorized as kms:GenerateDataKey): its plaintext, its ciphertext blob and the key's ARN.
func (s *Service) NewDataKey(ctx context.Context, ref string, ec map[string]string) (keyARN string, plaintext, blob []byte, err error) {
	k, _, err := s.usable(ctx, ref)
	if err != nil {
		return "", nil, nil, err
	}
	if err := s.allow(ctx, "kms:GenerateDataKey", k); err != nil {
		return "", nil, nil, err
	}
	return s.newDataKey(ctx, k.ID, 32, ec)
}

// OpenDataKey decrypts a data key's blob, as Decrypt does (authorized as kms:Decrypt).
func (s *Service) OpenDataKey(ctx context.Context, blob []byte, ec map[string]string) (keyARN string, plaintext []byte, err error) {
	p, err := parseBlob(blob)
	if err != nil {
		return "", nil, invalidCiphertext()
	}
	k, m, err := s.usable(ctx, p.keyID)
	if err != nil {
		return "", nil, err
	}
	if err := s.allow(ctx, "kms:Decrypt", k); err != nil {
		return "", nil, err
	}
	pt, err := open(m, p, ec)
	if err != nil {
		return "", nil, invalidCiphertext()
	}
	return s.KeyARN(k.ID), pt, nil
}

// KeyPolicy returns the policy of the key an ARN (or any other reference) names, for authorizing
// in-process uses of the key as a resource-based policy; nil when the key is gone.
func (s *Service) KeyPolicy(ctx context.Context, ref string) (*policy.Policy, error) {
	var k *key
	err := s.store.View(ctx, func(tx iam.Tx) error {
		var err error
		k, err = s.resolve(tx, ref)
		return err
	})
	if err != nil {
		if IsKMSError(err) {
			return nil, nil
		}
		return nil, err
	}
	return s.parsedPolicy(k), nil
}

// PolicyAllows reports whether a key policy by itself allows action on resource to a caller
// named by principals (its ARNs: a user's, or an assumed role's session and role).
func PolicyAllows(keyPolicy *policy.Policy, principals []string, account, action, resource string, c policy.Context) bool {
	if keyPolicy == nil {
		return false
	}
	req := &policy.Request{Action: action, Resource: resource, Principals: principals, Account: account, Context: c}
	return policy.Evaluate(req, policy.Named{Name: "key-policy", Policy: keyPolicy}).Decision == policy.Allowed
}

// DelegatesToIAM reports whether a key policy gives the action to the account itself (its root),
// which on AWS is what lets IAM identity policies grant the key: the default key policy does. A
// key policy without such a statement must name a caller itself for the caller to use the key.
func DelegatesToIAM(keyPolicy *policy.Policy, account, action, resource string) bool {
	return PolicyAllows(keyPolicy, []string{"arn:aws:iam::" + account + ":root"}, account, action, resource, policy.Context{})
}
