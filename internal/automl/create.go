package automl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/coral"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/store"
)

// Patterns and enums of the SageMaker model (botocore service-2.json), quoted as Coral quotes them.
var (
	patJobName      = coral.NewPattern(`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}`)
	patS3URI        = coral.NewPattern(`(https|s3)://([^/]+)/?(.*)`)
	patKmsKeyID     = coral.NewPattern(`[a-zA-Z0-9:/_-]*`)
	patRoleARN      = coral.NewPattern(`arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	patTag          = coral.NewPattern(`([\p{L}\p{Z}\p{N}_.:/=+\-@]*)`)
	patEndpointName = coral.NewPattern(`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`)
	patBaseModel    = coral.NewPattern(`[a-zA-Z0-9](-*[a-zA-Z0-9])*`)
	patHyperParam   = coral.NewPattern(`[a-zA-Z0-9._-]+`)
	patVpcID        = coral.NewPattern(`[-0-9a-zA-Z]+`)
	patContentType  = coral.NewPattern(`.*`)

	enumChannelType     = []string{"training", "validation"}
	enumCompressionType = []string{"None", "Gzip"}
	enumS3DataType      = []string{"ManifestFile", "S3Prefix", "AugmentedManifestFile"}
	enumMetricName      = []string{"Accuracy", "MSE", "F1", "F1macro", "AUC", "RMSE", "BalancedAccuracy", "R2",
		"Recall", "RecallMacro", "Precision", "PrecisionMacro", "MAE", "MAPE", "MASE", "WAPE",
		"AverageWeightedQuantileLoss"}
	enumJobStatus = []string{"Completed", "InProgress", "Failed", "Stopped", "Stopping"}
)

// Text-generation rules and defaults (reference §2, §6).
const (
	contentTypeCSV            = "text/csv;header=present"
	contentTypeParquet        = "x-application/vnd.amazon+parquet"
	defaultValidationFraction = 0.2
	defaultMaxRuntimePerJob   = 259200 // seconds (72 h)
	maxTagsPerResource        = 50
)

// hyperParameter is one TextGenerationHyperParameters key and its documented range.
type hyperParameter struct {
	integer  bool
	min, max float64
}

var hyperParameters = map[string]hyperParameter{
	"epochCount":              {integer: true, min: 1, max: 10},
	"batchSize":               {integer: true, min: 1, max: 64},
	"learningRate":            {integer: false, min: 0, max: 1},
	"learningRateWarmupSteps": {integer: true, min: 0, max: 250},
}

func (s *Service) createAutoMLJobV2(ctx context.Context, body []byte) (any, error) {
	var req createRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := validateCreateShape(&req); err != nil {
		return nil, err
	}
	if err := checkReservedKeys(req.Tags); err != nil {
		return nil, err
	}
	spec, err := s.resolve(&req)
	if err != nil {
		return nil, err
	}
	// A base model that the job could not get (not in the store, the hub unreachable) is refused now,
	// in the words the job would fail with a moment after it starts.
	if s.baseModelReady != nil {
		if err := s.baseModelReady(ctx, spec.BaseModel); err != nil {
			return nil, awserr.Validation("%s", err.Error())
		}
	}
	if err := s.secure(ctx, &req, spec); err != nil {
		return nil, err
	}
	now := s.now()
	name := *req.AutoMLJobName
	spec.Name = name
	spec.ARN = s.arn("automl-job", name)
	spec.CreationTime = now
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec of job %s: %w", name, err)
	}
	tags := make([]store.Tag, len(req.Tags))
	for i, t := range req.Tags {
		tags[i] = store.Tag{Key: *t.Key, Value: *t.Value}
	}
	req.Tags = nil // tags live in the tag table, where AddTags and DeleteTags change them
	reqJSON, err := json.Marshal(&req)
	if err != nil {
		return nil, fmt.Errorf("encode request of job %s: %w", name, err)
	}
	j := &store.Job{
		Name: name, ARN: spec.ARN, Request: reqJSON, Spec: specJSON,
		Status: store.StatusInProgress, Secondary: "Starting", Created: now, Modified: now,
	}
	if cc := req.AutoMLProblemTypeConfig.TextGenerationJobConfig.CompletionCriteria; cc != nil && cc.MaxAutoMLJobRuntimeInSeconds != nil {
		j.Deadline = now.Add(time.Duration(*cc.MaxAutoMLJobRuntimeInSeconds) * time.Second)
	}
	if err := s.store.CreateJob(ctx, j, tags); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, awserr.InUse("Resource Already Exists: Auto ML Job with name %s already exists. Choose a different name.", name)
		}
		return nil, err
	}
	if s.notifier != nil {
		s.notifier.JobCreated()
	}
	return &createResponse{AutoMLJobArn: spec.ARN}, nil
}

// validateCreateShape enforces the model's constraints (required members, lengths, patterns,
// ranges, enums, the union) and reports all failures at once, as SageMaker does.
func validateCreateShape(r *createRequest) error {
	v := &violations{}
	v.checkString("autoMLJobName", r.AutoMLJobName, true, strRule{min: 1, max: 32, pat: patJobName})

	v.checkLen("autoMLJobInputDataConfig", len(r.AutoMLJobInputDataConfig), r.AutoMLJobInputDataConfig != nil, true, 1, 2,
		func() string { return renderJSON(r.AutoMLJobInputDataConfig) })
	for i, c := range r.AutoMLJobInputDataConfig {
		p := func(m string) string { return item("autoMLJobInputDataConfig", i, m) }
		v.checkString(p("channelType"), c.ChannelType, false, strRule{enum: enumChannelType})
		v.checkString(p("contentType"), c.ContentType, false, strRule{max: 256, pat: patContentType})
		v.checkString(p("compressionType"), c.CompressionType, false, strRule{enum: enumCompressionType})
		if c.DataSource != nil {
			if c.DataSource.S3DataSource == nil {
				v.Missing(p("dataSource.s3DataSource"))
			} else {
				s3 := c.DataSource.S3DataSource
				v.checkString(p("dataSource.s3DataSource.s3DataType"), s3.S3DataType, true, strRule{enum: enumS3DataType})
				v.checkString(p("dataSource.s3DataSource.s3Uri"), s3.S3Uri, true, strRule{max: 1024, pat: patS3URI})
			}
		}
	}

	if r.OutputDataConfig == nil {
		v.Missing("outputDataConfig")
	} else {
		v.checkString("outputDataConfig.kmsKeyId", r.OutputDataConfig.KmsKeyId, false, strRule{max: 2048, pat: patKmsKeyID})
		v.checkString("outputDataConfig.s3OutputPath", r.OutputDataConfig.S3OutputPath, true, strRule{max: 1024, pat: patS3URI})
	}

	if r.AutoMLProblemTypeConfig == nil {
		v.Missing("autoMLProblemTypeConfig")
	} else if n := len(r.AutoMLProblemTypeConfig.set); n != 1 {
		v.Add("autoMLProblemTypeConfig", coral.Quote(strings.Join(r.AutoMLProblemTypeConfig.set, ", ")),
			fmt.Sprintf("Member must have exactly one member set (union); %d are set", n))
	} else if tg := r.AutoMLProblemTypeConfig.TextGenerationJobConfig; tg != nil {
		validateTextGenerationShape(v, tg)
	}

	v.checkString("roleArn", r.RoleArn, true, strRule{min: 20, max: 2048, pat: patRoleARN})
	validateTags(v, "tags", r.Tags)

	if sc := r.SecurityConfig; sc != nil {
		v.checkString("securityConfig.volumeKmsKeyId", sc.VolumeKmsKeyId, false, strRule{max: 2048, pat: patKmsKeyID})
		if vpc := sc.VpcConfig; vpc != nil {
			v.checkLen("securityConfig.vpcConfig.securityGroupIds", len(vpc.SecurityGroupIds), vpc.SecurityGroupIds != nil, true, 1, 5,
				func() string { return renderJSON(vpc.SecurityGroupIds) })
			for i, id := range vpc.SecurityGroupIds {
				v.checkStringValue(fmt.Sprintf("securityConfig.vpcConfig.securityGroupIds.%d.member", i+1), id, strRule{max: 32, pat: patVpcID})
			}
			v.checkLen("securityConfig.vpcConfig.subnets", len(vpc.Subnets), vpc.Subnets != nil, true, 1, 16,
				func() string { return renderJSON(vpc.Subnets) })
			for i, id := range vpc.Subnets {
				v.checkStringValue(fmt.Sprintf("securityConfig.vpcConfig.subnets.%d.member", i+1), id, strRule{max: 32, pat: patVpcID})
			}
		}
	}
	if o := r.AutoMLJobObjective; o != nil {
		v.checkString("autoMLJobObjective.metricName", o.MetricName, true, strRule{enum: enumMetricName})
	}
	if m := r.ModelDeployConfig; m != nil {
		v.checkString("modelDeployConfig.endpointName", m.EndpointName, false, strRule{max: 63, pat: patEndpointName})
	}
	if d := r.DataSplitConfig; d != nil {
		v.checkFloat("dataSplitConfig.validationFraction", d.ValidationFraction, 0, 1)
	}
	if c := r.AutoMLComputeConfig; c != nil && c.EmrServerlessComputeConfig != nil {
		v.checkString("autoMLComputeConfig.emrServerlessComputeConfig.executionRoleARN",
			c.EmrServerlessComputeConfig.ExecutionRoleARN, true, strRule{min: 20, max: 2048, pat: patRoleARN})
	}
	return v.Err()
}

func validateTextGenerationShape(v *violations, tg *textGenerationJobConfig) {
	const base = "autoMLProblemTypeConfig.textGenerationJobConfig"
	if cc := tg.CompletionCriteria; cc != nil {
		v.checkInt(base+".completionCriteria.maxCandidates", cc.MaxCandidates, false, i32(1), i32(750))
		v.checkInt(base+".completionCriteria.maxRuntimePerTrainingJobInSeconds", cc.MaxRuntimePerTrainingJobInSeconds, false, i32(1), nil)
		v.checkInt(base+".completionCriteria.maxAutoMLJobRuntimeInSeconds", cc.MaxAutoMLJobRuntimeInSeconds, false, i32(1), nil)
	}
	v.checkString(base+".baseModelName", tg.BaseModelName, false, strRule{min: 1, max: 256, pat: patBaseModel})
	hp := tg.TextGenerationHyperParameters
	v.checkLen(base+".textGenerationHyperParameters", len(hp), hp != nil, false, 0, 30, func() string { return renderJSON(hp) })
	for _, k := range sortedKeys(hp) {
		kv := &violations{}
		kv.checkStringValue("", k, strRule{max: 32, pat: patHyperParam})
		if kv.Len() > 0 {
			v.Add(base+".textGenerationHyperParameters", coral.Quote(k), "Map keys must satisfy constraint: ["+constraintsOf(k, strRule{max: 32, pat: patHyperParam})+"]")
		}
		if c := constraintsOf(hp[k], strRule{max: 16, pat: patHyperParam}); c != "" {
			v.Add(base+".textGenerationHyperParameters", coral.Quote(hp[k]), "Map value must satisfy constraint: ["+c+"]")
		}
	}
	if m := tg.ModelAccessConfig; m != nil && m.AcceptEula == nil {
		v.Missing(base + ".modelAccessConfig.acceptEula")
	}
}

// constraintsOf lists the constraints of r that s fails, as Coral lists them for map keys and values.
func constraintsOf(s string, r strRule) string {
	kv := &violations{}
	kv.checkStringValue("", s, r)
	var out []string
	for _, m := range kv.Messages() {
		_, c, _ := strings.Cut(m, "failed to satisfy constraint: ")
		out = append(out, c)
	}
	return strings.Join(out, ", ")
}

func validateTags(v *violations, path string, tags []tag) {
	v.checkLen(path, len(tags), tags != nil, false, 0, maxTagsPerResource, func() string { return renderJSON(tags) })
	for i, t := range tags {
		v.checkString(item(path, i, "key"), t.Key, true, strRule{min: 1, max: 128, pat: patTag})
		v.checkString(item(path, i, "value"), t.Value, true, strRule{max: 256, pat: patTag})
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func renderJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptr[T any](v T) *T { return &v }

// resolve applies the text-generation rules to a request that passed the shape checks, fills the
// defaults into the request (so Describe echoes them) and returns the executor's spec.
func (s *Service) resolve(r *createRequest) (*job.Spec, error) {
	if set := r.AutoMLProblemTypeConfig.set; set[0] != "TextGenerationJobConfig" {
		return nil, awserr.Validation("Lathe fine-tunes text generation models only: AutoMLProblemTypeConfig.%s is not supported; use TextGenerationJobConfig.", set[0])
	}
	tg := r.AutoMLProblemTypeConfig.TextGenerationJobConfig
	spec := &job.Spec{}

	// Channels.
	var training, validation int
	for i := range r.AutoMLJobInputDataConfig {
		c := &r.AutoMLJobInputDataConfig[i]
		at := fmt.Sprintf("AutoMLJobInputDataConfig[%d]", i)
		if c.ChannelType == nil {
			c.ChannelType = ptr("training")
		}
		if c.ContentType == nil {
			c.ContentType = ptr(contentTypeCSV)
		}
		if c.CompressionType == nil {
			c.CompressionType = ptr("None")
		}
		switch *c.ChannelType {
		case "training":
			training++
		case "validation":
			validation++
		}
		if ct := *c.ContentType; ct != contentTypeCSV && ct != contentTypeParquet {
			return nil, awserr.Validation("%s.ContentType '%s' is not supported for text generation: use '%s' or '%s'.", at, ct, contentTypeCSV, contentTypeParquet)
		}
		if c.DataSource == nil {
			return nil, awserr.Validation("%s.DataSource is required: give DataSource.S3DataSource with S3DataType S3Prefix and an S3Uri.", at)
		}
		s3 := c.DataSource.S3DataSource
		if *s3.S3DataType != "S3Prefix" {
			return nil, awserr.Validation("%s.DataSource.S3DataSource.S3DataType '%s' is not supported for text generation: only S3Prefix is.", at, *s3.S3DataType)
		}
		if !strings.HasPrefix(*s3.S3Uri, "s3://") || len(*s3.S3Uri) <= len("s3://") {
			return nil, awserr.Validation("%s.DataSource.S3DataSource.S3Uri '%s' must be an s3:// URI.", at, *s3.S3Uri)
		}
		// CompressionType is None or Gzip (the enum checks it), for CSV and Parquet alike.
		spec.Channels = append(spec.Channels, job.Channel{Type: *c.ChannelType, ContentType: *c.ContentType, S3URI: *s3.S3Uri,
			Compression: *c.CompressionType})
	}
	if training != 1 {
		return nil, awserr.Validation("AutoMLJobInputDataConfig must have exactly one channel with ChannelType training; it has %d.", training)
	}
	if validation > 1 {
		return nil, awserr.Validation("AutoMLJobInputDataConfig may have at most one channel with ChannelType validation; it has %d.", validation)
	}
	if len(spec.Channels) == 2 && spec.Channels[0].ContentType != spec.Channels[1].ContentType {
		return nil, awserr.Validation("The training and validation channels of AutoMLJobInputDataConfig must have the same ContentType; they have '%s' and '%s'.",
			spec.Channels[0].ContentType, spec.Channels[1].ContentType)
	}

	// Validation split.
	if validation == 1 {
		if r.DataSplitConfig != nil && r.DataSplitConfig.ValidationFraction != nil {
			return nil, awserr.Validation("DataSplitConfig.ValidationFraction cannot be used together with a validation channel: give one or the other.")
		}
	} else {
		if r.DataSplitConfig == nil {
			r.DataSplitConfig = &dataSplitConfig{}
		}
		if r.DataSplitConfig.ValidationFraction == nil {
			r.DataSplitConfig.ValidationFraction = ptr(defaultValidationFraction)
		}
		if f := *r.DataSplitConfig.ValidationFraction; f <= 0 || f >= 1 {
			return nil, awserr.Validation("DataSplitConfig.ValidationFraction must be greater than 0 and less than 1; it is %s.", strconv.FormatFloat(f, 'g', -1, 64))
		}
		spec.ValidationFraction = *r.DataSplitConfig.ValidationFraction
	}

	// Output.
	out := *r.OutputDataConfig.S3OutputPath
	if !strings.HasPrefix(out, "s3://") || len(out) <= len("s3://") {
		return nil, awserr.Validation("OutputDataConfig.S3OutputPath '%s' must be an s3:// URI.", out)
	}
	spec.OutputPath = out

	if r.AutoMLComputeConfig != nil {
		return nil, awserr.Validation("AutoMLComputeConfig applies to tabular and time-series jobs only; remove it for text generation.")
	}

	// Hyperparameters.
	for _, k := range sortedKeys(tg.TextGenerationHyperParameters) {
		val := tg.TextGenerationHyperParameters[k]
		hp, ok := hyperParameters[k]
		if !ok {
			return nil, awserr.Validation("TextGenerationHyperParameters: unknown hyperparameter '%s'; the allowed keys are batchSize, epochCount, learningRate and learningRateWarmupSteps.", k)
		}
		if err := checkHyperParameter(k, val, hp); err != nil {
			return nil, err
		}
	}
	spec.HyperParameters = tg.TextGenerationHyperParameters

	// Completion criteria. Their defaults show in ResolvedAttributes, so a request without
	// CompletionCriteria keeps none in its echo.
	cc := tg.CompletionCriteria
	if cc == nil {
		cc = &completionCriteria{}
	}
	if cc.MaxCandidates != nil && *cc.MaxCandidates != 1 {
		return nil, awserr.Validation("TextGenerationJobConfig.CompletionCriteria.MaxCandidates must be 1 for text generation; it is %d.", *cc.MaxCandidates)
	}
	perJob := int32(defaultMaxRuntimePerJob)
	if cc.MaxRuntimePerTrainingJobInSeconds != nil {
		perJob = *cc.MaxRuntimePerTrainingJobInSeconds
	}
	spec.MaxRuntimePerTrainingJob = time.Duration(perJob) * time.Second

	// Deployment.
	if m := r.ModelDeployConfig; m != nil {
		auto := m.AutoGenerateEndpointName != nil && *m.AutoGenerateEndpointName
		switch {
		case auto && m.EndpointName != nil:
			return nil, awserr.Validation("ModelDeployConfig: EndpointName must not be given when AutoGenerateEndpointName is true.")
		case auto:
			// The endpoint name is derived from the job name (at most 32 characters, so it fits the
			// 63 of an endpoint name). SageMaker's own scheme is undocumented.
			spec.EndpointName = *r.AutoMLJobName + "-endpoint"
		case m.EndpointName != nil:
			spec.EndpointName = *m.EndpointName
		default:
			return nil, awserr.Validation("ModelDeployConfig: give EndpointName, or set AutoGenerateEndpointName to true.")
		}
	}

	// Base model.
	if tg.BaseModelName == nil {
		tg.BaseModelName = ptr(catalog.DefaultModel)
	}
	if err := s.checkBaseModel(*tg.BaseModelName, tg.ModelAccessConfig); err != nil {
		return nil, err
	}
	spec.BaseModel = *tg.BaseModelName
	return spec, nil
}

func checkHyperParameter(key, val string, hp hyperParameter) error {
	kind := "a number"
	if hp.integer {
		kind = "an integer"
	}
	bad := func() error {
		return awserr.Validation("TextGenerationHyperParameters: %s must be %s from %s to %s; it is '%s'.", key, kind,
			strconv.FormatFloat(hp.min, 'g', -1, 64), strconv.FormatFloat(hp.max, 'g', -1, 64), val)
	}
	var f float64
	if hp.integer {
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return bad()
		}
		f = float64(n)
	} else {
		x, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return bad()
		}
		f = x
	}
	if f < hp.min || f > hp.max {
		return bad()
	}
	return nil
}

// checkBaseModel accepts a catalog model or a model registered in the model store whose architecture
// the engine runs, with its licence accepted when it needs that.
func (s *Service) checkBaseModel(name string, access *modelAccessConfig) error {
	arch, needsEULA := "", false
	if m, ok := catalog.Lookup(name); ok {
		arch, needsEULA = m.Architecture, m.NeedsEULA
	} else if a, ok := s.lookupModel(name); ok {
		arch = a
	} else {
		return awserr.Validation("TextGenerationJobConfig.BaseModelName '%s' is not a supported base model. Supported models: %s.",
			name, strings.Join(catalog.Names(), ", "))
	}
	if needsEULA && (access == nil || access.AcceptEula == nil || !*access.AcceptEula) {
		return awserr.Validation("The base model %s requires accepting its end-user license agreement: set TextGenerationJobConfig.ModelAccessConfig.AcceptEula to true.", name)
	}
	if !catalog.Runnable(arch) {
		return awserr.Validation("TextGenerationJobConfig.BaseModelName '%s' has the %s architecture, which Lathe's engine cannot fine-tune yet (it runs %s). Models it can fine-tune: %s.",
			name, arch, strings.Join(catalog.SupportedArchitectures, ", "), strings.Join(runnableModels(), ", "))
	}
	return nil
}

func (s *Service) lookupModel(name string) (string, bool) {
	if s.registeredModel == nil {
		return "", false
	}
	return s.registeredModel(name)
}

func runnableModels() []string {
	var out []string
	for _, m := range catalog.All() {
		if catalog.Runnable(m.Architecture) {
			out = append(out, m.Name)
		}
	}
	return out
}
