package iam

import (
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// MaxTags is IAM's quota of tags per user or role.
const MaxTags = 50

// taggable says which entity a tag operation is about.
type taggable struct {
	kind, param, noun string
}

var (
	taggableUser = taggable{kindUser, "UserName", "user"}
	taggableRole = taggable{kindRole, "RoleName", "role"}
)

// withTags loads a user or role, lets fn change its tags and saves it when write is true.
func (s *Service) withTags(c *call, e taggable, name string, write bool, fn func(tags *[]Tag) error) error {
	run := s.store.View
	if write {
		run = s.store.Update
	}
	return run(c.ctx, func(tx Tx) error {
		key := strings.ToLower(name)
		var doc any
		var tags *[]Tag
		var err error
		if e.kind == kindUser {
			var u *User
			if u, err = getDoc[User](tx, kindUser, key); err == nil {
				doc, tags = u, &u.Tags
			}
		} else {
			var r *Role
			if r, err = getDoc[Role](tx, kindRole, key); err == nil {
				doc, tags = r, &r.Tags
			}
		}
		if errors.Is(err, ErrNotFound) {
			return noSuchEntity("The %s with name %s cannot be found.", e.noun, name)
		}
		if err != nil {
			return err
		}
		if err := fn(tags); err != nil {
			return err
		}
		if !write {
			return nil
		}
		return putDoc(tx, e.kind, key, doc)
	})
}

func tagEntity(e taggable) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.name(e.param, 128)
		if err != nil {
			return nil, err
		}
		add := formTags(c)
		if len(add) == 0 {
			return nil, validationError("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
		}
		for _, t := range add {
			if len(t.Key) < 1 || len(t.Key) > 128 || len(t.Value) > 256 {
				return nil, validationError("1 validation error detected: Value '%s' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128", t.Key)
			}
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, e.kind, name)); err != nil {
			return nil, err
		}
		return nil, s.withTags(c, e, name, true, func(tags *[]Tag) error {
			for _, t := range add {
				if i := slices.IndexFunc(*tags, func(x Tag) bool { return x.Key == t.Key }); i >= 0 {
					(*tags)[i].Value = t.Value
				} else {
					*tags = append(*tags, t)
				}
			}
			if len(*tags) > MaxTags {
				return errorf(http.StatusConflict, "LimitExceeded", "The number of tags has reached the maximum limit.")
			}
			return nil
		})
	}
}

func untagEntity(e taggable) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.name(e.param, 128)
		if err != nil {
			return nil, err
		}
		var keys []string
		for i := 1; ; i++ {
			k, ok := c.Form["TagKeys.member."+itoa(i)]
			if !ok {
				break
			}
			keys = append(keys, k[0])
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, e.kind, name)); err != nil {
			return nil, err
		}
		return nil, s.withTags(c, e, name, true, func(tags *[]Tag) error {
			*tags = slices.DeleteFunc(*tags, func(t Tag) bool { return slices.Contains(keys, t.Key) })
			return nil
		})
	}
}

func listEntityTags(e taggable) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.name(e.param, 128)
		if err != nil {
			return nil, err
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, e.kind, name)); err != nil {
			return nil, err
		}
		out := struct {
			Tags        members[tagXML]
			IsTruncated bool
		}{}
		err = s.withTags(c, e, name, false, func(tags *[]Tag) error {
			for _, t := range *tags {
				out.Tags.Member = append(out.Tags.Member, tagXML(t))
			}
			sort.Slice(out.Tags.Member, func(i, j int) bool { return out.Tags.Member[i].Key < out.Tags.Member[j].Key })
			return nil
		})
		return out, err
	}
}

func updateRole(s *Service, c *call) (any, error) {
	name, err := c.name("RoleName", 64)
	if err != nil {
		return nil, err
	}
	var maxDur int
	if c.Form.Get("MaxSessionDuration") != "" {
		if maxDur, err = c.maxSessionDuration(); err != nil {
			return nil, err
		}
	}
	desc, setDesc := c.Form["Description"]
	if err := s.authorize(c, "iam:UpdateRole", s.entityARN(c, kindRole, name)); err != nil {
		return nil, err
	}
	return struct{}{}, s.store.Update(c.ctx, func(tx Tx) error {
		r, err := getDoc[Role](tx, kindRole, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return roleNotFound(name)
		}
		if err != nil {
			return err
		}
		if maxDur > 0 {
			r.MaxSessionDuration = maxDur
		}
		if setDesc {
			r.Description = desc[0]
		}
		return putDoc(tx, kindRole, strings.ToLower(name), r)
	})
}

func getAccessKeyLastUsed(s *Service, c *call) (any, error) {
	id, err := c.required("AccessKeyId")
	if err != nil {
		return nil, err
	}
	var k *AccessKey
	err = s.store.View(c.ctx, func(tx Tx) error {
		var err error
		k, err = getDoc[AccessKey](tx, kindKey, id)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		// AWS answers AccessDenied rather than saying whether someone else's key exists.
		return nil, AccessDenied("User: " + c.Principal.ARN + " is not authorized to perform: iam:GetAccessKeyLastUsed on resource: access key " + id)
	}
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:GetAccessKeyLastUsed", s.entityARN(c, kindUser, k.UserName)); err != nil {
		return nil, err
	}
	// Lathe does not record each key's last use (that would be a write per request): AWS's answer
	// for a key never used.
	return struct {
		UserName          string
		AccessKeyLastUsed struct{ ServiceName, Region string }
	}{k.UserName, struct{ ServiceName, Region string }{"N/A", "N/A"}}, nil
}
