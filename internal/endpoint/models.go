package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// Environment variables a model's container may set for Lathe.
const (
	EnvBaseModel    = "LATHE_BASE_MODEL"    // the base model: served itself without a ModelDataUrl, else its prompt format
	EnvPromptFormat = "LATHE_PROMPT_FORMAT" // plain, chat or raw; overrides the format training used
	// EnvWeights is how the endpoint holds the weights it decodes with: float32, bfloat16, or auto
	// (the default: bfloat16 from serving.BF16AutoParams parameters up, float32 below).
	EnvWeights = "LATHE_WEIGHTS_DTYPE"
)

type container struct {
	ContainerHostname *string `json:"ContainerHostname"`
	Image             *string `json:"Image"`
	Mode              *string `json:"Mode"`
	ModelDataURL      *string `json:"ModelDataUrl"`
	ModelDataSource   *struct {
		S3DataSource *struct {
			S3URI           *string `json:"S3Uri"`
			S3DataType      *string `json:"S3DataType"`
			CompressionType *string `json:"CompressionType"`
		} `json:"S3DataSource"`
	} `json:"ModelDataSource"`
	Environment      map[string]string `json:"Environment"`
	ModelPackageName *string           `json:"ModelPackageName"`
}

type createModelRequest struct {
	ModelName              *string     `json:"ModelName"`
	PrimaryContainer       *container  `json:"PrimaryContainer"`
	Containers             []container `json:"Containers"`
	ExecutionRoleArn       *string     `json:"ExecutionRoleArn"`
	Tags                   []tag       `json:"Tags"`
	EnableNetworkIsolation *bool       `json:"EnableNetworkIsolation"`
}

func (v *violations) container(path string, c *container) {
	v.str(path+".containerHostname", c.ContainerHostname, false, 63, patEndpoint, nil)
	v.str(path+".image", c.Image, false, 255, patImage, nil)
	v.str(path+".mode", c.Mode, false, 0, nil, containerModes)
	v.str(path+".modelDataUrl", c.ModelDataURL, false, 1024, patURL, nil)
	if c.ModelDataSource != nil && c.ModelDataSource.S3DataSource != nil {
		s3 := c.ModelDataSource.S3DataSource
		p := path + ".modelDataSource.s3DataSource"
		v.str(p+".s3Uri", s3.S3URI, true, 1024, patURL, nil)
		v.str(p+".s3DataType", s3.S3DataType, true, 0, nil, []string{"S3Prefix", "S3Object"})
		v.str(p+".compressionType", s3.CompressionType, true, 0, nil, []string{"None", "Gzip"})
	}
	if len(c.Environment) > 100 {
		v.listLen(path+".environment", len(c.Environment), 0, 100)
	}
	for k, val := range c.Environment {
		v.str(path+".environment.key", &k, false, 1024, patEnvKey, nil)
		v.str(path+".environment.value", &val, false, 1024, patEnvValue, nil)
	}
}

// servedContainer is the one container Lathe runs for a model.
func (r *createModelRequest) servedContainer() (*container, error) {
	switch {
	case r.PrimaryContainer != nil:
		return r.PrimaryContainer, nil
	case len(r.Containers) == 1:
		return &r.Containers[0], nil
	case len(r.Containers) > 1:
		return nil, fmt.Errorf("the model has %d containers (an inference pipeline); Lathe serves models of one container", len(r.Containers))
	}
	return nil, errors.New("the model has no container")
}

// source is where a container's model comes from.
func (c *container) source() string {
	if c.ModelDataURL != nil {
		return *c.ModelDataURL
	}
	if c.ModelDataSource != nil && c.ModelDataSource.S3DataSource != nil && c.ModelDataSource.S3DataSource.S3URI != nil {
		return *c.ModelDataSource.S3DataSource.S3URI
	}
	return ""
}

func (s *Service) modelNotFound(name string) error {
	return awserr.Validation("Could not find model %q.", s.arn("model", name))
}

func (s *Service) createModel(ctx context.Context, body []byte) (any, error) {
	var req createModelRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.str("modelName", req.ModelName, true, 63, patModelName, nil)
	if req.PrimaryContainer != nil {
		v.container("primaryContainer", req.PrimaryContainer)
	}
	v.listLen("containers", len(req.Containers), 0, 15)
	for i := range req.Containers {
		v.container(fmt.Sprintf("containers.%d.member", i+1), &req.Containers[i])
	}
	v.str("executionRoleArn", req.ExecutionRoleArn, false, 2048, patRoleARN, nil)
	v.minLen("executionRoleArn", req.ExecutionRoleArn, 20)
	v.tags(req.Tags)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if req.PrimaryContainer == nil && len(req.Containers) == 0 {
		return nil, awserr.Validation("Either PrimaryContainer or Containers must be specified.")
	}
	// Passing the execution role to the model needs iam:PassRole on it, as on SageMaker.
	runAs := ""
	if s.cfg.ExecutionRole != nil && req.ExecutionRoleArn != nil {
		var err error
		if runAs, err = s.cfg.ExecutionRole(ctx, *req.ExecutionRoleArn); err != nil {
			return nil, err
		}
	}
	if req.PrimaryContainer != nil && len(req.Containers) > 0 {
		return nil, awserr.Validation("PrimaryContainer and Containers cannot both be specified.")
	}
	c, err := req.servedContainer()
	if err == nil {
		if src := c.source(); src != "" && !strings.HasPrefix(src, "s3://") {
			err = fmt.Errorf("model data must be an s3:// URI for Lathe, not %s", src)
		} else if src == "" && c.Environment[EnvBaseModel] == "" {
			err = fmt.Errorf("give the model's ModelDataUrl (s3://) or, to serve a base model of Lathe's model store, Environment %s", EnvBaseModel)
		}
	}
	if err != nil {
		return nil, awserr.Validation("%s", err.Error())
	}
	// The role must be able to read the model data (and decrypt it), as SageMaker checks at create.
	if src := c.source(); s.cfg.ModelAccess != nil && runAs != "" && src != "" {
		if err := s.cfg.ModelAccess(ctx, runAs, src); err != nil {
			return nil, err
		}
	}
	if f, ok := c.Environment[EnvPromptFormat]; ok {
		if _, err := parseFormat(f); err != nil {
			return nil, awserr.Validation("Environment %s: %v", EnvPromptFormat, err)
		}
	}
	if w, ok := c.Environment[EnvWeights]; ok {
		if _, err := serving.ParseWeights(w); err != nil {
			return nil, awserr.Validation("Environment %s: %v", EnvWeights, err)
		}
	}
	spec, err := withoutMembers(body, "ModelName", "Tags")
	if err != nil {
		return nil, err
	}
	name := *req.ModelName
	arn := s.arn("model", name)
	if err := s.db.insert(ctx, "models", strings.ToLower(name), row{Name: name, ARN: arn, Created: s.now(), Spec: spec}); err != nil {
		if errors.Is(err, errExists) {
			return nil, awserr.Validation("Cannot create already existing model %q.", arn)
		}
		return nil, err
	}
	if err := s.addTags(ctx, arn, req.Tags); err != nil {
		return nil, err
	}
	return map[string]any{"ModelArn": arn}, nil
}

type nameRequest struct {
	ModelName          *string `json:"ModelName"`
	EndpointConfigName *string `json:"EndpointConfigName"`
	EndpointName       *string `json:"EndpointName"`
}

func (s *Service) describeModel(ctx context.Context, body []byte) (any, error) {
	var req nameRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.str("modelName", req.ModelName, true, 63, patModelName, nil)
	if err := v.Err(); err != nil {
		return nil, err
	}
	r, err := s.db.get(ctx, "models", strings.ToLower(*req.ModelName))
	if errors.Is(err, errNotFound) {
		return nil, s.modelNotFound(*req.ModelName)
	}
	if err != nil {
		return nil, err
	}
	out, err := echo(r.Spec)
	if err != nil {
		return nil, err
	}
	out["ModelName"], out["ModelArn"], out["CreationTime"] = r.Name, r.ARN, unix(r.Created)
	if _, ok := out["EnableNetworkIsolation"]; !ok {
		out["EnableNetworkIsolation"] = false
	}
	return out, nil
}

func (s *Service) deleteModel(ctx context.Context, body []byte) (any, error) {
	var req nameRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.str("modelName", req.ModelName, true, 63, patModelName, nil)
	if err := v.Err(); err != nil {
		return nil, err
	}
	// As on SageMaker, endpoints already serving the model keep it: they loaded their own copy.
	if err := s.db.remove(ctx, "models", strings.ToLower(*req.ModelName)); errors.Is(err, errNotFound) {
		return nil, s.modelNotFound(*req.ModelName)
	} else if err != nil {
		return nil, err
	}
	s.dropTags(ctx, s.arn("model", *req.ModelName))
	return nil, nil
}

func (s *Service) listModels(ctx context.Context, body []byte) (any, error) {
	q, err := parseList(body, modelSortKeys, false)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.list(ctx, "models")
	if err != nil {
		return nil, err
	}
	items := make([]listItem, len(rows))
	for i, r := range rows {
		items[i] = listItem{name: r.Name, created: r.Created, summary: map[string]any{
			"ModelName": r.Name, "ModelArn": r.ARN, "CreationTime": unix(r.Created)}}
	}
	page, next, err := q.apply(items)
	if err != nil {
		return nil, err
	}
	return listOutput("Models", page, next), nil
}

// withoutMembers returns a JSON object without the given members (what Describe echoes back).
func parseFormat(s string) (serving.PromptFormat, error) { return serving.ParsePromptFormat(s) }

func withoutMembers(body []byte, drop ...string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, awserr.Validation("The request body is not a JSON object.")
	}
	for _, k := range drop {
		delete(m, k)
	}
	return json.Marshal(m)
}

func echo(spec json.RawMessage) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(spec, &m); err != nil {
		return nil, fmt.Errorf("stored request: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}
