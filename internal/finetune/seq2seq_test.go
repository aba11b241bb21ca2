package finetune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/llm/t5"
)

// t5TinyConfig is a Flan-T5-shaped config.json (gated-gelu, untied head, a decoder shallower than the
// encoder) small enough to train in a test, over the T5-shaped Unigram tokenizer in
// llm/tokenizer/testdata (3,442 pieces; the embedding has more rows, as Flan-T5's 32,128 do).
const t5TinyConfig = `{"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "d_model": 32, "d_kv": 8,
	"d_ff": 64, "num_layers": 2, "num_decoder_layers": 1, "num_heads": 4, "relative_attention_num_buckets": 32,
	"relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6, "feed_forward_proj": "gated-gelu",
	"tie_word_embeddings": false, "vocab_size": 3456, "decoder_start_token_id": 0, "eos_token_id": 1,
	"pad_token_id": 0, "is_encoder_decoder": true, "dropout_rate": 0.1}`

// writeT5Model writes a random tiny T5 with a real T5-shaped tokenizer.json into a new directory.
func writeT5Model(t *testing.T) string {
	t.Helper()
	cfg, err := t5.ParseConfig([]byte(t5TinyConfig))
	if err != nil {
		t.Fatal(err)
	}
	m, err := t5.NewRandom(cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	tj, err := os.ReadFile(filepath.Join("..", "..", "llm", "tokenizer", "testdata", "unigram_t5like.tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A T5 fine-tunes through the job's pipeline (input to the encoder, output + </s> as the decoder's
// target), fully and with LoRA on q and v, and exports a T5ForConditionalGeneration that loads back as
// the same function: a run on the export measures, as its base model's validation loss, the
// fine-tuned validation loss the first run reported.
func TestSeq2SeqFineTuneExportAndReload(t *testing.T) {
	data := familyTaskCSV(t)
	dir := writeT5Model(t)
	run := func(path, out, epochs, method string) *LocalReport {
		t.Helper()
		rep, err := Local{ModelPath: path, Entry: LocalEntry(path, false), Training: data, ValidationFraction: 0.2,
			HyperParameters: map[string]string{"epochCount": epochs, "batchSize": "8", "learningRate": "0.01"},
			Method:          method, OutDir: out}.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	for _, method := range []string{"full", "lora"} {
		t.Run(method, func(t *testing.T) {
			out := t.TempDir()
			epochs := "8"
			if method == "lora" {
				epochs = "10"
			}
			rep := run(dir, out, epochs, method)
			b, f := rep.Base, rep.FineTuned
			t.Logf("validation loss %.4f -> %.4f, train loss %.4f, rougeL %.3f -> %.3f", b.ValidationLoss, f.ValidationLoss, f.TrainingLoss, b.RougeL, f.RougeL)
			if !(f.ValidationLoss < b.ValidationLoss-1) || math.IsNaN(f.ValidationLoss) {
				t.Fatalf("did not learn: validation loss %.4f -> %.4f", b.ValidationLoss, f.ValidationLoss)
			}
			if f.RougeL <= b.RougeL {
				t.Errorf("ROUGE-L did not improve: %.3f -> %.3f", b.RougeL, f.RougeL)
			}
			var cfg map[string]any
			raw, err := os.ReadFile(filepath.Join(out, "config.json"))
			if err != nil || json.Unmarshal(raw, &cfg) != nil {
				t.Fatalf("exported config.json: %v", err)
			}
			if cfg["model_type"] != "t5" || cfg["num_decoder_layers"] != float64(1) {
				t.Fatalf("exported config: model_type %v, num_decoder_layers %v", cfg["model_type"], cfg["num_decoder_layers"])
			}
			for _, f := range []string{"tokenizer.json", "model.gguf"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Fatalf("the export has no %s: %v", f, err)
				}
			}
			if method == "lora" {
				var pc peftConfig
				raw, err := os.ReadFile(filepath.Join(out, "adapter", "adapter_config.json"))
				if err != nil || json.Unmarshal(raw, &pc) != nil {
					t.Fatalf("adapter_config.json: %v", err)
				}
				if pc.TaskType != "SEQ_2_SEQ_LM" || !slices.Equal(pc.TargetModules, []string{"q", "v"}) {
					t.Fatalf("adapter task %s, target_modules %v; want SEQ_2_SEQ_LM, [q v]", pc.TaskType, pc.TargetModules)
				}
			}
			again := run(out, t.TempDir(), "1", "full")
			if d := math.Abs(again.Base.ValidationLoss - f.ValidationLoss); d > 1e-4*f.ValidationLoss {
				t.Errorf("the export's validation loss %.6f, the run that exported it reported %.6f", again.Base.ValidationLoss, f.ValidationLoss)
			}
		})
	}
}

// A T5 job stopped in the middle of training resumes from its checkpoint and ends as an uninterrupted
// run does: the same metrics and the same model bytes.
func TestSeq2SeqJobResumesBitIdentically(t *testing.T) {
	env := newEnv(t)
	if _, err := env.models.Import(context.Background(), writeT5Model(t), "TinyT5"); err != nil {
		t.Fatal(err)
	}
	env.put(t, "train/a.csv", pairsCSV(t, patternRows(80)))
	ctx := context.Background()
	t5spec := func(name string) job.Spec {
		s := spec(name, "train/", map[string]string{"epochCount": "2", "learningRate": "0.005"})
		s.BaseModel = "TinyT5"
		return s
	}
	want, err := env.executor(t, "").Execute(ctx, t5spec("straight"), &recorder{})
	if err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	wantModel := env.get(t, "output/straight/model/model.safetensors")
	stopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := &recorder{onStep: func(p job.Progress) {
		if p.Step == 7 {
			cancel()
		}
	}}
	if _, err := env.executor(t, "").Execute(stopCtx, t5spec("stopped"), first); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run returned %v, want context.Canceled", err)
	}
	got, err := env.executor(t, "").Execute(ctx, t5spec("stopped"), &recorder{})
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if !slices.Equal(got.Metrics, want.Metrics) {
		t.Errorf("metrics differ from the uninterrupted run's:\n got %+v\nwant %+v", got.Metrics, want.Metrics)
	}
	if !bytes.Equal(env.get(t, "output/stopped/model/model.safetensors"), wantModel) {
		t.Errorf("model.safetensors differs from the uninterrupted run's")
	}
}

// A T5 LoRA run (the base frozen in bfloat16) stopped mid-training resumes from its checkpoint (the
// base's fingerprint checked) and ends with the uninterrupted run's metrics and model bytes.
func TestSeq2SeqLoRAResumesBitIdentically(t *testing.T) {
	data := familyTaskCSV(t)
	dir := writeT5Model(t)
	run := func(ctx context.Context, out string, r job.Reporter) (*LocalReport, error) {
		return Local{ModelPath: dir, Entry: LocalEntry(dir, false), Training: data, ValidationFraction: 0.2,
			HyperParameters: map[string]string{"epochCount": "3", "batchSize": "4", "learningRate": "0.01"},
			Method:          "lora", OutDir: out, Reporter: r}.Run(ctx)
	}
	straight := t.TempDir()
	want, err := run(context.Background(), straight, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := run(ctx, out, &recorder{onStep: func(p job.Progress) {
		if p.Step == 10 {
			cancel()
		}
	}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run returned %v, want context.Canceled", err)
	}
	got, err := run(context.Background(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.FineTuned != want.FineTuned {
		t.Errorf("metrics differ from the uninterrupted run's:\n got %+v\nwant %+v", got.FineTuned, want.FineTuned)
	}
	for _, f := range []string{"model.safetensors", filepath.Join("adapter", "adapter_model.safetensors")} {
		a, err1 := os.ReadFile(filepath.Join(straight, f))
		b, err2 := os.ReadFile(filepath.Join(out, f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the uninterrupted run's (%v, %v)", f, err1, err2)
		}
	}
}
