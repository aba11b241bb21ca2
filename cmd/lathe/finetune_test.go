package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/job"
)

const storiesModel = "../../../shared/models/stories260K.gguf"

// runCommand runs a cobra command in-process with args and returns its standard output; stderr (nil
// for a buffer that is dropped) receives its progress.
func runCommand(ctx context.Context, cmd *cobra.Command, stdin io.Reader, stderr io.Writer, args ...string) (string, error) {
	var out bytes.Buffer
	if stderr == nil {
		stderr = io.Discard
	}
	cmd.SetOut(&out)
	cmd.SetErr(stderr)
	if stdin != nil {
		cmd.SetIn(stdin)
	}
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// writeTaskCSV writes the small task the fine-tuning tests teach stories260K: "Tell me about NAME and
// the ANIMAL." answered "NAME had a ANIMAL. The ANIMAL was happy." (40 rows).
func writeTaskCSV(t *testing.T, dir string) string {
	t.Helper()
	names := []string{"Lily", "Tom", "Sue", "Ben", "Max", "Mia", "Sam", "Anna", "Tim", "Zoe"}
	animals := []string{"cat", "dog", "bird", "fish"}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"input", "output"})
	for i := range 40 {
		n, a := names[i%10], animals[i/10]
		_ = w.Write([]string{fmt.Sprintf("Tell me about %s and the %s.", n, a), fmt.Sprintf("%s had a %s. The %s was happy.", n, a, a)})
	}
	w.Flush()
	path := filepath.Join(dir, "train.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cancelOn is a stderr that cancels a run when a line containing marker is written: the finetune
// command writes its progress line inside the training loop, before the loop next checks for
// cancellation, so the run stops right after that step, as a Ctrl-C there would.
type cancelOn struct {
	mu     sync.Mutex
	marker string
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if bytes.Contains(p, []byte(c.marker)) {
		c.cancel()
	}
	return c.buf.Write(p)
}

func readMetrics(t *testing.T, dir string) (base, tuned map[string]any, hp map[string]any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		HP    map[string]any `json:"hyperparameters"`
		Base  map[string]any `json:"base"`
		Tuned map[string]any `json:"fine_tuned"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("metrics.json: %v\n%s", err, data)
	}
	return m.Base, m.Tuned, m.HP
}

// TestFinetuneInterruptAndResume fine-tunes stories260K on a 40-row CSV three times: straight
// through, and interrupted after step 5 (as Ctrl-C would) then run again. The straight run writes the
// model and metrics and improves the validation numbers; the interrupted run leaves a checkpoint and
// no model; the rerun resumes from step 5 and writes weights bit-identical to the straight run's.
func TestFinetuneInterruptAndResume(t *testing.T) {
	tmp := t.TempDir()
	data := writeTaskCSV(t, tmp)
	straight, resumed := filepath.Join(tmp, "straight"), filepath.Join(tmp, "resumed")
	args := func(out string) []string {
		return []string{"--model", storiesModel, "--data", data, "--out", out, "--epochs", "2", "--batch-size", "4"}
	}

	stdout, err := runCommand(context.Background(), finetuneCommand(), nil, nil, args(straight)...)
	if err != nil {
		t.Fatalf("lathe finetune: %v", err)
	}
	if !strings.Contains(stdout, "fine-tuned stories260K (full, 2 epochs, batch 4, learning rate 0.001)") {
		t.Errorf("summary:\n%s", stdout)
	}
	for _, f := range []string{"model.gguf", "config.json", "model.safetensors", "tokenizer.json", "metrics.json", "samples.jsonl", "data-report.json", "training-log.jsonl"} {
		if _, err := os.Stat(filepath.Join(straight, f)); err != nil {
			t.Errorf("finished run: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(straight, "checkpoints")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("finished run left its checkpoints folder (stat: %v)", err)
	}
	base, tuned, hp := readMetrics(t, straight)
	if hp["epochCount"] != 2.0 || hp["batchSize"] != 4.0 || hp["method"] != "full" {
		t.Errorf("hyperparameters in metrics.json = %v", hp)
	}
	bl, tl := base["ValidationLoss"].(float64), tuned["ValidationLoss"].(float64)
	if !(tl < bl-1) {
		t.Errorf("validation loss %v -> %v: fine-tuning on the task should lower it by more than a nat", bl, tl)
	}
	if p := tuned["Perplexity"].(float64); math.Abs(p-math.Exp(tl)) > 1e-9*p {
		t.Errorf("perplexity %v, want exp(validation loss) = %v", p, math.Exp(tl))
	}
	if !(tuned["RougeL"].(float64) > base["RougeL"].(float64)) {
		t.Errorf("RougeL %v -> %v: should rise", base["RougeL"], tuned["RougeL"])
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &cancelOn{marker: "step 5/16 ", cancel: cancel}
	_, err = runCommand(ctx, finetuneCommand(), nil, stderr, args(resumed)...)
	if err == nil || !strings.Contains(err.Error(), "interrupted: the checkpoint is "+filepath.Join(resumed, "checkpoints", "checkpoint.bin")) {
		t.Fatalf("interrupted run: error %v, want the interruption reported\n%s", err, stderr.buf.String())
	}
	if strings.Contains(stderr.buf.String(), "step 6/16") {
		t.Errorf("the run went on after the interrupt:\n%s", stderr.buf.String())
	}
	if _, err := os.Stat(filepath.Join(resumed, "checkpoints", "checkpoint.bin")); err != nil {
		t.Errorf("interrupted run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(resumed, "model.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("interrupted run wrote a model (stat: %v)", err)
	}

	var progress bytes.Buffer
	if _, err := runCommand(context.Background(), finetuneCommand(), nil, &progress, args(resumed)...); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if strings.Contains(progress.String(), "step 5/16 ") || !strings.Contains(progress.String(), "step 6/16 ") {
		t.Errorf("resumed run should start at step 6:\n%s", progress.String())
	}
	log, err := os.ReadFile(filepath.Join(resumed, "training-log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"event":"resumed"`) || !strings.Contains(string(log), `"step":5,`) {
		t.Errorf("training log has no resume at step 5:\n%s", log)
	}
	for _, f := range []string{"model.safetensors", "model.gguf"} {
		a, errA := os.ReadFile(filepath.Join(straight, f))
		b, errB := os.ReadFile(filepath.Join(resumed, f))
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s of the interrupted and resumed run differs from the straight run's", f)
		}
	}
}

func TestFinetuneRejectsBadInput(t *testing.T) {
	tmp := t.TempDir()
	data := writeTaskCSV(t, tmp)
	badCSV := filepath.Join(tmp, "bad.csv")
	if err := os.WriteFile(badCSV, []byte("input,answer\nhello,world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no data", []string{"--model", storiesModel, "--out", out}, `required flag(s) "data" not set`},
		{"lora and full", []string{"--model", storiesModel, "--data", data, "--out", out, "--lora", "--full"}, "--lora and --full exclude each other"},
		{"validation fraction 1", []string{"--model", storiesModel, "--data", data, "--out", out, "--validation-fraction", "1"}, "--validation-fraction must be between 0 and 1"},
		{"too many epochs", []string{"--model", storiesModel, "--data", data, "--out", out, "--epochs", "11"}, "epochCount must be an integer from 1 to 10"},
		{"missing model", []string{"--model", filepath.Join(tmp, "nope.gguf"), "--data", data, "--out", out}, "load model"},
		{"missing data", []string{"--model", storiesModel, "--data", filepath.Join(tmp, "nope.csv"), "--out", out}, "nope.csv"},
		{"wrong column", []string{"--model", storiesModel, "--data", badCSV, "--out", out}, "output"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runCommand(context.Background(), finetuneCommand(), nil, nil, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, "model.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected run wrote a model (stat: %v)", err)
	}
}

// TestTrainProgressBar: on a terminal the progress is one redrawn bar with step/total, loss, tokens/s
// and ETA; phases and messages are lines of their own.
func TestTrainProgressBar(t *testing.T) {
	var out bytes.Buffer
	p := &trainProgress{w: &out, tty: true}
	ctx := context.Background()
	_ = p.SetPhase(ctx, job.PhaseTrainingModels)
	_ = p.Progress(ctx, job.Progress{Message: "evaluating the base model"})
	for step := 1; step <= 3; step++ {
		if err := p.Progress(ctx, job.Progress{Step: step, TotalSteps: 10, Loss: 2.5 / float64(step), TokensPerSecond: 1234, ETASeconds: 75}); err != nil {
			t.Fatal(err)
		}
	}
	_ = p.Progress(ctx, job.Progress{Message: "evaluating the fine-tuned model"})
	text := out.String()
	for _, want := range []string{"TrainingModels\n", "evaluating the base model\n", "3/10", "loss 0.8333", "1234 tok/s", "ETA 1m15s", "\nevaluating the fine-tuned model\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("progress output %q lacks %q", text, want)
		}
	}
}

// TestFinetuneFolderValidationLoRA reads the training data from a folder of two CSV files (as a job
// reads an S3 prefix), takes the validation set from its own file instead of a split, and trains LoRA
// adapters that the exported model has merged in.
func TestFinetuneFolderValidationLoRA(t *testing.T) {
	tmp := t.TempDir()
	all, err := os.ReadFile(writeTaskCSV(t, tmp))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(all), "\n"), "\n")
	header, rows := lines[0], lines[1:]
	folder := filepath.Join(tmp, "train")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]string{
		filepath.Join(folder, "part-1.csv"): rows[:18],
		filepath.Join(folder, "part-2.csv"): rows[18:36],
		filepath.Join(tmp, "val.csv"):       rows[36:],
	}
	for path, part := range files {
		if err := os.WriteFile(path, []byte(header+strings.Join(part, "")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(tmp, "out")
	if _, err := runCommand(context.Background(), finetuneCommand(), nil, nil, "--model", storiesModel, "--data", folder,
		"--validation", filepath.Join(tmp, "val.csv"), "--out", out, "--epochs", "1", "--batch-size", "6", "--lora"); err != nil {
		t.Fatalf("lathe finetune: %v", err)
	}
	var report struct {
		Files          map[string]int `json:"files"`
		TrainingRows   int            `json:"training_rows"`
		ValidationRows int            `json:"validation_rows"`
	}
	data, err := os.ReadFile(filepath.Join(out, "data-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatal(err)
	}
	if report.TrainingRows != 36 || report.ValidationRows != 4 || len(report.Files) != 3 {
		t.Errorf("data report: %d training rows, %d validation rows from %v; want 36 and 4 from three files",
			report.TrainingRows, report.ValidationRows, report.Files)
	}
	_, _, hp := readMetrics(t, out)
	if hp["method"] != "lora" || hp["loraRank"] != 16.0 {
		t.Errorf("hyperparameters %v: want LoRA of rank 16", hp)
	}
	// The exported model is a plain model (adapters merged): the engine loads it and it generates.
	got, err := runCommand(context.Background(), generateCommand(), nil, nil, "--model", filepath.Join(out, "model.gguf"),
		"--raw", "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "8")
	if err != nil || strings.TrimSpace(got) == "" {
		t.Errorf("generate from the LoRA-merged model: %q, %v", got, err)
	}
}
