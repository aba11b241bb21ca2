package finetune

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/dataset"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/internal/s3api"
	"github.com/lathe-ml/lathe/internal/server"
)

// storiesPath is the only real pretrained model on these machines (see its README); tests read it
// in place and import it into a store in t.TempDir().
const storiesPath = "/work/shared/models/stories260K.gguf"

const (
	testBucket = "lathe-test"
	testRegion = "us-east-1"
)

var testCreds = server.Credentials{AccessKeyID: "AKIAFINETUNETEST0001", SecretAccessKey: "finetune/test/secret+key/0123456789abcdef"}

// testEnv is what `lathe serve` wires around the executor: the embedded S3 API behind the front
// door on 127.0.0.1, a blob client signing requests to it, and a model store holding Stories260K.
type testEnv struct {
	objects *blob.Client
	models  *modelstore.Store
	root    string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s3h, err := s3api.New(filepath.Join(root, "s3"), logger)
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{Region: testRegion, AccountID: "123456789012", Credentials: testCreds, S3: s3h, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	objects, err := blob.New(ctx, blob.Options{Endpoint: ts.URL, Region: testRegion,
		AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: testCreds.SecretAccessKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := objects.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	models, err := modelstore.Open(filepath.Join(root, "models"))
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{objects: objects, models: models, root: root}
}

// withStories imports the Stories260K GGUF into the env's model store, as `lathe models import` does.
func (e *testEnv) withStories(t *testing.T) *testEnv {
	t.Helper()
	if _, err := e.models.Import(context.Background(), storiesPath, "Stories260K"); err != nil {
		t.Fatal(err)
	}
	return e
}

// executor is a fresh Executor (as after a process restart) with its own work dir.
func (e *testEnv) executor(t *testing.T, workDir string) *Executor {
	if workDir == "" {
		workDir = t.TempDir()
	}
	return &Executor{Objects: e.objects, Models: StoreSource{Store: e.models}, WorkDir: workDir,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
}

func (e *testEnv) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if err := e.objects.PutBytes(context.Background(), uri(key), data, ""); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) get(t *testing.T, key string) []byte {
	t.Helper()
	data, err := e.objects.Get(context.Background(), uri(key))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func uri(key string) string { return "s3://" + testBucket + "/" + key }

// spec is a job on Stories260K reading the training channel under prefix, with one epoch of
// batches of 8 unless hp says otherwise.
func spec(name, prefix string, hp map[string]string) job.Spec {
	h := map[string]string{"epochCount": "1", "batchSize": "8", "learningRate": "0.002", "learningRateWarmupSteps": "2"}
	for k, v := range hp {
		h[k] = v
	}
	return job.Spec{
		Name:               name,
		Channels:           []job.Channel{{Type: "training", ContentType: dataset.ContentTypeCSV, S3URI: uri(prefix)}},
		OutputPath:         uri("output"),
		BaseModel:          "Stories260K",
		HyperParameters:    h,
		ValidationFraction: 0.2,
	}
}

// patternRows is a small instruction dataset with one pattern a 260K-parameter story model can pick
// up in a dozen steps: a short request about a named animal, answered with a fixed sentence shape.
func patternRows(n int) [][2]string {
	names := []string{"Tom", "Lily", "Sam", "Sue", "Max", "Ben", "Mia", "Tim", "Amy", "Joe", "Kim"}
	animals := []string{"cat", "dog", "bird", "fish", "frog", "duck", "cow"}
	colors := []string{"red", "blue", "green", "yellow", "pink"}
	rows := make([][2]string, n)
	for i := range rows {
		name, animal, color := names[i%len(names)], animals[(i/len(names))%len(animals)], colors[i%len(colors)]
		rows[i] = [2]string{
			fmt.Sprintf("Tell me about %s the %s and the %s ball.", name, animal, color),
			fmt.Sprintf("%s was a happy %s. %s had a %s ball.", name, animal, name, color),
		}
	}
	return rows
}

// csvFile writes a header and rows as RFC 4180 CSV.
func csvFile(t *testing.T, header []string, rows [][]string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if header != nil {
		_ = w.Write(header)
	}
	for _, r := range rows {
		_ = w.Write(r)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pairsCSV(t *testing.T, rows [][2]string) []byte {
	t.Helper()
	recs := make([][]string, len(rows))
	for i, r := range rows {
		recs[i] = []string{r[0], r[1]}
	}
	return csvFile(t, []string{"input", "output"}, recs)
}

func parquetFile[T any](t *testing.T, rows []T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// recorder is a job.Reporter that keeps what the executor reported, and can act on a progress
// report (a test cancels the job there, as StopAutoMLJob would).
type recorder struct {
	mu       sync.Mutex
	phases   []string
	progress []job.Progress
	onStep   func(p job.Progress)
	// onReport sees every report: a phase change (phase set) or a progress report.
	onReport func(phase string, p job.Progress)
}

func (r *recorder) SetPhase(_ context.Context, phase string) error {
	r.mu.Lock()
	r.phases = append(r.phases, phase)
	on := r.onReport
	r.mu.Unlock()
	if on != nil {
		on(phase, job.Progress{})
	}
	return nil
}

func (r *recorder) Progress(_ context.Context, p job.Progress) error {
	r.mu.Lock()
	r.progress = append(r.progress, p)
	onStep, onReport := r.onStep, r.onReport
	r.mu.Unlock()
	if onStep != nil && p.Step > 0 {
		onStep(p)
	}
	if onReport != nil {
		onReport("", p)
	}
	return nil
}

// steps returns the training progress reports (those with a step).
func (r *recorder) steps() []job.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []job.Progress
	for _, p := range r.progress {
		if p.Step > 0 {
			out = append(out, p)
		}
	}
	return out
}

// lines splits a JSON-lines object into its non-empty lines.
func lines(data []byte) []string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
