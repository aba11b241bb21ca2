package blob

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

type sseKey struct{}

// WithSSEKMS makes the uploads made with ctx (PutObject, and multipart uploads) ask for SSE-KMS
// under keyID, as x-amz-server-side-encryption: aws:kms with the key's id: a job's artifacts are
// encrypted with its OutputDataConfig.KmsKeyId this way. An empty keyID leaves ctx as it is.
func WithSSEKMS(ctx context.Context, keyID string) context.Context {
	if keyID == "" {
		return ctx
	}
	return context.WithValue(ctx, sseKey{}, keyID)
}

// sseMiddleware sets the SSE members of the upload calls from the context (WithSSEKMS), so every
// path that uploads (one PutObject, parts in parallel, a stream) encrypts alike.
func sseMiddleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("LatheSSEKMS",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if keyID, ok := ctx.Value(sseKey{}).(string); ok {
				switch p := in.Parameters.(type) {
				case *s3.PutObjectInput:
					p.ServerSideEncryption, p.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(keyID)
				case *s3.CreateMultipartUploadInput:
					p.ServerSideEncryption, p.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(keyID)
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}
