package iam

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/lathe-ml/lathe/internal/iam/policy"
)

// kindBucketPolicy keys S3 bucket policies by bucket name. They live with IAM's documents because
// IAM is what evaluates them; the embedded S3 only keeps objects.
const kindBucketPolicy = "bucket-policy"

// PutBucketPolicy checks a bucket policy as S3 does and stores it. A refused document is an
// *Error with S3's code MalformedPolicy.
func (s *Service) PutBucketPolicy(ctx context.Context, bucket, doc string) error {
	p, err := policy.Parse([]byte(doc), policy.Resource)
	if err != nil {
		var me *policy.MalformedError
		if errors.As(err, &me) {
			return errorf(http.StatusBadRequest, "MalformedPolicy", "%s", me.Message)
		}
		return err
	}
	arn := "arn:aws:s3:::" + bucket
	for _, st := range p.Statements {
		for _, a := range st.Actions {
			if a != "*" && !strings.HasPrefix(strings.ToLower(a), "s3:") {
				return errorf(http.StatusBadRequest, "MalformedPolicy", "Policy has invalid action")
			}
		}
		for _, r := range st.Resources {
			if r != arn && !strings.HasPrefix(r, arn+"/") {
				return errorf(http.StatusBadRequest, "MalformedPolicy", "Policy has invalid resource")
			}
		}
	}
	return s.store.Update(ctx, func(tx Tx) error { return tx.Put(kindBucketPolicy, bucket, []byte(doc)) })
}

// BucketPolicy returns a bucket's policy document, or ok=false when it has none.
func (s *Service) BucketPolicy(ctx context.Context, bucket string) (doc string, ok bool, err error) {
	err = s.store.View(ctx, func(tx Tx) error {
		b, err := tx.Get(kindBucketPolicy, bucket)
		if err != nil {
			return err
		}
		doc, ok = string(b), true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	}
	return doc, ok, err
}

// DeleteBucketPolicy removes a bucket's policy (also when the bucket itself is deleted).
func (s *Service) DeleteBucketPolicy(ctx context.Context, bucket string) error {
	return s.store.Update(ctx, func(tx Tx) error { return tx.Delete(kindBucketPolicy, bucket) })
}
