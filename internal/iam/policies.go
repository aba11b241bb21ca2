package iam

import (
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/lathe-ml/lathe/internal/iam/policy"
)

// owner says which entity an inline or attachment operation is about.
type owner struct {
	kind    string // kindUser, kindRole, kindGroup
	param   string // UserName, RoleName, GroupName
	noun    string // user, role, group
	maxName int
	maxDoc  int // inline policy size quota
}

var (
	ownerUser  = owner{kindUser, "UserName", "user", 64, 2048}
	ownerRole  = owner{kindRole, "RoleName", "role", 64, 10240}
	ownerGroup = owner{kindGroup, "GroupName", "group", 128, 5120}
)

// withOwner loads the entity, lets fn change its inline policies and attachments, and saves it
// when write is true.
func (s *Service) withOwner(c *call, o owner, name string, write bool, fn func(tx Tx, inline *map[string]string, attached *[]string) error) error {
	run := s.store.View
	if write {
		run = s.store.Update
	}
	return run(c.ctx, func(tx Tx) error {
		key := strings.ToLower(name)
		var doc any
		var inline *map[string]string
		var attached *[]string
		var err error
		switch o.kind {
		case kindUser:
			var u *User
			if u, err = getDoc[User](tx, o.kind, key); err == nil {
				doc, inline, attached = u, &u.Inline, &u.Attached
			}
		case kindRole:
			var r *Role
			if r, err = getDoc[Role](tx, o.kind, key); err == nil {
				doc, inline, attached = r, &r.Inline, &r.Attached
			}
		default:
			var g *Group
			if g, err = getDoc[Group](tx, o.kind, key); err == nil {
				doc, inline, attached = g, &g.Inline, &g.Attached
			}
		}
		if errors.Is(err, ErrNotFound) {
			return noSuchEntity("The %s with name %s cannot be found.", o.noun, name)
		}
		if err != nil {
			return err
		}
		if err := fn(tx, inline, attached); err != nil {
			return err
		}
		if !write {
			return nil
		}
		return putDoc(tx, o.kind, key, doc)
	})
}

func (c *call) ownerName(o owner) (string, error) { return c.name(o.param, o.maxName) }

func putInline(o owner) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.ownerName(o)
		if err != nil {
			return nil, err
		}
		pname, err := c.name("PolicyName", 128)
		if err != nil {
			return nil, err
		}
		doc := c.Form.Get("PolicyDocument")
		if err := parseDocument("PolicyDocument", doc, policy.Identity); err != nil {
			return nil, err
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, o.kind, name)); err != nil {
			return nil, err
		}
		return nil, s.withOwner(c, o, name, true, func(_ Tx, inline *map[string]string, _ *[]string) error {
			total := len(doc)
			for n, d := range *inline {
				if !strings.EqualFold(n, pname) {
					total += len(d)
				}
			}
			if total > o.maxDoc {
				return errorf(http.StatusConflict, "LimitExceeded", "Maximum policy size of %d bytes exceeded for %s %s", o.maxDoc, o.noun, name)
			}
			if *inline == nil {
				*inline = map[string]string{}
			}
			for n := range *inline {
				if strings.EqualFold(n, pname) {
					delete(*inline, n)
				}
			}
			(*inline)[pname] = doc
			return nil
		})
	}
}

// inlineName finds a policy name case-insensitively.
func inlineName(inline map[string]string, name string) (string, bool) {
	for n := range inline {
		if strings.EqualFold(n, name) {
			return n, true
		}
	}
	return "", false
}

func getInline(o owner) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.ownerName(o)
		if err != nil {
			return nil, err
		}
		pname, err := c.name("PolicyName", 128)
		if err != nil {
			return nil, err
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, o.kind, name)); err != nil {
			return nil, err
		}
		var doc, stored string
		err = s.withOwner(c, o, name, false, func(_ Tx, inline *map[string]string, _ *[]string) error {
			n, ok := inlineName(*inline, pname)
			if !ok {
				return noSuchEntity("The %s policy with name %s cannot be found.", o.noun, pname)
			}
			stored, doc = n, (*inline)[n]
			return nil
		})
		if err != nil {
			return nil, err
		}
		// The owner's element is UserName, RoleName or GroupName.
		switch o.kind {
		case kindUser:
			return struct{ UserName, PolicyName, PolicyDocument string }{name, stored, encodeDocument(doc)}, nil
		case kindRole:
			return struct{ RoleName, PolicyName, PolicyDocument string }{name, stored, encodeDocument(doc)}, nil
		}
		return struct{ GroupName, PolicyName, PolicyDocument string }{name, stored, encodeDocument(doc)}, nil
	}
}

func listInline(o owner) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.ownerName(o)
		if err != nil {
			return nil, err
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, o.kind, name)); err != nil {
			return nil, err
		}
		out := struct {
			PolicyNames members[string]
			IsTruncated bool
		}{}
		err = s.withOwner(c, o, name, false, func(_ Tx, inline *map[string]string, _ *[]string) error {
			for n := range *inline {
				out.PolicyNames.Member = append(out.PolicyNames.Member, n)
			}
			sort.Strings(out.PolicyNames.Member)
			return nil
		})
		return out, err
	}
}

func deleteInline(o owner) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.ownerName(o)
		if err != nil {
			return nil, err
		}
		pname, err := c.name("PolicyName", 128)
		if err != nil {
			return nil, err
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, o.kind, name)); err != nil {
			return nil, err
		}
		return nil, s.withOwner(c, o, name, true, func(_ Tx, inline *map[string]string, _ *[]string) error {
			n, ok := inlineName(*inline, pname)
			if !ok {
				return noSuchEntity("The %s policy with name %s cannot be found.", o.noun, pname)
			}
			delete(*inline, n)
			return nil
		})
	}
}

// Managed policies.

type policyXML struct {
	PolicyName                    string
	PolicyId                      string //lint:ignore ST1003 the wire name
	Arn                           string
	Path                          string
	DefaultVersionId              string //lint:ignore ST1003 the wire name
	AttachmentCount               int
	PermissionsBoundaryUsageCount int
	IsAttachable                  bool
	Description                   string `xml:",omitempty"`
	CreateDate                    isoTime
	UpdateDate                    isoTime
}

type policyVersionXML struct {
	Document         string `xml:",omitempty"`
	VersionId        string //lint:ignore ST1003 the wire name
	IsDefaultVersion bool
	CreateDate       isoTime
}

func (s *Service) policyARN(path, name string) string {
	return "arn:aws:iam::" + s.account + ":policy" + path + name
}

func (s *Service) policyXML(p *ManagedPolicy) policyXML {
	return policyXML{PolicyName: p.Name, PolicyId: p.ID, Arn: s.policyARN(p.Path, p.Name), Path: p.Path, DefaultVersionId: p.DefaultVersion,
		AttachmentCount: p.Attachments, IsAttachable: true, Description: p.Description, CreateDate: isoTime(p.Created), UpdateDate: isoTime(p.Updated)}
}

func createPolicy(s *Service, c *call) (any, error) {
	name, err := c.name("PolicyName", 128)
	if err != nil {
		return nil, err
	}
	path, err := c.path("Path")
	if err != nil {
		return nil, err
	}
	doc := c.Form.Get("PolicyDocument")
	if err := parseDocument("PolicyDocument", doc, policy.Identity); err != nil {
		return nil, err
	}
	if len(doc) > 6144 {
		return nil, errorf(http.StatusConflict, "LimitExceeded", "Cannot exceed quota for PolicySize: 6144")
	}
	if err := s.authorize(c, "iam:CreatePolicy", s.policyARN(path, name)); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(1e9)
	p := &ManagedPolicy{Name: name, ID: randomID("ANPA", 17), Path: path, Description: c.Form.Get("Description"), Created: now, Updated: now,
		DefaultVersion: "v1", NextVersion: 2, Versions: []PolicyVersion{{ID: "v1", Document: doc, Created: now}}}
	err = s.store.Update(c.ctx, func(tx Tx) error {
		if _, err := tx.Get(kindPolicy, strings.ToLower(name)); err == nil {
			return alreadyExists("A policy called %s already exists. Duplicate names are not allowed.", name)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return putDoc(tx, kindPolicy, strings.ToLower(name), p)
	})
	if err != nil {
		return nil, err
	}
	return struct{ Policy policyXML }{s.policyXML(p)}, nil
}

// policyArn reads PolicyArn and authorizes the action on it.
func (s *Service) policyArnParam(c *call) (string, error) {
	arn, err := c.required("PolicyArn")
	if err != nil {
		return "", err
	}
	if len(arn) < 20 || !strings.HasPrefix(arn, "arn:") {
		return "", validationError("ARN %s is not valid.", arn)
	}
	return arn, s.authorize(c, "iam:"+c.action, arn)
}

// withPolicy loads a customer managed policy by ARN and lets fn read or change it.
func (s *Service) withPolicy(c *call, arn string, write bool, fn func(tx Tx, p *ManagedPolicy) error) error {
	name, ok := s.customerPolicyName(arn)
	run := s.store.View
	if write {
		run = s.store.Update
	}
	return run(c.ctx, func(tx Tx) error {
		if !ok {
			return noSuchEntity("Policy %s was not found.", arn)
		}
		p, err := getDoc[ManagedPolicy](tx, kindPolicy, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) || (err == nil && s.policyARN(p.Path, p.Name) != arn) {
			return noSuchEntity("Policy %s was not found.", arn)
		}
		if err != nil {
			return err
		}
		if err := fn(tx, p); err != nil {
			return err
		}
		if !write {
			return nil
		}
		return putDoc(tx, kindPolicy, strings.ToLower(name), p)
	})
}

func getPolicy(s *Service, c *call) (any, error) {
	arn, err := s.policyArnParam(c)
	if err != nil {
		return nil, err
	}
	if m, ok := awsManaged[arn]; ok {
		return struct{ Policy policyXML }{m.xml(arn)}, nil
	}
	var out policyXML
	err = s.withPolicy(c, arn, false, func(_ Tx, p *ManagedPolicy) error { out = s.policyXML(p); return nil })
	if err != nil {
		return nil, err
	}
	return struct{ Policy policyXML }{out}, nil
}

func listPolicies(s *Service, c *call) (any, error) {
	max, marker, err := c.page()
	if err != nil {
		return nil, err
	}
	scope := c.Form.Get("Scope")
	if scope == "" {
		scope = "All"
	}
	if scope != "All" && scope != "AWS" && scope != "Local" {
		return nil, validationError("1 validation error detected: Value '%s' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]", scope)
	}
	onlyAttached := strings.EqualFold(c.Form.Get("OnlyAttached"), "true")
	prefix := c.Form.Get("PathPrefix")
	if err := s.authorize(c, "iam:ListPolicies", "arn:aws:iam::"+s.account+":policy/"); err != nil {
		return nil, err
	}
	var all []policyXML
	if scope != "Local" {
		for arn, m := range awsManaged {
			all = append(all, m.xml(arn))
		}
	}
	if scope != "AWS" {
		var local []*ManagedPolicy
		if err := s.store.View(c.ctx, func(tx Tx) (err error) { local, err = listDocs[ManagedPolicy](tx, kindPolicy); return }); err != nil {
			return nil, err
		}
		for _, p := range local {
			all = append(all, s.policyXML(p))
		}
	}
	if onlyAttached || prefix != "" {
		// AWS managed policies carry no attachment count here (it would be per account).
		all = slices.DeleteFunc(all, func(p policyXML) bool {
			return (onlyAttached && p.AttachmentCount == 0) || !strings.HasPrefix(p.Path, prefix)
		})
	}
	sort.Slice(all, func(i, j int) bool { return strings.ToLower(all[i].PolicyName) < strings.ToLower(all[j].PolicyName) })
	page, truncated, next := paginate(all, func(p policyXML) string { return p.PolicyName }, max, marker)
	return struct {
		Policies    members[policyXML]
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{members[policyXML]{page}, truncated, next}, nil
}

func deletePolicy(s *Service, c *call) (any, error) {
	arn, err := s.policyArnParam(c)
	if err != nil {
		return nil, err
	}
	return nil, s.store.Update(c.ctx, func(tx Tx) error {
		name, ok := s.customerPolicyName(arn)
		if !ok {
			return noSuchEntity("Policy %s was not found.", arn)
		}
		p, err := getDoc[ManagedPolicy](tx, kindPolicy, strings.ToLower(name))
		if errors.Is(err, ErrNotFound) || (err == nil && s.policyARN(p.Path, p.Name) != arn) {
			return noSuchEntity("Policy %s was not found.", arn)
		}
		if err != nil {
			return err
		}
		if p.Attachments > 0 {
			return deleteConflict("Cannot delete a policy attached to entities.")
		}
		if len(p.Versions) > 1 {
			return deleteConflict("This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.")
		}
		return tx.Delete(kindPolicy, strings.ToLower(name))
	})
}

// MaxPolicyVersions is IAM's quota of versions per managed policy.
const MaxPolicyVersions = 5

func createPolicyVersion(s *Service, c *call) (any, error) {
	arn, err := s.policyArnParam(c)
	if err != nil {
		return nil, err
	}
	doc := c.Form.Get("PolicyDocument")
	if err := parseDocument("PolicyDocument", doc, policy.Identity); err != nil {
		return nil, err
	}
	setDefault := strings.EqualFold(c.Form.Get("SetAsDefault"), "true")
	var out policyVersionXML
	err = s.withPolicy(c, arn, true, func(_ Tx, p *ManagedPolicy) error {
		if len(p.Versions) >= MaxPolicyVersions {
			return errorf(http.StatusConflict, "LimitExceeded", "A managed policy can have up to %d versions. Before you create a new version, you must delete an existing version.", MaxPolicyVersions)
		}
		now := s.now().UTC().Truncate(1e9)
		v := PolicyVersion{ID: "v" + strconv.Itoa(p.NextVersion), Document: doc, Created: now}
		p.NextVersion++
		p.Versions = append(p.Versions, v)
		if setDefault {
			p.DefaultVersion = v.ID
		}
		p.Updated = now
		out = policyVersionXML{VersionId: v.ID, IsDefaultVersion: setDefault, CreateDate: isoTime(now)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct{ PolicyVersion policyVersionXML }{out}, nil
}

func getPolicyVersion(s *Service, c *call) (any, error) {
	arn, err := s.policyArnParam(c)
	if err != nil {
		return nil, err
	}
	id, err := c.required("VersionId")
	if err != nil {
		return nil, err
	}
	if m, ok := awsManaged[arn]; ok && id == "v1" {
		return struct{ PolicyVersion policyVersionXML }{policyVersionXML{Document: encodeDocument(m.document), VersionId: "v1", IsDefaultVersion: true, CreateDate: isoTime(awsManagedDate)}}, nil
	}
	var out policyVersionXML
	err = s.withPolicy(c, arn, false, func(_ Tx, p *ManagedPolicy) error {
		for _, v := range p.Versions {
			if v.ID == id {
				out = policyVersionXML{Document: encodeDocument(v.Document), VersionId: v.ID, IsDefaultVersion: v.ID == p.DefaultVersion, CreateDate: isoTime(v.Created)}
				return nil
			}
		}
		return noSuchEntity("Policy %s version %s does not exist or is not attachable.", arn, id)
	})
	if err != nil {
		return nil, err
	}
	return struct{ PolicyVersion policyVersionXML }{out}, nil
}

func listPolicyVersions(s *Service, c *call) (any, error) {
	arn, err := s.policyArnParam(c)
	if err != nil {
		return nil, err
	}
	out := struct {
		Versions    members[policyVersionXML]
		IsTruncated bool
	}{}
	if _, ok := awsManaged[arn]; ok {
		out.Versions.Member = []policyVersionXML{{VersionId: "v1", IsDefaultVersion: true, CreateDate: isoTime(awsManagedDate)}}
		return out, nil
	}
	err = s.withPolicy(c, arn, false, func(_ Tx, p *ManagedPolicy) error {
		for i := len(p.Versions) - 1; i >= 0; i-- { // newest first, as IAM lists them
			v := p.Versions[i]
			out.Versions.Member = append(out.Versions.Member, policyVersionXML{VersionId: v.ID, IsDefaultVersion: v.ID == p.DefaultVersion, CreateDate: isoTime(v.Created)})
		}
		return nil
	})
	return out, err
}

func deletePolicyVersion(s *Service, c *call) (any, error) {
	arn, err := s.policyArnParam(c)
	if err != nil {
		return nil, err
	}
	id, err := c.required("VersionId")
	if err != nil {
		return nil, err
	}
	return nil, s.withPolicy(c, arn, true, func(_ Tx, p *ManagedPolicy) error {
		i := slices.IndexFunc(p.Versions, func(v PolicyVersion) bool { return v.ID == id })
		switch {
		case i < 0:
			return noSuchEntity("Policy %s version %s does not exist or is not attachable.", arn, id)
		case id == p.DefaultVersion:
			return deleteConflict("Cannot delete the default version of a policy.")
		}
		p.Versions = slices.Delete(p.Versions, i, i+1)
		return nil
	})
}

func setDefaultPolicyVersion(s *Service, c *call) (any, error) {
	arn, err := s.policyArnParam(c)
	if err != nil {
		return nil, err
	}
	id, err := c.required("VersionId")
	if err != nil {
		return nil, err
	}
	return nil, s.withPolicy(c, arn, true, func(_ Tx, p *ManagedPolicy) error {
		if !slices.ContainsFunc(p.Versions, func(v PolicyVersion) bool { return v.ID == id }) {
			return noSuchEntity("Policy %s version %s does not exist or is not attachable.", arn, id)
		}
		p.DefaultVersion = id
		p.Updated = s.now().UTC().Truncate(1e9)
		return nil
	})
}

// attach and detach managed policies.

func attachPolicy(o owner, attach bool) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.ownerName(o)
		if err != nil {
			return nil, err
		}
		arn, err := c.required("PolicyArn")
		if err != nil {
			return nil, err
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, o.kind, name)); err != nil {
			return nil, err
		}
		return nil, s.withOwner(c, o, name, true, func(tx Tx, _ *map[string]string, attached *[]string) error {
			i := slices.Index(*attached, arn)
			if attach && i >= 0 {
				return nil
			}
			if !attach && i < 0 {
				return noSuchEntity("Policy %s was not found.", arn)
			}
			if _, ok := awsManaged[arn]; !ok {
				pname, ok := s.customerPolicyName(arn)
				if !ok {
					return noSuchEntity("Policy %s does not exist or is not attachable.", arn)
				}
				p, err := getDoc[ManagedPolicy](tx, kindPolicy, strings.ToLower(pname))
				if errors.Is(err, ErrNotFound) || (err == nil && s.policyARN(p.Path, p.Name) != arn) {
					if attach {
						return noSuchEntity("Policy %s does not exist or is not attachable.", arn)
					}
				} else if err != nil {
					return err
				} else {
					if attach {
						p.Attachments++
					} else if p.Attachments > 0 {
						p.Attachments--
					}
					if err := putDoc(tx, kindPolicy, strings.ToLower(pname), p); err != nil {
						return err
					}
				}
			}
			if attach {
				*attached = append(*attached, arn)
			} else {
				*attached = slices.Delete(*attached, i, i+1)
			}
			return nil
		})
	}
}

func listAttached(o owner) operation {
	return func(s *Service, c *call) (any, error) {
		name, err := c.ownerName(o)
		if err != nil {
			return nil, err
		}
		if err := s.authorize(c, "iam:"+c.action, s.entityARN(c, o.kind, name)); err != nil {
			return nil, err
		}
		type attachedXML struct{ PolicyName, PolicyArn string }
		out := struct {
			AttachedPolicies members[attachedXML]
			IsTruncated      bool
		}{}
		err = s.withOwner(c, o, name, false, func(_ Tx, _ *map[string]string, attached *[]string) error {
			for _, arn := range *attached {
				out.AttachedPolicies.Member = append(out.AttachedPolicies.Member, attachedXML{arn[strings.LastIndexByte(arn, '/')+1:], arn})
			}
			return nil
		})
		return out, err
	}
}
