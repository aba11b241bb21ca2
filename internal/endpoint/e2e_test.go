package endpoint_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

type tgiOut struct {
	GeneratedText string `json:"generated_text"`
	Details       *struct {
		FinishReason    string     `json:"finish_reason"`
		GeneratedTokens int        `json:"generated_tokens"`
		Seed            *uint64    `json:"seed"`
		Prefill         []tgiToken `json:"prefill"`
		Tokens          []tgiToken `json:"tokens"`
	} `json:"details"`
}

type tgiToken struct {
	ID      int32    `json:"id"`
	Text    string   `json:"text"`
	Logprob *float64 `json:"logprob"`
	Special bool     `json:"special"`
}

func invoke(t *testing.T, e *env, name, body string) ([]tgiOut, *sagemakerruntime.InvokeEndpointOutput) {
	t.Helper()
	out, err := e.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(name), ContentType: aws.String("application/json"), Body: []byte(body)})
	if err != nil {
		t.Fatalf("InvokeEndpoint %s: %v", body, err)
	}
	var res []tgiOut
	if err := json.Unmarshal(out.Body, &res); err != nil {
		t.Fatalf("response %s: %v", out.Body, err)
	}
	return res, out
}

// The hand-made path of a fine-tuned model: its artifact as a job writes it, CreateModel from the
// candidate's ModelDataUrl, the endpoint config, the endpoint; the waiters; invoke; delete.
func TestHostingLifecycleWithSDK(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	modelURL := e.artifact(t, "job1")
	e.deploy(t, "tuned", &types.ContainerDefinition{Image: aws.String("lathe/engine:llama"), ModelDataUrl: aws.String(modelURL),
		Environment: map[string]string{"HF_MODEL_ID": "/opt/ml/model"}})

	d, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("tuned")})
	if err != nil {
		t.Fatal(err)
	}
	if d.EndpointStatus != types.EndpointStatusInService || *d.EndpointArn != "arn:aws:sagemaker:us-east-1:123456789012:endpoint/tuned" ||
		*d.EndpointConfigName != "tuned-config" || len(d.ProductionVariants) != 1 || *d.ProductionVariants[0].VariantName != "AllTraffic" ||
		*d.ProductionVariants[0].CurrentInstanceCount != 1 || d.FailureReason != nil || d.CreationTime == nil {
		t.Errorf("DescribeEndpoint = %+v", d)
	}
	m, err := e.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("TUNED-model")})
	if err != nil {
		t.Fatal(err)
	}
	if *m.ModelName != "tuned-model" || *m.PrimaryContainer.ModelDataUrl != modelURL || m.PrimaryContainer.Environment["HF_MODEL_ID"] != "/opt/ml/model" {
		t.Errorf("DescribeModel = %+v", m)
	}
	c, err := e.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("tuned-config")})
	if err != nil {
		t.Fatal(err)
	}
	if pv := c.ProductionVariants[0]; pv.InstanceType != types.ProductionVariantInstanceTypeMlG512xlarge || *pv.InitialVariantWeight != 1 || *pv.ModelName != "tuned-model" {
		t.Errorf("DescribeEndpointConfig variant = %+v", pv)
	}

	// The model was trained on the plain template (metrics.json says Stories260K), so a TGI call
	// answers; greedy decoding is deterministic, and details follow TGI.
	res, out := invoke(t, e, "tuned", `{"inputs":"Tell me a story.","parameters":{"max_new_tokens":8,"details":true}}`)
	if len(res) != 1 || res[0].Details == nil || res[0].Details.GeneratedTokens == 0 || res[0].Details.GeneratedTokens > 8 ||
		res[0].Details.Seed != nil || *out.ContentType != "application/json" || *out.InvokedProductionVariant != "AllTraffic" {
		t.Errorf("InvokeEndpoint = %+v, content type %v, variant %v", res, aws.ToString(out.ContentType), aws.ToString(out.InvokedProductionVariant))
	}
	again, _ := invoke(t, e, "tuned", `{"inputs":"Tell me a story.","parameters":{"max_new_tokens":8}}`)
	if again[0].GeneratedText != res[0].GeneratedText || again[0].Details != nil {
		t.Errorf("greedy answers differ: %q then %q", res[0].GeneratedText, again[0].GeneratedText)
	}
	full, _ := invoke(t, e, "tuned", `{"inputs":"Tell me a story.","parameters":{"max_new_tokens":8,"return_full_text":true}}`)
	if full[0].GeneratedText != "Tell me a story."+res[0].GeneratedText {
		t.Errorf("return_full_text = %q", full[0].GeneratedText)
	}
	batch, _ := invoke(t, e, "tuned", `{"inputs":["Tell me a story.","Once upon a time"],"parameters":{"max_new_tokens":8}}`)
	if len(batch) != 2 || batch[0].GeneratedText != res[0].GeneratedText {
		t.Errorf("list inputs = %+v", batch)
	}

	// Lists see all three resources.
	lm, err := e.sm.ListModels(ctx, &sagemaker.ListModelsInput{NameContains: aws.String("tuned")})
	if err != nil || len(lm.Models) != 1 || *lm.Models[0].ModelName != "tuned-model" {
		t.Errorf("ListModels = %+v, %v", lm, err)
	}
	lc, err := e.sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{})
	if err != nil || len(lc.EndpointConfigs) != 1 {
		t.Errorf("ListEndpointConfigs = %+v, %v", lc, err)
	}
	le, err := e.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{StatusEquals: types.EndpointStatusInService})
	if err != nil || len(le.Endpoints) != 1 || le.Endpoints[0].EndpointStatus != types.EndpointStatusInService {
		t.Errorf("ListEndpoints = %+v, %v", le, err)
	}

	if _, err := e.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("tuned")}); err != nil {
		t.Fatal(err)
	}
	w := sagemaker.NewEndpointDeletedWaiter(e.sm, func(o *sagemaker.EndpointDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("tuned")}, time.Minute); err != nil {
		t.Fatalf("EndpointDeleted waiter: %v", err)
	}
	_, err = e.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("tuned"), Body: []byte(`{"inputs":"x"}`)})
	if code, msg := apiError(t, err); code != "ValidationError" || msg != "Endpoint tuned of account 123456789012 not found." {
		t.Errorf("invoke after delete: %s: %s", code, msg)
	}
}

// The README of Stories260K gives its greedy continuation of this sentence; an endpoint serving the
// base model with raw prompts must answer it, through the plain call and the stream.
func TestInvokeBaseModelMatchesReferenceAndStreams(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	e.deploy(t, "stories", baseModelContainer("raw"))
	const prompt = "Once upon a time, there was a little girl named Lily."
	const want = "She loved to play outside in the park."
	res, _ := invoke(t, e, "stories", `{"inputs":"`+prompt+`","parameters":{"max_new_tokens":16,"do_sample":false,"details":true}}`)
	if !strings.HasPrefix(strings.TrimSpace(res[0].GeneratedText), want) || res[0].Details.FinishReason != "length" {
		t.Errorf("generated %+v, want text starting %q", res[0], want)
	}
	// details list every generated token, its text (with its space) and log-probability, as TGI.
	d := res[0].Details
	var joined strings.Builder
	var detailLogprobs []float64
	for _, tk := range d.Tokens {
		joined.WriteString(tk.Text)
		if tk.Logprob == nil || *tk.Logprob > 0 || math.IsInf(*tk.Logprob, 0) || tk.Special {
			t.Errorf("details token %+v: want a finite log-probability <= 0 and not special", tk)
		} else {
			detailLogprobs = append(detailLogprobs, *tk.Logprob)
		}
	}
	if d.Prefill == nil || len(d.Prefill) != 0 || len(d.Tokens) != d.GeneratedTokens || joined.String() != res[0].GeneratedText {
		t.Errorf("details: prefill %v, %d tokens for %d generated, texts %q for %q", d.Prefill, len(d.Tokens), d.GeneratedTokens, joined.String(), res[0].GeneratedText)
	}

	out, err := e.rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("stories"), ContentType: aws.String("application/json"),
		Body: []byte(`{"inputs":"` + prompt + `","parameters":{"max_new_tokens":16,"details":true},"stream":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.InvokedProductionVariant) != "AllTraffic" {
		t.Errorf("stream variant = %v", aws.ToString(out.InvokedProductionVariant))
	}
	var raw bytes.Buffer
	stream := out.GetStream()
	for ev := range stream.Events() {
		part, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart)
		if !ok {
			t.Fatalf("unexpected event %T", ev)
		}
		raw.Write(part.Value.Bytes)
	}
	if err := stream.Close(); err != nil || stream.Err() != nil {
		t.Fatalf("stream: %v %v", err, stream.Err())
	}
	// TGI's server-sent events: the tokens add up to the text, the last event carries it whole.
	var text strings.Builder
	var last map[string]any
	var streamLogprobs []float64
	for _, line := range strings.Split(raw.String(), "\n") {
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			t.Fatalf("stream line %q is not a data line", line)
		}
		if err := json.Unmarshal([]byte(data), &last); err != nil {
			t.Fatal(err)
		}
		tok := last["token"].(map[string]any)
		text.WriteString(tok["text"].(string))
		lp, _ := tok["logprob"].(float64)
		streamLogprobs = append(streamLogprobs, lp)
	}
	// Greedy both times: the stream's token log-probabilities are the details' (float32 on the wire).
	if len(streamLogprobs) != len(detailLogprobs) {
		t.Errorf("stream logprobs %v, details %v", streamLogprobs, detailLogprobs)
	}
	for i := range min(len(streamLogprobs), len(detailLogprobs)) {
		if math.Abs(streamLogprobs[i]-detailLogprobs[i]) > 1e-6 {
			t.Errorf("token %d: stream logprob %g, details %g", i, streamLogprobs[i], detailLogprobs[i])
		}
	}
	if text.String() != res[0].GeneratedText || last["generated_text"] != res[0].GeneratedText ||
		last["details"].(map[string]any)["finish_reason"] != "length" {
		t.Errorf("stream text %q, last event %v; want %q", text.String(), last, res[0].GeneratedText)
	}
}

// Errors as the SDKs and the waiters see them.
func TestHostingErrors(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	e.deploy(t, "ep1", baseModelContainer(""))
	arn := func(kind, name string) string { return "arn:aws:sagemaker:us-east-1:123456789012:" + kind + "/" + name }
	variant := func(model string, it types.ProductionVariantInstanceType) []types.ProductionVariant {
		return []types.ProductionVariant{{VariantName: aws.String("v1"), ModelName: aws.String(model), InstanceType: it, InitialInstanceCount: aws.Int32(1)}}
	}
	cases := []struct {
		name     string
		call     func() error
		code     string
		msg      string // exact, or prefix when it ends with "..."
		contains string
	}{
		{"describe missing endpoint", func() error {
			_, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Nope-Endpoint")})
			return err
		}, "ValidationException", `Could not find endpoint "` + arn("endpoint", "nope-endpoint") + `".`, ""},
		{"delete missing endpoint", func() error {
			_, err := e.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("nope")})
			return err
		}, "ValidationException", `Could not find endpoint "` + arn("endpoint", "nope") + `".`, ""},
		{"model with an unknown weights dtype", func() error {
			_, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("fp8-model"),
				PrimaryContainer: &types.ContainerDefinition{Environment: map[string]string{
					"LATHE_BASE_MODEL": "Stories260K", "LATHE_WEIGHTS_DTYPE": "fp8"}}})
			return err
		}, "ValidationException", "Environment LATHE_WEIGHTS_DTYPE: weights \"fp8\" are not one of float32, bfloat16, auto", ""},
		{"describe missing model", func() error {
			_, err := e.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("nope")})
			return err
		}, "ValidationException", `Could not find model "` + arn("model", "nope") + `".`, ""},
		{"delete missing config", func() error {
			_, err := e.sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("nope")})
			return err
		}, "ValidationException", `Could not find endpoint configuration "` + arn("endpoint-config", "nope") + `".`, ""},
		{"endpoint from a missing config", func() error {
			_, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep2"), EndpointConfigName: aws.String("nope")})
			return err
		}, "ValidationException", `Could not find endpoint configuration "` + arn("endpoint-config", "nope") + `".`, ""},
		{"config naming a missing model", func() error {
			_, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("c2"),
				ProductionVariants: variant("nope", types.ProductionVariantInstanceTypeMlM5Large)})
			return err
		}, "ValidationException", `Could not find model "` + arn("model", "nope") + `".`, ""},
		{"duplicate endpoint, other case", func() error {
			_, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("EP1"), EndpointConfigName: aws.String("ep1-config")})
			return err
		}, "ValidationException", `Cannot create already existing endpoint "` + arn("endpoint", "ep1") + `".`, ""},
		{"duplicate model", func() error {
			_, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("ep1-model"), PrimaryContainer: baseModelContainer("")})
			return err
		}, "ValidationException", `Cannot create already existing model "` + arn("model", "ep1-model") + `".`, ""},
		{"bad instance type", func() error {
			_, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("c3"),
				ProductionVariants: variant("ep1-model", "ml.x99.huge")})
			return err
		}, "ValidationException", "1 validation error detected: Value 'ml.x99.huge' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [...", "ml.g5.12xlarge"},
		{"bad names", func() error {
			_, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("bad_name"), EndpointConfigName: aws.String("-x")})
			return err
		}, "ValidationException", "2 validation errors detected: Value 'bad_name' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; Value '-x' at 'endpointConfigName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", ""},
		{"model without model data", func() error {
			_, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("m3"), PrimaryContainer: &types.ContainerDefinition{Image: aws.String("img")}})
			return err
		}, "ValidationException", "give the model's ModelDataUrl (s3://) or, to serve a base model of Lathe's model store, Environment LATHE_BASE_MODEL", ""},
		{"update of a missing endpoint", func() error {
			_, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("nope"), EndpointConfigName: aws.String("ep1-config")})
			return err
		}, "ValidationException", `Could not find endpoint "` + arn("endpoint", "nope") + `".`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if err == nil {
				t.Fatal("no error")
			}
			code, msg := apiError(t, err)
			prefix, isPrefix := strings.CutSuffix(c.msg, "...")
			if code != c.code || (isPrefix && !strings.HasPrefix(msg, prefix)) || (!isPrefix && msg != c.msg) || !strings.Contains(msg, c.contains) {
				t.Errorf("got %s: %s\nwant %s: %s", code, msg, c.code, c.msg)
			}
		})
	}

	// Runtime errors: an unknown endpoint, the wrong case, payloads the model cannot take.
	rtCases := []struct {
		name, endpoint, body string
		code                 string
		status               int
		msg                  string
	}{
		{"unknown endpoint", "nope", `{"inputs":"x"}`, "ValidationError", 400, "Endpoint nope of account 123456789012 not found."},
		{"name in another case", "EP1", `{"inputs":"x"}`, "ValidationError", 400, "Endpoint EP1 of account 123456789012 not found."},
		{"not JSON", "ep1", `inputs=x`, "ModelError", 424, "Received client error (422) from AllTraffic with message"},
		{"no inputs", "ep1", `{"parameters":{}}`, "ModelError", 424, "missing field `inputs`"},
		{"zero temperature", "ep1", `{"inputs":"x","parameters":{"temperature":0}}`, "ModelError", 424, "`temperature` must be strictly positive"},
		{"top_p above 1", "ep1", `{"inputs":"x","parameters":{"top_p":1.5}}`, "ModelError", 424, "`top_p` must be > 0.0 and <= 1.0"},
		{"too many stops", "ep1", `{"inputs":"x","parameters":{"stop":["a","b","c","d","e"]}}`, "ModelError", 424, "up to 4 stop sequences"},
		{"input longer than the context", "ep1", `{"inputs":"` + strings.Repeat("word ", 3000) + `"}`, "ModelError", 424, "the model's context is 2048 tokens"},
		{"typical_p above 1", "ep1", `{"inputs":"x","parameters":{"typical_p":1.5}}`, "ModelError", 424, "`typical_p` must be > 0.0 and <= 1.0"},
		{"truncate zero", "ep1", `{"inputs":"x","parameters":{"truncate":0}}`, "ModelError", 424, "`truncate` must be strictly positive and less than 2047. Given: 0"},
		{"truncate past the context", "ep1", `{"inputs":"x","parameters":{"truncate":5000}}`, "ModelError", 424, "`truncate` must be strictly positive and less than 2047. Given: 5000"},
		{"best_of without sampling", "ep1", `{"inputs":"x","parameters":{"best_of":2}}`, "ModelError", 424, "you must use sampling when `best_of` is > 1"},
		{"best_of with a seed", "ep1", `{"inputs":"x","parameters":{"best_of":2,"do_sample":true,"seed":3}}`, "ModelError", 424, "`seed` must not be set when `best_of` > 1"},
	}
	for _, c := range rtCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(c.endpoint), Body: []byte(c.body)})
			if err == nil {
				t.Fatal("no error")
			}
			code, msg := apiError(t, err)
			if code != c.code || !strings.Contains(msg, c.msg) {
				t.Errorf("got %s: %s; want %s containing %q", code, msg, c.code, c.msg)
			}
			var me *rttypes.ModelError
			if c.code == "ModelError" && (!errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 422 || !strings.Contains(aws.ToString(me.OriginalMessage), `"error_type":"validation"`)) {
				t.Errorf("ModelError members = %+v", me)
			}
		})
	}
}

// truncate keeps the end of an input too long for the model: the call that fails without it answers
// with it, and what it answers depends on those last tokens only. typical_p samples reproducibly.
// best_of samples two sequences and answers with one, the other in the details; not when streaming.
func TestTGISamplingParameters(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	e.deploy(t, "ep1", baseModelContainer(""))
	invoke := func(body string) (string, error) {
		out, err := e.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("ep1"), Body: []byte(body)})
		if err != nil {
			return "", err
		}
		return string(out.Body), nil
	}
	tail := strings.Repeat("The little dog ran to the park and played with a red ball. ", 20) + "Then the dog"
	long1 := strings.Repeat("Once upon a time there was a girl named Lily. ", 250) + tail
	long2 := strings.Repeat("Tom had a big blue car and he liked to drive it fast. ", 200) + tail
	if _, err := invoke(`{"inputs":"` + long1 + `","parameters":{"max_new_tokens":8}}`); err == nil {
		t.Fatal("an input longer than the context was accepted without truncate")
	}
	a, err := invoke(`{"inputs":"` + long1 + `","parameters":{"max_new_tokens":8,"truncate":64}}`)
	if err != nil || !strings.Contains(a, "generated_text") {
		t.Fatalf("truncate 64 answered %s, %v", a, err)
	}
	b, err := invoke(`{"inputs":"` + long2 + `","parameters":{"max_new_tokens":8,"truncate":64}}`)
	if err != nil || a != b {
		t.Errorf("two inputs ending in the same 64 tokens, truncated to them, answered %s and %s (%v)", a, b, err)
	}
	c1, err1 := invoke(`{"inputs":"The dog","parameters":{"max_new_tokens":12,"typical_p":0.5,"seed":7,"details":true}}`)
	c2, err2 := invoke(`{"inputs":"The dog","parameters":{"max_new_tokens":12,"typical_p":0.5,"seed":7,"details":true}}`)
	if err1 != nil || err2 != nil || c1 != c2 || !strings.Contains(c1, `"seed":7`) {
		t.Errorf("typical_p with one seed answered %s then %s (%v, %v); want the same, sampled with seed 7", c1, c2, err1, err2)
	}
	bo, err := invoke(`{"inputs":"The dog","parameters":{"max_new_tokens":12,"best_of":2,"do_sample":true,"details":true}}`)
	var got []struct {
		GeneratedText string `json:"generated_text"`
		Details       struct {
			Seed            *uint64 `json:"seed"`
			BestOfSequences []struct {
				GeneratedText string  `json:"generated_text"`
				Seed          *uint64 `json:"seed"`
			} `json:"best_of_sequences"`
		} `json:"details"`
	}
	if err == nil {
		err = json.Unmarshal([]byte(bo), &got)
	}
	if err != nil || len(got) != 1 || len(got[0].Details.BestOfSequences) != 1 || got[0].Details.Seed == nil ||
		got[0].Details.BestOfSequences[0].Seed == nil || *got[0].Details.Seed == *got[0].Details.BestOfSequences[0].Seed {
		t.Errorf("best_of 2 answered %s (%v); want one answer, the other sequence in best_of_sequences, each its own seed", bo, err)
	}
	_, err = e.rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{EndpointName: aws.String("ep1"),
		Body: []byte(`{"inputs":"The dog","parameters":{"best_of":2,"do_sample":true},"stream":true}`)})
	if code, msg := apiError(t, err); code != "ModelError" || !strings.Contains(msg, "`best_of` != 1 is not supported when streaming tokens") {
		t.Errorf("streamed best_of: %s: %s", code, msg)
	}
}

// An endpoint whose model cannot load ends Failed with the reason; the waiter reports the failure;
// the runtime treats it as missing.
func TestFailedEndpoint(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	e.artifact(t, "job1") // creates the bucket
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("m"),
		PrimaryContainer: &types.ContainerDefinition{ModelDataUrl: aws.String("s3://" + bucket + "/nothing/here/")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("c"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("m"),
			InstanceType: types.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("broken"), EndpointConfigName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	w := sagemaker.NewEndpointInServiceWaiter(e.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("broken")}, time.Minute); err == nil {
		t.Fatal("waiter succeeded on an endpoint that cannot load")
	}
	d, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("broken")})
	if err != nil || d.EndpointStatus != types.EndpointStatusFailed || !strings.Contains(aws.ToString(d.FailureReason), "no model data at s3://"+bucket+"/nothing/here/") {
		t.Errorf("DescribeEndpoint = %+v, %v", d, err)
	}
	_, err = e.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("broken"), Body: []byte(`{"inputs":"x"}`)})
	if code, _ := apiError(t, err); code != "ValidationError" {
		t.Errorf("invoke of a failed endpoint: %v", err)
	}
}

// Endpoints survive a restart: they load again and serve the same answers; an update swaps the
// model behind the endpoint.
func TestRestartAndUpdate(t *testing.T) {
	dir := t.TempDir()
	e := startEnv(t, dir, serving.Options{})
	ctx := context.Background()
	e.deploy(t, "keep", baseModelContainer("raw"))
	body := `{"inputs":"Once upon a time","parameters":{"max_new_tokens":10}}`
	before, _ := invoke(t, e, "keep", body)
	e.stop()

	e = startEnv(t, dir, serving.Options{})
	e.waitInService(t, "keep")
	after, _ := invoke(t, e, "keep", body)
	if after[0].GeneratedText != before[0].GeneratedText {
		t.Errorf("after restart %q, before %q", after[0].GeneratedText, before[0].GeneratedText)
	}

	// Update to a config whose model wraps inputs in the plain template: the answer changes.
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("plain"), PrimaryContainer: baseModelContainer("plain")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("plain-config"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("Plain"), ModelName: aws.String("plain"),
			InstanceType: types.ProductionVariantInstanceTypeMlC5Xlarge, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("keep"), EndpointConfigName: aws.String("plain-config")}); err != nil {
		t.Fatal(err)
	}
	e.waitInService(t, "keep")
	d, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("keep")})
	if err != nil || *d.EndpointConfigName != "plain-config" || *d.ProductionVariants[0].VariantName != "Plain" {
		t.Fatalf("after update: %+v, %v", d, err)
	}
	updated, out := invoke(t, e, "keep", body)
	if *out.InvokedProductionVariant != "Plain" || updated[0].GeneratedText == before[0].GeneratedText {
		t.Errorf("after update: variant %s, text %q (before %q)", *out.InvokedProductionVariant, updated[0].GeneratedText, before[0].GeneratedText)
	}
}

// ModelDeployConfig's path: the pipeline hands the artifact to Deploy, which leaves an InService
// endpoint (and reports a reason when it cannot).
func TestDeployForJob(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	modelURL := e.artifact(t, "job7")
	if err := e.svc.Deploy(ctx, "job7", "job7-endpoint", modelURL); err != nil {
		t.Fatal(err)
	}
	res, _ := invoke(t, e, "job7-endpoint", `{"inputs":"Tell me a story."}`)
	if res[0].GeneratedText == "" {
		t.Error("empty answer")
	}
	// Running again (a job resumed after a restart) finds what it made.
	if err := e.svc.Deploy(ctx, "job7", "job7-endpoint", modelURL); err != nil {
		t.Errorf("second Deploy: %v", err)
	}
	err := e.svc.Deploy(ctx, "job8", "job8-endpoint", "s3://"+bucket+"/out/job8/model/")
	if err == nil || !strings.Contains(err.Error(), "no model data at s3://"+bucket+"/out/job8/model/") {
		t.Errorf("Deploy of a missing artifact: %v", err)
	}
}

// A full queue answers 429 ThrottlingException (the SDKs retry it); a client that goes away has its
// generation cancelled. Stories260K greedily writes 1500 tokens without ending (seconds of work), so
// the first requests are still running when the next arrive.
func TestThrottlingAndDisconnect(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{MaxBatch: 1, MaxQueue: 1})
	e.deploy(t, "small", baseModelContainer("raw"))
	target, err := e.svc.Route("small", "")
	if err != nil {
		t.Fatal(err)
	}
	long := []byte(`{"inputs":"Once upon a time","parameters":{"max_new_tokens":1500}}`)
	ctx, cancel := context.WithCancel(context.Background())
	var streams []*sagemakerruntime.InvokeEndpointWithResponseStreamOutput
	for range 2 { // one decoding, one queued: the endpoint is full
		out, err := e.newRuntime().InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
			EndpointName: aws.String("small"), Body: long})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, out)
	}
	_, err = e.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("small"), Body: long})
	if code, _ := apiError(t, err); code != "ThrottlingException" {
		t.Errorf("third request: %v, want ThrottlingException", err)
	}
	// The two clients hang up: both generations are dropped, long before 1500 tokens.
	for _, s := range streams {
		s.GetStream().Close()
	}
	cancel()
	deadline := time.Now().Add(30 * time.Second)
	for target.Engine.Stats().InFlight > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := target.Engine.Stats(); st.InFlight != 0 || st.Cancelled != 2 || st.Completed != 0 {
		t.Errorf("after the clients left: %+v, want 2 cancelled and none completed", st)
	}
}

// A model fine-tuned from an instruct base model is prompted with its chat template, as in training:
// the endpoint finds the base model in the job's metrics.json, and its answer equals the raw
// continuation of the rendered template. The OpenAI chat API renders the same prompt.
func TestInstructModelUsesChatTemplate(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	const template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
	modelURL := e.artifactWith(t, "inst", "SmolLM2-135MInstruct", template)
	e.deploy(t, "inst", &types.ContainerDefinition{ModelDataUrl: aws.String(modelURL)})
	e.deploy(t, "inst-raw", &types.ContainerDefinition{ModelDataUrl: aws.String(modelURL),
		Environment: map[string]string{"LATHE_PROMPT_FORMAT": "raw"}})

	chat, _ := invoke(t, e, "inst", `{"inputs":"Tell me a story.","parameters":{"max_new_tokens":16}}`)
	raw, _ := invoke(t, e, "inst-raw", `{"inputs":"<|user|>Tell me a story.\n<|assistant|>","parameters":{"max_new_tokens":16}}`)
	plain, _ := invoke(t, e, "inst-raw", `{"inputs":"### Instruction:\nTell me a story.\n\n### Response:\n","parameters":{"max_new_tokens":16}}`)
	if chat[0].GeneratedText != raw[0].GeneratedText || chat[0].GeneratedText == plain[0].GeneratedText {
		t.Errorf("chat-template endpoint %q, raw rendered template %q, plain template %q", chat[0].GeneratedText, raw[0].GeneratedText, plain[0].GeneratedText)
	}
	_, oa := openAICall(t, e, "POST", "/v1/chat/completions", openAIKey,
		`{"model":"inst","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":16,"temperature":0}`)
	if got := oa["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"]; got != chat[0].GeneratedText {
		t.Errorf("OpenAI chat %q, InvokeEndpoint %q", got, chat[0].GeneratedText)
	}
}

// Tags given at creation are listed on the resource's ARN and go with the resource.
func TestTagsFollowResources(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	arn := "arn:aws:sagemaker:us-east-1:123456789012:model/tagged"
	create := func(tags []types.Tag) {
		t.Helper()
		out, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("Tagged"), PrimaryContainer: baseModelContainer(""), Tags: tags})
		if err != nil || aws.ToString(out.ModelArn) != arn {
			t.Fatalf("CreateModel: %+v, %v", out, err)
		}
	}
	create([]types.Tag{{Key: aws.String("team"), Value: aws.String("ml")}})
	tags, err := e.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn)})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
		t.Errorf("ListTags = %+v, %v", tags, err)
	}
	if _, err := e.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("tagged")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn)}); err == nil {
		t.Error("ListTags of a deleted model succeeded")
	}
	create(nil)
	if tags, err := e.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn)}); err != nil || len(tags.Tags) != 0 {
		t.Errorf("a model created again under the same name: tags %+v, %v; want none", tags, err)
	}
}

// A model.tar.gz (SageMaker's usual artifact, given through ModelDataSource here) serves the same
// model as the directory it packs; a tarball whose entries leave their folder fails the endpoint.
func TestModelTarball(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	modelURL := e.artifact(t, "tgz")
	objs, err := e.objects.List(ctx, modelURL)
	if err != nil {
		t.Fatal(err)
	}
	pack := func(extra string) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for _, o := range objs {
			data, err := e.objects.Get(ctx, o.URI)
			if err != nil {
				t.Fatal(err)
			}
			name := "./" + strings.TrimPrefix(o.URI, modelURL)
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			tw.Write(data)
		}
		if extra != "" {
			tw.WriteHeader(&tar.Header{Name: extra, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
			tw.Write([]byte("x"))
		}
		tw.Close()
		gz.Close()
		return buf.Bytes()
	}
	for name, data := range map[string][]byte{"good": pack(""), "evil": pack("../../escape.txt")} {
		if err := e.objects.PutBytes(ctx, "s3://"+bucket+"/tarballs/"+name+"/model.tar.gz", data, "application/gzip"); err != nil {
			t.Fatal(err)
		}
	}
	source := func(name string) *types.ContainerDefinition {
		return &types.ContainerDefinition{ModelDataSource: &types.ModelDataSource{S3DataSource: &types.S3ModelDataSource{
			S3Uri: aws.String("s3://" + bucket + "/tarballs/" + name + "/model.tar.gz"), S3DataType: types.S3ModelDataTypeS3Object,
			CompressionType: types.ModelCompressionTypeGzip}}}
	}
	e.deploy(t, "tgz", source("good"))
	e.deploy(t, "dir", &types.ContainerDefinition{ModelDataUrl: aws.String(modelURL)})
	body := `{"inputs":"Tell me a story.","parameters":{"max_new_tokens":12}}`
	fromTar, _ := invoke(t, e, "tgz", body)
	fromDir, _ := invoke(t, e, "dir", body)
	if fromTar[0].GeneratedText != fromDir[0].GeneratedText {
		t.Errorf("tarball answers %q, directory %q", fromTar[0].GeneratedText, fromDir[0].GeneratedText)
	}

	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("evil-model"), PrimaryContainer: source("evil")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("evil-config"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("evil-model"),
			InstanceType: types.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("evil"), EndpointConfigName: aws.String("evil-config")}); err != nil {
		t.Fatal(err)
	}
	w := sagemaker.NewEndpointInServiceWaiter(e.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	_ = w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("evil")}, time.Minute)
	d, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("evil")})
	if err != nil || d.EndpointStatus != types.EndpointStatusFailed || !strings.Contains(aws.ToString(d.FailureReason), "leaves the model folder") {
		t.Errorf("endpoint of a tarball escaping its folder: %+v, %v", d, err)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "endpoints", "escape.txt")); err == nil {
		t.Error("the tarball wrote outside the endpoint's folder")
	}
}

// An update whose model cannot load is rolled back: the endpoint stays InService on its old
// config and variant, with the reason in FailureReason.
func TestFailedUpdateRollsBack(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	e.deploy(t, "stay", baseModelContainer("raw"))
	body := `{"inputs":"Once upon a time","parameters":{"max_new_tokens":8}}`
	before, _ := invoke(t, e, "stay", body)
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("gone"),
		PrimaryContainer: &types.ContainerDefinition{Environment: map[string]string{"LATHE_BASE_MODEL": "NoSuchModel"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("gone-config"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("Gone"), ModelName: aws.String("gone"),
			InstanceType: types.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("stay"), EndpointConfigName: aws.String("gone-config")}); err != nil {
		t.Fatal(err)
	}
	var d *sagemaker.DescribeEndpointOutput
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if d, err = e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("stay")}); err != nil {
			t.Fatal(err)
		}
		if d.EndpointStatus != types.EndpointStatusUpdating {
			break
		}
	}
	if d.EndpointStatus != types.EndpointStatusInService || aws.ToString(d.EndpointConfigName) != "stay-config" ||
		!strings.Contains(aws.ToString(d.FailureReason), "NoSuchModel") {
		t.Errorf("after a failed update: status %s, config %s, reason %q", d.EndpointStatus, aws.ToString(d.EndpointConfigName), aws.ToString(d.FailureReason))
	}
	after, out := invoke(t, e, "stay", body)
	if after[0].GeneratedText != before[0].GeneratedText || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" {
		t.Errorf("after a failed update: %q from %s, before %q", after[0].GeneratedText, aws.ToString(out.InvokedProductionVariant), before[0].GeneratedText)
	}
}

// A stream cut by the endpoint's deletion ends with the ModelStreamError exception event, which the
// SDK reports as the stream's error.
func TestStreamEndsWithModelStreamError(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	e.deploy(t, "cut", baseModelContainer("raw"))
	out, err := e.rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("cut"), Body: []byte(`{"inputs":"Once upon a time","parameters":{"max_new_tokens":1500}}`)})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	<-stream.Events() // generation is under way
	if _, err := e.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("cut")}); err != nil {
		t.Fatal(err)
	}
	for range stream.Events() {
	}
	var mse *rttypes.ModelStreamError
	if err := stream.Err(); !errors.As(err, &mse) || !strings.Contains(aws.ToString(mse.Message), "unloaded") {
		t.Errorf("stream error = %v, want ModelStreamError", err)
	}
}

// A request with more inputs than the endpoint ever admits is a 400 naming the limit, even on an idle
// endpoint (a 429 would have the SDKs retry it forever); one that fits is answered.
func TestRequestLargerThanTheQueueIsAValidationError(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{}) // default capacity: 32 decoding + 128 queued
	e.deploy(t, "idle", baseModelContainer("raw"))
	body := func(n, bestOf int) []byte {
		inputs := make([]string, n)
		for i := range inputs {
			inputs[i] = "Once upon a time"
		}
		b, _ := json.Marshal(map[string]any{"inputs": inputs, "parameters": map[string]any{"max_new_tokens": 1, "best_of": bestOf, "do_sample": bestOf > 1}})
		return b
	}
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		n, bestOf int
		msg       string
	}{
		{"161 inputs", 161, 1, "The request asks for 161 generations (inputs × best_of); this endpoint takes at most 160 in one request."},
		{"81 inputs with best_of 2", 81, 2, "The request asks for 162 generations (inputs × best_of); this endpoint takes at most 160 in one request."},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("idle"), Body: body(c.n, c.bestOf)})
			if code, msg := apiError(t, err); code != "ValidationError" || msg != c.msg {
				t.Errorf("got %s: %s, want ValidationError: %s", code, msg, c.msg)
			}
		})
	}
	if res, _ := invoke(t, e, "idle", string(body(160, 1))); len(res) != 160 {
		t.Errorf("160 inputs: %d answers", len(res))
	}
}

// UpdateEndpointWeightsAndCapacities moves traffic between variants: the endpoint goes Updating and
// back to InService (the SDK's waiter), Describe shows the new weights and counts, and requests
// follow the weights. Unknown endpoints and variants are ValidationExceptions naming them; so is a
// serverless memory size that is not a whole number of GiB.
func TestUpdateEndpointWeightsAndCapacities(t *testing.T) {
	e := startEnv(t, t.TempDir(), serving.Options{})
	ctx := context.Background()
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("m"), PrimaryContainer: baseModelContainer("raw")}); err != nil {
		t.Fatal(err)
	}
	variant := func(name string, weight float32) types.ProductionVariant {
		return types.ProductionVariant{VariantName: aws.String(name), ModelName: aws.String("m"), InitialVariantWeight: aws.Float32(weight),
			InstanceType: types.ProductionVariantInstanceTypeMlM5Large, InitialInstanceCount: aws.Int32(1)}
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("ab"),
		ProductionVariants: []types.ProductionVariant{variant("a", 1), variant("b", 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ab"), EndpointConfigName: aws.String("ab")}); err != nil {
		t.Fatal(err)
	}
	e.waitInService(t, "ab")
	servedBy := func() map[string]int {
		n := map[string]int{}
		for range 6 {
			_, out := invoke(t, e, "ab", `{"inputs":"Once","parameters":{"max_new_tokens":1}}`)
			n[aws.ToString(out.InvokedProductionVariant)]++
		}
		return n
	}
	if n := servedBy(); n["a"] != 6 {
		t.Fatalf("before the update, served by %v; want a only", n)
	}
	out, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("ab"),
		DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{
			{VariantName: aws.String("a"), DesiredWeight: aws.Float32(0)},
			{VariantName: aws.String("b"), DesiredWeight: aws.Float32(2), DesiredInstanceCount: aws.Int32(3)}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.EndpointArn) != "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ab" {
		t.Errorf("EndpointArn %q", aws.ToString(out.EndpointArn))
	}
	e.waitInService(t, "ab")
	desc, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ab")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]float32{}
	for _, pv := range desc.ProductionVariants {
		got[aws.ToString(pv.VariantName)] = [2]float32{aws.ToFloat32(pv.DesiredWeight), float32(aws.ToInt32(pv.DesiredInstanceCount))}
		if aws.ToFloat32(pv.CurrentWeight) != aws.ToFloat32(pv.DesiredWeight) {
			t.Errorf("variant %s: current weight %g, desired %g", aws.ToString(pv.VariantName), aws.ToFloat32(pv.CurrentWeight), aws.ToFloat32(pv.DesiredWeight))
		}
	}
	if want := map[string][2]float32{"a": {0, 1}, "b": {2, 3}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("described weights and counts %v, want %v", got, want)
	}
	if n := servedBy(); n["b"] != 6 {
		t.Errorf("after the update, served by %v; want b only", n)
	}

	arn := "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ab"
	for _, c := range []struct {
		name string
		call func() error
		msg  string
	}{
		{"missing endpoint", func() error {
			_, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("nope"),
				DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{{VariantName: aws.String("a"), DesiredWeight: aws.Float32(1)}}})
			return err
		}, `Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nope".`},
		{"missing variant", func() error {
			_, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("ab"),
				DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{{VariantName: aws.String("c"), DesiredWeight: aws.Float32(1)}}})
			return err
		}, `The variant(s) "[c]" are not present in endpoint "` + arn + `".`},
		{"negative weight", func() error {
			_, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("ab"),
				DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{{VariantName: aws.String("a"), DesiredWeight: aws.Float32(-1)}}})
			return err
		}, "1 validation error detected: Value '-1' at 'desiredWeightsAndCapacities.1.member.desiredWeight' failed to satisfy constraint: Member must have value greater than or equal to 0"},
		{"serverless memory not a whole GiB", func() error {
			_, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("sls"),
				ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("m"),
					ServerlessConfig: &types.ProductionVariantServerlessConfig{MemorySizeInMB: aws.Int32(1500), MaxConcurrency: aws.Int32(1)}}}})
			return err
		}, "1 validation error detected: Value '1500' at 'productionVariants.1.member.serverlessConfig.memorySizeInMB' failed to satisfy constraint: Member must satisfy enum value set: [1024, 2048, 3072, 4096, 5120, 6144]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := apiError(t, c.call())
			if code != "ValidationException" || msg != c.msg {
				t.Errorf("got %s: %s\nwant ValidationException: %s", code, msg, c.msg)
			}
		})
	}
}
