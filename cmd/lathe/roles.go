package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/audit"
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
