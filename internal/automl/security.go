package automl

import (
	"context"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/job"
)

// secure settles, at create time, who the job runs as (the execution role, which the caller must
// be allowed to pass) and which KMS keys encrypt its artifacts and checkpoints: a key that does not
// exist or cannot encrypt refuses the request, as SageMaker refuses it, rather than failing the
// job at its first upload.
func (s *Service) secure(ctx context.Context, req *createRequest, spec *job.Spec) error {
	if s.executionRole != nil && req.RoleArn != nil {
		runAs, err := s.executionRole(ctx, *req.RoleArn)
		if err != nil {
			return err
		}
		spec.RunAs = runAs
	}
	if s.kmsKey == nil {
		return nil
	}
	key := func(field string, ref *string) (string, error) {
		if ref == nil || *ref == "" {
			return "", nil
		}
		arn, err := s.kmsKey(ctx, *ref)
		if err != nil {
			if e := awserr.As(err); e != nil && e.Status < 500 {
				return "", awserr.Validation("%s '%s' cannot be used: %s", field, *ref, e.Message)
			}
			return "", err
		}
		return arn, nil
	}
	var err error
	if req.OutputDataConfig != nil {
		if spec.OutputKMSKey, err = key("OutputDataConfig.KmsKeyId", req.OutputDataConfig.KmsKeyId); err != nil {
			return err
		}
	}
	if req.SecurityConfig != nil {
		if spec.VolumeKMSKey, err = key("SecurityConfig.VolumeKmsKeyId", req.SecurityConfig.VolumeKmsKeyId); err != nil {
			return err
		}
	}
	return nil
}
