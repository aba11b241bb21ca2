package finetune

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/dataset"
)

func loadStories(t *testing.T) LanguageModel {
	t.Helper()
	entry, ok := catalog.Lookup("Stories260K")
	if !ok {
		t.Fatal("Stories260K is not in the catalog")
	}
	lm, err := LoadModel(storiesPath, entry)
	if err != nil {
		t.Fatal(err)
	}
	return lm
}

// encodeRows tokenizes rows the way the pipeline does: the prompt with BOS, then the response and EOS.
func encodeRows(lm LanguageModel, rows [][2]string) []Sequence {
	seqs := make([]Sequence, len(rows))
	for i, r := range rows {
		p := lm.Tokenize(lm.Prompt(r[0]), true)
		toks := append(append(p[:len(p):len(p)], lm.Tokenize(r[1], false)...), lm.EOS())
		seqs[i] = Sequence{Tokens: toks, PromptLen: len(p), Input: r[0], Output: r[1]}
	}
	return seqs
}

// TestEngineLoRA covers the path that models of 400M parameters and more take (LoRA), on Stories260K:
// training lowers the loss, a run saved and resumed into a freshly loaded model goes on bit-identically,
// and the export (adapters merged) reloads with the loss the trained model had.
func TestEngineLoRA(t *testing.T) {
	ctx := context.Background()
	rows := patternRows(40)
	hp := HyperParameters{Epochs: 1, BatchSize: 8, LearningRate: 1e-2, Method: "lora", LoRARank: 4, LoRAAlpha: 8,
		Schedule: "cosine", GradClip: 1, Seed: 42}
	const steps = 6
	batch := func(seqs []Sequence, step int) []Sequence {
		lo := (step * 8) % 32
		return seqs[lo : lo+8]
	}

	lm := loadStories(t)
	seqs := encodeRows(lm, rows)
	val := seqs[32:]
	before, err := lm.Loss(ctx, val)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := lm.NewTrainer(hp, steps, 1)
	if err != nil {
		t.Fatal(err)
	}
	if lc, ok := lm.(*engineModel).m.LoRA(); !ok || lc.Rank != 4 {
		t.Fatalf("the trainer did not attach rank-4 adapters (%+v, %v)", lc, ok)
	}
	var want []float64
	for s := range steps {
		loss, err := tr.Step(context.Background(), batch(seqs, s))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, loss)
	}
	after, err := lm.Loss(ctx, val)
	if err != nil {
		t.Fatal(err)
	}
	if !(after < before) {
		t.Errorf("LoRA training did not lower the validation loss: %v -> %v", before, after)
	}
	dir := t.TempDir()
	if _, err := lm.Export(filepath.Join(dir, "a"), filepath.Join(dir, "a-adapter")); err != nil {
		t.Fatal(err)
	}
	merged, err := lm.Loss(ctx, val)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := loadStoriesFrom(t, filepath.Join(dir, "a", "model.gguf"))
	again, err := reloaded.Loss(ctx, val)
	if err != nil {
		t.Fatal(err)
	}
	// Exporting leaves the trained model as it was: its loss is the same to float32 precision. With
	// adapters the frozen base (and the frozen output head) multiply bfloat16 activations where the
	// CPU has AVX512_BF16 (LoRAConfig.FrozenBF16); the exported GGUF is merged and float32: the two
	// agree to bfloat16 precision.
	if math.Abs(merged-after) > 1e-4*after || math.Abs(again-after) > 2e-3*after {
		t.Errorf("validation loss: %v with adapters, %v merged, %v reloaded from the GGUF", after, merged, again)
	}

	// Half the steps, a checkpoint, a new process (model loaded again), the other half.
	lm = loadStories(t)
	tr, err = lm.NewTrainer(hp, steps, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for s := range steps / 2 {
		loss, err := tr.Step(context.Background(), batch(seqs, s))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, loss)
	}
	ckpt := filepath.Join(dir, "checkpoint.bin")
	if err := tr.Save(ckpt, json.RawMessage(`{"step":3}`)); err != nil {
		t.Fatal(err)
	}
	lm = loadStories(t)
	tr, user, err := lm.ResumeTrainer(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if string(user) != `{"step":3}` || tr.StepCount() != 3 {
		t.Errorf("resumed trainer: state %s at step %d, want {\"step\":3} at step 3", user, tr.StepCount())
	}
	for s := steps / 2; s < steps; s++ {
		loss, err := tr.Step(context.Background(), batch(seqs, s))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, loss)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d loss %v after resuming, %v in one run", i+1, got[i], want[i])
		}
	}
	if _, err := lm.Export(filepath.Join(dir, "b"), filepath.Join(dir, "b-adapter")); err != nil {
		t.Fatal(err)
	}
	a, errA := os.ReadFile(filepath.Join(dir, "a", "model.safetensors"))
	b, errB := os.ReadFile(filepath.Join(dir, "b", "model.safetensors"))
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if !bytes.Equal(a, b) {
		t.Error("the resumed LoRA run exported different weights")
	}
}

func loadStoriesFrom(t *testing.T, path string) LanguageModel {
	t.Helper()
	entry, _ := catalog.Lookup("Stories260K")
	lm, err := LoadModel(path, entry)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return lm
}

// TestExecuteInstructModelFromHFFolder runs a job on a base model kept as a Hugging Face folder (as
// `lathe models pull` stores SmolLM2 and the other hub models) under an instruct model's catalog name:
// the prompts are rendered with the folder's chat template, and the exported tokenizer keeps it.
// The folder is Stories260K written in the Hugging Face layout, with a chat template added.
func TestExecuteInstructModelFromHFFolder(t *testing.T) {
	const name = "SmolLM2-135MInstruct"
	entry, ok := catalog.Lookup(name)
	if !ok || !entry.Instruct {
		t.Fatalf("%s is not an instruct model in the catalog", name)
	}
	src := filepath.Join(t.TempDir(), "hf")
	if _, err := loadStories(t).Export(src, src+"-adapter"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "model.gguf")); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(src, "tokenizer_config.json")
	var tokCfg map[string]any
	data, err := os.ReadFile(cfgPath)
	if err == nil {
		err = json.Unmarshal(data, &tokCfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	tokCfg["chat_template"] = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}" +
		"{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
	if data, err = json.Marshal(tokCfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}

	env := newEnv(t)
	if _, err := env.models.Import(context.Background(), src, name); err != nil {
		t.Fatal(err)
	}
	env.put(t, "train/a.csv", pairsCSV(t, patternRows(80)))
	s := spec("instruct", "train/", nil)
	s.BaseModel = name
	if _, err := env.executor(t, "").Execute(context.Background(), s, &recorder{}); err != nil {
		t.Fatalf("Execute: %v", err)
	}

	var dr struct {
		PromptTemplate string         `json:"prompt_template"`
		Training       dataset.Report `json:"training"`
	}
	if err := json.Unmarshal(env.get(t, "output/instruct/data-report.json"), &dr); err != nil {
		t.Fatal(err)
	}
	if want := "<|user|>\n{input}\n<|assistant|>\n"; dr.PromptTemplate != want {
		t.Errorf("prompt template %q, want the chat template's %q (without the BOS the tokenizer adds)", dr.PromptTemplate, want)
	}
	if dr.Training.ContextLength != entry.ContextLen {
		t.Errorf("context length %d, want the catalog's %d", dr.Training.ContextLength, entry.ContextLen)
	}
	var report metricsFile
	if err := json.Unmarshal(env.get(t, "output/instruct/metrics.json"), &report); err != nil {
		t.Fatal(err)
	}
	if report.FineTuned.ValidationLoss >= report.Base.ValidationLoss {
		t.Errorf("fine-tuning did not lower the validation loss: base %v, fine-tuned %v", report.Base.ValidationLoss, report.FineTuned.ValidationLoss)
	}
	var exported map[string]any
	if err := json.Unmarshal(env.get(t, "output/instruct/model/tokenizer_config.json"), &exported); err != nil {
		t.Fatal(err)
	}
	if exported["chat_template"] != tokCfg["chat_template"] {
		t.Errorf("the exported tokenizer_config.json has chat_template %q, want the base model's", exported["chat_template"])
	}
}
