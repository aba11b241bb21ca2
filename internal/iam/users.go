package iam

import (
	"errors"
	"net/http"
	"slices"
	"strings"
)

// The XML shapes of IAM's entities (botocore iam 2010-05-08 User, AccessKey, Group, Role, ...).
type (
	tagXML struct {
		Key   string
		Value string
	}
	userXML struct {
		Path       string
		UserName   string
		UserId     string //lint:ignore ST1003 the wire name
		Arn        string
		CreateDate isoTime
		Tags       *members[tagXML] `xml:",omitempty"`
	}
	accessKeyXML struct {
		UserName        string
		AccessKeyId     string //lint:ignore ST1003 the wire name
		Status          string
		SecretAccessKey string `xml:",omitempty"`
		CreateDate      isoTime
	}
	groupXML struct {
		Path       string
		GroupName  string
		GroupId    string //lint:ignore ST1003 the wire name
		Arn        string
		CreateDate isoTime
	}
)

func (s *Service) userXML(u *User) userXML {
	x := userXML{Path: u.Path, UserName: u.Name, UserId: u.ID, Arn: s.arn("user", u.Path, u.Name), CreateDate: isoTime(u.Created)}
	if len(u.Tags) > 0 {
		x.Tags = &members[tagXML]{}
		for _, t := range u.Tags {
			x.Tags.Member = append(x.Tags.Member, tagXML(t))
		}
	}
	return x
}

func (s *Service) groupXML(g *Group) groupXML {
	return groupXML{Path: g.Path, GroupName: g.Name, GroupId: g.ID, Arn: s.arn("group", g.Path, g.Name), CreateDate: isoTime(g.Created)}
}

func userNotFound(name string) error {
	return noSuchEntity("The user with name %s cannot be found.", name)
}
func groupNotFound(name string) error {
	return noSuchEntity("The group with name %s cannot be found.", name)
}

// entityARN returns the ARN of an existing user, group or role (with its path), or the ARN it
// would have under the path "/", for authorizing a call before knowing whether it exists.
func (s *Service) entityARN(c *call, kind, name string) string {
	path := "/"
	_ = s.store.View(c.ctx, func(tx Tx) error {
		switch kind {
		case kindUser:
			if u, err := getDoc[User](tx, kind, strings.ToLower(name)); err == nil {
				path = u.Path
			}
		case kindGroup:
			if g, err := getDoc[Group](tx, kind, strings.ToLower(name)); err == nil {
				path = g.Path
			}
		case kindRole:
			if r, err := getDoc[Role](tx, kind, strings.ToLower(name)); err == nil {
				path = r.Path
			}
		}
		return nil
	})
	return s.arn(kind, path, name)
}

func createUser(s *Service, c *call) (any, error) {
	name, err := c.name("UserName", 64)
	if err != nil {
		return nil, err
	}
	path, err := c.path("Path")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:CreateUser", s.arn("user", path, name)); err != nil {
		return nil, err
	}
	u := &User{Name: name, ID: randomID("AIDA", 17), Path: path, Created: s.now().UTC().Truncate(1e9)}
	u.Tags = formTags(c)
	err = s.store.Update(c.ctx, func(tx Tx) error {
		if _, err := tx.Get(kindUser, strings.ToLower(name)); err == nil {
			return alreadyExists("User with name %s already exists.", name)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return putDoc(tx, kindUser, strings.ToLower(name), u)
	})
	if err != nil {
		return nil, err
	}
	return struct{ User userXML }{s.userXML(u)}, nil
}

// formTags reads Tags.member.N.Key/Value.
func formTags(c *call) []Tag {
	var tags []Tag
	for i := 1; ; i++ {
		k, ok := c.Form["Tags.member."+itoa(i)+".Key"]
		if !ok {
			return tags
		}
		tags = append(tags, Tag{Key: k[0], Value: c.Form.Get("Tags.member." + itoa(i) + ".Value")})
	}
}

// callerUserName is the UserName parameter, or the calling user's own name when it is absent.
func (c *call) callerUserName(param string) (string, error) {
	if _, ok := c.Form[param]; ok {
		v := c.Form.Get(param)
		return v, checkName(param, v, 128)
	}
	if c.Principal.Type != TypeUser {
		return "", validationError("Must specify userName when calling with non-User credentials")
	}
	return c.Principal.Name, nil
}

func getUser(s *Service, c *call) (any, error) {
	if _, ok := c.Form["UserName"]; !ok && c.Principal.Type == TypeRoot {
		// The root asking about itself: AWS answers with the account's root "user".
		return struct{ User userXML }{userXML{Path: "/", UserId: s.account, Arn: c.Principal.ARN}}, nil
	}
	name, err := c.callerUserName("UserName")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:GetUser", s.entityARN(c, kindUser, name)); err != nil {
		return nil, err
	}
	var u *User
	err = s.store.View(c.ctx, func(tx Tx) error {
		var err error
		u, err = getDoc[User](tx, kindUser, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return userNotFound(name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct{ User userXML }{s.userXML(u)}, nil
}

func listUsers(s *Service, c *call) (any, error) {
	max, marker, err := c.page()
	if err != nil {
		return nil, err
	}
	prefix := c.Form.Get("PathPrefix")
	// The List calls act on the root path; AWS's denials name arn:aws:iam::ACCOUNT:user/.
	if err := s.authorize(c, "iam:ListUsers", s.arn("user", "/", "")); err != nil {
		return nil, err
	}
	var users []*User
	if err := s.store.View(c.ctx, func(tx Tx) (err error) { users, err = listDocs[User](tx, kindUser); return }); err != nil {
		return nil, err
	}
	users = slices.DeleteFunc(users, func(u *User) bool { return !strings.HasPrefix(u.Path, prefix) })
	page, truncated, next := paginate(users, func(u *User) string { return u.Name }, max, marker)
	out := struct {
		Users       members[userXML]
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{IsTruncated: truncated, Marker: next}
	for _, u := range page {
		out.Users.Member = append(out.Users.Member, s.userXML(u))
	}
	return out, nil
}

func deleteUser(s *Service, c *call) (any, error) {
	name, err := c.name("UserName", 64)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:DeleteUser", s.entityARN(c, kindUser, name)); err != nil {
		return nil, err
	}
	return nil, s.store.Update(c.ctx, func(tx Tx) error {
		u, err := getDoc[User](tx, kindUser, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return userNotFound(name)
		}
		if err != nil {
			return err
		}
		keys, err := listDocs[AccessKey](tx, kindKey)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if strings.EqualFold(k.UserName, u.Name) {
				return deleteConflict("Cannot delete entity, must delete access keys first.")
			}
		}
		switch {
		case len(u.Groups) > 0:
			return deleteConflict("Cannot delete entity, must remove users from group first.")
		case len(u.Inline) > 0:
			return deleteConflict("Cannot delete entity, must delete policies first.")
		case len(u.Attached) > 0:
			return deleteConflict("Cannot delete entity, must detach all policies first.")
		}
		return tx.Delete(kindUser, strings.ToLower(name))
	})
}

// MaxAccessKeysPerUser is IAM's quota.
const MaxAccessKeysPerUser = 2

func createAccessKey(s *Service, c *call) (any, error) {
	name, err := c.callerUserName("UserName")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:CreateAccessKey", s.entityARN(c, kindUser, name)); err != nil {
		return nil, err
	}
	var k *AccessKey
	err = s.store.Update(c.ctx, func(tx Tx) error {
		u, err := getDoc[User](tx, kindUser, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return userNotFound(name)
		}
		if err != nil {
			return err
		}
		keys, err := listDocs[AccessKey](tx, kindKey)
		if err != nil {
			return err
		}
		n := 0
		for _, k := range keys {
			if strings.EqualFold(k.UserName, u.Name) {
				n++
			}
		}
		if n >= MaxAccessKeysPerUser {
			return errorf(http.StatusConflict, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: %d", MaxAccessKeysPerUser)
		}
		k = &AccessKey{ID: randomID("AKIA", 16), Secret: randomSecret(), UserName: u.Name, Status: "Active", Created: s.now().UTC().Truncate(1e9)}
		return putDoc(tx, kindKey, k.ID, k)
	})
	if err != nil {
		return nil, err
	}
	return struct{ AccessKey accessKeyXML }{accessKeyXML{UserName: k.UserName, AccessKeyId: k.ID, Status: k.Status, SecretAccessKey: k.Secret, CreateDate: isoTime(k.Created)}}, nil
}

func listAccessKeys(s *Service, c *call) (any, error) {
	name, err := c.callerUserName("UserName")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:ListAccessKeys", s.entityARN(c, kindUser, name)); err != nil {
		return nil, err
	}
	out := struct {
		AccessKeyMetadata members[accessKeyXML]
		IsTruncated       bool
	}{}
	err = s.store.View(c.ctx, func(tx Tx) error {
		if _, err := tx.Get(kindUser, strings.ToLower(name)); errors.Is(err, ErrNotFound) {
			return userNotFound(name)
		} else if err != nil {
			return err
		}
		keys, err := listDocs[AccessKey](tx, kindKey)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if strings.EqualFold(k.UserName, name) {
				out.AccessKeyMetadata.Member = append(out.AccessKeyMetadata.Member,
					accessKeyXML{UserName: k.UserName, AccessKeyId: k.ID, Status: k.Status, CreateDate: isoTime(k.Created)})
			}
		}
		return nil
	})
	return out, err
}

// accessKeyOfUser loads a key and checks it belongs to the user.
func accessKeyOfUser(tx Tx, id, user string) (*AccessKey, error) {
	k, err := getDoc[AccessKey](tx, kindKey, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !strings.EqualFold(k.UserName, user)) {
		return nil, noSuchEntity("The Access Key with id %s cannot be found.", id)
	}
	return k, err
}

func updateAccessKey(s *Service, c *call) (any, error) {
	name, err := c.callerUserName("UserName")
	if err != nil {
		return nil, err
	}
	id, err := c.required("AccessKeyId")
	if err != nil {
		return nil, err
	}
	status, err := c.required("Status")
	if err != nil {
		return nil, err
	}
	if status != "Active" && status != "Inactive" {
		return nil, validationError("1 validation error detected: Value '%s' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]", status)
	}
	if err := s.authorize(c, "iam:UpdateAccessKey", s.entityARN(c, kindUser, name)); err != nil {
		return nil, err
	}
	return nil, s.store.Update(c.ctx, func(tx Tx) error {
		k, err := accessKeyOfUser(tx, id, name)
		if err != nil {
			return err
		}
		k.Status = status
		return putDoc(tx, kindKey, k.ID, k)
	})
}

func deleteAccessKey(s *Service, c *call) (any, error) {
	name, err := c.callerUserName("UserName")
	if err != nil {
		return nil, err
	}
	id, err := c.required("AccessKeyId")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:DeleteAccessKey", s.entityARN(c, kindUser, name)); err != nil {
		return nil, err
	}
	return nil, s.store.Update(c.ctx, func(tx Tx) error {
		if _, err := accessKeyOfUser(tx, id, name); err != nil {
			return err
		}
		return tx.Delete(kindKey, id)
	})
}

func createGroup(s *Service, c *call) (any, error) {
	name, err := c.name("GroupName", 128)
	if err != nil {
		return nil, err
	}
	path, err := c.path("Path")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:CreateGroup", s.arn("group", path, name)); err != nil {
		return nil, err
	}
	g := &Group{Name: name, ID: randomID("AGPA", 17), Path: path, Created: s.now().UTC().Truncate(1e9)}
	err = s.store.Update(c.ctx, func(tx Tx) error {
		if _, err := tx.Get(kindGroup, strings.ToLower(name)); err == nil {
			return alreadyExists("Group with name %s already exists.", name)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return putDoc(tx, kindGroup, strings.ToLower(name), g)
	})
	if err != nil {
		return nil, err
	}
	return struct{ Group groupXML }{s.groupXML(g)}, nil
}

func getGroup(s *Service, c *call) (any, error) {
	name, err := c.name("GroupName", 128)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:GetGroup", s.entityARN(c, kindGroup, name)); err != nil {
		return nil, err
	}
	out := struct {
		Group       groupXML
		Users       members[userXML]
		IsTruncated bool
	}{}
	err = s.store.View(c.ctx, func(tx Tx) error {
		g, err := getDoc[Group](tx, kindGroup, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return groupNotFound(name)
		}
		if err != nil {
			return err
		}
		out.Group = s.groupXML(g)
		users, err := listDocs[User](tx, kindUser)
		if err != nil {
			return err
		}
		for _, u := range users {
			if slices.ContainsFunc(u.Groups, func(n string) bool { return strings.EqualFold(n, name) }) {
				out.Users.Member = append(out.Users.Member, s.userXML(u))
			}
		}
		return nil
	})
	return out, err
}

func listGroups(s *Service, c *call) (any, error) {
	max, marker, err := c.page()
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:ListGroups", s.arn("group", "/", "")); err != nil {
		return nil, err
	}
	var groups []*Group
	if err := s.store.View(c.ctx, func(tx Tx) (err error) { groups, err = listDocs[Group](tx, kindGroup); return }); err != nil {
		return nil, err
	}
	prefix := c.Form.Get("PathPrefix")
	groups = slices.DeleteFunc(groups, func(g *Group) bool { return !strings.HasPrefix(g.Path, prefix) })
	page, truncated, next := paginate(groups, func(g *Group) string { return g.Name }, max, marker)
	out := struct {
		Groups      members[groupXML]
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{IsTruncated: truncated, Marker: next}
	for _, g := range page {
		out.Groups.Member = append(out.Groups.Member, s.groupXML(g))
	}
	return out, nil
}

func deleteGroup(s *Service, c *call) (any, error) {
	name, err := c.name("GroupName", 128)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:DeleteGroup", s.entityARN(c, kindGroup, name)); err != nil {
		return nil, err
	}
	return nil, s.store.Update(c.ctx, func(tx Tx) error {
		g, err := getDoc[Group](tx, kindGroup, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return groupNotFound(name)
		}
		if err != nil {
			return err
		}
		users, err := listDocs[User](tx, kindUser)
		if err != nil {
			return err
		}
		for _, u := range users {
			if slices.ContainsFunc(u.Groups, func(n string) bool { return strings.EqualFold(n, name) }) {
				return deleteConflict("Cannot delete entity, must remove users from group first.")
			}
		}
		switch {
		case len(g.Inline) > 0:
			return deleteConflict("Cannot delete entity, must delete policies first.")
		case len(g.Attached) > 0:
			return deleteConflict("Cannot delete entity, must detach all policies first.")
		}
		return tx.Delete(kindGroup, strings.ToLower(name))
	})
}

func addUserToGroup(s *Service, c *call) (any, error) { return changeMembership(s, c, true) }

func removeUserFromGroup(s *Service, c *call) (any, error) { return changeMembership(s, c, false) }

func changeMembership(s *Service, c *call, add bool) (any, error) {
	group, err := c.name("GroupName", 128)
	if err != nil {
		return nil, err
	}
	user, err := c.name("UserName", 64)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, kindGroup, group)); err != nil {
		return nil, err
	}
	return nil, s.store.Update(c.ctx, func(tx Tx) error {
		g, err := getDoc[Group](tx, kindGroup, strings.ToLower(group))
		if errors.Is(err, ErrNotFound) {
			return groupNotFound(group)
		}
		if err != nil {
			return err
		}
		u, err := getDoc[User](tx, kindUser, strings.ToLower(user))
		if errors.Is(err, ErrNotFound) {
			return userNotFound(user)
		}
		if err != nil {
			return err
		}
		i := slices.IndexFunc(u.Groups, func(n string) bool { return strings.EqualFold(n, g.Name) })
		switch {
		case add && i < 0:
			u.Groups = append(u.Groups, g.Name)
		case !add && i >= 0:
			u.Groups = slices.Delete(u.Groups, i, i+1)
		case !add:
			return noSuchEntity("The user with name %s cannot be found in group %s.", user, group)
		default:
			return nil
		}
		return putDoc(tx, kindUser, strings.ToLower(user), u)
	})
}

func listGroupsForUser(s *Service, c *call) (any, error) {
	name, err := c.name("UserName", 128)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "iam:ListGroupsForUser", s.entityARN(c, kindUser, name)); err != nil {
		return nil, err
	}
	out := struct {
		Groups      members[groupXML]
		IsTruncated bool
	}{}
	err = s.store.View(c.ctx, func(tx Tx) error {
		u, err := getDoc[User](tx, kindUser, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) {
			return userNotFound(name)
		}
		if err != nil {
			return err
		}
		for _, gn := range u.Groups {
			g, err := getDoc[Group](tx, kindGroup, strings.ToLower(gn))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out.Groups.Member = append(out.Groups.Member, s.groupXML(g))
		}
		return nil
	})
	return out, err
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
