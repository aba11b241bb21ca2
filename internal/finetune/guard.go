package finetune

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/job"
)

// Guard runs each job with its spec's security settings around the pipeline's object store:
//
//   - as its principal (job.Spec.RunAs, the execution role): every S3 call the pipeline makes is
//     first authorized as that principal would be (s3:ListBucket with s3:prefix, s3:GetObject,
//     s3:PutObject, s3:DeleteObject; kms:Decrypt to read an SSE-KMS object), and reading the base
//     model needs s3:ListBucket and s3:GetObject on the JumpStart bucket (ModelsBucket), as on
//     SageMaker. A denial fails the job with AWS's message, which names the action and resource;
//   - with its KMS keys: uploads ask for SSE-KMS under OutputKMSKey, checkpoints under VolumeKMSKey
//     (OutputKMSKey when it is unset); the principal needs kms:GenerateDataKey on the key.
type Guard struct {
	*Executor
	// Authorize answers whether runAs may run action on resource ("" when allowed, else AWS's
	// denial message); prefix is s3:prefix of a listing.
	Authorize func(ctx context.Context, runAs, action, resource, prefix string) (string, error)
	// ModelsBucket is the JumpStart bucket's name, jumpstart-cache-prod-REGION.
	ModelsBucket string
}

// Execute implements job.Executor.
func (g *Guard) Execute(ctx context.Context, spec job.Spec, r job.Reporter) (*job.Result, error) {
	if (spec.RunAs == "" || g.Authorize == nil) && spec.OutputKMSKey == "" && spec.VolumeKMSKey == "" {
		return g.Executor.Execute(ctx, spec, r)
	}
	ex := *g.Executor
	gs := &guardedStore{inner: ex.Objects, spec: spec, authorize: g.Authorize}
	if spec.RunAs == "" {
		gs.authorize = nil
	}
	ex.Objects = gs
	if gs.authorize != nil && ex.Models != nil {
		ex.Models = &guardedModels{inner: ex.Models, store: gs, bucket: g.ModelsBucket}
	}
	return ex.Execute(ctx, spec, r)
}

// AccessDeniedError is a pipeline S3 call that the job's principal may not make.
type AccessDeniedError struct{ Message string }

func (e *AccessDeniedError) Error() string { return "AccessDenied: " + e.Message }

type guardedStore struct {
	inner     objectStore
	spec      job.Spec
	authorize func(ctx context.Context, runAs, action, resource, prefix string) (string, error)
}

func (g *guardedStore) check(ctx context.Context, action, resource, prefix string) error {
	if g.authorize == nil {
		return nil
	}
	msg, err := g.authorize(ctx, g.spec.RunAs, action, resource, prefix)
	if err != nil {
		return fmt.Errorf("authorize %s on %s: %w", action, resource, err)
	}
	if msg != "" {
		return &AccessDeniedError{Message: msg}
	}
	return nil
}

func objectResource(uri string) string {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	return "arn:aws:s3:::" + bucket + "/" + key
}

// sse picks the key of an upload (checkpoints are the training volume's, the rest output), which
// the job's principal must be allowed to make data keys with, as SageMaker's role must.
func (g *guardedStore) sse(ctx context.Context, uri string) (context.Context, error) {
	key := g.spec.OutputKMSKey
	if strings.Contains(uri, "/checkpoints/") && g.spec.VolumeKMSKey != "" {
		key = g.spec.VolumeKMSKey
	}
	if key != "" {
		if err := g.check(ctx, "kms:GenerateDataKey", key, ""); err != nil {
			return nil, err
		}
	}
	return blob.WithSSEKMS(ctx, key), nil
}

func (g *guardedStore) List(ctx context.Context, uri string) ([]blob.Object, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	if err := g.check(ctx, "s3:ListBucket", "arn:aws:s3:::"+bucket, prefix); err != nil {
		return nil, err
	}
	return g.inner.List(ctx, uri)
}

func (g *guardedStore) Get(ctx context.Context, uri string) ([]byte, error) {
	if err := g.checkRead(ctx, uri); err != nil {
		return nil, err
	}
	return g.inner.Get(ctx, uri)
}

func (g *guardedStore) Download(ctx context.Context, uri, path string) error {
	if err := g.checkRead(ctx, uri); err != nil {
		return err
	}
	return g.inner.Download(ctx, uri, path)
}

// checkRead authorizes reading an object: s3:GetObject, and kms:Decrypt on its key when it is
// stored SSE-KMS (which a HEAD tells, when the store is an S3 client).
func (g *guardedStore) checkRead(ctx context.Context, uri string) error {
	if err := g.check(ctx, "s3:GetObject", objectResource(uri), ""); err != nil || g.authorize == nil {
		return err
	}
	sdk, ok := g.inner.(interface{ S3() *s3.Client })
	if !ok {
		return nil
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	head, err := sdk.S3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil // the read itself reports a missing object in its own words
	}
	if keyARN := aws.ToString(head.SSEKMSKeyId); keyARN != "" {
		return g.check(ctx, "kms:Decrypt", keyARN, "")
	}
	return nil
}

func (g *guardedStore) PutBytes(ctx context.Context, uri string, data []byte, contentType string) error {
	if err := g.check(ctx, "s3:PutObject", objectResource(uri), ""); err != nil {
		return err
	}
	ctx, err := g.sse(ctx, uri)
	if err != nil {
		return err
	}
	return g.inner.PutBytes(ctx, uri, data, contentType)
}

func (g *guardedStore) PutFile(ctx context.Context, uri, path string) error {
	if err := g.check(ctx, "s3:PutObject", objectResource(uri), ""); err != nil {
		return err
	}
	ctx, err := g.sse(ctx, uri)
	if err != nil {
		return err
	}
	return g.inner.PutFile(ctx, uri, path)
}

func (g *guardedStore) Delete(ctx context.Context, uri string) error {
	if err := g.check(ctx, "s3:DeleteObject", objectResource(uri), ""); err != nil {
		return err
	}
	return g.inner.Delete(ctx, uri)
}

// guardedModels reads base models as the job's principal: the model store is the JumpStart
// bucket, so the guide's statement on jumpstart-cache-prod-REGION is what lets a role read them.
type guardedModels struct {
	inner  ModelSource
	store  *guardedStore
	bucket string
}

func (m *guardedModels) Resolve(ctx context.Context, name string, progress func(done, total int64)) (string, error) {
	if err := m.store.check(ctx, "s3:ListBucket", "arn:aws:s3:::"+m.bucket, name+"/"); err != nil {
		return "", fmt.Errorf("read base model %s: %w", name, err)
	}
	if err := m.store.check(ctx, "s3:GetObject", "arn:aws:s3:::"+m.bucket+"/"+name+"/", ""); err != nil {
		return "", fmt.Errorf("read base model %s: %w", name, err)
	}
	return m.inner.Resolve(ctx, name, progress)
}
