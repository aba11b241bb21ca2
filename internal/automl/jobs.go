package automl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/coral"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/store"
)

func (s *Service) describeAutoMLJobV2(ctx context.Context, body []byte) (any, error) {
	var req jobNameRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := validateJobName(req.AutoMLJobName); err != nil {
		return nil, err
	}
	j, err := s.getJob(ctx, *req.AutoMLJobName)
	if err != nil {
		return nil, err
	}
	return s.describe(j)
}

func (s *Service) describe(j *store.Job) (*describeResponse, error) {
	req, err := s.requests.decode(j.Request)
	if err != nil {
		return nil, fmt.Errorf("decode stored request of job %s: %w", j.Name, err)
	}
	tg := req.AutoMLProblemTypeConfig.TextGenerationJobConfig
	out := &describeResponse{
		AutoMLJobName:               j.Name,
		AutoMLJobArn:                j.ARN,
		AutoMLJobInputDataConfig:    req.AutoMLJobInputDataConfig,
		OutputDataConfig:            req.OutputDataConfig,
		RoleArn:                     req.RoleArn,
		AutoMLJobObjective:          req.AutoMLJobObjective,
		AutoMLProblemTypeConfig:     req.AutoMLProblemTypeConfig,
		AutoMLProblemTypeConfigName: "TextGeneration",
		CreationTime:                epochTime(j.Created),
		EndTime:                     epochTime(j.Ended),
		LastModifiedTime:            epochTime(j.Modified),
		FailureReason:               j.FailureReason,
		AutoMLJobStatus:             j.Status,
		AutoMLJobSecondaryStatus:    j.Secondary,
		ModelDeployConfig:           req.ModelDeployConfig,
		DataSplitConfig:             req.DataSplitConfig,
		SecurityConfig:              req.SecurityConfig,
		ResolvedAttributes: &resolvedAttributes{
			CompletionCriteria: resolvedCompletion(tg.CompletionCriteria),
			AutoMLProblemTypeResolvedAttributes: &problemTypeResolvedAttributes{
				TextGenerationResolvedAttributes: &textGenerationResolvedAttributes{BaseModelName: str(tg.BaseModelName)},
			},
		},
	}
	if j.Status == store.StatusInProgress || j.Status == store.StatusStopping {
		out.TrainingProgress = j.Progress
	}
	c, res, err := s.candidateOf(j)
	if err != nil {
		return nil, err
	}
	if c != nil {
		out.BestCandidate = c
		if res.EndpointName != "" && res.DeployError == "" {
			out.ModelDeployResult = &modelDeployResult{EndpointName: res.EndpointName}
		}
	}
	return out, nil
}

func resolvedCompletion(cc *completionCriteria) *completionCriteria {
	r := &completionCriteria{MaxCandidates: ptr(int32(1)), MaxRuntimePerTrainingJobInSeconds: ptr(int32(defaultMaxRuntimePerJob))}
	if cc != nil {
		if cc.MaxRuntimePerTrainingJobInSeconds != nil {
			r.MaxRuntimePerTrainingJobInSeconds = cc.MaxRuntimePerTrainingJobInSeconds
		}
		r.MaxAutoMLJobRuntimeInSeconds = cc.MaxAutoMLJobRuntimeInSeconds
	}
	return r
}

// candidateOf builds the job's one candidate from its result; nil before the job has one.
func (s *Service) candidateOf(j *store.Job) (*candidate, *job.Result, error) {
	if len(j.Result) == 0 {
		return nil, nil, nil
	}
	var res job.Result
	if err := json.Unmarshal(j.Result, &res); err != nil {
		return nil, nil, fmt.Errorf("decode stored result of job %s: %w", j.Name, err)
	}
	containers := []inferenceContainer{{Image: res.Image, ModelDataUrl: res.ModelDataURL, Environment: res.Environment}}
	c := &candidate{
		CandidateName:   res.CandidateName,
		ObjectiveStatus: "Succeeded",
		CandidateSteps: []candidateStep{{
			CandidateStepType: "AWS::SageMaker::TrainingJob",
			CandidateStepArn:  s.arn("training-job", res.TrainingJobName),
			CandidateStepName: res.TrainingJobName,
		}},
		CandidateStatus:               store.StatusCompleted,
		InferenceContainers:           containers,
		InferenceContainerDefinitions: map[string][]inferenceContainer{"CPU": containers},
		CreationTime:                  epochTime(j.Created),
		EndTime:                       epochTime(j.Ended),
		LastModifiedTime:              epochTime(j.Modified),
	}
	if len(res.Metrics) > 0 {
		props := &candidateProperties{}
		for _, m := range res.Metrics {
			props.CandidateMetrics = append(props.CandidateMetrics, metricDatum{StandardMetricName: m.Name, Value: m.Value, Set: m.Set})
		}
		c.CandidateProperties = props
	}
	return c, &res, nil
}

func (s *Service) listAutoMLJobs(ctx context.Context, body []byte) (any, error) {
	var req listJobsRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.checkString("nameContains", req.NameContains, false, strRule{max: 63, pat: patNameContains})
	v.checkString("statusEquals", req.StatusEquals, false, strRule{enum: enumJobStatus})
	v.checkString("sortOrder", req.SortOrder, false, strRule{enum: enumSortOrder})
	v.checkString("sortBy", req.SortBy, false, strRule{enum: []string{"Name", "CreationTime", "Status"}})
	v.checkInt("maxResults", req.MaxResults, false, i32(1), i32(100))
	v.checkString("nextToken", req.NextToken, false, strRule{max: 8192, pat: patNextToken})
	if err := v.Err(); err != nil {
		return nil, err
	}
	q := store.JobQuery{
		NameContains:   str(req.NameContains),
		Status:         str(req.StatusEquals),
		CreatedAfter:   timeOf(req.CreationTimeAfter),
		CreatedBefore:  timeOf(req.CreationTimeBefore),
		ModifiedAfter:  timeOf(req.LastModifiedTimeAfter),
		ModifiedBefore: timeOf(req.LastModifiedTimeBefore),
		SortBy:         store.SortByName,
		Descending:     req.SortOrder == nil || *req.SortOrder == "Descending",
		After:          str(req.NextToken),
		Limit:          10,
	}
	if req.SortBy != nil {
		q.SortBy = *req.SortBy
	}
	if req.MaxResults != nil {
		q.Limit = int(*req.MaxResults)
	}
	page, err := s.store.ListJobs(ctx, q)
	if errors.Is(err, store.ErrBadCursor) {
		return nil, awserr.Validation("Invalid pagination token: NextToken must come from the previous ListAutoMLJobs response, with the same filters and sort.")
	}
	if err != nil {
		return nil, err
	}
	out := &listJobsResponse{AutoMLJobSummaries: []jobSummary{}, NextToken: page.Next}
	for _, j := range page.Jobs {
		out.AutoMLJobSummaries = append(out.AutoMLJobSummaries, jobSummary{
			AutoMLJobName: j.Name, AutoMLJobArn: j.ARN, AutoMLJobStatus: j.Status, AutoMLJobSecondaryStatus: j.Secondary,
			CreationTime: epochTime(j.Created), EndTime: epochTime(j.Ended), LastModifiedTime: epochTime(j.Modified),
			FailureReason: j.FailureReason,
		})
	}
	return out, nil
}

var (
	patNameContains = coral.NewPattern(`[a-zA-Z0-9\-]+`)
	patNextToken    = coral.NewPattern(`.*`)
	enumSortOrder   = []string{"Ascending", "Descending"}
)

func timeOf(t *epochTime) time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Time(*t)
}

// stopAutoMLJob asks for a stop: the job goes to Stopping, and its worker cancels the work and moves
// it to Stopped. Stopping a job that is already Stopping is a no-op; stopping a finished job is a
// ValidationException, since there is nothing left to stop (SageMaker answers the same way for
// training jobs that are no longer in progress).
func (s *Service) stopAutoMLJob(ctx context.Context, body []byte) (any, error) {
	var req jobNameRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := validateJobName(req.AutoMLJobName); err != nil {
		return nil, err
	}
	name := *req.AutoMLJobName
	j, err := s.store.RequestStop(ctx, name, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, jobNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	if j.Status != store.StatusStopping {
		return nil, awserr.Validation("The AutoML job %s cannot be stopped because its status is %s; only an InProgress job can be stopped.", j.Name, j.Status)
	}
	if s.notifier != nil {
		s.notifier.StopRequested(j.Name)
	}
	return &empty{}, nil
}

func (s *Service) listCandidatesForAutoMLJob(ctx context.Context, body []byte) (any, error) {
	var req listCandidatesRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.checkString("autoMLJobName", req.AutoMLJobName, true, strRule{min: 1, max: 32, pat: patJobName})
	v.checkString("statusEquals", req.StatusEquals, false, strRule{enum: enumJobStatus})
	v.checkString("candidateNameEquals", req.CandidateNameEquals, false, strRule{min: 1, max: 64})
	v.checkString("sortOrder", req.SortOrder, false, strRule{enum: enumSortOrder})
	v.checkString("sortBy", req.SortBy, false, strRule{enum: []string{"CreationTime", "Status", "FinalObjectiveMetricValue"}})
	v.checkInt("maxResults", req.MaxResults, false, i32(1), i32(300))
	v.checkString("nextToken", req.NextToken, false, strRule{max: 8192, pat: patNextToken})
	if err := v.Err(); err != nil {
		return nil, err
	}
	j, err := s.getJob(ctx, *req.AutoMLJobName)
	if err != nil {
		return nil, err
	}
	if req.NextToken != nil {
		// A text-generation job has one candidate, so no response ever carries a NextToken.
		return nil, awserr.Validation("Invalid pagination token: NextToken must come from the previous ListCandidatesForAutoMLJob response.")
	}
	out := &listCandidatesResponse{Candidates: []candidate{}}
	c, _, err := s.candidateOf(j)
	if err != nil {
		return nil, err
	}
	if c != nil && (req.StatusEquals == nil || *req.StatusEquals == c.CandidateStatus) &&
		(req.CandidateNameEquals == nil || *req.CandidateNameEquals == c.CandidateName) {
		out.Candidates = append(out.Candidates, *c)
	}
	return out, nil
}
