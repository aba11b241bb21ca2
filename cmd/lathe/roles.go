package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/audit"
	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/iam/policy"
	"github.com/lathe-ml/lathe/internal/kms"
	"github.com/lathe-ml/lathe/internal/server"
)

// executionRole is automl's and endpoint's ExecutionRole hook: the caller of the request being
// served (server.Principal) passes roleARN to a job or model (iam:PassRole), and the job runs as
// the role, or as the caller when there is no such role (refused with requireRoles).
func executionRole(svc *iam.Service, requireRoles bool) func(ctx context.Context, roleARN string) (string, error) {
	return func(ctx context.Context, roleARN string) (string, error) {
		p, c := server.Principal(ctx)
		return svc.ExecutionRole(ctx, p, roleARN, requireRoles, c, func(p *iam.Principal, action, resource string, d iam.Decision) {
			server.NoteDecision(ctx, p, action, resource, d)
		})
	}
}

// jobAuthorizer is finetune.Guard's Authorize: the job's principal's policies and the bucket's
// policy, evaluated as for a request the principal signed.
func jobAuthorizer(svc *iam.Service) func(ctx context.Context, runAs, action, resource, prefix string) (string, error) {
	return auditedJobAuthorizer(svc, nil, nil)
}

// auditedJobAuthorizer is jobAuthorizer that also writes each decision to the audit log (api
// "job": the S3 calls a job makes as its role) and evaluates the KMS key policy of the keys the
// job encrypts with.
func auditedJobAuthorizer(svc *iam.Service, log *audit.Log, keys *kms.Service) func(ctx context.Context, runAs, action, resource, prefix string) (string, error) {
	return func(ctx context.Context, runAs, action, resource, prefix string) (string, error) {
		p, err := svc.RunAs(ctx, runAs)
		if err != nil || p == nil {
			return "", err
		}
		c := policy.Context{}
		if action == "s3:ListBucket" {
			c.Set("s3:prefix", prefix)
		}
		var bp *policy.Policy
		if strings.HasPrefix(resource, "arn:aws:kms:") {
			if keys != nil {
				if bp, err = keys.KeyPolicy(ctx, resource); err != nil {
					return "", err
				}
			}
		} else {
			bucket, _, _ := strings.Cut(strings.TrimPrefix(resource, "arn:aws:s3:::"), "/")
			if doc, ok, err := svc.BucketPolicy(ctx, bucket); err != nil {
				return "", err
			} else if ok {
				bp, _ = policy.Parse([]byte(doc), policy.Resource)
			}
		}
		d, err := svc.Authorize(ctx, iam.Request{Principal: p, Action: action, Resource: resource, Context: c, ResourcePolicy: bp})
		if err != nil {
			return "", err
		}
		// A key policy that does not delegate to IAM must name the job's role itself (as KMS does).
		if d.Allowed && bp != nil && strings.HasPrefix(resource, "arn:aws:kms:") && !kms.DelegatesToIAM(bp, p.Account, action, resource) &&
			!kms.PolicyAllows(bp, []string{p.ARN, p.RoleARN}, p.Account, action, resource, c) {
			d = iam.Decision{Message: "User: " + p.ARN + " is not authorized to perform: " + action + " on resource: " + resource +
				" because no resource-based policy allows the " + action + " action"}
		}
		if log != nil {
			ev := audit.Event{Time: time.Now().UTC(), Principal: p.ARN, API: "job", Action: action, Resource: resource,
				Allowed: d.Allowed, Decision: d.Result.Decision.String(), Policy: d.Result.Policy}
			if st := d.Result.Statement; st != nil {
				ev.Statement = st.Sid
				if ev.Statement == "" {
					ev.Statement = "#" + strconv.Itoa(st.Index)
				}
			}
			_ = log.Write(ev) // the log's own failures are the server's to report, not the job's
		}
		if d.Allowed {
			return "", nil
		}
		return d.Message, nil
	}
}

// jumpStartBucket is the bucket SageMaker keeps JumpStart's models in, in region: Lathe serves its
// model store under this name.
func jumpStartBucket(region string) string { return "jumpstart-cache-prod-" + region }

// modelAccess is endpoint's ModelAccess: the model's role must be allowed s3:GetObject on every
// object of its model data and kms:Decrypt on the key of each SSE-KMS one; otherwise CreateModel
// is refused in SageMaker's words, with the denial.
func modelAccess(objects *blob.Client, authorize func(ctx context.Context, runAs, action, resource, prefix string) (string, error),
	region string) func(ctx context.Context, runAs, modelData string) error {
	return func(ctx context.Context, runAs, modelData string) error {
		refuse := func(why string) error {
			return awserr.Validation("Could not access model data at %s. Please ensure that the role %q exists and that its trust relationship policy allows the action \"sts:AssumeRole\" for the service principal \"sagemaker.amazonaws.com\". Also ensure that the role has \"s3:GetObject\" permissions and that the object is located in %s. %s",
				modelData, runAs, region, why)
		}
		list, err := objects.List(ctx, modelData)
		if err != nil {
			return refuse(err.Error())
		}
		for _, o := range list {
			bucket, key, _ := strings.Cut(strings.TrimPrefix(o.URI, "s3://"), "/")
			msg, err := authorize(ctx, runAs, "s3:GetObject", "arn:aws:s3:::"+bucket+"/"+key, "")
			if err != nil {
				return err
			}
			if msg != "" {
				return refuse(msg)
			}
			head, err := objects.S3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return refuse(err.Error())
			}
			if keyARN := aws.ToString(head.SSEKMSKeyId); keyARN != "" {
				msg, err := authorize(ctx, runAs, "kms:Decrypt", keyARN, "")
				if err != nil {
					return err
				}
				if msg != "" {
					return refuse(msg)
				}
			}
		}
		return nil
	}
}
