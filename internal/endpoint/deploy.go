package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// DeployNames are the model and endpoint config a job's deployment creates: <job>-model and
// <job>-config.
func DeployNames(jobName string) (model, config string) {
	return jobName + "-model", jobName + "-config"
}

// Deploy serves a fine-tuning job's model (finetune.Deployer, for ModelDeployConfig): it creates the
// model <job>-model from modelDataURL, the endpoint config <job>-config (one variant, AllTraffic,
// ml.g5.12xlarge as SageMaker recommends for fine-tuned LLMs), and the endpoint, then waits until the
// endpoint is InService. A job that runs again after a restart finds what it created the first time
// and waits for it. The error is the reason to report in the job (ModelDeploymentError).
func (s *Service) Deploy(ctx context.Context, jobName, endpointName, modelDataURL string) error {
	modelName, configName := DeployNames(jobName)
	modelReq, _ := json.Marshal(map[string]any{
		"ModelName":        modelName,
		"PrimaryContainer": map[string]any{"ModelDataUrl": modelDataURL},
	})
	if _, err := s.createModel(ctx, modelReq); err != nil && !alreadyExists(err) {
		return fmt.Errorf("create model %s: %w", modelName, err)
	}
	if m, err := s.db.get(ctx, "models", strings.ToLower(modelName)); err != nil {
		return fmt.Errorf("model %s: %w", modelName, err)
	} else if !strings.Contains(string(m.Spec), fmt.Sprintf("%q", modelDataURL)) {
		return fmt.Errorf("a model named %s already exists with other model data", modelName)
	}
	configReq, _ := json.Marshal(map[string]any{
		"EndpointConfigName": configName,
		"ProductionVariants": []map[string]any{{"VariantName": "AllTraffic", "ModelName": modelName,
			"InitialInstanceCount": 1, "InstanceType": "ml.g5.12xlarge", "InitialVariantWeight": 1}},
	})
	if _, err := s.createEndpointConfig(ctx, configReq); err != nil && !alreadyExists(err) {
		return fmt.Errorf("create endpoint config %s: %w", configName, err)
	}
	if _, err := s.CreateEndpoint(ctx, endpointName, configName); err != nil {
		if !alreadyExists(err) {
			return fmt.Errorf("create endpoint %s: %w", endpointName, err)
		}
		e, err := s.db.getEndpoint(ctx, strings.ToLower(endpointName))
		if err != nil {
			return fmt.Errorf("endpoint %s: %w", endpointName, err)
		}
		if !strings.EqualFold(e.ConfigName, configName) {
			return fmt.Errorf("an endpoint named %s already exists (with endpoint config %s)", endpointName, e.ConfigName)
		}
		if s.cfg.Fleet != nil && e.Status == StatusCreating {
			// The worker that created it died before it was InService (this job is its resumed run):
			// placing the same replicas again finishes the create.
			s.driveCreate(strings.ToLower(endpointName), e)
		}
	}
	return s.WaitInService(ctx, endpointName)
}

// driveCreate finishes an endpoint's create from here unless this process is at it already.
func (s *Service) driveCreate(key string, e endpointRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	le := s.live[key]
	if le != nil && le.cancel != nil {
		return
	}
	s.log.Info("finishing the create of an endpoint whose process went away", "endpoint", e.Name)
	if le == nil {
		le = &liveEndpoint{name: e.Name}
		s.live[key] = le
	}
	s.startLoad(key, le, e, false)
}

func alreadyExists(err error) bool {
	e := awserr.As(err)
	return e != nil && strings.HasPrefix(e.Message, "Cannot create already existing")
}

// WaitInService waits until the endpoint is InService; it fails when it is Failed or deleted.
func (s *Service) WaitInService(ctx context.Context, name string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		e, err := s.db.getEndpoint(ctx, strings.ToLower(name))
		if errors.Is(err, errNotFound) {
			return fmt.Errorf("endpoint %s was deleted while it was being created", name)
		}
		if err != nil {
			return err
		}
		switch e.Status {
		case StatusInService:
			return nil
		case StatusFailed:
			return fmt.Errorf("endpoint %s failed: %s", name, e.Failure)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
