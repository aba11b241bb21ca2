package finetune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lathe-ml/lathe/internal/dataset"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
	"github.com/lathe-ml/lathe/llm/train"
)

// metricsFile is the part of metrics.json a user reads.
type metricsFile struct {
	BaseModel    string             `json:"base_model"`
	Base         Metrics            `json:"base"`
	FineTuned    Metrics            `json:"fine_tuned"`
	PhaseSeconds map[string]float64 `json:"phase_seconds"`
	HyperParams  HyperParameters    `json:"hyperparameters"`
}

var wantMetricSets = map[string]string{
	"TrainingLoss": "Train", "ValidationLoss": "Validation", "Perplexity": "Validation",
	"Rouge1": "Validation", "Rouge2": "Validation", "RougeL": "Validation", "RougeLSum": "Validation",
}

func TestExecuteFineTunesStories(t *testing.T) {
	env := newEnv(t).withStories(t)
	rows := patternRows(120)
	data := pairsCSV(t, rows)
	env.put(t, "train/part-1.csv", data)
	rec := &recorder{}
	work := t.TempDir()
	res, err := env.executor(t, work).Execute(context.Background(), spec("happy", "train/", nil), rec)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if _, err := os.Stat(filepath.Join(work, "happy")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the finished job left its work dir behind (%v)", err)
	}

	out := "output/happy/"
	if res.ModelDataURL != uri(out+"model/") {
		t.Errorf("ModelDataURL = %q, want %q", res.ModelDataURL, uri(out+"model/"))
	}
	if res.ArtifactsPrefix != uri(out) {
		t.Errorf("ArtifactsPrefix = %q, want %q", res.ArtifactsPrefix, uri(out))
	}
	if res.CandidateName == "" || res.TrainingJobName == "" || res.Image == "" {
		t.Errorf("result lacks candidate fields: %+v", res)
	}
	got := map[string]job.Metric{}
	for _, m := range res.Metrics {
		got[m.Name] = m
	}
	for name, set := range wantMetricSets {
		m, ok := got[name]
		switch {
		case !ok:
			t.Errorf("metric %s missing from %+v", name, res.Metrics)
		case m.Set != set:
			t.Errorf("metric %s has Set %q, want %q", name, m.Set, set)
		case math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || m.Value < 0:
			t.Errorf("metric %s = %v", name, m.Value)
		}
	}
	if len(res.Metrics) != len(wantMetricSets) {
		t.Errorf("%d metrics, want %d: %+v", len(res.Metrics), len(wantMetricSets), res.Metrics)
	}
	if p, l := got["Perplexity"].Value, got["ValidationLoss"].Value; math.Abs(p-math.Exp(l)) > 1e-9*p {
		t.Errorf("Perplexity %v != exp(ValidationLoss %v)", p, l)
	}

	// Artifacts.
	objs, err := env.objects.List(context.Background(), uri(out))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, strings.TrimPrefix(o.Key, out))
	}
	for _, k := range []string{"model/config.json", "model/model.safetensors", "model/model.gguf", "metrics.json",
		"training-log.jsonl", "data-report.json", "samples.jsonl"} {
		if !slices.Contains(keys, k) {
			t.Errorf("artifact %s missing; have %v", k, keys)
		}
	}

	var report metricsFile
	if err := json.Unmarshal(env.get(t, out+"metrics.json"), &report); err != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	if report.FineTuned.ValidationLoss >= report.Base.ValidationLoss {
		t.Errorf("fine-tuning did not lower the validation loss: base %v, fine-tuned %v", report.Base.ValidationLoss, report.FineTuned.ValidationLoss)
	}
	if report.FineTuned.RougeL <= report.Base.RougeL {
		t.Errorf("fine-tuning did not raise ROUGE-L: base %v, fine-tuned %v", report.Base.RougeL, report.FineTuned.RougeL)
	}
	if report.FineTuned.ValidationLoss != got["ValidationLoss"].Value || report.FineTuned.RougeL != got["RougeL"].Value ||
		report.FineTuned.TrainingLoss != got["TrainingLoss"].Value {
		t.Errorf("metrics.json fine_tuned %+v disagrees with the candidate metrics %+v", report.FineTuned, res.Metrics)
	}
	t.Logf("base %+v", report.Base)
	t.Logf("fine-tuned %+v", report.FineTuned)
	t.Logf("phase seconds %v", report.PhaseSeconds)
	if hp := report.HyperParams; hp.Epochs != 1 || hp.BatchSize != 8 || hp.LearningRate != 0.002 || hp.WarmupSteps != 2 || hp.Method != "full" {
		t.Errorf("metrics.json hyperparameters %+v, want the request's (1 epoch, batch 8, learning rate 0.002, 2 warmup steps), full fine-tuning", hp)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "adapter/") {
			t.Errorf("a full fine-tune wrote an adapter: %s", k)
		}
	}

	var dr struct {
		TrainingRows   int            `json:"training_rows"`
		ValidationRows int            `json:"validation_rows"`
		Files          map[string]int `json:"files"`
		Training       dataset.Report `json:"training"`
		Validation     dataset.Report `json:"validation"`
	}
	if err := json.Unmarshal(env.get(t, out+"data-report.json"), &dr); err != nil {
		t.Fatalf("data-report.json: %v", err)
	}
	if dr.TrainingRows != 96 || dr.ValidationRows != 24 || dr.Files[uri("train/part-1.csv")] != 120 {
		t.Errorf("data report: %d training rows, %d validation rows, files %v; want 96, 24, 120 rows from part-1.csv",
			dr.TrainingRows, dr.ValidationRows, dr.Files)
	}
	if dr.Training.Rows != 96 || dr.Training.TotalTokens == 0 || dr.Training.TruncatedRows != 0 || len(dr.Training.Histogram) == 0 {
		t.Errorf("training token report: %+v", dr.Training)
	}

	refs := map[string]string{}
	for _, r := range rows {
		refs[r[0]] = r[1]
	}
	samples := lines(env.get(t, out+"samples.jsonl"))
	if len(samples) != 24 {
		t.Errorf("samples.jsonl has %d lines, want one per validation row (24)", len(samples))
	}
	generations, baseGenerations := map[string]string{}, map[string]string{}
	for _, l := range samples {
		var s Sample
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("samples.jsonl line %q: %v", l, err)
		}
		if refs[s.Input] != s.Reference {
			t.Errorf("sample %+v: reference is not the dataset's output for that input (%q)", s, refs[s.Input])
		}
		generations[s.Input], baseGenerations[s.Input] = s.Generation, s.BaseGeneration
	}

	// The training log: a start, one line per step, the evaluation and the end.
	events := map[string]int{}
	for _, l := range lines(env.get(t, out+"training-log.jsonl")) {
		var ev struct{ Event string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("training-log.jsonl line %q: %v", l, err)
		}
		events[ev.Event]++
	}
	if events["start"] != 1 || events["step"] != 12 || events["eval"] != 1 || events["done"] != 1 {
		t.Errorf("training log events %v, want 1 start, 12 steps, 1 eval, 1 done", events)
	}

	// What the job reported while it ran.
	if want := []string{job.PhaseAnalyzingData, job.PhaseTrainingModels}; !slices.Equal(rec.phases, want) {
		t.Errorf("phases %v, want %v", rec.phases, want)
	}
	steps := rec.steps()
	if len(steps) != 12 {
		t.Fatalf("%d step reports, want 12 (96 rows / batch 8)", len(steps))
	}
	for i, p := range steps {
		if p.Step != i+1 || p.TotalSteps != 12 || p.Phase != job.PhaseTrainingModels ||
			math.Abs(p.Epoch-float64(i+1)/12) > 1e-9 || !(p.Loss > 0) || !(p.TokensPerSecond > 0) || p.ETASeconds < 0 {
			t.Errorf("progress report %d: %+v", i, p)
		}
	}
	if steps[11].ETASeconds != 0 {
		t.Errorf("ETA after the last step = %v, want 0", steps[11].ETASeconds)
	}

	// The exported model, loaded as a user would load it (GGUF, and the Hugging Face folder), scores the
	// validation split as metrics.json says; the base model scores as the base column says.
	val := validationSplit(t, data)
	dir := t.TempDir()
	for _, k := range keys {
		if strings.HasPrefix(k, "model/") {
			if err := env.objects.Download(context.Background(), uri(out+k), filepath.Join(dir, path.Base(k))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name, path string
		want       float64
	}{
		{"model.gguf", filepath.Join(dir, "model.gguf"), report.FineTuned.ValidationLoss},
		{"Hugging Face folder", dir, report.FineTuned.ValidationLoss},
		{"base model", storiesPath, report.Base.ValidationLoss},
	} {
		loss := independentLoss(t, c.path, val)
		if math.Abs(loss-c.want) > 1e-4*c.want {
			t.Errorf("%s: validation loss %v, metrics.json says %v", c.name, loss, c.want)
		}
	}
	// And it writes what samples.jsonl says the fine-tuned model wrote, one prompt at a time as an
	// endpoint would be asked.
	for in, gen := range independentGenerations(t, filepath.Join(dir, "model.gguf"), val) {
		if gen != generations[in] {
			t.Errorf("the exported GGUF answers %q with %q; samples.jsonl says %q", in, gen, generations[in])
		}
	}
	// Beside each answer, the base model's own answer to the prompt.
	for in, gen := range independentGenerations(t, storiesPath, val) {
		if gen != baseGenerations[in] {
			t.Errorf("the base model answers %q with %q; samples.jsonl's base_generation says %q", in, gen, baseGenerations[in])
		}
	}
}

// independentGenerations greedily continues each example's prompt with the engine alone, for up to
// twice the longest reference plus 8 tokens (the room evaluation gives), until end of sequence.
func independentGenerations(t *testing.T, modelPath string, examples []dataset.Example) map[string]string {
	t.Helper()
	m, err := model.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	maxRef := 0
	for _, e := range examples {
		maxRef = max(maxRef, len(tok.EncodeContinuation(e.Output))+1)
	}
	out := map[string]string{}
	for _, e := range examples {
		var prompt []int32
		for _, id := range tok.Encode(strings.ReplaceAll(dataset.PlainTemplate, "{input}", e.Input), true) {
			prompt = append(prompt, int32(id))
		}
		res, err := generate.Generate(context.Background(), m, [][]int32{prompt},
			generate.Options{MaxNewTokens: 2*maxRef + 8, StopTokens: []int32{int32(tok.EOS)}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int, len(res[0].Tokens))
		for i, id := range res[0].Tokens {
			ids[i] = int(id)
		}
		out[e.Input] = strings.TrimSpace(tok.Decode(ids))
	}
	return out
}

// validationSplit is the job's validation set, recomputed from the uploaded CSV with the split's
// documented seed.
func validationSplit(t *testing.T, data []byte) []dataset.Example {
	t.Helper()
	ex, problems, err := dataset.Read("data.csv", dataset.ContentTypeCSV, data)
	if err != nil || len(problems) > 0 {
		t.Fatalf("read dataset: %v %v", err, problems)
	}
	_, val, err := dataset.Split(ex, 0.2, dataset.SplitSeed)
	if err != nil {
		t.Fatal(err)
	}
	return val
}

// independentLoss loads a model and its tokenizer with the engine alone and returns the mean
// cross-entropy of the responses of examples, formatted with the documented plain template.
func independentLoss(t *testing.T, modelPath string, examples []dataset.Example) float64 {
	t.Helper()
	m, err := model.Load(modelPath)
	if err != nil {
		t.Fatalf("load %s: %v", modelPath, err)
	}
	tok, err := tokenizer.Load(modelPath)
	if err != nil {
		t.Fatalf("load tokenizer of %s: %v", modelPath, err)
	}
	var batches []model.Batch
	for lo := 0; lo < len(examples); lo += 8 {
		var exs []model.Example
		longest := 0
		for _, e := range examples[lo:min(lo+8, len(examples))] {
			prompt := tok.Encode(strings.ReplaceAll(dataset.PlainTemplate, "{input}", e.Input), true)
			ids := append(append(prompt, tok.EncodeContinuation(e.Output)...), tok.EOS)
			toks := make([]int32, len(ids))
			for i, id := range ids {
				toks[i] = int32(id)
			}
			exs = append(exs, model.Example{Tokens: toks, PromptLen: len(prompt)})
			longest = max(longest, len(toks))
		}
		batches = append(batches, model.PackBatch(exs, longest-1, int32(tok.EOS)))
	}
	loss, err := train.EvalLoss(m, batches...)
	if err != nil {
		t.Fatal(err)
	}
	return loss
}

// TestExecuteResumesBitIdentically stops a job mid-training (as StopAutoMLJob or a shutdown does, by
// cancelling its context) and runs it again, as a worker that claims it again does: once on a fresh
// machine (a new Executor and an empty work dir, so the checkpoint must come back from S3) and once
// on the same machine (work dir kept). Both must end exactly where an uninterrupted run ends.
func TestExecuteResumesBitIdentically(t *testing.T) {
	env := newEnv(t).withStories(t)
	env.put(t, "train/a.csv", pairsCSV(t, patternRows(80)))
	hp := map[string]string{"epochCount": "2"} // 64 training rows, 16 steps: the stops fall in both epochs
	ctx := context.Background()

	want, err := env.executor(t, "").Execute(ctx, spec("straight", "train/", hp), &recorder{})
	if err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	wantModel := env.get(t, "output/straight/model/model.safetensors")

	t.Run("unreadable checkpoint", func(t *testing.T) {
		// A checkpoint that cannot be read (another version's, a damaged copy) is not trusted: the job
		// trains from the start and still ends as the uninterrupted run did.
		env.put(t, "output/damaged/checkpoints/checkpoint.bin", []byte("LATHECKP but not really a checkpoint"))
		got, err := env.executor(t, "").Execute(ctx, spec("damaged", "train/", hp), &recorder{})
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		if !slices.Equal(got.Metrics, want.Metrics) || !bytes.Equal(env.get(t, "output/damaged/model/model.safetensors"), wantModel) {
			t.Errorf("the run over a damaged checkpoint did not end as the uninterrupted run")
		}
	})

	for _, c := range []struct {
		name     string
		keepWork bool
		stopAt   int
	}{
		{"fresh machine", false, 5},
		{"same machine", true, 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := strings.ReplaceAll(c.name, " ", "-")
			out := "output/" + name + "/"
			stopCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			work := t.TempDir()
			first := &recorder{onStep: func(p job.Progress) {
				if p.Step == c.stopAt {
					cancel()
				}
			}}
			_, err := env.executor(t, work).Execute(stopCtx, spec(name, "train/", hp), first)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped run returned %v, want context.Canceled", err)
			}
			if steps := first.steps(); steps[len(steps)-1].Step != c.stopAt {
				t.Errorf("the run went on to step %d after being stopped at step %d", steps[len(steps)-1].Step, c.stopAt)
			}
			if ok, err := env.objects.Exists(ctx, uri(out+"checkpoints/checkpoint.bin")); err != nil || !ok {
				t.Fatalf("no checkpoint in S3 after the stop (exists %v, err %v)", ok, err)
			}

			if !c.keepWork {
				work = ""
			}
			second := &recorder{}
			got, err := env.executor(t, work).Execute(ctx, spec(name, "train/", hp), second)
			if err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			if steps := second.steps(); len(steps) == 0 || steps[0].Step != c.stopAt+1 {
				t.Errorf("resumed run's first step report %+v, want step %d (the step after the stop)", steps[:min(1, len(steps))], c.stopAt+1)
			}
			if !slices.Equal(got.Metrics, want.Metrics) {
				t.Errorf("resumed run's metrics differ from the uninterrupted run's:\n got %+v\nwant %+v", got.Metrics, want.Metrics)
			}
			if !bytes.Equal(env.get(t, out+"model/model.safetensors"), wantModel) {
				t.Errorf("resumed run's model.safetensors differs from the uninterrupted run's")
			}
			if ok, err := env.objects.Exists(ctx, uri(out+"checkpoints/checkpoint.bin")); err != nil || ok {
				t.Errorf("the checkpoint is still in S3 after the job completed (exists %v, err %v)", ok, err)
			}
			events := map[string][]int{}
			for _, l := range lines(env.get(t, out+"training-log.jsonl")) {
				var ev struct {
					Event string
					Step  int
				}
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					t.Fatalf("training-log.jsonl line %q: %v", l, err)
				}
				events[ev.Event] = append(events[ev.Event], ev.Step)
			}
			if !slices.Equal(events["stopped"], []int{c.stopAt}) || !slices.Equal(events["resumed"], []int{c.stopAt}) {
				t.Errorf("training log: stopped at %v, resumed at %v; want both at step %d", events["stopped"], events["resumed"], c.stopAt)
			}
			if len(events["step"]) != 16 || len(events["start"]) != 1 || len(events["done"]) != 1 {
				t.Errorf("training log over both runs: %d steps, %d starts, %d dones; want 16, 1, 1", len(events["step"]), len(events["start"]), len(events["done"]))
			}
		})
	}
}

// TestExecuteStopsOutsideTraining stops jobs at the other moments a stop can come (reading the data,
// evaluating the base model, right after the last step, evaluating the fine-tuned model): Execute
// returns the cancellation, and running the job again ends as an uninterrupted run does.
func TestExecuteStopsOutsideTraining(t *testing.T) {
	env := newEnv(t).withStories(t)
	env.put(t, "train/a.csv", pairsCSV(t, patternRows(80))) // 64 training rows: 8 steps
	ctx := context.Background()
	want, err := env.executor(t, "").Execute(ctx, spec("straight", "train/", nil), &recorder{})
	if err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	wantModel := env.get(t, "output/straight/model/model.safetensors")

	for _, c := range []struct {
		name string
		stop func(phase string, p job.Progress) bool
	}{
		{"analyzing data", func(phase string, _ job.Progress) bool { return phase == job.PhaseAnalyzingData }},
		{"base evaluation", func(phase string, _ job.Progress) bool { return phase == job.PhaseTrainingModels }},
		{"last step", func(_ string, p job.Progress) bool { return p.Step == 8 }},
		{"fine-tuned evaluation", func(_ string, p job.Progress) bool { return strings.Contains(p.Message, "fine-tuned") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := strings.ReplaceAll(c.name, " ", "-")
			stopCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			first := &recorder{onReport: func(phase string, p job.Progress) {
				if c.stop(phase, p) {
					cancel()
				}
			}}
			if _, err := env.executor(t, "").Execute(stopCtx, spec(name, "train/", nil), first); !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped run returned %v, want context.Canceled", err)
			}
			got, err := env.executor(t, "").Execute(ctx, spec(name, "train/", nil), &recorder{})
			if err != nil {
				t.Fatalf("run after the stop: %v", err)
			}
			if !slices.Equal(got.Metrics, want.Metrics) {
				t.Errorf("metrics differ from the uninterrupted run's:\n got %+v\nwant %+v", got.Metrics, want.Metrics)
			}
			if !bytes.Equal(env.get(t, "output/"+name+"/model/model.safetensors"), wantModel) {
				t.Errorf("model.safetensors differs from the uninterrupted run's")
			}
		})
	}
}

// TestExecuteConcurrentJobs runs two identical jobs at once on one Executor (a worker with
// Concurrency 2): they must not disturb each other, so both end exactly as one alone does.
func TestExecuteConcurrentJobs(t *testing.T) {
	env := newEnv(t).withStories(t)
	env.put(t, "train/a.csv", pairsCSV(t, patternRows(60)))
	ctx := context.Background()
	alone, err := env.executor(t, "").Execute(ctx, spec("alone", "train/", nil), &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	exec := env.executor(t, "")
	var wg sync.WaitGroup
	results := make([]*job.Result, 2)
	errs := make([]error, 2)
	for i, name := range []string{"twin-a", "twin-b"} {
		wg.Go(func() { results[i], errs[i] = exec.Execute(ctx, spec(name, "train/", nil), &recorder{}) })
	}
	wg.Wait()
	want := env.get(t, "output/alone/model/model.safetensors")
	for i, name := range []string{"twin-a", "twin-b"} {
		if errs[i] != nil {
			t.Fatalf("%s: %v", name, errs[i])
		}
		if !slices.Equal(results[i].Metrics, alone.Metrics) {
			t.Errorf("%s metrics differ from the job run alone:\n got %+v\nwant %+v", name, results[i].Metrics, alone.Metrics)
		}
		if !bytes.Equal(env.get(t, "output/"+name+"/model/model.safetensors"), want) {
			t.Errorf("%s model.safetensors differs from the job run alone", name)
		}
	}
}
