package automl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/store"
)

func TestDescribeEchoesAndResolves(t *testing.T) {
	created := time.Date(2026, 3, 4, 5, 6, 7, 250e6, time.UTC)
	e := newEnv(t, automl.Config{Region: "eu-west-1", AccountID: "111122223333", Now: func() time.Time { return created }})
	out := e.mustCall(t, "CreateAutoMLJobV2", edit(t, sampleRequest, change{"AutoMLJobName", "Demo-Job"}))
	wantARN := "arn:aws:sagemaker:eu-west-1:111122223333:automl-job/demo-job"
	if out["AutoMLJobArn"] != wantARN {
		t.Fatalf("ARN = %v, want %s", out["AutoMLJobArn"], wantARN)
	}
	d := e.mustCall(t, "DescribeAutoMLJobV2", `{"AutoMLJobName":"demo-JOB"}`)
	want := map[string]any{
		"AutoMLJobName":                              "Demo-Job",
		"AutoMLJobArn":                               wantARN,
		"AutoMLJobStatus":                            "InProgress",
		"AutoMLJobSecondaryStatus":                   "Starting",
		"AutoMLProblemTypeConfigName":                "TextGeneration",
		"CreationTime":                               1772600767.25,
		"LastModifiedTime":                           1772600767.25,
		"RoleArn":                                    "arn:aws:iam::123456789012:role/r",
		"OutputDataConfig.S3OutputPath":              "s3://b/out/",
		"DataSplitConfig.ValidationFraction":         0.1,
		"ModelDeployConfig.AutoGenerateEndpointName": true,
		"AutoMLJobInputDataConfig.0.ChannelType":     "training",
		"AutoMLJobInputDataConfig.0.DataSource.S3DataSource.S3Uri":                                              "s3://b/train/",
		"AutoMLProblemTypeConfig.TextGenerationJobConfig.BaseModelName":                                         "Llama2-7B",
		"AutoMLProblemTypeConfig.TextGenerationJobConfig.ModelAccessConfig.AcceptEula":                          true,
		"AutoMLProblemTypeConfig.TextGenerationJobConfig.TextGenerationHyperParameters.epochCount":              "3",
		"AutoMLProblemTypeConfig.TextGenerationJobConfig.CompletionCriteria.MaxAutoMLJobRuntimeInSeconds":       3600.0,
		"ResolvedAttributes.CompletionCriteria.MaxCandidates":                                                   1.0,
		"ResolvedAttributes.CompletionCriteria.MaxRuntimePerTrainingJobInSeconds":                               3000.0,
		"ResolvedAttributes.CompletionCriteria.MaxAutoMLJobRuntimeInSeconds":                                    3600.0,
		"ResolvedAttributes.AutoMLProblemTypeResolvedAttributes.TextGenerationResolvedAttributes.BaseModelName": "Llama2-7B",
	}
	for path, v := range want {
		if got := get(t, d, path); got != v {
			t.Errorf("%s = %#v, want %#v", path, got, v)
		}
	}
	for _, absent := range []string{"EndTime", "FailureReason", "BestCandidate", "ModelDeployResult", "PartialFailureReasons", "Tags", "AutoMLJobObjective", "TrainingProgress"} {
		if _, ok := d[absent]; ok {
			t.Errorf("%s present in a new job's description: %v", absent, d[absent])
		}
	}
}

func TestDescribeResolvesDefaults(t *testing.T) {
	e := newEnv(t, automl.Config{})
	e.mustCall(t, "CreateAutoMLJobV2", `{"AutoMLJobName":"m","AutoMLJobInputDataConfig":[{"DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/t"}}}],`+
		`"OutputDataConfig":{"S3OutputPath":"s3://b/o"},"RoleArn":"arn:aws:iam::123456789012:role/r",`+
		`"AutoMLProblemTypeConfig":{"TextGenerationJobConfig":{"BaseModelName":"Stories260K"}}}`)
	d := e.mustCall(t, "DescribeAutoMLJobV2", `{"AutoMLJobName":"m"}`)
	for path, v := range map[string]any{
		"AutoMLJobInputDataConfig.0.ChannelType":                                                                "training",
		"AutoMLJobInputDataConfig.0.ContentType":                                                                "text/csv;header=present",
		"AutoMLJobInputDataConfig.0.CompressionType":                                                            "None",
		"DataSplitConfig.ValidationFraction":                                                                    0.2,
		"ResolvedAttributes.CompletionCriteria.MaxCandidates":                                                   1.0,
		"ResolvedAttributes.CompletionCriteria.MaxRuntimePerTrainingJobInSeconds":                               259200.0,
		"ResolvedAttributes.CompletionCriteria.MaxAutoMLJobRuntimeInSeconds":                                    nil,
		"ResolvedAttributes.AutoMLProblemTypeResolvedAttributes.TextGenerationResolvedAttributes.BaseModelName": "Stories260K",
		"ModelDeployConfig": nil,
		"AutoMLProblemTypeConfig.TextGenerationJobConfig.CompletionCriteria": nil, // not sent, so not echoed
	} {
		if got := get(t, d, path); got != v {
			t.Errorf("%s = %#v, want %#v", path, got, v)
		}
	}
	// The executor's spec carries the same resolution.
	j, err := e.store.GetJob(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	var spec job.Spec
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.BaseModel != "Stories260K" || spec.ValidationFraction != 0.2 || spec.MaxRuntimePerTrainingJob != 72*time.Hour ||
		len(spec.Channels) != 1 || spec.Channels[0] != (job.Channel{Type: "training", ContentType: "text/csv;header=present", S3URI: "s3://b/t", Compression: "None"}) ||
		spec.OutputPath != "s3://b/o" || spec.EndpointName != "" || spec.Name != "m" || !j.Deadline.IsZero() {
		t.Fatalf("spec = %+v", spec)
	}
}

func TestJobNotFound(t *testing.T) {
	e := newEnv(t, automl.Config{})
	for _, op := range []string{"DescribeAutoMLJobV2", "StopAutoMLJob", "ListCandidatesForAutoMLJob"} {
		_, err := e.call(t, op, `{"AutoMLJobName":"ghost"}`)
		if err == nil || err.Code != "ResourceNotFound" || err.Message != "Amazon SageMaker can't find an AutoML job called ghost." {
			t.Errorf("%s of a missing job: %v", op, err)
		}
	}
	for _, op := range []string{"AddTags", "ListTags", "DeleteTags"} {
		_, err := e.call(t, op, `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:automl-job/ghost","Tags":[],"TagKeys":["a"]}`)
		if err == nil || err.Code != "ResourceNotFound" || !strings.Contains(err.Message, "ghost") {
			t.Errorf("%s on a missing job: %v", op, err)
		}
	}
}

func TestNameValidationOfOtherOperations(t *testing.T) {
	e := newEnv(t, automl.Config{})
	cases := []struct{ op, body, want string }{
		{"DescribeAutoMLJobV2", `{}`, "Value null at 'autoMLJobName'"},
		{"DescribeAutoMLJobV2", `{"AutoMLJobName":"a_b"}`, "Value 'a_b' at 'autoMLJobName'"},
		{"StopAutoMLJob", `{"AutoMLJobName":""}`, "Value '' at 'autoMLJobName'"},
		{"ListCandidatesForAutoMLJob", `{}`, "Value null at 'autoMLJobName'"},
		{"ListCandidatesForAutoMLJob", `{"AutoMLJobName":"j","MaxResults":301}`, "Value '301' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 300"},
		{"ListCandidatesForAutoMLJob", `{"AutoMLJobName":"j","SortBy":"Name"}`, "Value 'Name' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [CreationTime, Status, FinalObjectiveMetricValue]"},
		{"ListCandidatesForAutoMLJob", `{"AutoMLJobName":"j","SortOrder":"Up"}`, "at 'sortOrder'"},
		{"ListCandidatesForAutoMLJob", `{"AutoMLJobName":"j","StatusEquals":"Done"}`, "at 'statusEquals'"},
		{"ListCandidatesForAutoMLJob", `{"AutoMLJobName":"j","CandidateNameEquals":""}`, "at 'candidateNameEquals'"},
		{"ListAutoMLJobs", `{"MaxResults":0}`, "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"ListAutoMLJobs", `{"MaxResults":101}`, "Member must have value less than or equal to 100"},
		{"ListAutoMLJobs", `{"SortBy":"EndTime"}`, "Value 'EndTime' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [Name, CreationTime, Status]"},
		{"ListAutoMLJobs", `{"SortOrder":"Down"}`, "enum value set: [Ascending, Descending]"},
		{"ListAutoMLJobs", `{"StatusEquals":"Running"}`, "enum value set: [Completed, InProgress, Failed, Stopped, Stopping]"},
		{"ListAutoMLJobs", `{"NameContains":"a_b"}`, `Value 'a_b' at 'nameContains' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9\-]+`},
		{"ListAutoMLJobs", `{"NextToken":"garbage"}`, "Invalid pagination token"},
		{"ListAutoMLJobs", `{"CreationTimeAfter":"yesterday"}`, "'creationTimeAfter': expected a timestamp"},
		{"AddTags", `{"Tags":[]}`, "Value null at 'resourceArn'"},
		{"AddTags", `{"ResourceArn":"arn:aws:s3:::b","Tags":[]}`, "Value 'arn:aws:s3:::b' at 'resourceArn'"},
		{"AddTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:endpoint/e","Tags":[{"Key":"a","Value":"b"}]}`, "cannot tag resources of type endpoint"},
		{"ListTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:automl-job/j","MaxResults":10}`, "Value '10' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 50"},
		{"DeleteTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:automl-job/j","TagKeys":[]}`, "at 'tagKeys' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"DeleteTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:automl-job/j","TagKeys":["a!"]}`, "Value 'a!' at 'tagKeys.1.member'"},
	}
	for _, tc := range cases {
		_, err := e.call(t, tc.op, tc.body)
		if err == nil || !strings.Contains(err.Message, tc.want) {
			t.Errorf("%s %s: %v, want a message containing %q", tc.op, tc.body, err, tc.want)
			continue
		}
		wantCode := "ValidationException"
		if strings.Contains(tc.want, "expected a timestamp") {
			wantCode = "SerializationException"
		}
		if err.Code != wantCode {
			t.Errorf("%s %s: code %s, want %s", tc.op, tc.body, err.Code, wantCode)
		}
	}
}

func TestListAutoMLJobs(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	e := newEnv(t, automl.Config{Now: func() time.Time { return now }})
	ctx := context.Background()
	type row struct {
		name    string
		created time.Time
		status  string
	}
	var rows []row
	const n = 240
	for i := range n {
		now = start.Add(time.Duration((i*37)%n) * time.Minute) // creation order differs from name order
		name := fmt.Sprintf("job-%03d", i)
		if i%4 == 0 {
			name = fmt.Sprintf("Exp-%03d", i)
		}
		e.mustCall(t, "CreateAutoMLJobV2", edit(t, sampleRequest, change{"AutoMLJobName", name}))
		status := "InProgress"
		if i%3 == 0 {
			now = now.Add(time.Second)
			if _, err := e.ops["StopAutoMLJob"](ctx, []byte(`{"AutoMLJobName":"`+name+`"}`)); err != nil {
				t.Fatal(err)
			}
			status = "Stopping"
		}
		rows = append(rows, row{name, start.Add(time.Duration((i*37)%n) * time.Minute), status})
	}
	lower := func(s string) string { return strings.ToLower(s) }
	epoch := func(t time.Time) string { return fmt.Sprint(float64(t.UnixMilli()) / 1000) }
	cases := []struct {
		name   string
		req    string
		keep   func(row) bool
		order  func(a, b row) int
		pageSz int
	}{
		{"defaults: name descending, 10 a page", `{}`, nil, func(a, b row) int { return strings.Compare(lower(b.name), lower(a.name)) }, 10},
		{"name ascending, contains (any case)", `{"SortOrder":"Ascending","NameContains":"EXP","MaxResults":7}`,
			func(r row) bool { return strings.Contains(lower(r.name), "exp") }, func(a, b row) int { return strings.Compare(lower(a.name), lower(b.name)) }, 7},
		{"creation time ascending, window", `{"SortBy":"CreationTime","SortOrder":"Ascending","MaxResults":100,"CreationTimeAfter":` + epoch(start.Add(30*time.Minute)) + `,"CreationTimeBefore":` + epoch(start.Add(200*time.Minute)) + `}`,
			func(r row) bool {
				return r.created.After(start.Add(30*time.Minute)) && r.created.Before(start.Add(200*time.Minute))
			}, func(a, b row) int { return a.created.Compare(b.created) }, 100},
		{"status filter, creation descending", `{"StatusEquals":"Stopping","SortBy":"CreationTime","MaxResults":33}`,
			func(r row) bool { return r.status == "Stopping" }, func(a, b row) int { return b.created.Compare(a.created) }, 33},
		{"sort by status ascending", `{"SortBy":"Status","SortOrder":"Ascending","MaxResults":50}`, nil, func(a, b row) int {
			if c := strings.Compare(a.status, b.status); c != 0 {
				return c
			}
			return strings.Compare(lower(a.name), lower(b.name))
		}, 50},
		{"modified after: only the stopped ones changed", `{"LastModifiedTimeAfter":` + epoch(start.Add(-time.Hour)) + `,"MaxResults":100,"StatusEquals":"InProgress","NameContains":"job-00"}`,
			func(r row) bool { return r.status == "InProgress" && strings.Contains(r.name, "job-00") }, func(a, b row) int { return strings.Compare(lower(b.name), lower(a.name)) }, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			sorted := slices.Clone(rows)
			slices.SortStableFunc(sorted, tc.order)
			for _, r := range sorted {
				if tc.keep == nil || tc.keep(r) {
					want = append(want, r.name)
				}
			}
			var got []string
			req := tc.req
			for {
				out := e.mustCall(t, "ListAutoMLJobs", req)
				sums := out["AutoMLJobSummaries"].([]any)
				if len(sums) > tc.pageSz {
					t.Fatalf("page of %d, MaxResults %d", len(sums), tc.pageSz)
				}
				for _, s := range sums {
					m := s.(map[string]any)
					got = append(got, m["AutoMLJobName"].(string))
					if m["AutoMLJobArn"] != "arn:aws:sagemaker:us-east-1:123456789012:automl-job/"+lower(m["AutoMLJobName"].(string)) {
						t.Fatalf("summary %v", m)
					}
				}
				tok, _ := out["NextToken"].(string)
				if tok == "" {
					break
				}
				req = edit(t, tc.req, change{"NextToken", tok})
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d %v\nwant %d %v", len(got), got[:min(len(got), 12)], len(want), want[:min(len(want), 12)])
			}
		})
	}
	// A token made for one query is refused by another.
	out := e.mustCall(t, "ListAutoMLJobs", `{"MaxResults":5}`)
	_, err := e.call(t, "ListAutoMLJobs", edit(t, `{"MaxResults":5,"SortOrder":"Ascending"}`, change{"NextToken", out["NextToken"]}))
	if err == nil || err.Code != "ValidationException" {
		t.Fatalf("token reused with another sort order: %v", err)
	}
	// A summary carries the timestamps as epoch seconds.
	out = e.mustCall(t, "ListAutoMLJobs", `{"SortBy":"CreationTime","SortOrder":"Ascending","MaxResults":1}`)
	if ct := get(t, out, "AutoMLJobSummaries.0.CreationTime").(float64); math.Abs(ct-float64(start.Unix())) > 1e-6 {
		t.Fatalf("first CreationTime %v, want %d", ct, start.Unix())
	}
	if page, err := e.store.ListJobs(ctx, store.JobQuery{Limit: 1000}); err != nil || len(page.Jobs) != n {
		t.Fatal(err)
	}
}

func TestStop(t *testing.T) {
	e := newEnv(t, automl.Config{})
	e.mustCall(t, "CreateAutoMLJobV2", sampleRequest)
	e.mustCall(t, "StopAutoMLJob", `{"AutoMLJobName":"J1"}`)
	d := e.mustCall(t, "DescribeAutoMLJobV2", `{"AutoMLJobName":"j1"}`)
	if d["AutoMLJobStatus"] != "Stopping" || d["AutoMLJobSecondaryStatus"] != "Stopping" {
		t.Fatalf("after stop: %v/%v", d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"])
	}
	e.mustCall(t, "StopAutoMLJob", `{"AutoMLJobName":"j1"}`) // stopping again is harmless
	// A finished job cannot be stopped.
	ctx := context.Background()
	claimed, cerr := e.store.ClaimJob(ctx, "w", time.Minute)
	if cerr != nil || claimed == nil {
		t.Fatal(claimed, cerr)
	}
	if err := e.store.FinishJob(ctx, claimed.Lease(), store.FinalState{Status: "Stopped", Secondary: "Stopped", Ended: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := e.call(t, "StopAutoMLJob", `{"AutoMLJobName":"j1"}`)
	if err == nil || err.Code != "ValidationException" || !strings.Contains(err.Message, "status is Stopped") {
		t.Fatalf("stop of a stopped job: %v", err)
	}
}

func TestTagOperations(t *testing.T) {
	e := newEnv(t, automl.Config{})
	e.mustCall(t, "CreateAutoMLJobV2", sampleRequest)
	arn := "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1"
	out := e.mustCall(t, "AddTags", `{"ResourceArn":"`+arn+`","Tags":[{"Key":"k","Value":"v2"},{"Key":"team","Value":"nlp"}]}`)
	if len(out["Tags"].([]any)) != 2 {
		t.Fatalf("AddTags output %v", out)
	}
	var keys []string
	for i := range 48 {
		keys = append(keys, fmt.Sprintf(`{"Key":"x%02d","Value":""}`, i))
	}
	e.mustCall(t, "AddTags", `{"ResourceArn":"`+arn+`","Tags":[`+strings.Join(keys, ",")+`]}`) // 50 in all
	_, err := e.call(t, "AddTags", `{"ResourceArn":"`+arn+`","Tags":[{"Key":"one-too-many","Value":""}]}`)
	if err == nil || err.Code != "ValidationException" || !strings.Contains(err.Message, "more than 50 tags") {
		t.Fatalf("51st tag: %v", err)
	}
	// Page through 50 tags.
	var got []string
	req := `{"ResourceArn":"` + arn + `","MaxResults":50}`
	first := e.mustCall(t, "ListTags", req)
	for _, tg := range first["Tags"].([]any) {
		got = append(got, tg.(map[string]any)["Key"].(string))
	}
	if _, more := first["NextToken"]; more || len(got) != 50 || got[0] != "k" || got[1] != "team" {
		t.Fatalf("ListTags: %d tags %v, next %v", len(got), got[:3], first["NextToken"])
	}
	if v := get(t, first, "Tags.0.Value"); v != "v2" {
		t.Fatalf("overwritten tag value = %v", v)
	}
	e.mustCall(t, "DeleteTags", `{"ResourceArn":"`+arn+`","TagKeys":["k","x00","absent"]}`)
	out = e.mustCall(t, "ListTags", `{"ResourceArn":"`+arn+`"}`)
	if n := len(out["Tags"].([]any)); n != 48 {
		t.Fatalf("after delete: %d tags", n)
	}
	_, err = e.call(t, "ListTags", `{"ResourceArn":"`+arn+`","NextToken":"!!"}`)
	if err == nil || err.Code != "ValidationException" {
		t.Fatalf("bad ListTags token: %v", err)
	}
	// ARNs of another account or region name nothing here.
	_, err = e.call(t, "ListTags", `{"ResourceArn":"arn:aws:sagemaker:us-west-2:123456789012:automl-job/j1"}`)
	if err == nil || err.Code != "ResourceNotFound" {
		t.Fatalf("other region: %v", err)
	}
}

func TestTagsOfOtherResources(t *testing.T) {
	endpoints := map[string]bool{"arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep": true}
	e := newEnv(t, automl.Config{TagResourceExists: func(_ context.Context, arn string) (bool, error) { return endpoints[arn], nil }})
	e.mustCall(t, "AddTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep","Tags":[{"Key":"a","Value":"b"}]}`)
	out := e.mustCall(t, "ListTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep"}`)
	if get(t, out, "Tags.0.Key") != "a" {
		t.Fatalf("endpoint tags: %v", out)
	}
	_, err := e.call(t, "ListTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:endpoint/nope"}`)
	if err == nil || err.Code != "ResourceNotFound" {
		t.Fatalf("missing endpoint: %v", err)
	}
}

func TestRestartKeepsJobsAndTags(t *testing.T) {
	e := newEnv(t, automl.Config{})
	e.mustCall(t, "CreateAutoMLJobV2", sampleRequest)
	e.mustCall(t, "StopAutoMLJob", `{"AutoMLJobName":"j1"}`)
	before := e.mustCall(t, "DescribeAutoMLJobV2", `{"AutoMLJobName":"j1"}`)
	e.store.Close()

	e2 := reopen(t, e.path)
	after := e2.mustCall(t, "DescribeAutoMLJobV2", `{"AutoMLJobName":"j1"}`)
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if string(b1) != string(b2) {
		t.Fatalf("description changed across restart:\n%s\n%s", b1, b2)
	}
	tags := e2.mustCall(t, "ListTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1"}`)
	if get(t, tags, "Tags.0.Key") != "k" {
		t.Fatalf("tags after restart: %v", tags)
	}
	if _, err := e2.call(t, "CreateAutoMLJobV2", sampleRequest); err == nil || err.Code != "ResourceInUse" {
		t.Fatalf("name reuse after restart: %v", err)
	}
}
