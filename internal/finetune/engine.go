package finetune

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/dataset"
	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/t5"
	"github.com/lathe-ml/lathe/llm/tensor"
	"github.com/lathe-ml/lathe/llm/tokenizer"
	"github.com/lathe-ml/lathe/llm/train"
)

// evalBatch and generateBatch bound how many sequences the engine holds at once when evaluating:
// activations and KV caches grow with the batch, and these keep a 1.7B model within a few GB.
const (
	evalBatch     = 8
	generateBatch = 16
)

// engineModel is a LanguageModel backed by Lathe's own engine (package llm).
type engineModel struct {
	m     *model.Model
	tok   *tokenizer.Tokenizer
	base  format.ModelConfig
	entry catalog.Model
	stops []int32
	pad   int32
}

// LoadModel opens a base model (a GGUF file or a Hugging Face directory) with its tokenizer.
func LoadModel(path string, entry catalog.Model) (LanguageModel, error) {
	if t5.IsCheckpoint(path) {
		return loadSeq2Seq(path, entry) // an encoder-decoder: its own package, not a decoder block
	}
	ck, err := format.Open(path)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	base := ck.Config()
	if !catalog.Runnable(base.Architecture) {
		return nil, fmt.Errorf("the base model's architecture %q is not one Lathe's engine runs (%s)",
			base.Architecture, strings.Join(catalog.SupportedArchitectures, ", "))
	}
	load := model.FromCheckpoint
	if cfg, err := model.ConfigFrom(base); err == nil && cfg.NumParams() >= fullFineTuneMaxParams {
		// A model this large trains LoRA on a base frozen in bfloat16: load it so from the start, so
		// its float32 copy never exists (a Falcon-7B: 13 GiB of matrices instead of 26).
		load = model.FromCheckpointBF16
	}
	m, err := load(ck)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(path) // a GGUF file's metadata, or a Hugging Face directory's files
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	e := &engineModel{m: m, tok: tok, base: base, entry: entry}
	for _, id := range base.EOS {
		e.stops = append(e.stops, int32(id))
	}
	if len(e.stops) == 0 && tok.EOS >= 0 {
		e.stops = []int32{int32(tok.EOS)}
	}
	if len(e.stops) == 0 {
		return nil, fmt.Errorf("the base model has no end-of-sequence token: responses could not end")
	}
	e.pad = e.stops[0]
	if tok.PAD >= 0 {
		e.pad = int32(tok.PAD)
	}
	return e, nil
}

func (e *engineModel) Params() int64 { return int64(e.m.Config().NumParams()) }

func (e *engineModel) ContextLen() int { return e.m.Config().ContextLen }

func (e *engineModel) EOS() int { return int(e.stops[0]) }

// Tokenize encodes a prompt (addBOS) from the start of a sequence, and a response as the continuation
// of the text before it: SentencePiece models put no word-start marker on the response's first word.
func (e *engineModel) Tokenize(text string, addBOS bool) []int {
	if addBOS {
		return e.tok.Encode(text, e.tok.BOS >= 0)
	}
	return e.tok.EncodeContinuation(text)
}

func (e *engineModel) Detokenize(ids []int) string { return e.tok.Decode(ids) }

// Prompt renders the input with the model's chat template (as one user turn, ready for the
// assistant's answer) for instruct models that have one; otherwise with dataset.PlainTemplate.
func (e *engineModel) Prompt(input string) string {
	if e.entry.Instruct && e.tok.ChatTemplate != "" {
		if text, err := e.tok.ChatPrompt([]tokenizer.Message{{Role: "user", Content: input}}); err == nil {
			return text
		}
	}
	return dataset.Plain{}.Prompt(input)
}

func (e *engineModel) examples(seqs []Sequence) ([]model.Example, int) {
	ex := make([]model.Example, len(seqs))
	longest := 0
	for i, s := range seqs {
		toks := make([]int32, len(s.Tokens))
		for j, t := range s.Tokens {
			toks[j] = int32(t)
		}
		ex[i] = model.Example{Tokens: toks, PromptLen: s.PromptLen}
		longest = max(longest, len(toks))
	}
	return ex, max(1, longest-1)
}

func (e *engineModel) Loss(ctx context.Context, seqs []Sequence) (float64, error) {
	var batches []model.Batch
	for lo := 0; lo < len(seqs); lo += evalBatch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		ex, T := e.examples(seqs[lo:min(lo+evalBatch, len(seqs))])
		batches = append(batches, model.PackBatch(ex, T, e.pad))
	}
	return train.EvalLoss(e.m, batches...)
}

func (e *engineModel) Generate(ctx context.Context, prompts [][]int, maxNew int) ([][]int, error) {
	out := make([][]int, 0, len(prompts))
	for lo := 0; lo < len(prompts); lo += generateBatch {
		chunk := prompts[lo:min(lo+generateBatch, len(prompts))]
		ps := make([][]int32, len(chunk))
		for i, p := range chunk {
			room := max(1, e.ContextLen()-maxNew)
			p = p[max(0, len(p)-room):] // keep the end of an over-long prompt: it holds the response marker
			ps[i] = make([]int32, len(p))
			for j, t := range p {
				ps[i][j] = int32(t)
			}
		}
		res, err := generate.Generate(ctx, e.m, ps, generate.Options{MaxNewTokens: maxNew, StopTokens: e.stops}, nil, nil)
		if err != nil {
			return nil, err
		}
		for _, r := range res {
			ids := make([]int, len(r.Tokens))
			for j, t := range r.Tokens {
				ids[j] = int(t)
			}
			out = append(out, ids)
		}
	}
	return out, nil
}

// trainConfig is the trainer's configuration for the resolved hyperparameters, without LoRA: the
// schedule decays to a tenth of the peak learning rate.
func trainConfig(hp HyperParameters, totalSteps, warmupSteps int) train.Config {
	return train.Config{
		Schedule: train.Schedule{PeakLR: hp.LearningRate, MinLR: hp.LearningRate / 10, WarmupSteps: warmupSteps,
			TotalSteps: totalSteps, Decay: hp.Schedule},
		AdamW:       train.AdamWConfig{WeightDecay: hp.WeightDecay},
		MaxGradNorm: hp.GradClip,
		Seed:        uint64(hp.Seed),
	}
}

func (e *engineModel) trainConfig(hp HyperParameters, totalSteps, warmupSteps int) train.Config {
	cfg := trainConfig(hp, totalSteps, warmupSteps)
	if hp.Method == "lora" {
		// The frozen base stays in bfloat16, half its float32 memory: the large models LoRA is chosen
		// for are published in bfloat16, so this loses nothing of theirs.
		// Every projection the model has (a plain MLP, falcon's or gpt_neox's, has no gate).
		var targets []model.Target
		for _, t := range []model.Target{model.TargetQ, model.TargetK, model.TargetV, model.TargetO,
			model.TargetGate, model.TargetUp, model.TargetDown} {
			if e.m.Config().HasTarget(t) {
				targets = append(targets, t)
			}
		}
		// Its products run on the bfloat16 matrices as they are (where the CPU has AVX512_BF16) unless
		// the precision asks for float32.
		cfg.LoRA = &model.LoRAConfig{Rank: hp.LoRARank, Alpha: hp.LoRAAlpha, Dropout: 0.05, FrozenBF16: true,
			WidenFrozen: hp.Precision == "fp32", Targets: targets}
	}
	return cfg
}

// mixedBF16 says whether a job trains in bfloat16 mixed precision: full fine-tuning with precision
// bf16, on a CPU that multiplies bfloat16 (AVX512_BF16). Elsewhere the rounded operands would be
// widened back to float32 for the float32 kernels: less exact and slower than float32 (310 against 437
// tokens/s for a 58M llama on a Zen 3), so the job trains in float32 and fallback says so.
func (hp HyperParameters) mixedBF16() (on, fallback bool) {
	asked := hp.Method == "full" && hp.Precision == "bf16"
	return asked && tensor.BF16Native(), asked && !tensor.BF16Native()
}

func (e *engineModel) NewTrainer(hp HyperParameters, totalSteps, warmupSteps int) (Trainer, error) {
	// Full fine-tuning in bfloat16 mixed precision when asked and faster (a LoRA config carries its own).
	mixed, _ := hp.mixedBF16()
	e.m.SetMixedBF16(mixed)
	tr, err := train.New(e.m, e.trainConfig(hp, totalSteps, warmupSteps))
	if err != nil {
		return nil, err
	}
	return &engineTrainer{e: e, tr: tr}, nil
}

func (e *engineModel) ResumeTrainer(path string) (Trainer, json.RawMessage, error) {
	tr, user, err := train.Resume(e.m, path)
	if err != nil {
		return nil, nil, err
	}
	// The checkpoint does not record mixed precision: a resumed full fine-tuning takes it from the
	// server's setting, as the job did when it started (a LoRA checkpoint's config carries its own).
	_, lora := e.m.LoRA()
	e.m.SetMixedBF16(!lora && os.Getenv(PrecisionEnv) == "bf16")
	return &engineTrainer{e: e, tr: tr}, user, nil
}

// Export writes LoRA adapters on their own (PEFT layout, into adapterDir) and the model with them
// merged, twice: a Hugging Face directory (config.json, model.safetensors, tokenizer files) and
// model.gguf for llama.cpp/ollama, both in float32 (the merged weights carry the adapters' float32
// deltas: a bfloat16 or quantized base's own rounding is kept, nothing more is added). The merge
// streams (model.MergedTensors): each matrix is widened from the base as it is held (quantized
// blocks, bfloat16), merged and written one at a time, so a QLoRA job that trained a 7B in a few GiB
// exports on the same machine; the model is left as it was, adapters attached, for what follows.
func (e *engineModel) Export(dir, adapterDir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	hasAdapter, err := e.exportAdapter(adapterDir)
	if err != nil {
		return false, err
	}
	cfg := e.m.ExportConfig(e.base)
	tensors := e.m.MergedTensors()
	if err := format.WriteHF(dir, cfg, tensors, format.HFOptions{}); err != nil {
		return false, fmt.Errorf("write safetensors: %w", err)
	}
	if err := e.tok.WriteHF(dir); err != nil {
		return false, fmt.Errorf("write tokenizer: %w", err)
	}
	meta, err := e.tok.GGUFMetadataFor(e.m.Config().Vocab)
	if err != nil {
		return false, fmt.Errorf("tokenizer metadata: %w", err)
	}
	if err := format.WriteGGUF(filepath.Join(dir, "model.gguf"), cfg, tensors, format.GGUFOptions{Name: e.entry.Name + "-finetuned", Extra: meta}); err != nil {
		return false, fmt.Errorf("write gguf: %w", err)
	}
	return hasAdapter, nil
}

// engineTrainer adapts train.Trainer to the pipeline's Trainer, packing each batch into one reused
// model.Batch sized to the longest sequence in it.
type engineTrainer struct {
	e      *engineModel
	tr     *train.Trainer
	batch  model.Batch
	lastLR float64
}

func (t *engineTrainer) Step(ctx context.Context, seqs []Sequence) (float64, error) {
	ex, T := t.e.examples(seqs)
	n := len(ex) * T
	b := &t.batch
	if cap(b.Tokens) < n {
		b.Tokens, b.Targets, b.Mask = make([]int32, n), make([]int32, n), make([]float32, n)
	}
	b.B, b.T = len(ex), T
	b.Tokens, b.Targets, b.Mask = b.Tokens[:n], b.Targets[:n], b.Mask[:n]
	model.PackInto(b, ex, t.e.pad)
	res, err := t.tr.StepContext(ctx, t.batch)
	if err != nil {
		return 0, err
	}
	t.lastLR = res.LR
	return res.Loss, nil
}

func (t *engineTrainer) StepCount() int { return t.tr.StepsDone() }

func (t *engineTrainer) LearningRate() float64 { return t.lastLR }

func (t *engineTrainer) Save(path string, state json.RawMessage) error { return t.tr.Save(path, state) }
