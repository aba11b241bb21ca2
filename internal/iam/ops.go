package iam

import "time"

var iamOperations = map[string]operation{
	"CreateUser":  createUser,
	"GetUser":     getUser,
	"ListUsers":   listUsers,
	"DeleteUser":  deleteUser,
	"CreateGroup": createGroup,
	"GetGroup":    getGroup,
	"ListGroups":  listGroups,
	"DeleteGroup": deleteGroup,

	"CreateAccessKey": createAccessKey,
	"ListAccessKeys":  listAccessKeys,
	"UpdateAccessKey": updateAccessKey,
	"DeleteAccessKey": deleteAccessKey,

	"AddUserToGroup":      addUserToGroup,
	"RemoveUserFromGroup": removeUserFromGroup,
	"ListGroupsForUser":   listGroupsForUser,

	"CreateRole":             createRole,
	"GetRole":                getRole,
	"ListRoles":              listRoles,
	"DeleteRole":             deleteRole,
	"UpdateAssumeRolePolicy": updateAssumeRolePolicy,
	"UpdateRole":             updateRole,
	"TagUser":                tagEntity(taggableUser),
	"UntagUser":              untagEntity(taggableUser),
	"ListUserTags":           listEntityTags(taggableUser),
	"TagRole":                tagEntity(taggableRole),
	"UntagRole":              untagEntity(taggableRole),
	"ListRoleTags":           listEntityTags(taggableRole),
	"GetAccessKeyLastUsed":   getAccessKeyLastUsed,

	"PutUserPolicy":     putInline(ownerUser),
	"GetUserPolicy":     getInline(ownerUser),
	"ListUserPolicies":  listInline(ownerUser),
	"DeleteUserPolicy":  deleteInline(ownerUser),
	"PutRolePolicy":     putInline(ownerRole),
	"GetRolePolicy":     getInline(ownerRole),
	"ListRolePolicies":  listInline(ownerRole),
	"DeleteRolePolicy":  deleteInline(ownerRole),
	"PutGroupPolicy":    putInline(ownerGroup),
	"GetGroupPolicy":    getInline(ownerGroup),
	"ListGroupPolicies": listInline(ownerGroup),
	"DeleteGroupPolicy": deleteInline(ownerGroup),

	"CreatePolicy":            createPolicy,
	"GetPolicy":               getPolicy,
	"ListPolicies":            listPolicies,
	"DeletePolicy":            deletePolicy,
	"CreatePolicyVersion":     createPolicyVersion,
	"GetPolicyVersion":        getPolicyVersion,
	"ListPolicyVersions":      listPolicyVersions,
	"DeletePolicyVersion":     deletePolicyVersion,
	"SetDefaultPolicyVersion": setDefaultPolicyVersion,

	"AttachUserPolicy":          attachPolicy(ownerUser, true),
	"DetachUserPolicy":          attachPolicy(ownerUser, false),
	"ListAttachedUserPolicies":  listAttached(ownerUser),
	"AttachRolePolicy":          attachPolicy(ownerRole, true),
	"DetachRolePolicy":          attachPolicy(ownerRole, false),
	"ListAttachedRolePolicies":  listAttached(ownerRole),
	"AttachGroupPolicy":         attachPolicy(ownerGroup, true),
	"DetachGroupPolicy":         attachPolicy(ownerGroup, false),
	"ListAttachedGroupPolicies": listAttached(ownerGroup),
}

var stsOperations = map[string]operation{
	"GetCallerIdentity": getCallerIdentity,
	"AssumeRole":        assumeRole,
}

// awsManagedDate is the CreateDate shown for the AWS managed policies.
var awsManagedDate = time.Date(2015, 2, 6, 18, 40, 0, 0, time.UTC)

type managed struct {
	id       string
	document string
}

func (m managed) xml(arn string) policyXML {
	return policyXML{PolicyName: arn[len("arn:aws:iam::aws:policy/"):], PolicyId: m.id, Arn: arn, Path: "/", DefaultVersionId: "v1",
		IsAttachable: true, CreateDate: isoTime(awsManagedDate), UpdateDate: isoTime(awsManagedDate)}
}

// awsManaged are the AWS managed policies a Lathe user reaches for, cut down to the services
// Lathe serves (AWS's own documents name hundreds of actions of other services).
var awsManaged = map[string]managed{
	"arn:aws:iam::aws:policy/AdministratorAccess": {"ANPAIWMBCKSKIEE64ZLYK",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`},
	"arn:aws:iam::aws:policy/ReadOnlyAccess": {"ANPAILL3HVNFSB6DCOWYQ",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sagemaker:Describe*","sagemaker:List*","sagemaker:Get*","s3:Get*","s3:List*","iam:Get*","iam:List*","sts:GetCallerIdentity"],"Resource":"*"}]}`},
	"arn:aws:iam::aws:policy/AmazonSageMakerFullAccess": {"ANPAJZ5IWYMXO5QDB4QOG",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sagemaker:*","Resource":"*"},{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:ListBucket","s3:CreateBucket","s3:GetBucketLocation","s3:ListAllMyBuckets"],"Resource":"*"},{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"sagemaker.amazonaws.com"}}}]}`},
	"arn:aws:iam::aws:policy/AmazonSageMakerReadOnly": {"ANPAJTZ2FA5ZXAUQKGF4O",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sagemaker:Describe*","sagemaker:List*","sagemaker:Get*","sagemaker:Search"],"Resource":"*"}]}`},
	"arn:aws:iam::aws:policy/AmazonS3FullAccess": {"ANPAIFIR6V6BVTRAHWINE",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}`},
	"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess": {"ANPAIZTJ4DXE7G6AGAE6M",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*"],"Resource":"*"}]}`},
	"arn:aws:iam::aws:policy/IAMFullAccess": {"ANPAI7XKCFMBPM3QQRRVQ",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}`},
	"arn:aws:iam::aws:policy/IAMReadOnlyAccess": {"ANPAJKSO7NDY4T57MWDSQ",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}]}`},
}
