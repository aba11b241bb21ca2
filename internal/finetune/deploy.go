package finetune

import (
	"context"

	"github.com/lathe-ml/lathe/internal/job"
)

// Deployer serves a fine-tuned model behind an endpoint (ModelDeployConfig). Package endpoint
// implements it: it creates the model, the endpoint config and the endpoint, and returns once the
// endpoint is InService, or with the reason it could not be.
type Deployer interface {
	Deploy(ctx context.Context, jobName, endpointName, modelDataURL string) error
}

// deploy creates the job's endpoint (DeployingModel). A failed deployment is the job's
// ModelDeploymentError, not an error of the job; a cancelled one is (the job resumes and deploys again).
func (e *Executor) deploy(ctx context.Context, spec job.Spec, r job.Reporter, res *job.Result) error {
	if e.Deployer == nil {
		res.DeployError = "this Lathe server does not deploy endpoints; the fine-tuned model is at " + res.ModelDataURL
		return nil
	}
	if err := r.SetPhase(ctx, job.PhaseDeployingModel); err != nil {
		return err
	}
	if err := e.Deployer.Deploy(ctx, spec.Name, spec.EndpointName, res.ModelDataURL); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res.DeployError = err.Error()
		return nil
	}
	res.EndpointName = spec.EndpointName
	return nil
}
