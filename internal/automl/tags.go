package automl

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/coral"
	"github.com/lathe-ml/lathe/internal/store"
)

var patResourceARN = coral.NewPattern(`arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:.+`)

// resolveTagTarget checks that the ARN names an existing resource and returns the ARN under which
// its tags are stored (a job's own ARN, whatever the case the caller used).
func (s *Service) resolveTagTarget(ctx context.Context, arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	kind, name, _ := strings.Cut(parts[5], "/")
	if parts[3] != s.region || parts[4] != s.account {
		return "", awserr.NotFound("Amazon SageMaker can't find a resource with ARN %s: it is not in region %s of account %s.", arn, s.region, s.account)
	}
	if kind == "automl-job" {
		j, err := s.store.GetJob(ctx, name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(j.ARN, arn)) {
			return "", jobNotFound(name)
		}
		if err != nil {
			return "", err
		}
		return j.ARN, nil
	}
	if s.tagResourceExists == nil {
		return "", awserr.Validation("Lathe cannot tag resources of type %s (ARN %s).", kind, arn)
	}
	ok, err := s.tagResourceExists(ctx, arn)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", awserr.NotFound("Amazon SageMaker can't find a resource with ARN %s.", arn)
	}
	return arn, nil
}

func checkReservedKeys(tags []tag) error {
	for _, t := range tags {
		if strings.HasPrefix(strings.ToLower(*t.Key), "aws:") {
			return awserr.Validation("Tag key '%s' is not allowed: keys starting with 'aws:' are reserved for AWS use.", *t.Key)
		}
	}
	return nil
}

func (s *Service) addTags(ctx context.Context, body []byte) (any, error) {
	var req addTagsRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.checkString("resourceArn", req.ResourceArn, true, strRule{max: 256, pat: patResourceARN})
	if req.Tags == nil {
		v.Missing("tags")
	}
	validateTags(v, "tags", req.Tags)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := checkReservedKeys(req.Tags); err != nil {
		return nil, err
	}
	arn, err := s.resolveTagTarget(ctx, *req.ResourceArn)
	if err != nil {
		return nil, err
	}
	tags := make([]store.Tag, len(req.Tags))
	out := &tagsResponse{Tags: []tagOut{}}
	for i, t := range req.Tags {
		tags[i] = store.Tag{Key: *t.Key, Value: *t.Value}
		out.Tags = append(out.Tags, tagOut{Key: *t.Key, Value: *t.Value})
	}
	if err := s.store.AddTags(ctx, arn, tags, maxTagsPerResource); err != nil {
		if errors.Is(err, store.ErrTooManyTags) {
			return nil, awserr.Validation("Adding these tags would give %s more than %d tags.", *req.ResourceArn, maxTagsPerResource)
		}
		return nil, err
	}
	return out, nil
}

func (s *Service) listTags(ctx context.Context, body []byte) (any, error) {
	var req listTagsRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.checkString("resourceArn", req.ResourceArn, true, strRule{max: 256, pat: patResourceARN})
	v.checkString("nextToken", req.NextToken, false, strRule{max: 8192, pat: patNextToken})
	v.checkInt("maxResults", req.MaxResults, false, i32(50), nil)
	if err := v.Err(); err != nil {
		return nil, err
	}
	arn, err := s.resolveTagTarget(ctx, *req.ResourceArn)
	if err != nil {
		return nil, err
	}
	after := ""
	if req.NextToken != nil {
		b, err := base64.RawURLEncoding.DecodeString(*req.NextToken)
		if err != nil || len(b) == 0 {
			return nil, awserr.Validation("Invalid pagination token: NextToken must come from the previous ListTags response.")
		}
		after = string(b)
	}
	limit := 50
	if req.MaxResults != nil {
		limit = int(*req.MaxResults)
	}
	tags, more, err := s.store.ListTags(ctx, arn, after, limit)
	if err != nil {
		return nil, err
	}
	out := &tagsResponse{Tags: []tagOut{}}
	for _, t := range tags {
		out.Tags = append(out.Tags, tagOut(t))
	}
	if more {
		out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(tags[len(tags)-1].Key))
	}
	return out, nil
}

func (s *Service) deleteTags(ctx context.Context, body []byte) (any, error) {
	var req deleteTagsRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.checkString("resourceArn", req.ResourceArn, true, strRule{max: 256, pat: patResourceARN})
	v.checkLen("tagKeys", len(req.TagKeys), req.TagKeys != nil, true, 1, 50, func() string { return renderJSON(req.TagKeys) })
	for i, k := range req.TagKeys {
		v.checkStringValue(fmt.Sprintf("tagKeys.%d.member", i+1), k, strRule{min: 1, max: 128, pat: patTag})
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	arn, err := s.resolveTagTarget(ctx, *req.ResourceArn)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteTags(ctx, arn, req.TagKeys); err != nil {
		return nil, err
	}
	return &empty{}, nil
}
