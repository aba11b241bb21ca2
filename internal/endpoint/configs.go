package endpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/coral"
)

type productionVariant struct {
	VariantName          *string  `json:"VariantName"`
	ModelName            *string  `json:"ModelName"`
	InitialInstanceCount *int64   `json:"InitialInstanceCount"`
	InstanceType         *string  `json:"InstanceType"`
	InitialVariantWeight *float64 `json:"InitialVariantWeight"`
	ServerlessConfig     *struct {
		MemorySizeInMB *int64 `json:"MemorySizeInMB"`
		MaxConcurrency *int64 `json:"MaxConcurrency"`
	} `json:"ServerlessConfig"`
	VolumeSizeInGB                              *int64 `json:"VolumeSizeInGB"`
	ModelDataDownloadTimeoutInSeconds           *int64 `json:"ModelDataDownloadTimeoutInSeconds"`
	ContainerStartupHealthCheckTimeoutInSeconds *int64 `json:"ContainerStartupHealthCheckTimeoutInSeconds"`
}

type createConfigRequest struct {
	EndpointConfigName *string             `json:"EndpointConfigName"`
	ProductionVariants []productionVariant `json:"ProductionVariants"`
	Tags               []tag               `json:"Tags"`
	KmsKeyID           *string             `json:"KmsKeyId"`
	ExecutionRoleArn   *string             `json:"ExecutionRoleArn"`
}

func (s *Service) configNotFound(name string) error {
	return awserr.Validation("Could not find endpoint configuration %q.", s.arn("endpoint-config", name))
}

func (s *Service) createEndpointConfig(ctx context.Context, body []byte) (any, error) {
	var req createConfigRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.str("endpointConfigName", req.EndpointConfigName, true, 63, patEndpoint, nil)
	if req.ProductionVariants == nil {
		v.Missing("productionVariants")
	} else {
		v.listLen("productionVariants", len(req.ProductionVariants), 1, 10)
	}
	for i, pv := range req.ProductionVariants {
		p := fmt.Sprintf("productionVariants.%d.member", i+1)
		v.str(p+".variantName", pv.VariantName, true, 63, patEndpoint, nil)
		v.str(p+".modelName", pv.ModelName, false, 63, patModelName, nil)
		v.intRange(p+".initialInstanceCount", pv.InitialInstanceCount, 1, 0)
		v.str(p+".instanceType", pv.InstanceType, false, 0, nil, instanceTypes)
		if w := pv.InitialVariantWeight; w != nil && *w < 0 {
			v.Add(p+".initialVariantWeight", coral.Quote(fmt.Sprint(*w)), "Member must have value greater than or equal to 0")
		}
		if sc := pv.ServerlessConfig; sc != nil {
			v.intRange(p+".serverlessConfig.memorySizeInMB", sc.MemorySizeInMB, 1024, 6144)
			// Serverless memory comes in 1 GiB steps: the range alone lets 1500 through.
			if m := sc.MemorySizeInMB; m != nil && *m >= 1024 && *m <= 6144 && *m%1024 != 0 {
				v.Add(p+".serverlessConfig.memorySizeInMB", coral.Quote(fmt.Sprint(*m)), "Member must satisfy enum value set: [1024, 2048, 3072, 4096, 5120, 6144]")
			}
			v.intRange(p+".serverlessConfig.maxConcurrency", sc.MaxConcurrency, 1, 200)
		}
		v.intRange(p+".volumeSizeInGB", pv.VolumeSizeInGB, 1, 512)
		v.intRange(p+".modelDataDownloadTimeoutInSeconds", pv.ModelDataDownloadTimeoutInSeconds, 60, 3600)
		v.intRange(p+".containerStartupHealthCheckTimeoutInSeconds", pv.ContainerStartupHealthCheckTimeoutInSeconds, 60, 3600)
	}
	v.str("kmsKeyId", req.KmsKeyID, false, 2048, patKMS, nil)
	v.str("executionRoleArn", req.ExecutionRoleArn, false, 2048, patRoleARN, nil)
	v.tags(req.Tags)
	if err := v.Err(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, pv := range req.ProductionVariants {
		name := strings.ToLower(*pv.VariantName)
		if seen[name] {
			return nil, awserr.Validation("Variant name %s appears more than once in ProductionVariants: variant names must be unique.", *pv.VariantName)
		}
		seen[name] = true
		if pv.ModelName == nil {
			return nil, awserr.Validation("Variant %s names no ModelName: Lathe serves production variants that name a model.", *pv.VariantName)
		}
		if pv.InstanceType == nil && pv.ServerlessConfig == nil {
			return nil, awserr.Validation("Variant %s: give an InstanceType or a ServerlessConfig.", *pv.VariantName)
		}
		if _, err := s.db.get(ctx, "models", strings.ToLower(*pv.ModelName)); errors.Is(err, errNotFound) {
			return nil, s.modelNotFound(*pv.ModelName)
		} else if err != nil {
			return nil, err
		}
	}
	spec, err := withoutMembers(body, "EndpointConfigName", "Tags")
	if err != nil {
		return nil, err
	}
	name := *req.EndpointConfigName
	arn := s.arn("endpoint-config", name)
	if err := s.db.insert(ctx, "endpoint_configs", strings.ToLower(name), row{Name: name, ARN: arn, Created: s.now(), Spec: spec}); err != nil {
		if errors.Is(err, errExists) {
			return nil, awserr.Validation("Cannot create already existing endpoint configuration %q.", arn)
		}
		return nil, err
	}
	if err := s.addTags(ctx, arn, req.Tags); err != nil {
		return nil, err
	}
	return map[string]any{"EndpointConfigArn": arn}, nil
}

func (s *Service) configName(body []byte) (string, error) {
	var req nameRequest
	if err := decode(body, &req); err != nil {
		return "", err
	}
	v := &violations{}
	v.str("endpointConfigName", req.EndpointConfigName, true, 63, patEndpoint, nil)
	if err := v.Err(); err != nil {
		return "", err
	}
	return *req.EndpointConfigName, nil
}

func (s *Service) describeEndpointConfig(ctx context.Context, body []byte) (any, error) {
	name, err := s.configName(body)
	if err != nil {
		return nil, err
	}
	r, err := s.db.get(ctx, "endpoint_configs", strings.ToLower(name))
	if errors.Is(err, errNotFound) {
		return nil, s.configNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	out, err := echo(r.Spec)
	if err != nil {
		return nil, err
	}
	if pvs, ok := out["ProductionVariants"].([]any); ok {
		for _, pv := range pvs {
			if m, ok := pv.(map[string]any); ok {
				if _, ok := m["InitialVariantWeight"]; !ok {
					m["InitialVariantWeight"] = 1.0
				}
			}
		}
	}
	out["EndpointConfigName"], out["EndpointConfigArn"], out["CreationTime"] = r.Name, r.ARN, unix(r.Created)
	return out, nil
}

func (s *Service) deleteEndpointConfig(ctx context.Context, body []byte) (any, error) {
	name, err := s.configName(body)
	if err != nil {
		return nil, err
	}
	// As on SageMaker, an endpoint created from the config keeps running: it holds its own copy.
	if err := s.db.remove(ctx, "endpoint_configs", strings.ToLower(name)); errors.Is(err, errNotFound) {
		return nil, s.configNotFound(name)
	} else if err != nil {
		return nil, err
	}
	s.dropTags(ctx, s.arn("endpoint-config", name))
	return nil, nil
}

func (s *Service) listEndpointConfigs(ctx context.Context, body []byte) (any, error) {
	q, err := parseList(body, configSortKeys, false)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.list(ctx, "endpoint_configs")
	if err != nil {
		return nil, err
	}
	items := make([]listItem, len(rows))
	for i, r := range rows {
		items[i] = listItem{name: r.Name, created: r.Created, summary: map[string]any{
			"EndpointConfigName": r.Name, "EndpointConfigArn": r.ARN, "CreationTime": unix(r.Created)}}
	}
	page, next, err := q.apply(items)
	if err != nil {
		return nil, err
	}
	return listOutput("EndpointConfigs", page, next), nil
}
