package server

import (
	"context"
	"net/http"

	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/iam/policy"
	"github.com/lathe-ml/lathe/internal/sigv4"
)

type principalKey struct{}

type principalValue struct {
	p *iam.Principal
	c policy.Context
}

// Principal returns the IAM principal that signed the SageMaker request being served and the
// request's condition keys, for the operations that decide on its behalf (iam:PassRole of an
// execution role). It returns nil without IAM, and for the root.
func Principal(ctx context.Context) (*iam.Principal, policy.Context) {
	v, _ := ctx.Value(principalKey{}).(principalValue)
	return v.p, v.c
}

// withPrincipal records the request's principal for Principal.
func (s *server) withPrincipal(r *http.Request, res *sigv4.Result) *http.Request {
	if s.cfg.IAM == nil {
		return r
	}
	p, _, _, _ := s.principal(r, res)
	if p == nil || p.Type == iam.TypeRoot {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, principalValue{p, requestContext(r, res)}))
}
