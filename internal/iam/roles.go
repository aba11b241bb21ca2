package iam

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/lathe-ml/lathe/internal/iam/policy"
)

type roleXML struct {
	Path                     string
	RoleName                 string
	RoleId                   string //lint:ignore ST1003 the wire name
	Arn                      string
	CreateDate               isoTime
	AssumeRolePolicyDocument string
	Description              string `xml:",omitempty"`
	MaxSessionDuration       int
	Tags                     *members[tagXML] `xml:",omitempty"`
}

func (s *Service) roleXML(r *Role) roleXML {
	x := roleXML{Path: r.Path, RoleName: r.Name, RoleId: r.ID, Arn: s.arn("role", r.Path, r.Name), CreateDate: isoTime(r.Created),
		AssumeRolePolicyDocument: encodeDocument(r.TrustPolicy), Description: r.Description, MaxSessionDuration: r.MaxSessionDuration}
	if len(r.Tags) > 0 {
		x.Tags = &members[tagXML]{}
		for _, t := range r.Tags {
			x.Tags.Member = append(x.Tags.Member, tagXML(t))
		}
	}
	return x
}

func roleNotFound(name string) error {
	return noSuchEntity("The role with name %s cannot be found.", name)
}

// maxSessionDuration reads MaxSessionDuration (3600..43200 seconds, default 3600).
func (c *call) maxSessionDuration() (int, error) {
	v := c.Form.Get("MaxSessionDuration")
	if v == "" {
		return 3600, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 3600 || n > 43200 {
		return 0, validationError("1 validation error detected: Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", v)
	}
	return n, nil
}

func createRole(s *Service, c *call) (any, error) {
	name, err := c.name("RoleName", 64)
	if err != nil {
		return nil, err
	}
	path, err := c.path("Path")
	if err != nil {
		return nil, err
	}
	trust := c.Form.Get("AssumeRolePolicyDocument")
	if err := parseDocument("AssumeRolePolicyDocument", trust, policy.Trust); err != nil {
		return nil, err
	}
	maxDur, err := c.maxSessionDuration()
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:CreateRole", s.arn("role", path, name)); err != nil {
		return nil, err
	}
	r := &Role{Name: name, ID: randomID("AROA", 17), Path: path, Created: s.now().UTC().Truncate(1e9),
		Description: c.Form.Get("Description"), TrustPolicy: trust, MaxSessionDuration: maxDur, Tags: formTags(c)}
	err = s.store.Update(c.ctx, func(tx Tx) error {
		if _, err := tx.Get(kindRole, strings.ToLower(name)); err == nil {
			return alreadyExists("Role with name %s already exists.", name)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return putDoc(tx, kindRole, strings.ToLower(name), r)
	})
	if err != nil {
		return nil, err
	}
	return struct{ Role roleXML }{s.roleXML(r)}, nil
}

func (s *Service) loadRole(c *call, name string) (*Role, error) {
	var r *Role
	err := s.store.View(c.ctx, func(tx Tx) error {
		var err error
		r, err = getDoc[Role](tx, kindRole, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return roleNotFound(name)
		}
		return err
	})
	return r, err
}

func getRole(s *Service, c *call) (any, error) {
	name, err := c.name("RoleName", 64)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:GetRole", s.entityARN(c, kindRole, name)); err != nil {
		return nil, err
	}
	r, err := s.loadRole(c, name)
	if err != nil {
		return nil, err
	}
	return struct{ Role roleXML }{s.roleXML(r)}, nil
}

func listRoles(s *Service, c *call) (any, error) {
	max, marker, err := c.page()
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:ListRoles", s.arn("role", "/", "")); err != nil {
		return nil, err
	}
	var roles []*Role
	if err := s.store.View(c.ctx, func(tx Tx) (err error) { roles, err = listDocs[Role](tx, kindRole); return }); err != nil {
		return nil, err
	}
	prefix := c.Form.Get("PathPrefix")
	roles = slices.DeleteFunc(roles, func(r *Role) bool { return !strings.HasPrefix(r.Path, prefix) })
	page, truncated, next := paginate(roles, func(r *Role) string { return r.Name }, max, marker)
	out := struct {
		Roles       members[roleXML]
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{IsTruncated: truncated, Marker: next}
	for _, r := range page {
		out.Roles.Member = append(out.Roles.Member, s.roleXML(r))
	}
	return out, nil
}

func deleteRole(s *Service, c *call) (any, error) {
	name, err := c.name("RoleName", 64)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:DeleteRole", s.entityARN(c, kindRole, name)); err != nil {
		return nil, err
	}
	return nil, s.store.Update(c.ctx, func(tx Tx) error {
		r, err := getDoc[Role](tx, kindRole, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return roleNotFound(name)
		}
		if err != nil {
			return err
		}
		switch {
		case len(r.Inline) > 0:
			return deleteConflict("Cannot delete entity, must delete policies first.")
		case len(r.Attached) > 0:
			return deleteConflict("Cannot delete entity, must detach all policies first.")
		}
		return tx.Delete(kindRole, strings.ToLower(name))
	})
}

func updateAssumeRolePolicy(s *Service, c *call) (any, error) {
	name, err := c.name("RoleName", 64)
	if err != nil {
		return nil, err
	}
	doc := c.Form.Get("PolicyDocument")
	if err := parseDocument("PolicyDocument", doc, policy.Trust); err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:UpdateAssumeRolePolicy", s.entityARN(c, kindRole, name)); err != nil {
		return nil, err
	}
	return nil, s.store.Update(c.ctx, func(tx Tx) error {
		r, err := getDoc[Role](tx, kindRole, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return roleNotFound(name)
		}
		if err != nil {
			return err
		}
		r.TrustPolicy = doc
		return putDoc(tx, kindRole, strings.ToLower(name), r)
	})
}
