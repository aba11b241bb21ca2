package automl_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
)

// sampleRequest is the CreateAutoMLJobV2 body that aws-sdk-go-v2 sent for the SageMaker docs
// sample (reference §2, captured request).
const sampleRequest = `{"AutoMLJobInputDataConfig":[{"ChannelType":"training","CompressionType":"None","ContentType":"text/csv;header=present","DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/train/"}}}],"AutoMLJobName":"j1","AutoMLProblemTypeConfig":{"TextGenerationJobConfig":{"BaseModelName":"Llama2-7B","CompletionCriteria":{"MaxAutoMLJobRuntimeInSeconds":3600,"MaxRuntimePerTrainingJobInSeconds":3000},"ModelAccessConfig":{"AcceptEula":true},"TextGenerationHyperParameters":{"epochCount":"3","learningRate":"0.0001"}}},"DataSplitConfig":{"ValidationFraction":0.1},"ModelDeployConfig":{"AutoGenerateEndpointName":true},"OutputDataConfig":{"S3OutputPath":"s3://b/out/"},"RoleArn":"arn:aws:iam::123456789012:role/r","Tags":[{"Key":"k","Value":"v"}]}`

type env struct {
	svc   *automl.Service
	store *sqlite.Store
	ops   map[string]func(context.Context, []byte) (any, error)
	path  string
}

func newEnv(t *testing.T, cfg automl.Config) *env { return newEnvTB(t, cfg) }

func newEnvTB(t testing.TB, cfg automl.Config) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lathe.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	svc, err := automl.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, ops: svc.Operations(), path: path}
}

// call runs an operation and returns its output as the client would see it (a JSON object).
func (e *env) call(t *testing.T, op, body string) (map[string]any, *awserr.Error) {
	t.Helper()
	fn, ok := e.ops[op]
	if !ok {
		t.Fatalf("no operation %s", op)
	}
	out, err := fn(context.Background(), []byte(body))
	if err != nil {
		ae := awserr.As(err)
		if ae == nil {
			t.Fatalf("%s: non-API error %v", op, err)
		}
		return nil, ae
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("%s: marshal output: %v", op, err)
	}
	if strings.Contains(string(b), "null") {
		t.Errorf("%s output contains null: %s", op, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: output is not an object: %s", op, b)
	}
	return m, nil
}

func (e *env) mustCall(t *testing.T, op, body string) map[string]any {
	t.Helper()
	m, err := e.call(t, op, body)
	if err != nil {
		t.Fatalf("%s %s: %v", op, body, err)
	}
	return m
}

// edit parses a JSON document, applies changes and returns the new document. A path is dotted keys
// and list indexes ("AutoMLJobInputDataConfig.0.ChannelType"); a nil value deletes the member.
func edit(t *testing.T, doc string, changes ...change) string {
	t.Helper()
	var root any
	if err := json.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		root = set(t, root, strings.Split(c.path, "."), c.value)
	}
	b, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type change struct {
	path  string
	value any
}

type deleted struct{}

// del marks a member for deletion.
var del = deleted{}

func set(t *testing.T, node any, path []string, value any) any {
	t.Helper()
	if len(path) == 0 {
		return value
	}
	switch n := node.(type) {
	case map[string]any:
		if len(path) == 1 && value == del {
			delete(n, path[0])
			return n
		}
		child, ok := n[path[0]]
		if !ok {
			child = map[string]any{}
		}
		n[path[0]] = set(t, child, path[1:], value)
		return n
	case []any:
		i, err := strconv.Atoi(path[0])
		if err != nil || i >= len(n) {
			t.Fatalf("bad list index %s", path[0])
		}
		n[i] = set(t, n[i], path[1:], value)
		return n
	}
	t.Fatalf("cannot descend into %T at %v", node, path)
	return nil
}

// get follows a dotted path through a decoded JSON value.
func get(t *testing.T, v any, path string) any {
	t.Helper()
	for _, p := range strings.Split(path, ".") {
		switch n := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = n[p]; !ok {
				return nil
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(n) {
				t.Fatalf("path %s: bad index %s", path, p)
			}
			v = n[i]
		default:
			return nil
		}
	}
	return v
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// reopen opens the database file again, as a restarted server would.
func reopen(t *testing.T, path string) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := automl.New(automl.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, ops: svc.Operations(), path: path}
}
